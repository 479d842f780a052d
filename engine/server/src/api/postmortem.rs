//! `GET /v1/instances/{id}/postmortem`: the playbooks' "response time of every step" for
//! one instance: each stage visit, its time against its deadline, when it went at risk or
//! breached, the first action and everyone who acted, read from the whole history.

use super::error::ApiError;
use super::state::AppState;
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

/// The OpenAPI schema of [`PostMortem`] and the core's `Visit` and `Act`, closed.
pub fn schemas() -> serde_json::Value {
    use super::schema::{array, closed, component, described, status, text, time};
    use serde_json::json;
    let number = json!({"type": "number"});
    json!({
        "PostMortem": closed(
            json!({"id": text(), "workflow": text(), "status": status(),
                "cycle_seconds": described("Start to end (or to now while running).", number.clone()),
                "visits": array(component("StageVisit")),
                "truncated": described("The history was longer than 100,000 entries and only its start was read.", json!({"type": "boolean"}))}),
            json!({"key": text(), "started_by": text()})),
        "StageVisit": closed(
            json!({"stage": text(), "entered_at": time(),
                "seconds": described("Time in the stage (to now while still there).", number.clone()),
                "acts": array(component("StageAct"))}),
            json!({"left_at": described("Absent while the instance is still there.", time()),
                "deadline": time(), "at_risk_at": time(), "breached_at": time(),
                "response_seconds": described("Entering to the first action by a person or system.", number.clone())})),
        "StageAct": closed(
            json!({"at": time(),
                "what": described("event:<name>, approved:<level>, rejected:<level>, assigned:<person>, released, cancelled", text()),
                "after_seconds": number}),
            json!({"by": text()})),
    })
}
