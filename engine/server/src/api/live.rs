//! Live change streams for the dashboard: server-sent events fed by the runtime's commits
//! (see [`waystation_runtime::Change`]), so a board card changes colour within a second of
//! the commit instead of at the next poll.
//!
//! `GET /v1/stream` (every instance), `GET /v1/workflows/{id}/stream` (the board of one
//! workflow), `GET /v1/instances/{id}/stream` (an instance page). Each stream sends:
//!
//! - `ready` once, when it is open (`data: {}`), so a page knows it is live;
//! - `change` per commit that touches an instance in scope: `data` is the [`Change`] as
//!   JSON (instance, workflow, version, stage, status, sla, history_len, kind, at);
//! - `resync` when this connection fell more than [`waystation_runtime::CHANGE_BUFFER`]
//!   changes behind and lost some: the page reads what it shows again;
//! - a comment every [`KEEP_ALIVE`] so proxies keep the connection and a dead peer is found.
//!
//! Limits: at most `[live] max_streams` streams at once over all callers (503
//! `too-many-streams` beyond, with `Retry-After`); a stream needs `Accept:
//! text/event-stream` (406 otherwise, so a plain GET never hangs). A stream ends when the
//! server shuts down; the page reconnects. Nothing here reads the store after the opening
//! check, holds a lock or blocks: a stream only waits on its receiver.

use super::error::ApiError;
use super::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use waystation_runtime::Change;

/// How often an idle stream sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Which changes a stream relays.
#[derive(Debug, Clone)]
enum Scope {
    All,
    Workflow(String),
    Instance(String),
}

impl Scope {
    fn holds(&self, c: &Change) -> bool {
        match self {
            Scope::All => true,
            Scope::Workflow(w) => c.workflow == *w,
            Scope::Instance(i) => c.instance == *i,
        }
    }
}

/// One of the `max_streams` places, given back when the stream is dropped (the client
/// went away, or the server shut down).
struct Slot(AppState);

impl Slot {
    fn take(app: &AppState) -> Option<Slot> {
        let max = app.config.live.max_streams;
        app.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(app.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a stream holds between events.
struct Feed {
    changes: broadcast::Receiver<Change>,
    scope: Scope,
    closing: watch::Receiver<bool>,
    opened: bool,
    _slot: Slot,
}

/// The next event of `feed`, or `None` when the stream ends.
async fn next(mut feed: Feed) -> Option<(Result<Event, axum::Error>, Feed)> {
    if !feed.opened {
        feed.opened = true;
        // Reconnect after 2 s when the connection drops (the browser's default is 3 s).
        let ready = Event::default()
            .event("ready")
            .data("{}")
            .retry(Duration::from_secs(2));
        return Some((Ok(ready), feed));
    }
    loop {
        let event = tokio::select! {
            _ = feed.closing.wait_for(|closing| *closing) => return None,
            received = feed.changes.recv() => match received {
                Ok(c) if feed.scope.holds(&c) => Event::default().event("change").json_data(&c),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Ok(Event::default().event("resync").data(format!("{{\"missed\": {missed}}}")))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
        };
        return Some((event, feed));
    }
}

/// A stream over `scope`, or why not.
fn open(app: &AppState, headers: &HeaderMap, scope: Scope) -> Result<Response, ApiError> {
    let wants_stream = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !wants_stream {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            "This is an event stream",
            "send `Accept: text/event-stream` to open the stream of changes",
        ));
    }
    let Some(slot) = Slot::take(app) else {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-streams",
            "Too many live streams",
            format!(
                "{} streams are open, the most this server keeps ([live] max_streams); poll instead, or retry later",
                app.config.live.max_streams
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        return Ok(response);
    };
    let feed = Feed {
        changes: app.runtime.subscribe(),
        scope,
        closing: app.closing.subscribe(),
        opened: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(feed, next);
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Reverse proxies (nginx) would otherwise hold events back to fill a buffer.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// 404 naming `what` `id` unless `exists` (run on the blocking pool) says it is there: a
/// stream of something that is not would stay silent forever.
async fn found(
    app: &AppState,
    what: &str,
    id: &str,
    exists: impl FnOnce(&waystation_runtime::Runtime) -> Result<bool, ApiError> + Send + 'static,
) -> Result<(), ApiError> {
    if app.blocking(exists).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no {what} '{id}'")))
    }
}

/// `GET /v1/stream`: changes of every instance.
pub async fn all(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    open(&app, &headers, Scope::All)
}

/// `GET /v1/workflows/{id}/stream`: changes of the workflow's instances (404 for a
/// workflow never uploaded).
pub async fn workflow(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let known = id.clone();
    found(&app, "workflow", &id, move |rt| {
        Ok(rt.store().latest_definition(&known)?.is_some())
    })
    .await?;
    open(&app, &headers, Scope::Workflow(id))
}

/// `GET /v1/instances/{id}/stream`: changes of one instance (404 for an unknown one).
pub async fn instance(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let known = id.clone();
    found(&app, "instance", &id, move |rt| {
        Ok(rt.store().instance(&known)?.is_some())
    })
    .await?;
    open(&app, &headers, Scope::Instance(id))
}
