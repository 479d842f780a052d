//! Administrators' schedules (issue 19): a cron expression in a time zone that starts a
//! workflow at every slot, exactly once per slot (see `waystation_runtime::schedules`).

use super::error::{ApiError, FieldError};
use super::extract::{JsonBody, Path};
use super::state::AppState;
use super::table::{route, Body, Route, ADMIN, READ_INSTANCES};
use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use serde::Serialize;
use waystation_runtime::{RuntimeError, ScheduleSpec, ScheduleView};

/// The schedule routes, chained into the API's route table.
pub(super) fn schedule_routes() -> Vec<(Route, MethodRouter<AppState>)> {
    use Method as M;
    vec![
        route(
            M::PUT,
            "/v1/schedules/{id}",
            "Create or replace a schedule: a cron expression in an IANA zone that starts a workflow at each slot",
            "schedules",
            ADMIN,
            Body::Json("Schedule"),
            201,
            &[400, 404, 413, 415, 422],
            on(MethodFilter::PUT, put),
        ),
        route(
            M::GET,
            "/v1/schedules",
            "List schedules with their next run times",
            "schedules",
            READ_INSTANCES,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, list),
        ),
        route(
            M::GET,
            "/v1/schedules/{id}",
            "One schedule with its last handled slot and next run time",
            "schedules",
            READ_INSTANCES,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, get),
        ),
        route(
            M::POST,
            "/v1/schedules/{id}/pause",
            "Pause a schedule: no slot starts anything until it is resumed",
            "schedules",
            ADMIN,
            Body::None,
            200,
            &[404],
            on(MethodFilter::POST, pause),
        ),
        route(
            M::POST,
            "/v1/schedules/{id}/resume",
            "Resume a schedule; the slots passed while it was paused are skipped",
            "schedules",
            ADMIN,
            Body::None,
            200,
            &[404],
            on(MethodFilter::POST, resume),
        ),
        route(
            M::DELETE,
            "/v1/schedules/{id}",
            "Delete a schedule",
            "schedules",
            ADMIN,
            Body::None,
            204,
            &[404],
            on(MethodFilter::DELETE, delete),
        ),
    ]
}

/// The answer to `GET /v1/schedules`.
#[derive(Debug, Serialize)]
pub struct ScheduleList {
    /// Every schedule, by id.
    pub items: Vec<ScheduleView>,
}

/// A schedule's problems name the schedule, not a definition.
fn schedule_error(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::InvalidDefinition(errors) => ApiError::invalid(
            format!("the schedule has {} error(s)", errors.len()),
            FieldError::from_validation(&errors, ""),
        ),
        other => other.into(),
    }
}

/// `PUT /v1/schedules/{id}`: 201 when created, 200 when replaced; 422 with a pointer per
/// problem (`/cron`, `/zone`, `/workflow`, `/input`, `/input_expr`).
pub async fn put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(spec): JsonBody<ScheduleSpec>,
) -> Result<Response, ApiError> {
    let (view, created) = app
        .runtime
        .put_schedule(&id, spec)
        .await
        .map_err(schedule_error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

/// `GET /v1/schedules`.
pub async fn list(State(app): State<AppState>) -> Result<Json<ScheduleList>, ApiError> {
    let items = app.blocking(move |rt| Ok(rt.schedules()?)).await?;
    Ok(Json(ScheduleList { items }))
}

/// `GET /v1/schedules/{id}`.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(app.blocking(move |rt| Ok(rt.schedule(&id)?)).await?))
}

/// `POST /v1/schedules/{id}/pause`.
pub async fn pause(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(
        app.runtime
            .pause_schedule(&id, true)
            .await
            .map_err(schedule_error)?,
    ))
}

/// `POST /v1/schedules/{id}/resume`.
pub async fn resume(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(
        app.runtime
            .pause_schedule(&id, false)
            .await
            .map_err(schedule_error)?,
    ))
}

/// `DELETE /v1/schedules/{id}`: 204, or 404 when there is none.
pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if app.runtime.delete_schedule(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no schedule '{id}'")))
    }
}

/// The OpenAPI schemas of `ScheduleView` (the spec as set, flattened, with its progress)
/// and [`ScheduleList`], closed.
pub fn schemas() -> serde_json::Value {
    use super::schema::{array, closed, component, described, text, time};
    use serde_json::json;
    json!({
        "ScheduleView": closed(
            json!({"id": text(), "cron": text(), "zone": text(), "workflow": text(),
                "catch_up": {"enum": ["skip", "last"]}, "paused": {"type": "boolean"},
                "last_slot": described("The latest slot handled (started, or skipped on purpose).", time()),
                "created_at": time(), "updated_at": time()}),
            json!({"input": {}, "input_expr": text(),
                "next_run": described("The next slot that will start an instance; absent while paused.", time())})),
        "ScheduleList": closed(json!({"items": array(component("ScheduleView"))}), json!({})),
    })
}
