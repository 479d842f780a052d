//! The workflow definition as administrators write it: plain serde types that mirror
//! `schemas/workflow.schema.json` one to one. Nothing here is compiled or checked for
//! meaning; see [`crate::validate`] and [`crate::Workflow`] for that.

mod action;
pub(crate) mod duration;
mod fields;
mod ladder;
mod parallel;
pub mod progress;
mod progress_view;
mod subworkflow;

pub use action::Action;

pub use duration::{format_iso_duration, parse_iso_duration, DurationError, MAX_DURATION_DAYS};
pub use fields::{FieldDef, FieldType, OrderedFields};
pub use ladder::{EscalationStep, Reminder, Span, MAX_REMINDER_TIMES};
pub use parallel::{
    branch_defs, for_each_branch_name, BranchDef, ForEach, Join, JoinRule, MAX_BRANCHES,
    MAX_FOR_EACH_BRANCHES,
};
pub use progress_view::ProgressView;
pub use subworkflow::{ChildWorkflow, MAX_SUBWORKFLOW_DEPTH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A workflow definition, as uploaded. Stage order is preserved (`serde_json` keeps key
/// order) so graphs and error lists follow the author's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// Stable identifier, e.g. `order-quick-response`. Versions are assigned by the server.
    pub id: String,
    /// Human title shown on boards.
    pub title: String,
    /// Longer explanation for administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema every start payload must satisfy. Defaults to "any object".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// The business key: CEL over `input` (`input.order_no`), evaluated once at the start.
    /// At most one running instance of the workflow has a given key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Named, typed values recomputed after every command, for search, cards and inboxes.
    #[serde(default, skip_serializing_if = "OrderedFields::is_empty")]
    pub fields: OrderedFields,
    /// What a customer's progress link shows (default: the stage titles only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressView>,
    /// Name of the stage a new instance enters first.
    pub start: String,
    /// Stages by name, in the author's order.
    pub stages: indexmap_like::OrderedStages,
}

/// Stage maps keep the author's order; a `BTreeMap` would sort them and a `HashMap` would
/// shuffle them, and both would make graphs and error lists harder to read.
pub mod indexmap_like {
    use super::Stage;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Stages in document order.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct OrderedStages(pub Vec<(String, Stage)>);

    impl OrderedStages {
        /// The stage called `name`, if any.
        pub fn get(&self, name: &str) -> Option<&Stage> {
            self.0.iter().find(|(n, _)| n == name).map(|(_, s)| s)
        }
        /// Iterates `(name, stage)` in document order.
        pub fn iter(&self) -> impl Iterator<Item = (&String, &Stage)> {
            self.0.iter().map(|(n, s)| (n, s))
        }
        /// Number of stages.
        pub fn len(&self) -> usize {
            self.0.len()
        }
        /// True when there are no stages.
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl Serialize for OrderedStages {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    impl<'de> Deserialize<'de> for OrderedStages {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
            let mut out = Vec::with_capacity(map.len());
            for (name, value) in map {
                let stage = Stage::deserialize(value).map_err(serde::de::Error::custom)?;
                out.push((name, stage));
            }
            Ok(OrderedStages(out))
        }
    }
}

/// One stage: the fields every kind shares, plus the kind's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Short human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What happens here and why, for people reading the board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The role that owns the stage: nobody's step is nobody's problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When the stage is due: an ISO 8601 duration from entry (`PT4H`) or a CEL expression
    /// yielding a timestamp (`timestamp(input.promised_at) - duration("36h")`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// How long before the deadline the stage turns "at risk" (an ISO 8601 duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_risk: Option<String>,
    /// The business calendar `deadline` (when a duration) and `at_risk` count working time
    /// in; absent, they count wall-clock time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
    /// Escalation steps run in place, without leaving the stage (wait and approval stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<EscalationStep>,
    /// Repeating reminders until the stage is left (wait and approval stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<Reminder>,
    /// Branches considered when the deadline passes; the first whose `when` holds is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Branches>,
    /// Branches taken when a plugin call of this stage fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<Branches>,
    /// Actions run, in order, when the stage is entered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// What kind of stage this is, with the kind's own fields.
    #[serde(flatten)]
    pub kind: StageKind,
}

/// The six stage kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageKind {
    /// Runs its actions, then takes the first transition whose `when` holds.
    Task {
        /// Candidate transitions, in order.
        transitions: Vec<Branch>,
    },
    /// Waits for named events.
    Wait {
        /// Accepted events and where each leads.
        #[serde(default)]
        on: BTreeMap<String, Branches>,
    },
    /// Collects decisions level by level.
    Approval {
        /// Approval levels, decided in order.
        levels: Vec<ApprovalLevel>,
        /// Where to go once every level approved.
        on_approve: Branches,
        /// Where to go when any level rejects.
        on_reject: Branches,
        /// Events accepted while approvals are open (for example a withdrawal).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        on: BTreeMap<String, Branches>,
        /// Who may decide besides holding an approver role (both rules on by default).
        #[serde(default, skip_serializing_if = "SeparationOfDuties::is_default")]
        separation_of_duties: SeparationOfDuties,
    },
    /// Runs branches side by side, each a sequence of ordinary stages starting at its
    /// `start` and ending at one of its own end stages; once the `join` is satisfied the
    /// branches still running are cancelled and the first `transitions` entry whose `when`
    /// holds is taken.
    Parallel {
        /// The branches, in the author's order (started in that order). Empty with
        /// `for_each`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        branches: Vec<BranchDef>,
        /// One branch per element of a list instead of `branches` (exactly one of the two).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_each: Option<ForEach>,
        /// When the stage is done; all branches by default.
        #[serde(default)]
        join: Join,
        /// Where to go once the join is satisfied.
        transitions: Vec<Branch>,
    },
    /// Starts an instance of another workflow (the child) with an input mapped from this
    /// instance's data, waits for the child's end, and goes where `on_outcome` says for the
    /// outcome of the end stage the child reached. A child that fails or is cancelled takes
    /// the stage's `on_error`.
    Subworkflow {
        /// The child workflow: its id and, optionally, a pinned version.
        #[serde(flatten)]
        child: ChildWorkflow,
        /// The child's start input, member by member: each a CEL expression over this
        /// instance's `input`, `vars` and `event`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        input: BTreeMap<String, String>,
        /// Where to go when the child completes, by its outcome (`resolved`, `rejected`).
        on_outcome: BTreeMap<String, Branches>,
        /// A variable that receives `{instance, workflow, status, outcome, output}` when the
        /// child ends, `output` being the child's `vars`. The same object is the event
        /// (`event.data`) of `on_outcome`'s and `on_error`'s conditions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    /// Finishes the instance (or, inside a branch of a parallel stage, the branch).
    End {
        /// The outcome recorded on the instance (`resolved`, `rejected`, ...).
        outcome: String,
    },
}

impl StageKind {
    /// The kind's name as written in definitions.
    pub fn name(&self) -> &'static str {
        match self {
            StageKind::Task { .. } => "task",
            StageKind::Wait { .. } => "wait",
            StageKind::Approval { .. } => "approval",
            StageKind::Parallel { .. } => "parallel",
            StageKind::Subworkflow { .. } => "subworkflow",
            StageKind::End { .. } => "end",
        }
    }
}

/// Separation of duties in an approval stage: the four-eyes rules an auditor expects, on
/// unless a definition relaxes them explicitly. People are told apart by token name (names
/// are unique), the identity the history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparationOfDuties {
    /// One person decides at most one level of an instance (across all its approval
    /// stages): a token holding `approver:reviewer` and `approver:manager` cannot approve
    /// both levels of one request alone.
    #[serde(default = "yes")]
    pub one_level_per_person: bool,
    /// The person who started the instance decides none of its levels.
    #[serde(default = "yes")]
    pub starter_excluded: bool,
}

fn yes() -> bool {
    true
}

impl Default for SeparationOfDuties {
    fn default() -> Self {
        SeparationOfDuties {
            one_level_per_person: true,
            starter_excluded: true,
        }
    }
}

impl SeparationOfDuties {
    /// Both rules on: not written out when a definition is serialised.
    pub fn is_default(&self) -> bool {
        *self == SeparationOfDuties::default()
    }
}

/// A guarded edge to another stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    /// Target stage name.
    pub to: String,
    /// CEL condition; a branch without one always holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// On an event's branch back to its own stage: start the stage's deadline again. By
    /// default such a self-loop keeps the deadline, its timers and its SLA state, so an
    /// event cannot push an SLA back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_deadline: bool,
}

/// One branch or an ordered list of them (first match wins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Branches {
    /// A single, possibly guarded, branch.
    One(Branch),
    /// Several branches, tried in order.
    Many(Vec<Branch>),
}

impl Branches {
    /// The branches in order.
    pub fn as_slice(&self) -> &[Branch] {
        match self {
            Branches::One(b) => std::slice::from_ref(b),
            Branches::Many(v) => v,
        }
    }
}

/// One approval level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalLevel {
    /// Level name, unique within the stage (defaults to `level-N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Who may decide: roles and named users.
    pub approvers: Vec<Approver>,
    /// How many approvals pass the level.
    #[serde(default)]
    pub quorum: Quorum,
    /// CEL condition under which the level is skipped entirely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_when: Option<String>,
}

/// Someone allowed to decide a level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    /// Anyone holding the role.
    Role(String),
    /// One named user.
    User(String),
}

impl std::fmt::Display for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approver::Role(r) => write!(f, "role {r}"),
            Approver::User(u) => write!(f, "user {u}"),
        }
    }
}

/// How many approvals a level needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// One approval from any listed approver.
    #[default]
    Any,
    /// One approval from each listed approver.
    All,
    /// This many approvals from distinct deciders.
    Count(u32),
}

impl Serialize for Quorum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Quorum::Any => s.serialize_str("any"),
            Quorum::All => s.serialize_str("all"),
            Quorum::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "any" => Ok(Quorum::Any),
            Value::String(s) if s == "all" => Ok(Quorum::All),
            // JSON Schema counts 2.0 as the integer 2, so the model does too.
            Value::Number(n) => n
                .as_u64()
                // `as` saturates: a huge whole number fails the range check below.
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .map(Quorum::Count)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "quorum must be a whole number from 1 to {}, not {n}",
                        u32::MAX
                    ))
                }),
            other => Err(serde::de::Error::custom(format!(
                "quorum must be \"any\", \"all\" or a number, not {other}"
            ))),
        }
    }
}

impl Definition {
    /// Every business calendar the definition names outside expressions, as `(JSON pointer,
    /// name)`: a stage's `calendar` and the spans of its escalation steps and reminders.
    /// Names written inside CEL are not listed (they are evaluated, not declared).
    pub fn calendars_named(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, stage) in self.stages.iter() {
            let at = format!("/stages/{}", crate::source::escape_pointer_segment(name));
            if let Some(c) = &stage.calendar {
                out.push((format!("{at}/calendar"), c.clone()));
            }
            for (i, step) in stage.escalation.iter().enumerate() {
                for (member, span) in [
                    ("after", &step.after),
                    ("before_deadline", &step.before_deadline),
                ] {
                    if let Some(c) = span.as_ref().and_then(|s| s.calendar()) {
                        out.push((
                            format!("{at}/escalation/{i}/{member}/calendar"),
                            c.to_owned(),
                        ));
                    }
                }
            }
            for (i, r) in stage.reminders.iter().enumerate() {
                if let Some(c) = r.every.calendar() {
                    out.push((format!("{at}/reminders/{i}/every/calendar"), c.to_owned()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Quorum;
    use serde_json::json;

    #[test]
    fn the_calendars_a_definition_names_are_listed_with_their_pointers() {
        let d: super::Definition = serde_json::from_value(json!({
            "id": "w", "title": "W", "start": "a/b",
            "stages": {
                "a/b": {"kind": "wait", "calendar": "cn-office", "deadline": "PT8H",
                        "escalation": [{"after": {"duration": "PT1H", "calendar": "de-office"}, "actions": []},
                                       {"after": "PT2H", "actions": []}],
                        "reminders": [{"every": {"duration": "PT2H", "calendar": "us-office"}, "times": 2, "actions": []}],
                        "on": {"x": {"to": "end"}}},
                "end": {"kind": "end", "outcome": "done"}
            }
        }))
        .unwrap();
        assert_eq!(
            d.calendars_named(),
            [
                ("/stages/a~1b/calendar".to_owned(), "cn-office".to_owned()),
                (
                    "/stages/a~1b/escalation/0/after/calendar".to_owned(),
                    "de-office".to_owned()
                ),
                (
                    "/stages/a~1b/reminders/0/every/calendar".to_owned(),
                    "us-office".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_quorum_written_as_two_point_zero_counts_two_approvals_as_json_schema_reads_it() {
        let q: Quorum = serde_json::from_value(json!(2.0)).unwrap();
        assert_eq!(q, Quorum::Count(2));
    }

    #[test]
    fn a_quorum_of_two_and_a_half_or_beyond_any_count_is_refused_with_the_value() {
        for bad in [json!(2.5), json!(0), json!(5_000_000_000u64), json!(1e23)] {
            let err = serde_json::from_value::<Quorum>(bad.clone()).unwrap_err();
            assert!(
                err.to_string()
                    .contains("quorum must be a whole number from 1 to 4294967295"),
                "{bad}: {err}"
            );
        }
    }
}
