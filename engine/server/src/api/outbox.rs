//! The outbox: messages by delivery status, and an operator's retry of a dead one.

use super::error::ApiError;
use super::extract::IdempotencyKey;
use super::extract::{Path, Query};
use super::params::{self, QueryParam, CURSOR, LIMIT, PAGE};
use super::{route, AppState, Body, Method, Route, OPERATOR, READ_INSTANCES};
use crate::auth::Caller;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Json};
use serde_json::{json, Value};
use waystation_runtime::OutboxError;
use waystation_store::{OutboxRecord, OutboxStatus};

/// The outbox routes, chained into [`super::routes`].
pub(super) fn outbox_routes() -> Vec<(Route, MethodRouter<AppState>)> {
    use Method as M;
    vec![
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

/// A message as the API shows it.
fn item(r: &OutboxRecord) -> Value {
    let m = &r.message;
    json!({
        "id": m.id, "instance_id": m.instance_id, "channel": m.channel,
        "recipient": m.recipient, "subject": m.subject, "body": m.body, "metadata": m.metadata,
        "status": r.status, "attempts": r.attempts, "retries": r.retries,
        "last_error": r.last_error, "enqueued_at": r.enqueued_at,
        "next_attempt_at": (r.status == OutboxStatus::Pending)
            .then(|| r.next_attempt_at.unwrap_or(r.enqueued_at)),
        "last_attempt_at": r.last_attempt_at, "finished_at": r.finished_at,
    })
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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
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
