//! The `waystation` server: HTTP API, scheduler and command-line tools over the engine.
//!
//! [`run`] takes its listener and shutdown signal as parameters, so tests start real
//! servers on port 0 and stop them cleanly.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;

use api::AppState;
use config::Config;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use waystation_runtime::{NoPlugins, Plugins, Runtime, SystemClock};
use waystation_store::SledStore;

/// An opened engine: runtime over the sled store in the configured data directory.
pub struct Engine {
    /// The runtime.
    pub runtime: Arc<Runtime>,
    /// The admin secret made on first start, to print once.
    pub bootstrap_secret: Option<String>,
}

/// Opens the store under `config.data`, creates the first admin token on a fresh store.
///
/// # Errors
/// When the store cannot be opened (missing permissions, another process holds it).
pub fn open(config: &Config, bootstrap: Option<String>) -> anyhow::Result<Engine> {
    std::fs::create_dir_all(&config.data).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {e}",
            config.data.display()
        )
    })?;
    let store = Arc::new(SledStore::open(&config.store_dir())?);
    let bootstrap_secret = auth::bootstrap(store.as_ref(), bootstrap)?;
    let plugins: Arc<dyn Plugins> = Arc::new(NoPlugins);
    let runtime = Runtime::new(store, plugins, Arc::new(SystemClock));
    Ok(Engine {
        runtime,
        bootstrap_secret,
    })
}

/// Serves the API on `listener` and runs the scheduler until `shutdown` completes; then
/// stops taking requests, drains the ones in flight, and stops the scheduler.
///
/// # Errors
/// IO errors from accepting connections.
pub async fn run(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(runtime.clone(), config);
    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(runtime.clone().run_scheduler(async {
        let _ = scheduler_stopped.await;
    }));
    state.set_ready(true);
    let app = api::router(state.clone());
    let drained = state.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            drained.set_ready(false);
            tracing::info!("shutting down: draining requests in flight");
        })
        .await;
    let _ = stop_scheduler.send(());
    let _ = scheduler.await;
    result
}
