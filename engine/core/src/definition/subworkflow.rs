//! The sub-workflow stage's own parts: which workflow it starts, and how deep calls nest.

use serde::{Deserialize, Serialize};

/// How deep sub-workflows may call one another: an instance started by a sub-workflow
/// stage of an instance started by a sub-workflow stage ... at most this many levels below
/// the instance a person started. A definition whose calls could go deeper (or round in a
/// cycle, `a` calling `b` calling `a`) is refused at upload, with the chain of calls; the
/// bound keeps one start from fanning out into an unbounded tree of instances.
pub const MAX_SUBWORKFLOW_DEPTH: usize = 4;

/// The workflow a sub-workflow stage starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildWorkflow {
    /// The child workflow's id.
    pub workflow: String,
    /// A pinned version; absent, the newest version when the stage is entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}
