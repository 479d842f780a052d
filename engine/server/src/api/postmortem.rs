//! `GET /v1/instances/{id}/postmortem`: the playbooks' "response time of every step" for
//! one instance: each stage visit, its time against its deadline, when it went at risk or
//! breached, the first action and everyone who acted, read from the whole history.

use super::error::ApiError;
use super::AppState;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use waystation_core::report::{visits, Visit};
use waystation_core::{HistoryEntry, InstanceState, Status};

/// Most history entries a post-mortem reads; an instance with more answers with its first
/// visits and `truncated: true`.
pub const MAX_ENTRIES: usize = 100_000;

/// The post-mortem of an instance.
#[derive(Debug, Serialize)]
pub struct PostMortem {
    /// Instance id.
    pub id: String,
    /// Workflow id.
    pub workflow: String,
    /// The business key, when the definition declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Lifecycle status.
    pub status: Status,
    /// Who started it (token name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// Start to end (or to now while running), in seconds.
    pub cycle_seconds: f64,
    /// The stage visits, oldest first.
    pub visits: Vec<Visit>,
    /// True when the history was longer than [`MAX_ENTRIES`] and only its start was read.
    pub truncated: bool,
}

/// `GET /v1/instances/{id}/postmortem`.
pub async fn postmortem(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PostMortem>, ApiError> {
    let answer = app
        .blocking(move |rt| {
            let s = rt.instance(&id)?;
            let entries = rt.history(&id, 0, MAX_ENTRIES + 1)?;
            Ok(PostMortem::of(
                s,
                entries.into_iter().map(|(_, e)| e).collect(),
                rt.now(),
            ))
        })
        .await?;
    Ok(Json(answer))
}

impl PostMortem {
    /// The post-mortem of `s` at `now` from its history `entries` read from the start (at
    /// most [`MAX_ENTRIES`] are used; pass one more to learn whether there were more).
    pub fn of(s: InstanceState, mut entries: Vec<HistoryEntry>, now: DateTime<Utc>) -> Self {
        let truncated = entries.len() > MAX_ENTRIES;
        entries.truncate(MAX_ENTRIES);
        let end = if s.status == Status::Running {
            now
        } else {
            s.updated_at
        };
        PostMortem {
            visits: visits(&s, &entries, now),
            cycle_seconds: (end - s.started_at).num_milliseconds().max(0) as f64 / 1000.0,
            id: s.id,
            workflow: s.workflow,
            key: s.key,
            status: s.status,
            started_by: s.started_by,
            truncated,
        }
    }
}

/// The OpenAPI schema of [`PostMortem`].
pub fn schemas() -> serde_json::Value {
    serde_json::json!({
        "PostMortem": {"type": "object", "required": ["id", "workflow", "status", "cycle_seconds", "visits", "truncated"], "properties": {
            "id": {"type": "string"}, "workflow": {"type": "string"}, "key": {"type": "string"},
            "status": {"enum": ["running", "completed", "failed", "cancelled"]},
            "started_by": {"type": "string"}, "cycle_seconds": {"type": "number"}, "truncated": {"type": "boolean"},
            "visits": {"type": "array", "items": {"type": "object", "required": ["stage", "entered_at", "seconds", "acts"], "properties": {
                "stage": {"type": "string"},
                "entered_at": {"type": "string", "format": "date-time"},
                "left_at": {"type": "string", "format": "date-time", "description": "Absent while the instance is still there."},
                "seconds": {"type": "number", "description": "Time in the stage (to now while still there)."},
                "deadline": {"type": "string", "format": "date-time"},
                "at_risk_at": {"type": "string", "format": "date-time"},
                "breached_at": {"type": "string", "format": "date-time"},
                "response_seconds": {"type": "number", "description": "Entering to the first action by a person or system."},
                "acts": {"type": "array", "items": {"type": "object", "required": ["at", "what", "after_seconds"], "properties": {
                    "at": {"type": "string", "format": "date-time"}, "by": {"type": "string"},
                    "what": {"type": "string", "description": "event:<name>, approved:<level>, rejected:<level>, assigned:<person>, released, cancelled"},
                    "after_seconds": {"type": "number"}}}}}}}}},
    })
}
