//! Sub-workflows on the instance view: the parent a child instance was started by, and the
//! children a parent's sub-workflow stages started, each with where it stands.

use super::error::ApiError;
use crate::AppState;
use serde::Serialize;
use serde_json::Value;
use waystation_core::{InstanceState, Status};

/// The instance whose sub-workflow stage started this one.
#[derive(Debug, Clone, Serialize)]
pub struct ParentView {
    /// The parent's instance id.
    pub instance: String,
    /// The parent's workflow (absent when the parent is no longer stored).
    pub workflow: Option<String>,
    /// The parent's sub-workflow stage that started this instance.
    pub stage: String,
    /// The parent's status (absent when it is no longer stored).
    pub status: Option<Status>,
}

/// A child instance started by one of this instance's sub-workflow stages.
#[derive(Debug, Clone, Serialize)]
pub struct ChildView {
    /// The child's instance id.
    pub id: String,
    /// The child's workflow.
    pub workflow: String,
    /// The sub-workflow stage that started it.
    pub stage: String,
    /// True while that stage waits for it.
    pub waiting: bool,
    /// The child's status; absent when it is not stored (it could not be started - the
    /// parent took that as a failed child - or retention removed it).
    pub status: Option<Status>,
    /// The child's current stage.
    pub child_stage: Option<String>,
    /// Its outcome, once completed.
    pub outcome: Option<String>,
}

/// The parent of `s`, read from the store.
///
/// # Errors
/// Store errors.
pub fn parent_of(app: &AppState, s: &InstanceState) -> Result<Option<ParentView>, ApiError> {
    let Some(link) = &s.parent else {
        return Ok(None);
    };
    let parent = app.runtime.store().instance(&link.instance)?;
    Ok(Some(ParentView {
        instance: link.instance.clone(),
        workflow: parent.as_ref().map(|p| p.workflow.clone()),
        stage: link.stage.clone(),
        status: parent.map(|p| p.status),
    }))
}

/// The children of `s`, oldest first, each read from the store.
///
/// # Errors
/// Store errors.
pub fn children_of(app: &AppState, s: &InstanceState) -> Result<Vec<ChildView>, ApiError> {
    if s.children.is_empty() {
        return Ok(Vec::new());
    }
    let waiting = s.waiting_children();
    s.children
        .iter()
        .map(|c| {
            let child = app.runtime.store().instance(&c.id)?;
            Ok(ChildView {
                id: c.id.clone(),
                workflow: c.workflow.clone(),
                stage: c.stage.clone(),
                waiting: waiting.iter().any(|w| w.id == c.id),
                status: child.as_ref().map(|c| c.status),
                child_stage: child.as_ref().map(|c| c.stage.clone()),
                outcome: child.and_then(|c| c.outcome),
            })
        })
        .collect()
}

/// The OpenAPI schemas of these views.
pub fn schemas() -> Value {
    let status = serde_json::json!({"enum": ["running", "completed", "failed", "cancelled", null]});
    serde_json::json!({
        "ParentLink": {"type": "object", "required": ["instance", "stage"],
            "description": "The instance whose sub-workflow stage started this one.",
            "properties": {
                "instance": {"type": "string"},
                "workflow": {"type": ["string", "null"]},
                "stage": {"type": "string", "description": "The parent's sub-workflow stage."},
                "status": status}},
        "ChildInstance": {"type": "object", "required": ["id", "workflow", "stage", "waiting"],
            "description": "A child instance started by a sub-workflow stage.",
            "properties": {
                "id": {"type": "string"},
                "workflow": {"type": "string"},
                "stage": {"type": "string", "description": "The sub-workflow stage that started it."},
                "waiting": {"type": "boolean", "description": "True while that stage waits for it."},
                "status": status,
                "child_stage": {"type": ["string", "null"], "description": "The child's current stage."},
                "outcome": {"type": ["string", "null"]}}},
    })
}
