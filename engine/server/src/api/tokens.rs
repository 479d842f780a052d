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
    // The name is who the history says acted, so two tokens may not share one. Checked
    // and written under one lock: two requests with the same name cannot both pass.
    static NAMES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (record, secret) = {
        let _names = NAMES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = app.runtime.store().token_by_name(&body.name)? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "token-name-taken",
                "The token name is taken",
                format!(
                    "token '{}' is already called '{}'; histories name who acted by token name, so names are unique (revoke it first to reuse the name)",
                    existing.id, body.name
                ),
            )
            .with_errors(vec![FieldError::at("/name", "already in use")]));
        }
        auth::create_token(app.runtime.store(), &body.name, body.roles, None)?
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id, "name": record.name, "roles": record.roles, "token": secret})),
    ))
}

/// `GET /v1/tokens`.
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = app
        .runtime
        .store()
        .tokens()?
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
    let store = app.runtime.store();
    if !store.delete_token(&id)? {
        return Err(ApiError::not_found(format!("no token '{id}'")));
    }
    store.flush()?;
    app.forget_callers();
    Ok(StatusCode::NO_CONTENT)
}
