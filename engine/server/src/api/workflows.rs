//! Administrators' definitions: upload (versioned), validate, list, read, graph.

use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::extract::{first_answer, IdempotencyKey, JsonValue};
use super::state::AppState;
use crate::auth::Caller;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::Value;
use waystation_core::Actor;
use waystation_runtime::{FirstAnswer, Seen};

/// `PUT /v1/workflows/{id}`: 201 with `{id, version}` for a new version, 200 when the
/// body equals the newest version, 422 with every error, 413 over the definition size
/// limit. With an `Idempotency-Key`, a verbatim retry gets the first answer (the 201 of
/// the version it made) and the same key with another body is a 422.
pub async fn put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonValue(definition): JsonValue,
) -> Result<Response, ApiError> {
    let by = caller.actor();
    let Some(key) = key else {
        return store(&app, id, definition, &by)
            .await
            .map(IntoResponse::into_response);
    };
    let request = serde_json::to_vec(&definition).map_err(|e| ApiError::internal(&e))?;
    let lock = match app
        .runtime
        .idempotent(&key, "definition", &id, &request)
        .await?
    {
        Seen::Replay(first) => return Ok(first_answer(first, true)),
        Seen::New(lock) => lock,
    };
    let (status, Json(body)) = store(&app, id, definition, &by).await?;
    let answer = FirstAnswer {
        status: status.as_u16(),
        body: serde_json::to_value(body).map_err(|e| ApiError::internal(&e))?,
    };
    lock.record(&app.runtime, &answer).await?;
    Ok(first_answer(answer, false))
}

/// The answer to storing a definition.
#[derive(Debug, Serialize)]
pub struct Stored {
    /// Workflow id.
    pub id: String,
    /// The version the definition has.
    pub version: u32,
    /// True when this upload made that version.
    pub created: bool,
}

async fn store(
    app: &AppState,
    id: String,
    definition: Value,
    by: &Actor,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    match definition.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id != id => {
            return Err(ApiError::invalid(
                "the definition's id does not match the URL",
                vec![FieldError::at(
                    "/id",
                    format!("the definition says '{body_id}' but the URL says '{id}'"),
                )],
            ))
        }
        _ => {}
    }
    let (id, outcome) = app
        .runtime
        .acting(by.clone())
        .put_definition(&definition)
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Stored {
            id,
            version: outcome.version,
            created: outcome.created,
        }),
    ))
}

/// The answer of `POST /v1/workflows/validate` for a valid definition.
#[derive(Debug, Serialize)]
pub struct Validation {
    /// Always true (an invalid definition is a 422 problem).
    pub valid: bool,
    /// The workflow id.
    pub id: String,
    /// Its stage names, in the definition's order.
    pub stages: Vec<String>,
}

/// `POST /v1/workflows/validate`: 200 `{valid: true, ...}` or 422 with every error.
pub async fn validate(
    State(app): State<AppState>,
    JsonValue(definition): JsonValue,
) -> Result<Json<Validation>, ApiError> {
    // Off the async workers: validating a large definition takes long (see the runtime).
    let wf = app.runtime.validate_definition(&definition).await?;
    Ok(Json(Validation {
        valid: true,
        id: wf.id().to_owned(),
        stages: wf.stage_names().map(str::to_owned).collect(),
    }))
}

/// One workflow of `GET /v1/workflows`.
#[derive(Debug, Serialize)]
pub struct WorkflowItem {
    /// The workflow id.
    pub id: String,
    /// Its newest version.
    pub version: u32,
    /// The newest version's `title`; `null` without one.
    pub title: Value,
}

/// The answer of `GET /v1/workflows`.
#[derive(Debug, Serialize)]
pub struct WorkflowList {
    /// Every stored workflow, in id order.
    pub items: Vec<WorkflowItem>,
}

/// `GET /v1/workflows`.
pub async fn list(State(app): State<AppState>) -> Result<Json<WorkflowList>, ApiError> {
    let items = app
        .blocking(|rt| {
            let store = rt.store();
            let mut items = Vec::new();
            for (id, version) in store.list_definitions()? {
                let title = store
                    .definition(&id, version)?
                    .and_then(|d| d.definition.get("title").cloned())
                    .unwrap_or(Value::Null);
                items.push(WorkflowItem { id, version, title });
            }
            Ok(items)
        })
        .await?;
    Ok(Json(WorkflowList { items }))
}

/// One stored version of a definition, as `GET /v1/workflows/{id}[/versions/{v}]` answers.
#[derive(Debug, Serialize)]
pub struct StoredVersion {
    /// Workflow id.
    pub id: String,
    /// Version, from 1.
    pub version: u32,
    /// When the version was stored.
    pub stored_at: chrono::DateTime<chrono::Utc>,
    /// Who uploaded it; absent for versions stored before uploads recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<Actor>,
    /// The definition as uploaded.
    pub definition: Value,
}

async fn stored(
    app: &AppState,
    id: String,
    version: Option<u32>,
) -> Result<StoredVersion, ApiError> {
    app.blocking(move |rt| {
        let store = rt.store();
        let found = match version {
            Some(v) => store.definition(&id, v)?,
            None => store.latest_definition(&id)?,
        };
        let d = found.ok_or_else(|| match version {
            Some(v) => ApiError::not_found(format!("workflow '{id}' has no version {v}")),
            None => ApiError::not_found(format!("no workflow '{id}'")),
        })?;
        Ok(StoredVersion {
            id: d.id,
            version: d.version,
            stored_at: d.stored_at,
            uploaded_by: d.uploaded_by,
            definition: d.definition,
        })
    })
    .await
}

/// `GET /v1/workflows/{id}`.
pub async fn get_latest(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StoredVersion>, ApiError> {
    stored(&app, id, None).await.map(Json)
}

/// `GET /v1/workflows/{id}/versions/{version}`.
pub async fn get_version(
    State(app): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<StoredVersion>, ApiError> {
    let version: u32 = version.parse().map_err(|_| {
        ApiError::bad_request("the version is a whole number")
            .with_errors(vec![FieldError::param("version", "a whole number, from 1")])
    })?;
    stored(&app, id, Some(version)).await.map(Json)
}

/// `GET /v1/workflows/{id}/graph`: Mermaid text.
pub async fn graph(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let wf = app.runtime.workflow(&id, None).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        waystation_core::graph::mermaid(&wf.definition),
    ))
}

/// The OpenAPI schemas of [`Stored`] and [`StoredVersion`], closed.
pub fn schemas() -> Value {
    use super::schema::{closed, component, count, described, text, time};
    use serde_json::json;
    json!({
        "WorkflowStored": closed(json!({"id": text(), "version": count(),
            "created": described("True when this upload made the version (201); false when it equals the newest (200).", json!({"type": "boolean"}))}), json!({})),
        "WorkflowVersion": closed(json!({"id": text(), "version": count(), "stored_at": time(),
            "definition": described("The definition as uploaded.", json!({"type": "object"}))}),
            json!({"uploaded_by": described("Who uploaded it; absent for versions stored before uploads recorded it.", component("Actor"))})),
    })
}
