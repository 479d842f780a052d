//! `GET /v1/instances/{id}/export`: one instance as a single JSON document to file with a
//! dispute or a post-mortem review: where it stands, its whole history, and the post-mortem
//! (the playbook's "response time of every step") computed from that same history.

use super::error::ApiError;
use super::postmortem::{PostMortem, MAX_ENTRIES};
use super::state::AppState;
use super::views::InstanceDetail;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use waystation_core::HistoryEntry;

/// The `format` of an export: changes only when a reader of an older one would misread it.
pub const FORMAT: &str = "waystation.instance-export.v1";

/// One history entry with its position.
#[derive(Debug, Serialize)]
pub struct ExportedEntry {
    /// Its number in the instance's history, from 0.
    pub seq: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: HistoryEntry,
}

/// An instance export.
#[derive(Debug, Serialize)]
pub struct Export {
    /// [`FORMAT`].
    pub format: &'static str,
    /// When the server wrote it.
    pub exported_at: DateTime<Utc>,
    /// The instance as `GET /v1/instances/{id}` shows it.
    pub instance: InstanceDetail,
    /// The history, oldest first: all of it, or the first [`MAX_ENTRIES`] when `truncated`.
    pub history: Vec<ExportedEntry>,
    /// True when the history had more than [`MAX_ENTRIES`] entries.
    pub truncated: bool,
    /// The post-mortem of the same history.
    pub postmortem: PostMortem,
}

/// `GET /v1/instances/{id}/export`: served as an attachment named after the workflow and
/// the business key (or the instance id), so a browser saves it as a file.
pub async fn export(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (s, mut entries, now) = app
        .blocking(move |rt| {
            let s = rt.instance(&id)?;
            let entries = rt.history(&id, 0, MAX_ENTRIES + 1)?;
            Ok((s, entries, rt.now()))
        })
        .await?;
    let truncated = entries.len() > MAX_ENTRIES;
    entries.truncate(MAX_ENTRIES);
    let postmortem = PostMortem::of(
        s.clone(),
        entries.iter().map(|(_, e)| e.clone()).collect(),
        now,
    );
    let name = format!("{}-{}.json", s.workflow, s.key.as_deref().unwrap_or(&s.id));
    let instance = InstanceDetail::of(&app, s).await?;
    let body = Export {
        format: FORMAT,
        exported_at: now,
        instance,
        history: entries
            .into_iter()
            .map(|(seq, entry)| ExportedEntry { seq, entry })
            .collect(),
        truncated,
        postmortem,
    };
    // Keys are free text: keep the file name to characters every browser and shell takes.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{safe}\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(body)).into_response())
}

/// The OpenAPI schema of [`Export`], closed.
pub fn schemas() -> serde_json::Value {
    use super::schema::{array, closed, component, described, time};
    use serde_json::json;
    json!({
        "InstanceExport": closed(json!({
            "format": {"const": FORMAT},
            "exported_at": time(),
            "instance": component("InstanceDetail"),
            "history": described("Oldest first, as GET /v1/instances/{id}/history lists them.", array(component("HistoryItem"))),
            "truncated": described("The history had more entries than the export holds (100,000).", json!({"type": "boolean"})),
            "postmortem": component("PostMortem")}), json!({})),
    })
}
