//! The `waystation` server: HTTP API, scheduler and command-line tools over the engine.
//!
//! [`run`] takes its listener and shutdown signal as parameters, so tests start real
//! servers on port 0 and stop them cleanly.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod progress_key;
pub mod serving;
pub mod shared_plugins;

use anyhow::Context;
use api::AppState;
use config::Config;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use waystation_runtime::{Plugins, Runtime, SystemClock};
use waystation_store::KvStore;
use waystation_wasm::{PluginHost, Sandbox};

/// An opened engine: runtime over the store in the configured data directory.
pub struct Engine {
    /// The runtime.
    pub runtime: Arc<Runtime>,
    /// The plugin registry and sandbox; the runtime calls plugins through it.
    pub plugins: Arc<PluginHost>,
    /// The admin secret made on first start, to print once.
    pub bootstrap_secret: Option<String>,
    /// The outbox channels and retry policy, for the dispatcher.
    pub outbox: waystation_runtime::Outbox,
}

/// Opens the store under `config.data` (its engine found from its files, see
/// [`cli::store::open_store`]), creates the first admin token on a fresh store.
///
/// # Errors
/// When the store cannot be opened (missing permissions, another process holds it, a store
/// of another engine than the configured one: the message names the migration command).
pub fn open(config: &Config, bootstrap: Option<String>) -> anyhow::Result<Engine> {
    // Checked before anything is created: a bad calendar stops the start with nothing written.
    let calendars = config.calendars()?;
    std::fs::create_dir_all(&config.data).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {e}",
            config.data.display()
        )
    })?;
    let (store, registry, shared) = open_store(config)?;
    if !waystation_store::ReportStore::reports_current(store.as_ref())? {
        tracing::warn!(
            "the report rollups do not cover the instances stored before this version: stop the server and run `waystation reports rebuild --data {}`",
            config.data.display()
        );
    }
    let bootstrap_secret = auth::bootstrap(store.as_ref(), bootstrap)?;
    let sandbox = Sandbox::new(config.host_config())
        .map_err(|e| anyhow::anyhow!("cannot start the plugin sandbox: {e}"))?;
    let location = registry.describe();
    let plugins = Arc::new(
        PluginHost::open_in(registry, &config.plugin_dir(), sandbox)
            .map_err(|e| anyhow::anyhow!("cannot open the plugin registry in {location}: {e}"))?,
    );
    // Load every registered plugin now (from the compiled cache), so the first call after a
    // restart pays no compile; a plugin that no longer loads is reported, not fatal. On a
    // node's first start on a shared registry that means compiling each one (seconds each).
    tracing::info!(
        registry = %plugins.registry_location(),
        versions = plugins.list().len(),
        "loading plugins (compiling those this node has no compiled copy of)"
    );
    for (info, error) in plugins.warm() {
        tracing::error!(plugin = %info.name, version = info.version, "cannot load plugin: {error}");
    }
    // Channels are set up now: a bad URL or a missing secret stops the start.
    let outbox = delivery::build(&config.outbox, &|k| std::env::var(k).ok())?;
    tracing::info!(channels = ?outbox.channels.names(), "outbox channels");
    missing_calendars(store.as_ref(), &calendars)?;
    tracing::info!(calendars = ?calendars.keys().collect::<Vec<_>>(), "business calendars");
    let invoker: Arc<dyn Plugins> = plugins.clone();
    let runtime = Runtime::with_options(store, invoker, Arc::new(SystemClock), config.options());
    runtime.set_calendars(calendars);
    runtime.set_retention(config.store.retention());
    let key = match &shared {
        Some(pg) => progress_key::load_or_create_shared(pg)?,
        None => progress_key::load_or_create(&config.progress_key_file())?,
    };
    runtime.set_progress_links(waystation_runtime::ProgressLinks::new(
        key,
        &config.public_url(),
    ));
    Ok(Engine {
        runtime,
        plugins,
        bootstrap_secret,
        outbox,
    })
}

/// The configured store and where its plugin registry is kept: PostgreSQL (migrated to
/// this binary's schema at open) with the registry in the same database, shared by every
/// node; or the embedded engine in the data directory with the registry in
/// `{data}/plugins`.
///
/// # Errors
/// A bad `[store]` section, a database that cannot be reached or is newer than this
/// binary, or the embedded store's open errors.
#[allow(clippy::type_complexity)] // three parts, each named where it is used
fn open_store(
    config: &Config,
) -> anyhow::Result<(
    Arc<dyn waystation_store::Store>,
    Box<dyn waystation_wasm::RegistryStorage>,
    Option<Arc<waystation_store::PgStore>>,
)> {
    if let Some(options) = config.store.postgres()? {
        let store = Arc::new(
            waystation_store::PgStore::open(&options)
                .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL store: {e}"))?,
        );
        if let Some(what) = store.meta(cli::store::UNFINISHED_META)? {
            anyhow::bail!(
                "{} holds an unfinished copy ({what}): drop the schema and run `waystation store migrate` again",
                store.describe()
            );
        }
        let (schema, _) = store.schema_version()?;
        tracing::info!(
            engine = "postgres",
            store = %store.describe(),
            schema,
            node = waystation_store::Store::node_name(store.as_ref()).unwrap_or_default(),
            "store open"
        );
        if config.plugin_dir().join("index.json").exists() {
            tracing::warn!(
                "{} holds a plugin registry of an embedded store; with PostgreSQL the registry is in the database (copy it with `waystation store migrate`)",
                config.plugin_dir().display()
            );
        }
        let registry = Box::new(shared_plugins::PgRegistry::new(store.clone()));
        return Ok((store.clone(), registry, Some(store)));
    }
    let unfinished = config.data.join(cli::store::UNFINISHED_FILE);
    if unfinished.exists() {
        anyhow::bail!(
            "{} holds an unfinished copy ({} is there): remove the directory and run `waystation store migrate` again",
            config.data.display(),
            unfinished.display()
        );
    }
    let kv = cli::store::open_store(&config.data, config.store.embedded())?;
    tracing::info!(engine = %kv.engine(), dir = %config.store_dir().display(), "store open");
    let registry = waystation_wasm::DirStorage::open(&config.plugin_dir()).with_context(|| {
        format!(
            "cannot open the plugin registry in {}",
            config.plugin_dir().display()
        )
    })?;
    let store = KvStore::opened(kv).with_context(|| {
        format!(
            "cannot upgrade the layout of the store in {}",
            config.store_dir().display()
        )
    })?;
    Ok((Arc::new(store), Box::new(registry), None))
}

/// Refuses to start when a stored definition version names a business calendar the
/// configuration no longer defines: its instances could be neither read, stepped nor
/// cancelled (their version no longer compiles), so the operator hears it now, with every
/// place named, instead of from a 422 on each of those instances later.
fn missing_calendars(
    store: &dyn waystation_store::Store,
    calendars: &waystation_core::calendar::Calendars,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (id, latest) in store.list_definitions()? {
        for version in 1..=latest {
            let Some(stored) = store.definition(&id, version)? else {
                continue;
            };
            // A version that no longer parses is reported where it is used, not here.
            let Ok(definition) =
                serde_json::from_value::<waystation_core::Definition>(stored.definition)
            else {
                continue;
            };
            for (pointer, name) in definition.calendars_named() {
                if !calendars.contains_key(&name) {
                    problems.push(format!(
                        "workflow '{id}' version {version} names business calendar '{name}' at {pointer}"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the configuration does not define calendars that stored definitions use; add them back under [calendars.<name>] (instances of those versions could not be read, stepped or cancelled without them):\n  {}",
        problems.join("\n  ")
    )
}

/// Serves the API on `listener` and runs the scheduler until `shutdown` completes; then
/// stops taking requests, drains the ones in flight (see `serving.rs` for the limits), and
/// stops the scheduler.
pub async fn run(
    listener: TcpListener,
    engine: &Engine,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let runtime = engine.runtime.clone();
    let state = AppState::new(runtime.clone(), engine.plugins.clone(), config);
    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(runtime.clone().run_scheduler(async {
        let _ = scheduler_stopped.await;
    }));
    let (stop_schedules, schedules_stopped) = tokio::sync::oneshot::channel::<()>();
    let schedules = tokio::spawn(runtime.clone().run_schedules(async {
        let _ = schedules_stopped.await;
    }));
    let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
    let retention = tokio::spawn(runtime.clone().run_retention(async {
        let _ = retention_stopped.await;
    }));
    let (stop_dispatcher, dispatcher_stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn(
        runtime
            .clone()
            .run_dispatcher(engine.outbox.clone(), async {
                let _ = dispatcher_stopped.await;
            }),
    );
    // The instance counts of /metrics and the board are kept by the store once built; build
    // them now, in the background, a chunk at a time (commits go on in between): with a
    // million instances that scan takes seconds.
    let stop_counting = Arc::new(AtomicBool::new(false));
    let counting = {
        let runtime = runtime.clone();
        let stop = stop_counting.clone();
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::Relaxed) {
                match runtime.store().build_counts_step() {
                    Ok(true) => break,
                    Ok(false) => std::thread::yield_now(),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot count the instances for /metrics");
                        break;
                    }
                }
            }
        })
    };
    state.set_ready(true);
    // A panic anywhere below (a handler, an extractor, the dashboard) answers 500
    // problem+json and the connection lives on; outermost, any answer to a request whose
    // body was left unread tells the client to close the connection.
    let app = api::router(state.clone())
        .merge(dashboard::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::panics::contain,
        ))
        .layer(axum::middleware::from_fn(api::body_deadline::limit))
        .layer(axum::middleware::from_fn(api::unread::close_if_unread));
    let drained = state.clone();
    serving::serve(listener, app, async move {
        shutdown.await;
        drained.set_ready(false);
        drained.close_streams();
    })
    .await;
    stop_counting.store(true, Ordering::Relaxed);
    let _ = counting.await;
    let _ = stop_scheduler.send(());
    let _ = scheduler.await;
    let _ = stop_retention.send(());
    let _ = retention.await;
    let _ = stop_schedules.send(());
    let _ = schedules.await;
    let _ = stop_dispatcher.send(());
    let _ = dispatcher.await;
}
