//! Approvers' inbox and decisions. The decider's identity (the token's name) and roles go
//! into the history with the decision.

use super::error::{ApiError, FieldError};
use super::extract::{IdempotencyKey, JsonBody};
use super::instances::applied;
use super::params::{self, QueryParam, LONG_LIMIT, LONG_PAGE};
use super::AppState;
use crate::auth::Caller;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use waystation_core::definition::Approver;
use waystation_core::Decider;

/// Body of `POST /v1/approvals/{task_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `approve` or `reject`.
    pub decision: String,
    /// Recorded in the history.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The parameters of `GET /v1/approvals`.
pub const LIST_QUERY: &[QueryParam] = &[LONG_LIMIT];

/// `GET /v1/approvals`: open tasks for the caller's approver roles (and its name as a user),
/// each with what an approver needs to choose what to decide first: the workflow and
/// version of the instance, and its SLA state and deadline.
pub async fn list(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params::refuse_unknown(&params, LIST_QUERY)?;
    let limit = params::limit(&params, LONG_PAGE)?;
    let mut approvers: Vec<Approver> = caller
        .approver_roles()
        .into_iter()
        .map(Approver::Role)
        .collect();
    approvers.push(Approver::User(caller.name.clone()));
    let items = app.blocking(move |rt| inbox(rt, &approvers, limit)).await?;
    Ok(Json(json!({"items": items})))
}

/// The inbox's items: each open task with its instance's workflow, version and SLA.
fn inbox(
    rt: &waystation_runtime::Runtime,
    approvers: &[Approver],
    limit: usize,
) -> Result<Vec<Value>, ApiError> {
    let tasks = rt.open_tasks(approvers, limit)?;
    let mut items: Vec<Value> = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let (role, user) = match &t.approver {
            Approver::Role(r) => (Some(r.as_str()), None),
            Approver::User(u) => (None, Some(u.as_str())),
        };
        // A task and its instance are written in the same commit, so the instance is there.
        let instance = rt.instance(&t.instance_id)?;
        items.push(json!({
            "id": t.id, "instance_id": t.instance_id,
            "workflow": instance.workflow, "version": instance.version,
            "stage": t.stage, "level": t.level, "role": role, "user": user,
            "opened_at": t.opened_at,
            "sla": instance.sla.state, "deadline": instance.sla.deadline,
        }));
    }
    Ok(items)
}

/// `POST /v1/approvals/{task_id}`.
pub async fn decide(
    State(app): State<AppState>,
    Path(task_id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Decision>,
) -> Result<Response, ApiError> {
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::invalid(
                "unknown decision",
                vec![FieldError::at(
                    "/decision",
                    format!("expected \"approve\" or \"reject\", got \"{other}\""),
                )],
            ))
        }
    };
    let decider = Decider {
        id: caller.name.clone(),
        roles: caller.approver_roles(),
    };
    let done = app
        .runtime
        .decide(&task_id, decider, approve, body.comment, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}
