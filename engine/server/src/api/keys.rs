//! Instances addressed by business key, so an ERP can say "payment received for
//! 202405-001" without knowing Waystation's id: `/v1/workflows/{id}/keys/{key}` and its
//! events, cancellation and decisions. A key names the running instance that has it, or
//! once none runs, the newest that had it (a command to that one is refused as not
//! running, 409).

use super::approvals::{decision_of, Decision};
use super::error::ApiError;
use super::extract::Path;
use super::extract::{IdempotencyKey, JsonBody};
use super::instances::{applied, Cancel, Event};
use super::state::AppState;
use super::views::InstanceDetail;
use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use waystation_core::definition::Approver;
use waystation_core::Decider;

/// `GET /v1/workflows/{id}/keys/{key}`.
pub async fn get(
    State(app): State<AppState>,
    Path((workflow, key)): Path<(String, String)>,
) -> Result<Json<InstanceDetail>, ApiError> {
    let s = app.instance_by_key(&workflow, &key).await?;
    Ok(Json(InstanceDetail::of(&app, s).await?))
}

/// `POST /v1/workflows/{id}/keys/{key}/events`.
pub async fn event(
    State(app): State<AppState>,
    Path((workflow, key)): Path<(String, String)>,
    caller: Extension<Caller>,
    as_assignee: Option<Extension<super::table::AsAssignee>>,
    idempotency: IdempotencyKey,
    body: JsonBody<Event>,
) -> Result<Response, ApiError> {
    let id = app.instance_by_key(&workflow, &key).await?.id;
    super::instances::event(State(app), Path(id), caller, as_assignee, idempotency, body).await
}

/// `POST /v1/workflows/{id}/keys/{key}/cancel`.
pub async fn cancel(
    State(app): State<AppState>,
    Path((workflow, key)): Path<(String, String)>,
    caller: Extension<Caller>,
    idempotency: IdempotencyKey,
    body: JsonBody<Cancel>,
) -> Result<Response, ApiError> {
    let id = app.instance_by_key(&workflow, &key).await?.id;
    super::instances::cancel(State(app), Path(id), caller, idempotency, body).await
}

/// `POST /v1/workflows/{id}/keys/{key}/decisions`: decides the first open task of the
/// instance that the caller may decide (by one of its approver roles or by name); 409 when
/// there is none.
pub async fn decide(
    State(app): State<AppState>,
    Path((workflow, key)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(idempotency): IdempotencyKey,
    JsonBody(body): JsonBody<Decision>,
) -> Result<Response, ApiError> {
    let approve = decision_of(&body)?;
    let s = app.instance_by_key(&workflow, &key).await?;
    let roles = caller.approver_roles();
    let tasks = s.all_open_tasks();
    let task = tasks.iter().find(|t| match &t.approver {
        Approver::Role(r) => roles.contains(r),
        Approver::User(u) => *u == caller.name,
    });
    let Some(task) = task else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no-task-for-caller",
            "Nothing to decide here",
            format!(
                "instance '{}' (key '{key}') has no open approval task for '{}'",
                s.id, caller.name
            ),
        ));
    };
    let decider = Decider {
        id: caller.name.clone(),
        roles,
    };
    let done = app
        .runtime
        .acting(caller.actor())
        .decide(
            &task.id,
            decider,
            approve,
            body.comment,
            idempotency.as_deref(),
        )
        .await?;
    Ok(applied(StatusCode::OK, done))
}
