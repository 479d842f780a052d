//! The `waystation` server: HTTP API and command-line tools over the engine core.
//!
//! [`run`] takes its listener and shutdown signal as parameters, so tests start real
//! servers on port 0 and stop them cleanly.

pub mod api;
pub mod cli;

use std::future::Future;
use tokio::net::TcpListener;

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests.
///
/// # Errors
/// IO errors from accepting connections.
pub async fn run(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = api::router();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
