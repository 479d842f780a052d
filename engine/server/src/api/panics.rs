//! Panics are contained: a handler that panics answers 500 problem+json like any other
//! internal error, and the connection and the server go on. Without this layer a panic
//! unwinds out of hyper's connection task, which drops the connection without an answer
//! (issue 12: `GET /v1/instances?cursor=a%C3%A9b` did exactly that).
//!
//! Stack overflows are not panics (they abort the process); recursion over caller input is
//! bounded in the core, and the threads it runs on have the stack size set in `main.rs`.

use super::error::ApiError;
use super::state::AppState;
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

#[cfg(test)]
mod tests {
    use super::super::state::AppState;
    use crate::config::Config;
    use axum::routing::get;
    use axum::Router;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use waystation_runtime::{NoPlugins, Runtime, SystemClock};
    use waystation_store::MemoryStore;
    use waystation_wasm::{HostConfig, PluginHost, Sandbox};

    fn state(dir: &std::path::Path) -> AppState {
        let runtime = Runtime::new(
            Arc::new(MemoryStore::default()),
            Arc::new(NoPlugins),
            Arc::new(SystemClock),
        );
        let sandbox = Sandbox::new(HostConfig {
            max_concurrent_calls: 1,
            ..HostConfig::default()
        })
        .unwrap();
        let plugins = Arc::new(PluginHost::open(dir, sandbox).unwrap());
        AppState::new(runtime, plugins, Config::default())
    }

    /// One request on a fresh connection; the whole answer as text.
    fn ask(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_that_panics_answers_500_problem_json_and_the_server_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path());
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    let bytes = "a\u{e9}b";
                    // The kind of fault of issue 12: slicing caller text at a byte offset.
                    bytes[..2].len().to_string()
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                super::contain,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let boom = tokio::task::spawn_blocking(move || ask(addr, "/boom"))
            .await
            .unwrap();
        assert!(boom.starts_with("HTTP/1.1 500 "), "{boom}");
        assert!(
            boom.contains("content-type: application/problem+json"),
            "{boom}"
        );
        assert!(
            boom.contains(r#""type":"https://waystation.dev/problems/internal""#),
            "{boom}"
        );
        let fine = tokio::task::spawn_blocking(move || ask(addr, "/fine"))
            .await
            .unwrap();
        assert!(
            fine.starts_with("HTTP/1.1 200 ") && fine.ends_with("fine"),
            "{fine}"
        );
        assert_eq!(
            state
                .runtime
                .metrics()
                .panics
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}
