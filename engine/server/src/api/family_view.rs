//! Sub-workflows on the instance view: the parent a child instance was started by, and the
//! children a parent's sub-workflow stages started, each with where it stands.

use super::error::ApiError;
use serde::Serialize;
use serde_json::Value;
use waystation_core::{InstanceState, Status};
use waystation_runtime::Runtime;

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
/// A 500 [`ApiError`] when the parent's state cannot be read (the store's backend failed)
/// or decoded (a corrupt record). A parent that is gone is not an error: its view then has
/// no workflow and no status.
pub fn parent_of(rt: &Runtime, s: &InstanceState) -> Result<Option<ParentView>, ApiError> {
    let Some(link) = &s.parent else {
        return Ok(None);
    };
    let parent = rt.store().instance(&link.instance)?;
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
/// A 500 [`ApiError`] when a child's state cannot be read (the store's backend failed) or
/// decoded (a corrupt record); a child that is gone is shown without status or stage.
pub fn children_of(rt: &Runtime, s: &InstanceState) -> Result<Vec<ChildView>, ApiError> {
    if s.children.is_empty() {
        return Ok(Vec::new());
    }
    let waiting = s.waiting_children();
    s.children
        .iter()
        .map(|c| {
            let child = rt.store().instance(&c.id)?;
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

/// The OpenAPI schemas of these views: every member is always sent.
pub fn schemas() -> Value {
    use super::schema::{closed, described, text, text_or_null};
    use serde_json::json;
    let status = || json!({"enum": ["running", "completed", "failed", "cancelled", null]});
    json!({
        "ParentLink": described("The instance whose sub-workflow stage started this one.", closed(json!({
            "instance": text(),
            "workflow": described("Null when the parent is no longer stored.", text_or_null()),
            "stage": described("The parent's sub-workflow stage.", text()),
            "status": status()}), json!({}))),
        "ChildInstance": described("A child instance started by a sub-workflow stage.", closed(json!({
            "id": text(),
            "workflow": text(),
            "stage": described("The sub-workflow stage that started it.", text()),
            "waiting": {"type": "boolean", "description": "True while that stage waits for it."},
            "status": status(),
            "child_stage": described("The child's current stage.", text_or_null()),
            "outcome": text_or_null()}), json!({}))),
    })
}
