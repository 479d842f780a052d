//! Instance queries, answered from the indexes, with cursor pagination.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use waystation_core::{FieldValue, SlaState, Status};

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
    /// Has this business key (with `workflow`).
    #[serde(default)]
    pub key: Option<String>,
    /// Tests on the workflow's fields (with `workflow`), all of which must hold.
    #[serde(default)]
    pub fields: Vec<FieldFilter>,
    /// Breached some stage at any point (`true`), or never (`false`); with `breached_stage`,
    /// breached that stage.
    #[serde(default)]
    pub breached: Option<bool>,
    /// Breached this stage at any point (with `workflow`).
    #[serde(default)]
    pub breached_stage: Option<String>,
    /// Nobody (no person, no outside system) has acted on it since this time: started,
    /// sent an event or decision, cancelled. Engine bookkeeping does not count.
    #[serde(default)]
    pub acted_before: Option<DateTime<Utc>>,
    /// Running, with the current stage's work assigned to this person (token name).
    #[serde(default)]
    pub assignee: Option<String>,
    /// In one of these SLA states (running instances only); empty: any.
    #[serde(default)]
    pub sla_in: Vec<SlaState>,
    /// The order of the results; by the index walked when `None`.
    #[serde(default)]
    pub sort: Option<SortBy>,
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

/// A test on one field of the instances of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldFilter {
    /// The field's name.
    pub field: String,
    /// What its value must satisfy.
    pub test: FieldTest,
}

/// What a field's value must satisfy. An empty field satisfies none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldTest {
    /// Equal to this keyword or boolean.
    Equals(FieldValue),
    /// Within bounds, on a number or timestamp field (both of the field's type).
    Range {
        /// The lower bound, if any.
        lower: Option<Bound>,
        /// The upper bound, if any.
        upper: Option<Bound>,
    },
    /// Every one of these lowercase words begins a word of the text field.
    WordPrefixes(Vec<String>),
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// The bound.
    pub value: FieldValue,
    /// True when the bound itself is in the range.
    pub inclusive: bool,
}

/// The order of a list of instances (ascending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// Soonest stage deadline first; only running instances with a deadline are listed.
    Deadline,
    /// Least recently updated first.
    Updated,
    /// By a keyword, boolean, number or timestamp field of the query's workflow; instances
    /// with the field empty are not listed.
    Field {
        /// The field.
        field: String,
        /// Its type.
        kind: waystation_core::definition::FieldType,
    },
}
