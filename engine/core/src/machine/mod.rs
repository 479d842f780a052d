//! The pure state machine: `apply(workflow, state, input, now) -> (state, effects)`.
//!
//! Nothing here performs IO or reads a clock. Each call runs the instance forward until it
//! rests (waits for an event, a decision or a timer), ends, fails, or needs a plugin result
//! (an [`Effect::CallPlugin`]); the driver then feeds that result back in.

mod approval;
mod enter;
mod fields;
mod inputs;
mod ladder;
mod parallel;
mod retry;
mod route;
// Crate-visible so the crate root re-exports their public items from where they live: a
// re-export here would make this module name the children that use it (a module cycle).
pub(crate) mod subworkflow;
pub(crate) mod timers;

use crate::effect::{Effect, HistoryEntry, HistoryEvent};
use crate::expr::{InstanceView, Scope};
use crate::input::Input;
use crate::state::{InstanceState, Sla, Status};
use crate::validate::ValidationError;
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How many stages one step may enter before it is taken to be a loop of task stages.
pub const MAX_ENTRIES_PER_STEP: u32 = 256;

/// The outcome of [`apply`] or [`start`]: the new state and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The instance after the input.
    pub state: InstanceState,
    /// Side effects to perform and commit with the state, in order.
    pub effects: Vec<Effect>,
}

/// Why an input was refused. A refused input changes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The start payload does not satisfy the workflow's `input_schema`.
    #[error("the input does not match the workflow's input_schema")]
    InvalidInput(Vec<ValidationError>),
    /// The event's data holds a value the engine cannot keep as sent (a number beyond
    /// ±2^53 - 1), each at its pointer into the data.
    #[error("the event data holds values that cannot be kept exactly")]
    InvalidEventData(Vec<ValidationError>),
    /// The instance is not running.
    #[error("instance is {status}, not running", status = .0.as_str())]
    NotRunning(Status),
    /// Only a failed instance can be retried.
    #[error("instance is {status}; only a failed instance can be retried", status = .0.as_str())]
    NotFailed(Status),
    /// The current stage does not accept this event.
    #[error("stage '{stage}' does not accept event '{event}'{}", accepted_list(.accepted))]
    EventNotAccepted {
        /// The event.
        event: String,
        /// The current stage.
        stage: String,
        /// Events it does accept.
        accepted: Vec<String>,
    },
    /// The event is accepted here, but no branch's `when` held for its data.
    #[error(
        "stage '{stage}' accepts event '{event}', but no branch's condition holds for its data"
    )]
    NoBranchMatched {
        /// The event.
        event: String,
        /// The current stage.
        stage: String,
    },
    /// A branch condition of the event could not be evaluated on the data sent (a missing
    /// field, a wrong type): the data does not fit what the stage expects.
    #[error("stage '{stage}' cannot evaluate event '{event}' on the data sent: {message}")]
    EventDataUnfit {
        /// The event.
        event: String,
        /// The current stage.
        stage: String,
        /// What failed, in CEL's words.
        message: String,
    },
    /// No open task has this id (never existed, or already closed).
    #[error("no open approval task '{0}' on this instance")]
    UnknownTask(String),
    /// The decider is not an approver of the task.
    #[error("{decider} may not decide task '{task_id}': it is for {approver}")]
    NotAnApprover {
        /// The task.
        task_id: String,
        /// Who tried.
        decider: String,
        /// Who may.
        approver: String,
    },
    /// The decider holds the approver role, but the stage's separation of duties forbids
    /// this person to decide: they decided another level, or started the instance.
    #[error("{decider} may not decide task {task_id}: {rule}")]
    SeparationOfDuties {
        /// The task.
        task_id: String,
        /// Who tried.
        decider: String,
        /// The rule, in words.
        rule: String,
    },
    /// The decider already decided at this level.
    #[error("{decider} has already approved at level '{level}'")]
    AlreadyDecided {
        /// Who.
        decider: String,
        /// The level.
        level: String,
    },
    /// The instance is waiting for a plugin result and takes nothing else meanwhile.
    #[error("instance is waiting for plugin call '{0}'")]
    AwaitingPlugin(String),
    /// A plugin result nobody asked for.
    #[error("no plugin call '{0}' is pending")]
    UnexpectedPluginResult(String),
    /// Several current stages (branches of a parallel stage) accept this event: the sender
    /// must name the stage it is for.
    #[error("event '{event}' is accepted by several current stages ({}); name the stage it is for", .stages.join(", "))]
    AmbiguousEvent {
        /// The event.
        event: String,
        /// The current stages that accept it.
        stages: Vec<String>,
    },
    /// The event names a stage the instance is not in.
    #[error("stage '{stage}' is not a current stage of this instance; it is in {}", .current.join(", "))]
    StageNotCurrent {
        /// The stage named.
        stage: String,
        /// The current stages.
        current: Vec<String>,
    },
    /// Work was given out or released without naming the stage while several stages are
    /// current (branches of a parallel stage run), or naming a stage that a `for_each`
    /// runs in several branches: the caller must name one.
    #[error("several stages of this instance are current ({}); name the stage whose work this is", .stages.join(", "))]
    StageRequired {
        /// The current stages it could be, as they are addressed.
        stages: Vec<String>,
    },
    /// A child's end for which no sub-workflow stage waits: it was taken already, the
    /// stage was left, or the instance is no longer running. Nothing changes.
    #[error("no sub-workflow stage of this instance waits for child '{0}'")]
    UnexpectedChildEnd(String),
    /// The business key could not be computed from the start payload.
    #[error("the business key `{expression}` gives no usable key: {message}")]
    KeyUnfit {
        /// The definition's `key` expression.
        expression: String,
        /// Why, in words.
        message: String,
    },
    /// The command would give a field a value it cannot hold (wrong type, too large).
    #[error("field '{field}' cannot hold the value this gives it: {message}")]
    FieldUnfit {
        /// The field.
        field: String,
        /// Why, in words.
        message: String,
    },
}

fn accepted_list(accepted: &[String]) -> String {
    if accepted.is_empty() {
        "; it accepts no events".to_owned()
    } else {
        format!("; it accepts: {}", accepted.join(", "))
    }
}

impl Rejection {
    /// The refusal for work addressed to `stage` that names no one current stage (see
    /// [`crate::InstanceState::work_path`]).
    pub fn unaddressed(stage: Option<&str>, why: crate::branches::Unaddressed) -> Rejection {
        match why {
            crate::branches::Unaddressed::NotCurrent(current) => Rejection::StageNotCurrent {
                stage: stage.unwrap_or_default().to_owned(),
                current,
            },
            crate::branches::Unaddressed::Ambiguous(stages) => Rejection::StageRequired { stages },
        }
    }

    /// A stable machine-readable code, for API problem types and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidInput(_) => "invalid-input",
            Rejection::InvalidEventData(_) => "invalid-event-data",
            Rejection::NotRunning(_) => "not-running",
            Rejection::NotFailed(_) => "not-failed",
            Rejection::EventNotAccepted { .. } => "event-not-accepted",
            Rejection::NoBranchMatched { .. } => "no-branch-matched",
            Rejection::EventDataUnfit { .. } => "event-data-unfit",
            Rejection::UnknownTask(_) => "unknown-task",
            Rejection::NotAnApprover { .. } => "not-an-approver",
            Rejection::SeparationOfDuties { .. } => "separation-of-duties",
            Rejection::AlreadyDecided { .. } => "already-decided",
            Rejection::AwaitingPlugin(_) => "awaiting-plugin",
            Rejection::UnexpectedPluginResult(_) => "unexpected-plugin-result",
            Rejection::AmbiguousEvent { .. } => "ambiguous-event",
            Rejection::StageNotCurrent { .. } => "stage-not-current",
            Rejection::StageRequired { .. } => "stage-required",
            Rejection::UnexpectedChildEnd(_) => "unexpected-child-end",
            Rejection::KeyUnfit { .. } => "key-unfit",
            Rejection::FieldUnfit { .. } => "field-unfit",
        }
    }
}

/// Starts a new instance `id` of `workflow` with `input`, at `now`.
///
/// # Errors
/// [`Rejection::InvalidInput`] when `input` does not satisfy the `input_schema`, or holds a
/// number a double cannot keep exactly (see [`crate::expr::unrepresentable_numbers`]).
pub fn start(
    workflow: &Workflow,
    id: String,
    input: Value,
    now: DateTime<Utc>,
) -> Result<Step, Rejection> {
    workflow
        .check_input(&input)
        .map_err(Rejection::InvalidInput)?;
    let unfit = crate::expr::unrepresentable_numbers(&input, "");
    if !unfit.is_empty() {
        return Err(Rejection::InvalidInput(unfit));
    }
    let key = workflow.key_of(&input, now)?;
    let state = InstanceState {
        id,
        workflow: workflow.definition.id.clone(),
        version: workflow.version,
        status: Status::Running,
        stage: workflow.start_stage().to_owned(),
        input,
        vars: serde_json::Map::new(),
        sla: Sla::default(),
        timers: Vec::new(),
        approval: None,
        tags: Default::default(),
        pending: None,
        outcome: None,
        failure: None,
        started_at: now,
        stage_entered_at: now,
        updated_at: now,
        seq: 0,
        history_len: 0,
        key,
        fields: Default::default(),
        acted_at: Some(now),
        worked_at: None,
        assignee: None,
        sla_record: Vec::new(),
        started_by: None,
        deciders: std::collections::BTreeMap::new(),
        timers_armed: false,
        retry_from: None,
        progress_link: 0,
        branches: Vec::new(),
        child: None,
        children: Vec::new(),
        parent: None,
    };
    let mut run = Run::new(workflow, state, now);
    run.history(HistoryEvent::Started {
        workflow: workflow.definition.id.clone(),
        version: workflow.version,
        input: run.state.input.clone(),
    });
    run.enter(workflow.start);
    // A start whose own payload makes a field unusable is refused: nothing exists yet.
    run.finish_refusing_unfit_fields()
}

/// Applies `input` to `state` at `now`.
///
/// # Errors
/// A [`Rejection`] when the input does not fit the instance as it is; nothing changes then.
pub fn apply(
    workflow: &Workflow,
    state: InstanceState,
    input: Input,
    now: DateTime<Utc>,
) -> Result<Step, Rejection> {
    let mut run = Run::new(workflow, state, now);
    // What a person or a system sent may be refused for the fields it would make; what
    // the engine does (timers, plugin results) cannot be, so an unusable field is left empty.
    let sent = matches!(
        input,
        Input::Event { .. }
            | Input::Decision { .. }
            | Input::Cancel { .. }
            | Input::Assign { .. }
            | Input::Retry { .. }
    );
    run.route(input)?;
    if sent {
        run.finish_refusing_unfit_fields()
    } else {
        Ok(run.finish())
    }
}

/// The id of a plugin call some current stage waits for.
fn pending_call(state: &InstanceState) -> String {
    let mut id = String::new();
    state.each_frame(|_, f| {
        if let (true, Some(p)) = (id.is_empty(), f.pending) {
            id.clone_from(&p.call_id);
        }
    });
    id
}

/// One step in progress: the state being changed and the effects collected so far.
pub(crate) struct Run<'w> {
    wf: &'w Workflow,
    state: InstanceState,
    now: DateTime<Utc>,
    effects: Vec<Effect>,
    entries: u32,
    /// The event being handled (`{type, data}`): visible to every expression of the step,
    /// including the entry actions of the stages it leads into.
    event: Option<Value>,
    /// True while an event's self-loop re-enters its stage keeping the deadline.
    keep_deadline: bool,
    /// How many branches deep the current frame is (0: the instance's top level).
    depth: u32,
    /// Set when the branch being run reached one of its end stages: its outcome.
    branch_ended: Option<String>,
}

impl<'w> Run<'w> {
    fn new(wf: &'w Workflow, state: InstanceState, now: DateTime<Utc>) -> Self {
        Run {
            wf,
            state,
            now,
            effects: Vec::with_capacity(8),
            entries: 0,
            event: None,
            keep_deadline: false,
            depth: 0,
            branch_ended: None,
        }
    }

    fn finish(self) -> Step {
        self.finish_checked().0
    }

    /// The step, with the first field that could not hold its computed value.
    fn finish_checked(mut self) -> (Step, Option<Rejection>) {
        self.pump();
        self.state.updated_at = self.now;
        let problem = self.refresh_fields();
        let step = Step {
            state: self.state,
            effects: self.effects,
        };
        (step, problem)
    }

    fn history(&mut self, event: HistoryEvent) {
        self.state.history_len += 1;
        self.effects.push(Effect::History(HistoryEntry {
            at: self.now,
            event,
            actor: None,
        }));
    }

    /// A person or a system did work: an event or a decision was accepted.
    fn worked(&mut self) {
        self.state.worked_at = Some(self.now);
        self.state.acted_at = Some(self.now);
    }

    fn require_running(&self) -> Result<(), Rejection> {
        if self.state.status != Status::Running {
            return Err(Rejection::NotRunning(self.state.status));
        }
        match &self.state.pending {
            Some(p) => Err(Rejection::AwaitingPlugin(p.call_id.clone())),
            None => Ok(()),
        }
    }

    /// The expression scope over the current state and event.
    fn scope(&self) -> Scope<'_> {
        let s = &self.state;
        Scope {
            input: &s.input,
            vars: &s.vars,
            event: self.event.as_ref(),
            now: self.now,
            instance: InstanceView {
                id: &s.id,
                workflow: &s.workflow,
                version: s.version,
                stage: &s.stage,
                started_at: s.started_at,
                tags: &s.tags,
            },
            calendars: Some(&self.wf.calendars),
        }
    }
}
