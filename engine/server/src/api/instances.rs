//! Operators' instances: start, list, read, history, events, cancel, counts.

use super::error::{ApiError, FieldError};
use super::extract::{IdempotencyKey, JsonBody};
use super::params::{self, parse, QueryParam, CURSOR, LIMIT, LONG_LIMIT, LONG_PAGE, PAGE};
use super::AppState;
use crate::auth::Caller;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use waystation_core::{InstanceState, SlaState, Status};
use waystation_runtime::Applied;
use waystation_store::InstanceQuery;

/// Body of `POST /v1/workflows/{id}/instances`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartInstance {
    /// The start payload, checked against the workflow's `input_schema`.
    pub input: Value,
}

/// Body of `POST /v1/instances/{id}/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Event name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Payload.
    #[serde(default)]
    pub data: Value,
}

/// Body of `POST /v1/instances/{id}/cancel`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A command's answer: the instance summary, flagged when replayed.
pub fn applied(status: StatusCode, applied: Applied) -> Response {
    let mut response = (
        status,
        Json(serde_json::to_value(&applied.instance).unwrap_or_default()),
    )
        .into_response();
    if applied.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// `POST /v1/workflows/{id}/instances`.
pub async fn start(
    State(app): State<AppState>,
    Path(workflow): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<StartInstance>,
) -> Result<Response, ApiError> {
    let done = app
        .runtime
        .start(&workflow, body.input, key.as_deref())
        .await?;
    Ok(applied(StatusCode::CREATED, done))
}

/// `POST /v1/instances/{id}/events`.
pub async fn event(
    State(app): State<AppState>,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Event>,
) -> Result<Response, ApiError> {
    if body.kind.is_empty() {
        return Err(ApiError::invalid(
            "the event has no type",
            vec![FieldError::at("/type", "an event name is required")],
        ));
    }
    let done = app
        .runtime
        .event(&id, &body.kind, body.data, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// `POST /v1/instances/{id}/cancel`.
pub async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Cancel>,
) -> Result<Response, ApiError> {
    let done = app
        .runtime
        .cancel(&id, &caller.name, body.reason, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

fn summary(s: &InstanceState) -> Value {
    json!({
        "id": s.id, "workflow": s.workflow, "version": s.version, "stage": s.stage,
        "status": s.status, "sla": s.sla.state, "deadline": s.sla.deadline, "tags": s.tags,
        "outcome": s.outcome, "started_at": s.started_at, "updated_at": s.updated_at,
    })
}

/// The filters of `GET /v1/instances`; all given must hold.
pub const LIST_QUERY: &[QueryParam] = &[
    QueryParam::new(
        "workflow",
        r#"{"type": "string"}"#,
        "Instances of this workflow.",
    ),
    QueryParam::new(
        "version",
        r#"{"type": "integer", "minimum": 1}"#,
        "Started on this version of the workflow (with workflow).",
    ),
    QueryParam::new(
        "stage",
        r#"{"type": "string"}"#,
        "At this stage (needs workflow: stage names belong to a workflow).",
    ),
    QueryParam::new(
        "status",
        r#"{"enum": ["running", "completed", "failed", "cancelled"]}"#,
        "In this status.",
    ),
    QueryParam::new(
        "sla",
        r#"{"enum": ["on_time", "at_risk", "breached"]}"#,
        "In this SLA state.",
    ),
    QueryParam::new("tag", r#"{"type": "string"}"#, "Carrying this tag."),
    QueryParam::new(
        "updated_before",
        r#"{"type": "string", "format": "date-time"}"#,
        "Not updated since this time (RFC 3339).",
    ),
    QueryParam::new(
        "untouched",
        r#"{"type": "boolean"}"#,
        "true: nobody has acted in the current stage since it was entered.",
    ),
    CURSOR,
    LIMIT,
];

/// The parameters of `GET /v1/instances/{id}/history`.
pub const HISTORY_QUERY: &[QueryParam] = &[
    QueryParam::new(
        "from",
        r#"{"type": "integer", "minimum": 0, "default": 0}"#,
        "First sequence number (the next_from of the previous page).",
    ),
    LONG_LIMIT,
];

/// `GET /v1/instances?workflow=&version=&stage=&status=&sla=&tag=&updated_before=&untouched=&cursor=&limit=`.
pub async fn list(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params::refuse_unknown(&params, LIST_QUERY)?;
    let status = parse(
        &params,
        "status",
        |v| serde_json::from_value::<Status>(json!(v)).ok(),
        "running, completed, failed or cancelled",
    )?;
    let sla = parse(
        &params,
        "sla",
        |v| serde_json::from_value::<SlaState>(json!(v)).ok(),
        "on_time, at_risk or breached",
    )?;
    let query = InstanceQuery {
        workflow: params.get("workflow").cloned(),
        version: parse(&params, "version", |v| v.parse().ok(), "a whole number")?,
        stage: params.get("stage").cloned(),
        status,
        sla,
        tag: params.get("tag").cloned(),
        updated_before: parse(
            &params,
            "updated_before",
            |v| {
                DateTime::parse_from_rfc3339(v)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            },
            "an RFC 3339 time",
        )?,
        untouched: parse(&params, "untouched", |v| v.parse().ok(), "true or false")?,
        cursor: params.get("cursor").cloned(),
        limit: params::limit(&params, PAGE)?,
    };
    if query.stage.is_some() && query.workflow.is_none() {
        return Err(
            ApiError::bad_request("stage needs workflow").with_errors(vec![FieldError::param(
                "stage",
                "stage names belong to a workflow; add workflow=",
            )]),
        );
    }
    let page = app.blocking(move |rt| Ok(rt.query(&query)?)).await?;
    Ok(Json(
        json!({"items": page.items.iter().map(summary).collect::<Vec<_>>(), "next_cursor": page.next_cursor}),
    ))
}

/// `GET /v1/instances/{id}`: everything an operator needs to know where it stands.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = app.runtime.instance(&id)?;
    let wf = app.runtime.workflow(&s.workflow, Some(s.version))?;
    let stage = wf.definition.stages.get(&s.stage);
    let tasks: Vec<Value> = s
        .open_tasks()
        .iter()
        .map(|t| serde_json::to_value(t).unwrap_or_default())
        .collect();
    Ok(Json(json!({
        "id": s.id, "workflow": s.workflow, "version": s.version,
        "stage": s.stage, "stage_title": stage.and_then(|st| st.title.clone()),
        "owner": stage.and_then(|st| st.owner.clone()),
        "status": s.status, "outcome": s.outcome, "failure": s.failure,
        "sla": s.sla, "input": s.input, "vars": Value::Object(s.vars.clone()),
        "approvals": tasks, "timers": s.timers, "tags": s.tags,
        "started_at": s.started_at, "stage_entered_at": s.stage_entered_at, "updated_at": s.updated_at,
    })))
}

/// `GET /v1/instances/{id}/history?from=&limit=`.
pub async fn history(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params::refuse_unknown(&params, HISTORY_QUERY)?;
    let from = parse(&params, "from", |v| v.parse::<u64>().ok(), "a whole number")?.unwrap_or(0);
    let limit = params::limit(&params, LONG_PAGE)?;
    let entries = app
        .blocking(move |rt| Ok(rt.history(&id, from, limit)?))
        .await?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|(seq, _)| seq + 1))
        .flatten();
    let items: Vec<Value> = entries
        .into_iter()
        .map(|(seq, entry)| {
            let mut v = serde_json::to_value(entry).unwrap_or_default();
            if let Value::Object(m) = &mut v {
                let mut with_seq = Map::new();
                with_seq.insert("seq".into(), json!(seq));
                with_seq.extend(std::mem::take(m));
                *m = with_seq;
            }
            v
        })
        .collect();
    Ok(Json(json!({"items": items, "next_from": next})))
}

/// `GET /v1/stats/{workflow}`.
pub async fn stats(
    State(app): State<AppState>,
    Path(workflow): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let counts = app.blocking(move |rt| Ok(rt.counts(&workflow)?)).await?;
    Ok(Json(serde_json::to_value(counts).unwrap_or_default()))
}
