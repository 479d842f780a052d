//! Accepting and serving HTTP/1.1 connections, with the limits that keep one client from
//! holding the server: how long a request's head may take, how many connections are open
//! at once, and how long a shutdown waits for the requests in flight.
//!
//! Why not `axum::serve`: it gives hyper no timer, so hyper's header read timeout never
//! runs. A client that opened a connection and sent half a request head (or nothing) held
//! it - and a file descriptor and a task - for as long as it liked; twenty thousand such
//! connections used every descriptor the process had, and a SIGTERM waited for them. Here
//! hyper gets tokio's timer, so a request head (and, on a kept-alive connection, the wait
//! for the next one) must arrive within [`HEADER_READ_TIMEOUT`]; the body's own deadline
//! is in `api/body_deadline.rs`.

use crate::api::wire::ProblemIo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The longest a client may take to send a request's head, and the longest a kept-alive
/// connection may sit idle between requests; then the connection is closed (no answer: a
/// client that sent nothing is not waiting for one).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Most connections open at once. Past it the server stops accepting until one closes:
/// new clients wait in the kernel's accept queue (then get a refused connection once that
/// is full) instead of taking the descriptors the store needs.
pub const MAX_CONNECTIONS: usize = 4_096;

/// How long a shutdown waits for the requests in flight to be answered; connections still
/// open then are closed (their commands, if any were applied, are durable or not as the
/// group flush left them: an unanswered command may or may not have happened, as after a
/// dropped connection).
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets the
/// requests in flight finish for up to [`DRAIN_DEADLINE`], and closes what is left.
/// A failed `accept` (out of descriptors, a connection reset before it was taken) is
/// logged and retried after a second, as `axum::serve` does: it never stops the server.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Finished connections' tasks, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of descriptors and the like: do not spin on it.
                        tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out as they are written (one write per answer head and body).
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(ProblemIo::new(stream));
        let conn = graceful.watch(http.serve_connection(io, TowerToHyperService::new(app.clone())));
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: draining requests in flight"
    );
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            deadline_s = DRAIN_DEADLINE.as_secs(),
            "requests still in flight at the drain deadline; closing their connections"
        );
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Errors of one connection that has not been taken yet (the client gave up), as opposed
/// to errors of the listener itself.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
