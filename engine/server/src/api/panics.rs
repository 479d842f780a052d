//! Panics are contained: a handler that panics answers 500 problem+json like any other
//! internal error, and the connection and the server go on. Without this layer a panic
//! unwinds out of hyper's connection task, which drops the connection without an answer
//! (issue 12: `GET /v1/instances?cursor=a%C3%A9b` did exactly that).
//!
//! Stack overflows are not panics (they abort the process); recursion over caller input is
//! bounded in the core, and the threads it runs on have the stack size set in `main.rs`.

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use waystation_runtime::contain::CatchUnwind;

/// Middleware: runs the rest of the stack, turning a panic into a 500 problem+json.
pub async fn contain(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match CatchUnwind::new(next.run(req)).await {
        Ok(response) => response,
        Err(panic) => {
            app.runtime.metrics().panics.fetch_add(1, Ordering::Relaxed);
            let cause = format!("handler of {method} {path} panicked: {panic}");
            ApiError::internal(&cause).into_response()
        }
    }
}
