//! A validated, compiled workflow: stage names resolved to indices, expressions compiled,
//! durations parsed, the input schema compiled. Built once per definition version by
//! [`Workflow::from_text`] or [`Workflow::from_value`] and shared by every instance.

use crate::definition::{Approver, Definition, Quorum};
use crate::expr::Expr;
use crate::plugin::PluginRef;
use crate::validate::{structure, ValidationError};
use chrono::TimeDelta;
use serde_json::Value;
use std::collections::HashMap;

/// A workflow ready to run.
pub struct Workflow {
    /// The definition as uploaded.
    pub definition: Definition,
    /// The version the store assigned (0 until stored).
    pub version: u32,
    pub(crate) stages: Vec<CompiledStage>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) start: usize,
    pub(crate) input_schema: Option<jsonschema::Validator>,
    /// The business key's expression (over `input`).
    pub(crate) key: Option<Expr>,
    /// The fields, in the author's order.
    pub(crate) fields: Vec<crate::fields::CompiledField>,
    /// The business calendars known when it was compiled, for the CEL calendar functions.
    pub(crate) calendars: std::sync::Arc<crate::calendar::Calendars>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("id", &self.definition.id)
            .field("version", &self.version)
            .field("stages", &self.stages.len())
            .finish()
    }
}

pub(crate) struct CompiledStage {
    pub name: String,
    pub kind: CompiledKind,
    pub deadline: Option<Deadline>,
    pub at_risk: Option<TimeDelta>,
    pub timeout: Vec<CompiledBranch>,
    pub on_error: Vec<CompiledBranch>,
    pub actions: Vec<CompiledAction>,
    /// The calendar a duration deadline and `at_risk` count working time in.
    pub calendar: Option<std::sync::Arc<crate::calendar::Calendar>>,
    /// Escalation steps, in the author's order (a step's index is its identity).
    pub escalation: Vec<CompiledStep>,
    /// Reminders, in the author's order.
    pub reminders: Vec<CompiledReminder>,
}

/// A duration of wall-clock time, or of working time in a calendar.
pub(crate) struct CompiledSpan {
    pub delta: TimeDelta,
    pub calendar: Option<std::sync::Arc<crate::calendar::Calendar>>,
}

impl CompiledSpan {
    /// `from` plus the span; `None` past what a calendar walk or chrono can reach.
    pub fn after(
        &self,
        from: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match &self.calendar {
            None => from.checked_add_signed(self.delta),
            Some(c) => c.add_working(from, self.delta),
        }
    }

    /// `from` minus the span.
    pub fn before(
        &self,
        from: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match &self.calendar {
            None => from.checked_sub_signed(self.delta),
            Some(c) => c.sub_working(from, self.delta),
        }
    }
}

/// When an escalation step fires.
pub(crate) enum StepAnchor {
    AfterEntry(CompiledSpan),
    BeforeDeadline(CompiledSpan),
}

/// One escalation step: when, and what it runs in place.
pub(crate) struct CompiledStep {
    pub anchor: StepAnchor,
    pub actions: Vec<CompiledAction>,
}

/// A repeating reminder.
pub(crate) struct CompiledReminder {
    pub every: CompiledSpan,
    pub times: u32,
    pub actions: Vec<CompiledAction>,
}

impl CompiledStage {
    /// Every action of the stage: on entry, in escalation steps and in reminders.
    pub fn all_actions(&self) -> impl Iterator<Item = &CompiledAction> {
        self.actions
            .iter()
            .chain(self.escalation.iter().flat_map(|s| &s.actions))
            .chain(self.reminders.iter().flat_map(|r| &r.actions))
    }
}

pub(crate) enum CompiledKind {
    Task {
        transitions: Vec<CompiledBranch>,
    },
    Wait {
        on: HashMap<String, Vec<CompiledBranch>>,
    },
    Approval {
        levels: Vec<CompiledLevel>,
        on_approve: Vec<CompiledBranch>,
        on_reject: Vec<CompiledBranch>,
        on: HashMap<String, Vec<CompiledBranch>>,
        duties: crate::definition::SeparationOfDuties,
    },
    Parallel {
        /// The branches; with `for_each`, the one branch every element runs.
        branches: Vec<CompiledBranchDef>,
        /// The list each element of which gets a branch, when the stage has `for_each`.
        for_each: Option<CompiledForEach>,
        /// The join rule; how many branches must count follows from it and the number of
        /// branches ([`crate::definition::Join::needed`]), known for `for_each` only once
        /// the list is evaluated.
        join: crate::definition::Join,
        /// The join's `when`, over `event.data.branch` and `event.data.outcome`.
        join_when: Option<Expr>,
        transitions: Vec<CompiledBranch>,
    },
    Subworkflow {
        child: crate::definition::ChildWorkflow,
        /// The child's input, member by member.
        input: Vec<(String, Expr)>,
        on_outcome: HashMap<String, Vec<CompiledBranch>>,
        result: Option<String>,
    },
    End {
        outcome: String,
    },
}

/// The `for_each` of a compiled parallel stage.
pub(crate) struct CompiledForEach {
    /// The list.
    pub items: Expr,
    /// The variable each branch sees its element under.
    pub as_var: String,
}

/// One branch of a compiled parallel stage.
pub(crate) struct CompiledBranchDef {
    pub name: String,
    /// Its first stage.
    pub start: usize,
}

pub(crate) enum Deadline {
    After(TimeDelta),
    At(Expr),
}

pub(crate) struct CompiledBranch {
    pub to: usize,
    pub when: Option<Expr>,
    pub restart_deadline: bool,
}

pub(crate) struct CompiledLevel {
    pub name: String,
    pub approvers: Vec<Approver>,
    pub quorum: Quorum,
    pub skip_when: Option<Expr>,
}

pub(crate) enum CompiledAction {
    Set(Vec<(String, Expr)>),
    Call {
        plugin: PluginRef,
        input: Option<Expr>,
        result: String,
    },
    Notify {
        plugin: PluginRef,
        input: Option<Expr>,
    },
    Tag(String),
    /// The person the engine gives the stage's work to (a string) or nobody (null).
    Assign(Expr),
}

impl Workflow {
    /// The workflow id.
    pub fn id(&self) -> &str {
        &self.definition.id
    }

    /// True when some stage is a sub-workflow stage: its steps may start or cancel other
    /// instances, which the driver commits with them.
    pub fn starts_children(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s.kind, CompiledKind::Subworkflow { .. }))
    }

    /// Every sub-workflow stage's child, as `(JSON pointer of the stage, child)`, for the
    /// checks that need the other workflows (they exist, their input schema is satisfied,
    /// calls do not nest too deep).
    pub fn children_called(&self) -> Vec<(String, crate::definition::ChildWorkflow)> {
        self.definition
            .stages
            .iter()
            .filter_map(|(name, stage)| match &stage.kind {
                crate::definition::StageKind::Subworkflow { child, .. } => Some((
                    format!("/stages/{}", crate::source::escape_pointer_segment(name)),
                    child.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    /// True when some stage calls a plugin (`call` or `notify`): drivers then run steps
    /// where blocking is allowed.
    pub fn calls_plugins(&self) -> bool {
        self.stages.iter().any(|s| {
            s.all_actions().any(|a| {
                matches!(
                    a,
                    CompiledAction::Call { .. } | CompiledAction::Notify { .. }
                )
            })
        })
    }

    /// The name of the start stage.
    pub fn start_stage(&self) -> &str {
        &self.stages[self.start].name
    }

    /// Stage names in document order.
    pub fn stage_names(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|s| s.name.as_str())
    }

    pub(crate) fn stage(&self, name: &str) -> Option<(usize, &CompiledStage)> {
        self.by_name.get(name).map(|&i| (i, &self.stages[i]))
    }

    /// The business key of an instance started with `input`: `None` when the definition
    /// declares no `key`.
    ///
    /// # Errors
    /// [`crate::Rejection::KeyUnfit`] when the expression fails on `input` or yields no
    /// usable key (see [`crate::fields::key_from_json`]).
    pub fn key_of(
        &self,
        input: &Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, crate::Rejection> {
        let Some(expr) = &self.key else {
            return Ok(None);
        };
        let vars = serde_json::Map::new();
        let unfit = |message: String| crate::Rejection::KeyUnfit {
            expression: expr.source().to_owned(),
            message,
        };
        let value = expr
            .eval(&crate::fields::scope(input, &vars, now))
            .map_err(|e| unfit(e.message))?;
        crate::fields::key_from_json(&value)
            .map(Some)
            .map_err(unfit)
    }

    /// True when the definition declares a business key.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Checks a start payload against the definition's `input_schema`.
    ///
    /// # Errors
    /// Each violation, pointed into the payload.
    pub fn check_input(&self, input: &Value) -> Result<(), Vec<ValidationError>> {
        match &self.input_schema {
            None => Ok(()),
            Some(v) => {
                let errors = structure::check_against(v, input);
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors)
                }
            }
        }
    }
}
