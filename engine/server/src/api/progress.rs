//! Customer progress links over HTTP (issue 16): operators get and revoke an instance's
//! link; anyone holding a link reads what the workflow marks customer-visible.
//!
//! `GET /progress/{link}` is public (outside `/v1`'s tokens): 200 with the customer's view,
//! 404 `no-such-link` for anything not a current link (a forged or revoked one looks
//! the same as a mistyped one), 410 `link-expired` once the instance ended more than
//! `[live] progress_link_days` ago. The page at `/p/{link}` (the dashboard's
//! `progress.html`) reads it.

use super::error::ApiError;
use super::state::AppState;
use crate::auth::Caller;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use waystation_runtime::ProgressPage;

/// An instance's progress link.
#[derive(Debug, Serialize)]
pub struct ProgressLink {
    /// The link to give the customer.
    pub url: String,
    /// Days it keeps working after the instance ended.
    pub expires_days_after_end: u64,
}

fn link(app: &AppState, url: String) -> Json<ProgressLink> {
    Json(ProgressLink {
        url,
        expires_days_after_end: app.config.live.progress_link_days,
    })
}

/// `GET /v1/instances/{id}/progress-link`.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProgressLink>, ApiError> {
    let url = app.blocking(move |rt| Ok(rt.progress_link(&id)?)).await?;
    Ok(link(&app, url))
}

/// `DELETE /v1/instances/{id}/progress-link`: every link given out stops working; the
/// answer is the new one.
pub async fn revoke(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ProgressLink>, ApiError> {
    let url = app
        .runtime
        .revoke_progress_link(&caller.actor(), &id)
        .await?;
    Ok(link(&app, url))
}

/// `GET /progress/{link}`: the customer's view, without a token.
pub async fn page(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let life = app.config.live.progress_link_life();
    match app.runtime.progress_page(&token, life).await? {
        ProgressPage::Shown(view) => {
            let mut response = Json(view).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
            Ok(response)
        }
        ProgressPage::Expired => Err(ApiError::new(
            StatusCode::GONE,
            "link-expired",
            "This progress link has expired",
            "the order ended longer ago than progress links are kept",
        )),
        ProgressPage::Unknown => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no-such-link",
            "No such progress link",
            "this is not a current progress link; it may have been replaced by a newer one",
        )),
    }
}

/// The OpenAPI schemas of [`ProgressLink`] and the customer's page
/// (`waystation_core::definition::progress::CustomerProgress`), closed.
pub fn schemas() -> serde_json::Value {
    use super::schema::{array, closed, described, text};
    use serde_json::json;
    json!({
        "ProgressLink": closed(json!({"url": described("The link to give the customer.", text()),
            "expires_days_after_end": {"type": "integer", "minimum": 0, "description": "Days it keeps working after the instance ended."}}), json!({})),
        "CustomerProgress": closed(
            json!({"title": text(),
                "status": {"enum": ["in_progress", "completed", "cancelled", "on_hold"]},
                "steps": array(closed(json!({"title": text(), "state": {"enum": ["done", "current", "upcoming"]}}), json!({})))}),
            json!({"step": described("The title of the step the order is at, when it is one of the listed steps.", text()),
                "key": described("The business key, when the definition shows it.", text()),
                "fields": array(closed(json!({"title": text(), "value": {}}), json!({})))})),
    })
}
