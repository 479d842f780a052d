//! The HTTP API. At this stage it serves only `GET /healthz`; the workflow, instance and
//! plugin endpoints arrive with the durable runtime.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// Builds the application router.
pub fn router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

/// Liveness: the process is up and serving HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}
