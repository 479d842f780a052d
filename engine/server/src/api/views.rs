//! The typed shapes of instances in answers: one struct per view, shared by every route
//! that shows it (the instance list, lookups by key, the approvals inbox), and described
//! by the same names in the OpenAPI document (`InstanceItem`, `Fields`; see `view_schemas`).

use super::error::ApiError;
use super::state::AppState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use waystation_core::{InstanceState, SlaState, Status};

/// An instance's business identity as people read it: the key, the fields in the
/// definition's order, and which of them cards and approval tasks show.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// The business key, when the definition declares one.
    pub key: Option<String>,
    /// Every field that has a value, by name, in the definition's order; timestamps in
    /// RFC 3339, numbers as JSON numbers.
    pub fields: Map<String, Value>,
    /// The names of the fields marked `show` (for cards), in order.
    pub shown: Vec<String>,
    /// The names of the fields marked `approval` (for approval tasks), in order; the
    /// shown ones when none is marked.
    pub for_approval: Vec<String>,
    /// Field titles by name, for the fields that declare one.
    pub titles: Map<String, Value>,
}

impl Identity {
    /// The identity of `s`, read with the definition version it runs on.
    ///
    /// # Errors
    /// A missing definition version (store damage): a 500.
    pub async fn of(app: &AppState, s: &InstanceState) -> Result<Identity, ApiError> {
        let wf = app.runtime.workflow(&s.workflow, Some(s.version)).await?;
        let declared = &wf.definition.fields;
        let mut fields = Map::new();
        let mut shown = Vec::new();
        let mut for_approval = Vec::new();
        let mut titles = Map::new();
        for (name, def) in declared.iter() {
            if let Some(v) = s.fields.get(name) {
                fields.insert(name.clone(), v.to_json());
            }
            if def.show {
                shown.push(name.clone());
            }
            if def.approval {
                for_approval.push(name.clone());
            }
            if let Some(t) = &def.title {
                titles.insert(name.clone(), Value::String(t.clone()));
            }
        }
        if for_approval.is_empty() {
            for_approval.clone_from(&shown);
        }
        Ok(Identity {
            key: s.key.clone(),
            fields,
            shown,
            for_approval,
            titles,
        })
    }
}

/// One instance in a list.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceItem {
    /// Instance id.
    pub id: String,
    /// Workflow id.
    pub workflow: String,
    /// Definition version.
    pub version: u32,
    /// Current stage (the last one, once ended).
    pub stage: String,
    /// Lifecycle status.
    pub status: Status,
    /// SLA state of the current stage.
    pub sla: SlaState,
    /// When the current stage is due.
    pub deadline: Option<DateTime<Utc>>,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// The outcome, once completed.
    pub outcome: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who owns the current stage's work, if anyone.
    pub assignee: Option<String>,
    /// True when it breached some stage's deadline at any point.
    pub breached_ever: bool,
    /// In a parallel stage: each branch's stage and SLA (absent elsewhere).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<super::branch_view::BranchView>,
    /// Key and fields.
    #[serde(flatten)]
    pub identity: Identity,
}

/// The branches of `s`, read against its definition version (only in a parallel stage).
async fn branches_of(
    app: &AppState,
    s: &InstanceState,
) -> Result<Vec<super::branch_view::BranchView>, ApiError> {
    if !s.has_branches() {
        return Ok(Vec::new());
    }
    let wf = app.runtime.workflow(&s.workflow, Some(s.version)).await?;
    Ok(super::branch_view::branches(s, &wf.definition))
}

impl InstanceItem {
    /// The list item of `s`.
    ///
    /// # Errors
    /// As [`Identity::of`].
    pub async fn of(app: &AppState, s: &InstanceState) -> Result<InstanceItem, ApiError> {
        Ok(InstanceItem {
            id: s.id.clone(),
            workflow: s.workflow.clone(),
            version: s.version,
            stage: s.stage.clone(),
            status: s.status,
            sla: s.worst_sla().state,
            deadline: s.worst_sla().deadline,
            tags: s.tags.clone(),
            outcome: s.outcome.clone(),
            started_at: s.started_at,
            updated_at: s.updated_at,
            assignee: s.assignee.as_ref().map(|a| a.user.clone()),
            breached_ever: s.sla_record.iter().any(waystation_core::StageSla::breached),
            branches: branches_of(app, s).await?,
            identity: Identity::of(app, s).await?,
        })
    }
}

/// A page of instances.
#[derive(Debug, Clone, Serialize)]
pub struct InstancePage {
    /// The instances.
    pub items: Vec<InstanceItem>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// One instance with everything an operator needs to know where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceDetail {
    /// Instance id.
    pub id: String,
    /// Workflow id.
    pub workflow: String,
    /// Definition version.
    pub version: u32,
    /// Current stage.
    pub stage: String,
    /// Its title.
    pub stage_title: Option<String>,
    /// The role that owns it.
    pub owner: Option<String>,
    /// Lifecycle status.
    pub status: Status,
    /// The outcome, once completed.
    pub outcome: Option<String>,
    /// The reason, once failed.
    pub failure: Option<String>,
    /// SLA of the current stage: state, deadline, when at risk. In a parallel stage, the
    /// worst of its own and its branches'.
    pub sla: waystation_core::state::Sla,
    /// In a parallel stage: each branch's stage, owner and SLA.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<super::branch_view::BranchView>,
    /// The instance whose sub-workflow stage started this one, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<super::family_view::ParentView>,
    /// The child instances its sub-workflow stages started, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<super::family_view::ChildView>,
    /// The start payload.
    pub input: Value,
    /// Variables.
    pub vars: Map<String, Value>,
    /// Open approval tasks.
    pub approvals: Vec<waystation_core::ApprovalTask>,
    /// Armed timers.
    pub timers: Vec<waystation_core::Timer>,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it entered the current stage.
    pub stage_entered_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When a person or outside system last acted on it.
    pub acted_at: Option<DateTime<Utc>>,
    /// Who owns the current stage's work, who assigned them, when.
    pub assignee: Option<waystation_core::state::Assignment>,
    /// Stage visits that went at risk or breached, kept after the stage was left.
    pub sla_record: Vec<waystation_core::StageSla>,
    /// Key and fields.
    #[serde(flatten)]
    pub identity: Identity,
}

impl InstanceDetail {
    /// The detail of `s`.
    ///
    /// # Errors
    /// As [`Identity::of`].
    pub async fn of(app: &AppState, s: InstanceState) -> Result<InstanceDetail, ApiError> {
        let identity = Identity::of(app, &s).await?;
        let wf = app.runtime.workflow(&s.workflow, Some(s.version)).await?;
        let stage = wf.definition.stages.get(&s.stage);
        let branches = super::branch_view::branches(&s, &wf.definition);
        let sla = s.worst_sla().into_owned();
        let timers = s.all_timers().into_owned();
        // One store read per relative: on the blocking pool, and only for an instance that
        // has relatives (the state is cloned for it).
        let (parent, children) = match s.parent.is_some() || !s.children.is_empty() {
            true => {
                let family = s.clone();
                app.blocking(move |rt| {
                    Ok((
                        super::family_view::parent_of(rt, &family)?,
                        super::family_view::children_of(rt, &family)?,
                    ))
                })
                .await?
            }
            false => (None, Vec::new()),
        };
        Ok(InstanceDetail {
            parent,
            children,
            stage_title: stage.and_then(|st| st.title.clone()),
            owner: stage.and_then(|st| st.owner.clone()),
            approvals: s.all_open_tasks().into_owned(),
            branches,
            id: s.id,
            workflow: s.workflow,
            version: s.version,
            stage: s.stage,
            status: s.status,
            outcome: s.outcome,
            failure: s.failure,
            sla,
            input: s.input,
            vars: s.vars,
            timers,
            tags: s.tags,
            started_at: s.started_at,
            stage_entered_at: s.stage_entered_at,
            updated_at: s.updated_at,
            acted_at: s.acted_at,
            assignee: s.assignee,
            sla_record: s.sla_record,
            identity,
        })
    }
}

/// One open approval task with what its approver needs to decide and to choose what to
/// decide first.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalItem {
    /// Task id.
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// Its workflow.
    pub workflow: String,
    /// Its definition version.
    pub version: u32,
    /// The approval stage.
    pub stage: String,
    /// The level.
    pub level: String,
    /// The approver role the task is for (or `null`).
    pub role: Option<String>,
    /// The named user the task is for (or `null`).
    pub user: Option<String>,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// SLA state of the stage.
    pub sla: SlaState,
    /// When the stage is due.
    pub deadline: Option<DateTime<Utc>>,
    /// Key and fields of the instance (`for_approval` names the ones to show).
    #[serde(flatten)]
    pub identity: Identity,
}

impl ApprovalItem {
    /// The inbox item of task `t` of instance `s`.
    ///
    /// # Errors
    /// As [`Identity::of`].
    pub async fn of(
        app: &AppState,
        t: waystation_core::ApprovalTask,
        s: &InstanceState,
    ) -> Result<ApprovalItem, ApiError> {
        use waystation_core::definition::Approver;
        let (role, user) = match t.approver {
            Approver::Role(r) => (Some(r), None),
            Approver::User(u) => (None, Some(u)),
        };
        // In a parallel stage each branch's approval has its own deadline; in a for_each
        // several branches are in the same stage, so the task's own frame says whose.
        let sla = s
            .find_frame(|f| {
                f.approval
                    .is_some_and(|a| a.open.iter().any(|o| o.id == t.id))
            })
            .and_then(|path| s.frame_at(&path).map(|f| f.sla.clone()))
            .unwrap_or_else(|| s.stage_sla(&t.stage));
        Ok(ApprovalItem {
            id: t.id,
            instance_id: t.instance_id,
            workflow: s.workflow.clone(),
            version: s.version,
            stage: t.stage,
            level: t.level,
            role,
            user,
            opened_at: t.opened_at,
            sla: sla.state,
            deadline: sla.deadline,
            identity: Identity::of(app, s).await?,
        })
    }
}

/// The approvals inbox.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalPage {
    /// Open tasks.
    pub items: Vec<ApprovalItem>,
}

/// One history entry as the API shows it: its sequence number, then the entry itself.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem {
    /// Its place in the instance's history (the `from` of a page that starts with it).
    pub seq: u64,
    /// `at`, `type`, the type's own members, and the `actor` when a request caused it.
    #[serde(flatten)]
    pub entry: waystation_core::HistoryEntry,
}

/// A page of an instance's history, with the instance's key and fields so an export
/// stands on its own.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPage {
    /// The instance.
    pub id: String,
    /// Its workflow.
    pub workflow: String,
    /// Its key and fields now.
    #[serde(flatten)]
    pub identity: Identity,
    /// Entries, each with its `seq`, `at`, `type`, the type's own members and, for entries
    /// caused by a request, the `actor` (`{token_id, name}`).
    pub items: Vec<HistoryItem>,
    /// The `from` of the next page; `null` on the last.
    pub next_from: Option<u64>,
}

/// A field a workflow declares.
#[derive(Debug, Clone, Serialize)]
pub struct DeclaredField {
    /// Its name (the `field.<name>` of searches).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: waystation_core::definition::FieldType,
    /// Its label.
    pub title: Option<String>,
    /// Shown on cards.
    pub show: bool,
    /// Shown on approval tasks.
    pub approval: bool,
}

impl DeclaredField {
    /// The declared fields, in order.
    pub fn all(fields: &waystation_core::definition::OrderedFields) -> Vec<DeclaredField> {
        fields
            .iter()
            .map(|(name, f)| DeclaredField {
                name: name.clone(),
                kind: f.kind,
                title: f.title.clone(),
                show: f.show,
                approval: f.approval,
            })
            .collect()
    }
}

/// `GET /v1/stats/{workflow}`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Instances per current stage (any status).
    pub by_stage: std::collections::BTreeMap<String, u64>,
    /// Running instances per SLA state.
    pub by_sla: std::collections::BTreeMap<String, u64>,
    /// The business key's expression, if declared.
    pub key: Option<String>,
    /// The declared fields.
    pub fields: Vec<DeclaredField>,
}
