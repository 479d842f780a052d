//! The parallel stage's own parts: its branches and its join rule.

use serde::{Deserialize, Serialize};

/// Most branches one parallel stage may have (the JSON Schema says so too): each branch is
/// a current stage with its own timers and tasks, so an instance's size grows with them.
pub const MAX_BRANCHES: usize = 32;

/// Most branches one `for_each` may make (one per element of its list). A list longer
/// than this fails the step when the stage is entered, with a reason naming the length
/// and the limit, as other expression budgets do: each branch is a current stage with its
/// own timers, tasks and SLA, so an instance's size (and each step's work) grows with them.
pub const MAX_FOR_EACH_BRANCHES: usize = 64;

/// The `for_each` form of a parallel stage: one branch per element of a list evaluated
/// when the stage is entered (e.g. one per shipment), every branch starting at the same
/// stage. Branch `i` is called `{branch.name}[i]` (`shipment[0]`); while its stages run,
/// the element is `vars.{as}` (and its index `vars.{as}_index`), which shadow instance
/// variables of those names inside the branch only: writes to them there are dropped when
/// the branch's step ends. An empty list satisfies the join at once, whatever its rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForEach {
    /// CEL expression giving the list (`input.shipments`), over `input`, `vars`, `event`.
    pub items: String,
    /// The variable name each branch sees its element under (`shipment`).
    #[serde(rename = "as")]
    pub as_var: String,
    /// The branch every element runs: its name (indexed per element) and first stage.
    pub branch: BranchDef,
}

/// The branch definitions of a parallel stage: its `branches`, or the one branch its
/// `for_each` repeats per element.
pub fn branch_defs<'a>(
    branches: &'a [BranchDef],
    for_each: Option<&'a ForEach>,
) -> &'a [BranchDef] {
    match for_each {
        Some(f) => std::slice::from_ref(&f.branch),
        None => branches,
    }
}

/// The name of element `index`'s branch of a `for_each` whose branch is called `name`.
pub fn for_each_branch_name(name: &str, index: usize) -> String {
    format!("{name}[{index}]")
}

/// One branch of a parallel stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchDef {
    /// The branch's name, unique within the stage (`production`): events and the API name
    /// it, and history entries about it carry it.
    pub name: String,
    /// The first stage of the branch. Every stage reachable from it belongs to the branch
    /// and only to it; the branch ends at one of its end stages, whose outcome is the
    /// branch's.
    pub start: String,
    /// Short human title for the board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Which branches must end before the parallel stage moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRule {
    /// Every branch.
    #[default]
    All,
    /// The first branch to end.
    Any,
    /// `count` branches.
    AtLeast,
}

/// The join of a parallel stage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// All, any, or at least `count`.
    #[serde(default)]
    pub rule: JoinRule,
    /// For `at_least`: how many branches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// CEL condition a branch's end must meet to count, evaluated when it ends with
    /// `event = {"type": "branch_ended", "data": {"branch": name, "outcome": outcome}}`
    /// (e.g. `event.data.outcome == 'confirmed'`). Without it every ended branch counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl Join {
    /// How many branches of `total` must count.
    pub fn needed(&self, total: usize) -> usize {
        match self.rule {
            JoinRule::All => total,
            JoinRule::Any => 1,
            JoinRule::AtLeast => self.count.map_or(total, |c| c as usize),
        }
    }
}
