//! Administrators' tokens: create (secret shown once), list, revoke.

use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::extract::{first_answer, IdempotencyKey, JsonBody};
use super::state::AppState;
use crate::auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use waystation_runtime::{FirstAnswer, Seen};
use waystation_store::TokenRecord;

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for; recorded as the identity of its holder.
    pub name: String,
    /// Roles: admin, developer, operator, approver:<role>.
    pub roles: Vec<String>,
}

/// The answer to `POST /v1/tokens`.
#[derive(Debug, Serialize)]
pub struct TokenCreated {
    /// Public id, for listing and revoking.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// The secret: shown in this answer only (and in its replays, see `create`).
    pub token: String,
}

/// `POST /v1/tokens`: 201 `{id, name, roles, token}`; the secret is never listed again.
///
/// With an `Idempotency-Key`, the token and the first answer are stored in one atomic
/// write, so a retried creation never mints a second live token: a verbatim retry gets the
/// first answer (the same token and secret; keep keys as secret as the tokens), the same
/// key with another body is a 422.
pub async fn create(
    State(app): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    if let Err(m) = fit_name(&body.name) {
        errors.push(FieldError::at("/name", m));
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
    let created = |record: TokenRecord, secret: String| TokenCreated {
        id: record.id,
        name: record.name,
        roles: record.roles,
        token: secret,
    };
    let Some(key) = key else {
        let _writes = TOKEN_WRITES.lock().await;
        name_free(&app, &body.name).await?;
        let (record, secret) = auth::new_token(&body.name, body.roles, None);
        app.runtime.put_token(&record).await?;
        return Ok((StatusCode::CREATED, Json(created(record, secret))).into_response());
    };
    let request =
        serde_json::to_vec(&(&body.name, &body.roles)).map_err(|e| ApiError::internal(&e))?;
    let lock = match app.runtime.idempotent(&key, "token", "", &request).await? {
        Seen::Replay(first) => return Ok(first_answer(first, true)),
        Seen::New(lock) => lock,
    };
    let writes = TOKEN_WRITES.lock().await;
    name_free(&app, &body.name).await?;
    let (record, secret) = auth::new_token(&body.name, body.roles, None);
    let answer = FirstAnswer {
        status: StatusCode::CREATED.as_u16(),
        body: serde_json::to_value(created(record.clone(), secret))
            .map_err(|e| ApiError::internal(&e))?,
    };
    let (key, kept) = lock.record_of(&answer)?;
    app.runtime.put_token_once(&record, key, &kept).await?;
    drop(writes);
    drop(lock);
    Ok(first_answer(answer, false))
}

/// Token writes that check other tokens first, one at a time: a name is checked and its
/// token written under this lock, so two requests with the same name cannot both find it
/// free (names are who the history says acted); a revocation counts the admins and deletes
/// under it, so two revocations cannot both leave the other as the last admin and then
/// remove it. (tokio's Mutex: it is held until the write is durable.)
static TOKEN_WRITES: Mutex<()> = Mutex::const_new(());

/// Why `name` cannot name a person in histories: names are compared by people, so two that
/// look alike ("ops" and "ops ", or one with an invisible or right-to-left character) would be two
/// tokens that read as one.
fn fit_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 100 {
        return Err("a name of 1 to 100 bytes");
    }
    if name.trim() != name {
        return Err("no spaces before or after the name");
    }
    if name.chars().any(waystation_core::fields::unseen) {
        return Err(
            "no control, invisible or direction-changing characters (U+202E, U+200B and the like)",
        );
    }
    Ok(())
}

/// 409 `token-name-taken` when a live token has `name`, compared without regard to case
/// ("Ops" and "ops" would read as one person in a history).
async fn name_free(app: &AppState, name: &str) -> Result<(), ApiError> {
    let folded = name.to_lowercase();
    let taken = app
        .blocking(move |rt| {
            Ok(rt
                .store()
                .tokens()?
                .into_iter()
                .find(|t| t.name.to_lowercase() == folded))
        })
        .await?;
    match taken {
        None => Ok(()),
        Some(existing) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "token-name-taken",
            "The token name is taken",
            format!(
                "token '{}' is already called '{}'; histories name who acted by token name, so names are unique regardless of case (revoke it first to reuse the name)",
                existing.id, existing.name
            ),
        )
        .with_errors(vec![FieldError::at("/name", "already in use")])),
    }
}

/// `GET /v1/tokens`.
pub async fn list(State(app): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let items = app
        .blocking(|rt| Ok(rt.store().tokens()?))
        .await?
        .into_iter()
        .map(|t| TokenItem {
            id: t.id,
            name: t.name,
            roles: t.roles,
            created_at: t.created_at,
        })
        .collect();
    Ok(Json(TokenList { items }))
}

/// One token in `GET /v1/tokens`: never its secret nor the secret's hash.
#[derive(Debug, Serialize)]
pub struct TokenItem {
    /// Public id, for revoking.
    pub id: String,
    /// Who holds it: the name the history records.
    pub name: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The answer to `GET /v1/tokens`.
#[derive(Debug, Serialize)]
pub struct TokenList {
    /// Every live token.
    pub items: Vec<TokenItem>,
}

/// `DELETE /v1/tokens/{id}`: 204, 404, or 409 `last-admin` for the only admin token.
pub async fn revoke(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    {
        let _writes = TOKEN_WRITES.lock().await;
        let tokens = app.blocking(|rt| Ok(rt.store().tokens()?)).await?;
        let Some(token) = tokens.iter().find(|t| t.id == id) else {
            return Err(ApiError::not_found(format!("no token '{id}'")));
        };
        let is_admin = |t: &TokenRecord| t.roles.iter().any(|r| r == "admin");
        if is_admin(token) && tokens.iter().filter(|t| is_admin(t)).count() == 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "last-admin",
                "The last admin token cannot be revoked",
                format!(
                    "token '{id}' is the only admin token: without it nobody could manage tokens or definitions again; create another admin token first"
                ),
            ));
        }
        if !app.runtime.revoke_token(&id).await? {
            return Err(ApiError::not_found(format!("no token '{id}'")));
        }
    }
    app.forget_callers();
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI schemas of [`TokenCreated`] and [`TokenList`], closed.
pub fn schemas() -> serde_json::Value {
    use super::schema::{array, closed, component, described, text, time};
    use serde_json::json;
    json!({
        "TokenCreated": closed(json!({"id": described("Public id, for listing and revoking.", text()),
            "name": text(), "roles": array(text()),
            "token": described("The secret: shown in this answer only (and in its replays under the same Idempotency-Key).", text())}), json!({})),
        "TokenItem": closed(json!({"id": text(), "name": text(), "roles": array(text()), "created_at": time()}), json!({})),
        "TokenList": closed(json!({"items": array(component("TokenItem"))}), json!({})),
    })
}
