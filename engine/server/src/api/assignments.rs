//! A named owner for a stage's work: claimed by a person, assigned or reassigned by a
//! supervisor, released. "Nobody owns the step" is the playbooks' root cause; a role owns
//! the stage, a person owns the work.
//!
//! A person holds a stage's owner role `R` when their token has the role `approver:R` (the
//! roles people hold in Waystation). A stage without an owner can be claimed by anyone.
//! Supervisors are tokens with `operator` or `admin`.
//!
//! In a parallel stage each branch's current stage has its own work and assignee: the
//! requests then name the stage (`{"stage": "procurement_confirmation"}`, or
//! `{"stage": "shipment[1]/ship_confirm"}` in a `for_each`), as events do. Without it while
//! branches run they are refused (409 `stage-required`, listing the current stages).

use super::error::{ApiError, FieldError};
use super::extract::{IdempotencyKey, JsonBody, OptionalJsonBody};
use super::extract::{Path, Query};
use super::instances::{applied, page_of};
use super::params::{self, QueryParam, CURSOR, LIMIT, PAGE};
use super::state::AppState;
use super::views::InstancePage;
use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use waystation_store::InstanceQuery;

/// Body of `POST /v1/instances/{id}/assign`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The token name of the person who owns the work from now on.
    pub to: String,
    /// The current stage whose work it is; needed while branches of a parallel stage run.
    #[serde(default)]
    pub stage: Option<String>,
}

/// Body of `POST /v1/instances/{id}/claim` and `/release`, both optional.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkAt {
    /// The current stage whose work it is; needed while branches of a parallel stage run.
    #[serde(default)]
    pub stage: Option<String>,
}

fn is_supervisor(caller: &Caller) -> bool {
    caller.has("operator") || caller.has("admin")
}

/// The owner role of the current stage `stage` addresses (the instance's one current
/// stage without it), if it has one, and who holds its work.
///
/// # Errors
/// 404 for an unknown instance; 409 `stage-not-current` or `stage-required` when `stage`
/// names no one current stage (the core refuses the same).
async fn owner_role(
    app: &AppState,
    id: &str,
    stage: Option<&str>,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let s = app.instance(id).await?;
    let unaddressed = |why| {
        waystation_runtime::RuntimeError::Rejected(waystation_core::Rejection::unaddressed(
            stage, why,
        ))
    };
    let frame = if s.status == waystation_core::Status::Running {
        let path = s.work_path(stage).map_err(unaddressed)?;
        s.frame_at(&path)
    } else {
        None
    };
    let (stage, assignee) = match frame {
        Some(f) => (f.stage, f.assignee),
        None => (s.stage.as_str(), s.assignee.as_ref()),
    };
    let wf = app.runtime.workflow(&s.workflow, Some(s.version)).await?;
    let owner = wf
        .definition
        .stages
        .get(stage)
        .and_then(|st| st.owner.clone());
    Ok((owner, assignee.map(|a| a.user.clone())))
}

fn holds(roles: &[String], owner: Option<&str>) -> bool {
    owner.is_none_or(|r| roles.iter().any(|x| x.strip_prefix("approver:") == Some(r)))
}

/// `POST /v1/instances/{id}/claim`: the caller takes the current stage's work. 403 when
/// the caller does not hold the stage's owner role; 409 when someone else with a live token
/// has it (a supervisor can reassign it); work held by a name no live token has (the engine
/// named it from data) can be claimed.
pub async fn claim(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(at): OptionalJsonBody<WorkAt>,
) -> Result<Response, ApiError> {
    let stage = at.stage.as_deref();
    let (owner, current) = owner_role(&app, &id, stage).await?;
    if !holds(&caller.roles, owner.as_deref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not-in-owner-role",
            "Not in the stage's owner role",
            format!(
                "the stage is owned by role '{}'; '{}' does not hold approver:{0}",
                owner.unwrap_or_default(),
                caller.name
            ),
        ));
    }
    if current.as_deref() == Some(caller.name.as_str()) {
        // Claiming one's own work again changes nothing and records nothing.
        let s = app.instance(&id).await?;
        return Ok((
            StatusCode::OK,
            Json(waystation_runtime::InstanceSummary::from(&s)),
        )
            .into_response());
    }
    let holder = match current {
        // The engine's `assign` action names people as data; work it gave to a name no live
        // token has would otherwise be nobody's and unclaimable.
        Some(other) if has_token(&app, &other).await? => Some(other),
        _ => None,
    };
    if let Some(other) = holder {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already-assigned",
            "Someone owns this work",
            format!("the work is assigned to '{other}'; a supervisor can reassign it"),
        ));
    }
    let done = app
        .runtime
        .acting(caller.actor())
        .assign(&id, stage, Some(caller.name.clone()), key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// True when a live token is called `name`.
async fn has_token(app: &AppState, name: &str) -> Result<bool, ApiError> {
    let name = name.to_owned();
    app.blocking(move |rt| Ok(rt.store().token_by_name(&name)?.is_some()))
        .await
}

/// `POST /v1/instances/{id}/assign` (supervisors): gives the current stage's work to the
/// person named `to`, who must hold the stage's owner role (422 at `/to` otherwise).
pub async fn assign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Assign>,
) -> Result<Response, ApiError> {
    let stage = body.stage.as_deref();
    let (owner, _) = owner_role(&app, &id, stage).await?;
    let to = body.to.clone();
    let person = app
        .blocking(move |rt| Ok(rt.store().token_by_name(&to)?))
        .await?;
    let Some(person) = person else {
        return Err(ApiError::invalid(
            "no such person",
            vec![FieldError::at(
                "/to",
                format!("no token is called '{}'", body.to),
            )],
        ));
    };
    if !holds(&person.roles, owner.as_deref()) {
        return Err(ApiError::invalid(
            "not in the stage's owner role",
            vec![FieldError::at(
                "/to",
                format!(
                    "'{}' does not hold approver:{}, the stage's owner role",
                    body.to,
                    owner.unwrap_or_default()
                ),
            )],
        ));
    }
    let done = app
        .runtime
        .acting(caller.actor())
        .assign(&id, stage, Some(person.name), key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// `POST /v1/instances/{id}/release`: the assignee (or a supervisor) gives the work back;
/// 403 for anyone else.
pub async fn release(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(at): OptionalJsonBody<WorkAt>,
) -> Result<Response, ApiError> {
    let stage = at.stage.as_deref();
    let (_, current) = owner_role(&app, &id, stage).await?;
    let Some(current) = current else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not-assigned",
            "Nobody holds this work",
            "the work of the current stage is assigned to nobody: there is nothing to release"
                .to_owned(),
        ));
    };
    if !is_supervisor(&caller) && current != caller.name {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not-the-assignee",
            "Not yours to release",
            format!(
                "the work is assigned to '{current}'; only they or a supervisor can release it"
            ),
        ));
    }
    let done = app
        .runtime
        .acting(caller.actor())
        .assign(&id, stage, None, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// The parameters of `GET /v1/work`.
pub const MINE_QUERY: &[QueryParam] = &[CURSOR, LIMIT];

/// `GET /v1/work`: "my work", the running instances where the work of a current stage
/// (the top level's or a branch's) is assigned to the caller, a page at a time.
pub async fn mine(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query,
) -> Result<Json<InstancePage>, ApiError> {
    params::refuse_unknown(&params, MINE_QUERY)?;
    let query = InstanceQuery {
        assignee: Some(caller.name.clone()),
        cursor: params.get("cursor").cloned(),
        limit: params::limit(&params, PAGE)?,
        ..InstanceQuery::default()
    };
    let page = app.blocking(move |rt| Ok(rt.query(&query)?)).await?;
    page_of(&app, page).await
}
