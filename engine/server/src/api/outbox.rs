//! The outbox: messages by delivery status, and an operator's retry of a dead one.

use super::error::ApiError;
use super::extract::IdempotencyKey;
use super::extract::{Path, Query};
use super::params::{self, QueryParam, CURSOR, LIMIT, PAGE};
use super::state::AppState;
use super::table::{reading, route, Body, Route, OPERATOR, READ_INSTANCES};
use crate::auth::Caller;
use axum::extract::State;
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use waystation_runtime::OutboxError;
use waystation_store::{OutboxRecord, OutboxStatus};

/// The outbox routes, chained into the API's route table.
pub(super) fn outbox_routes() -> Vec<(Route, MethodRouter<AppState>)> {
    use Method as M;
    vec![
        reading(
            route(
                M::GET,
                "/v1/outbox",
                "Outbox messages by status (pending by due time, delivered, dead), a page at a time",
                "outbox",
                READ_INSTANCES,
                Body::None,
                200,
                &[400],
                on(MethodFilter::GET, list),
            ),
            LIST_QUERY,
        ),
        route(
            M::POST,
            "/v1/outbox/{id}/retry",
            "Put a dead message back in the delivery queue with a fresh budget of attempts",
            "outbox",
            OPERATOR,
            Body::None,
            200,
            &[400, 404, 409, 422],
            on(MethodFilter::POST, retry),
        ),
    ]
}

/// A message as the API shows it: what was sent where, and how its delivery went.
#[derive(Debug, Serialize)]
pub struct OutboxItem {
    /// Message id.
    pub id: String,
    /// The instance that queued it.
    pub instance_id: String,
    /// The delivery channel's name.
    pub channel: String,
    /// Who it is for.
    pub recipient: String,
    /// Its subject.
    pub subject: String,
    /// Its body.
    pub body: String,
    /// What the notifier attached for the channel.
    pub metadata: Map<String, Value>,
    /// `pending`, `delivered` or `dead`.
    pub status: OutboxStatus,
    /// Attempts made since it was queued (or last put back by an operator).
    pub attempts: u32,
    /// How many times an operator put it back in the queue after it died.
    pub retries: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub enqueued_at: DateTime<Utc>,
    /// While pending, when the next attempt is due; `null` otherwise.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered or given up on.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A message as the API shows it.
fn item(r: &OutboxRecord) -> OutboxItem {
    let m = &r.message;
    OutboxItem {
        id: m.id.clone(),
        instance_id: m.instance_id.clone(),
        channel: m.channel.clone(),
        recipient: m.recipient.clone(),
        subject: m.subject.clone(),
        body: m.body.clone(),
        metadata: m.metadata.clone(),
        status: r.status,
        attempts: r.attempts,
        retries: r.retries,
        last_error: r.last_error.clone(),
        enqueued_at: r.enqueued_at,
        next_attempt_at: (r.status == OutboxStatus::Pending)
            .then(|| r.next_attempt_at.unwrap_or(r.enqueued_at)),
        last_attempt_at: r.last_attempt_at,
        finished_at: r.finished_at,
    }
}

/// A page of `GET /v1/outbox`.
#[derive(Debug, Serialize)]
pub struct OutboxPage {
    /// The messages.
    pub items: Vec<OutboxItem>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The parameters of `GET /v1/outbox`.
pub const LIST_QUERY: &[QueryParam] = &[
    QueryParam::new(
        "status",
        r#"{"enum": ["pending", "delivered", "dead"], "default": "pending"}"#,
        "Messages in this delivery state.",
    ),
    CURSOR,
    LIMIT,
];

/// `GET /v1/outbox?status=pending|delivered|dead&cursor=&limit=` (status defaults to
/// pending).
pub async fn list(
    State(app): State<AppState>,
    Query(params): Query,
) -> Result<Json<OutboxPage>, ApiError> {
    params::refuse_unknown(&params, LIST_QUERY)?;
    let status = params::parse(
        &params,
        "status",
        |v| match v {
            "pending" => Some(OutboxStatus::Pending),
            "delivered" => Some(OutboxStatus::Delivered),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        },
        "pending, delivered or dead",
    )?
    .unwrap_or(OutboxStatus::Pending);
    let limit = params::limit(&params, PAGE)?;
    let cursor = params.get("cursor").cloned();
    let page = app
        .blocking(move |rt| Ok(rt.store().outbox(status, cursor.as_deref(), limit)?))
        .await?;
    Ok(Json(OutboxPage {
        items: page.items.iter().map(item).collect(),
        next_cursor: page.next_cursor,
    }))
}

impl From<OutboxError> for ApiError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::NotFound(id) => ApiError::not_found(format!("no outbox message '{id}'")),
            e @ OutboxError::NotDead { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "message-not-dead",
                "Only dead messages can be retried",
                e.to_string(),
            ),
            OutboxError::Runtime(e) => e.into(),
        }
    }
}

/// `POST /v1/outbox/{id}/retry`: the message, pending again.
pub async fn retry(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, ApiError> {
    let done = app
        .runtime
        .acting(caller.actor())
        .retry_message(&id, key.as_deref())
        .await?;
    let mut response = (StatusCode::OK, Json(item(&done.record))).into_response();
    if done.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}
