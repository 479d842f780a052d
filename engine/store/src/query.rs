//! Instance queries, answered from the indexes, with cursor pagination.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use waystation_core::{SlaState, Status};

/// Filters for listing instances. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceQuery {
    /// Workflow id.
    pub workflow: Option<String>,
    /// Definition version (with `workflow`).
    pub version: Option<u32>,
    /// Current stage (with `workflow`; stage names belong to a workflow).
    pub stage: Option<String>,
    /// Lifecycle status.
    pub status: Option<Status>,
    /// SLA state (running instances only).
    pub sla: Option<SlaState>,
    /// Carries this tag.
    pub tag: Option<String>,
    /// Not updated since this time (`updated_at` before it).
    pub updated_before: Option<DateTime<Utc>>,
    /// Running, and nobody has acted in the current stage yet (`true`: no approval decided
    /// since the stage was entered) or somebody has (`false`). With `sla = at_risk` it
    /// answers the board's "deadline near and work not started".
    #[serde(default)]
    pub untouched: Option<bool>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Page size (1..=1000; 0 means the default of 100).
    pub limit: usize,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Instance counts of one workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Instances per current stage (any status).
    pub by_stage: BTreeMap<String, u64>,
    /// Running instances per SLA state.
    pub by_sla: BTreeMap<String, u64>,
}
