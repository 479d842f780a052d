//! Approvers' inbox and decisions. The decider's identity (the token's name) and roles go
//! into the history with the decision.

use super::error::{ApiError, FieldError};
use super::extract::{IdempotencyKey, JsonBody};
use super::extract::{Path, Query};
use super::instances::applied;
use super::params::{self, QueryParam, LONG_LIMIT, LONG_PAGE};
use super::state::AppState;
use super::views::{ApprovalItem, ApprovalPage};
use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use waystation_core::definition::Approver;
use waystation_core::Decider;

/// Body of `POST /v1/approvals/{task_id}`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `approve` or `reject`.
    pub decision: String,
    /// Recorded in the history.
    #[serde(default)]
    pub comment: Option<String>,
}

/// True for `approve`, false for `reject`; 422 at `/decision` otherwise.
pub fn decision_of(body: &Decision) -> Result<bool, ApiError> {
    match body.decision.as_str() {
        "approve" => Ok(true),
        "reject" => Ok(false),
        other => Err(ApiError::invalid(
            "unknown decision",
            vec![FieldError::at(
                "/decision",
                format!("expected \"approve\" or \"reject\", got \"{other}\""),
            )],
        )),
    }
}

/// The parameters of `GET /v1/approvals`.
pub const LIST_QUERY: &[QueryParam] = &[LONG_LIMIT];

/// `GET /v1/approvals`: open tasks for the caller's approver roles (and its name as a user),
/// each with what an approver needs to choose what to decide first: the workflow and
/// version of the instance, and its SLA state and deadline.
pub async fn list(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query,
) -> Result<Json<ApprovalPage>, ApiError> {
    params::refuse_unknown(&params, LIST_QUERY)?;
    let limit = params::limit(&params, LONG_PAGE)?;
    let mut approvers: Vec<Approver> = caller
        .approver_roles()
        .into_iter()
        .map(Approver::Role)
        .collect();
    approvers.push(Approver::User(caller.name.clone()));
    // The tasks and their instances are read on the blocking pool; a task and its instance
    // are written in the same commit, so the instance is there.
    let tasks = app
        .blocking(move |rt| {
            let tasks = rt.open_tasks(&approvers, limit)?;
            let mut with = Vec::with_capacity(tasks.len());
            for t in tasks {
                let instance = rt.instance(&t.instance_id)?;
                with.push((t, instance));
            }
            Ok(with)
        })
        .await?;
    let mut items: Vec<ApprovalItem> = Vec::with_capacity(tasks.len());
    for (t, instance) in tasks {
        items.push(ApprovalItem::of(&app, t, &instance).await?);
    }
    Ok(Json(ApprovalPage { items }))
}

/// `POST /v1/approvals/{task_id}`.
pub async fn decide(
    State(app): State<AppState>,
    Path(task_id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Decision>,
) -> Result<Response, ApiError> {
    let approve = decision_of(&body)?;
    let decider = Decider {
        id: caller.name.clone(),
        roles: caller.approver_roles(),
    };
    let done = app
        .runtime
        .acting(caller.actor())
        .decide(&task_id, decider, approve, body.comment, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}
