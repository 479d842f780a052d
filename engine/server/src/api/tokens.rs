//! Administrators' tokens: create (secret shown once), list, revoke.

use super::error::{ApiError, FieldError};
use super::extract::JsonBody;
use super::AppState;
use crate::auth;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for; recorded as the identity of its holder.
    pub name: String,
    /// Roles: admin, developer, operator, approver:<role>.
    pub roles: Vec<String>,
}

/// `POST /v1/tokens`: 201 `{id, token}`; the secret is never shown again.
pub async fn create(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = Vec::new();
    if body.name.trim().is_empty() || body.name.len() > 100 {
        errors.push(FieldError::at("/name", "a name of 1 to 100 characters"));
    }
    if body.roles.is_empty() {
        errors.push(FieldError::at("/roles", "at least one role"));
    }
    for (i, role) in body.roles.iter().enumerate() {
        if let Err(m) = auth::check_role(role) {
            errors.push(FieldError::at(format!("/roles/{i}"), m));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("the token request is invalid", errors));
    }
    let (record, secret) = auth::new_token(&body.name, body.roles, None);
    app.runtime.put_token(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id, "name": record.name, "roles": record.roles, "token": secret})),
    ))
}

/// `GET /v1/tokens`.
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = app
        .blocking(|rt| Ok(rt.store().tokens()?))
        .await?
        .into_iter()
        .map(|t| json!({"id": t.id, "name": t.name, "roles": t.roles, "created_at": t.created_at}))
        .collect();
    Ok(Json(json!({"items": items})))
}

/// `DELETE /v1/tokens/{id}`: 204, or 404.
pub async fn revoke(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !app.runtime.revoke_token(&id).await? {
        return Err(ApiError::not_found(format!("no token '{id}'")));
    }
    app.forget_callers();
    Ok(StatusCode::NO_CONTENT)
}
