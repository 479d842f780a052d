//! What `apply` asks the outside to do, as data: the driver performs these and commits them
//! with the new state in one atomic write.

use crate::definition::Approver;
use crate::plugin::{FailureKind, PluginRef, World};
use crate::state::{ApprovalTask, SlaState, Timer, TimerPurpose};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A side effect requested by the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Run a plugin and feed the result back as [`crate::Input::PluginResult`].
    CallPlugin(PluginCall),
    /// Fire [`crate::Input::TimerFired`] at `timer.due` (at once if already past).
    ArmTimer(Timer),
    /// The timer is no longer wanted.
    CancelTimer {
        /// Its id.
        timer_id: String,
    },
    /// List this task in the approvers' inboxes.
    OpenApproval(ApprovalTask),
    /// Take this task out of the inboxes.
    CloseApproval {
        /// Its id.
        task_id: String,
    },
    /// Deliver a message through the outbox.
    Enqueue(OutboundMessage),
    /// Append to the instance history.
    History(HistoryEntry),
    /// Start a child instance for a sub-workflow stage, in the same commit as this step;
    /// feed its end back as [`crate::Input::ChildEnded`]. A child that cannot be started
    /// (its workflow or version is gone, the input does not fit) is fed back at once as a
    /// failed child.
    StartChild(ChildStart),
    /// Cancel a running child instance: its sub-workflow stage was left (the parent was
    /// cancelled, failed, timed out or its branch was cancelled) before the child ended.
    CancelChild {
        /// The child's instance id.
        child: String,
        /// Why, for the child's history.
        reason: String,
    },
}

/// The history entries among `effects`, in their order: what one step appends to the
/// instance's history. The stores number and write them; rollups and stage durations read
/// them.
pub fn history_of(effects: &[Effect]) -> Vec<&HistoryEntry> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::History(h) => Some(h),
            _ => None,
        })
        .collect()
}

/// What a sub-workflow stage asks the driver to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildStart {
    /// The child's id, derived from the parent's (see [`crate::state::ChildRef::id`]).
    pub id: String,
    /// The child's workflow.
    pub workflow: String,
    /// A pinned version; `None`: the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The start input, as mapped by the stage.
    pub input: Value,
    /// The parent and its stage, to be recorded on the child.
    pub parent: crate::state::ParentLink,
}

/// A plugin call request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginCall {
    /// Correlates the result.
    pub call_id: String,
    /// Which plugin.
    pub plugin: PluginRef,
    /// Which world it must implement.
    pub world: World,
    /// Its JSON input.
    pub input: Value,
}

/// A rendered message to deliver. `id` is stable, so receivers can drop duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// `<instance id>.m<n>`.
    pub id: String,
    /// The instance that sent it.
    pub instance_id: String,
    /// Delivery channel (`email`, `webhook`, `log`, ...).
    pub channel: String,
    /// Address on that channel.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
    /// Anything else the notifier attached.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// One line of an instance's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened.
    #[serde(with = "crate::timestamp")]
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub event: HistoryEvent,
    /// Who caused it: the token behind the request (a start, an event, a decision, a
    /// cancellation, a retry). Absent for what the engine does on its own (timers, plugin
    /// results, deliveries) and for entries written before actors were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
}

/// Who sent a request: an API token's id and its (unique) name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The token's id (stable, never reused).
    pub token_id: String,
    /// The token's name: the person or system it was issued to.
    pub name: String,
}

/// Why an instance moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A task stage's transition.
    Transition,
    /// A named event.
    Event,
    /// The approval stage approved.
    Approved,
    /// The approval stage rejected.
    Rejected,
    /// The stage's deadline passed.
    Timeout,
    /// A plugin call failed, or a parallel stage's join can no longer be satisfied, and
    /// `on_error` routed it.
    Error,
    /// A parallel stage's join was satisfied.
    Joined,
    /// A sub-workflow stage's child completed with an outcome `on_outcome` routes.
    ChildEnded,
}

/// Everything the history records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryEvent {
    /// The instance started.
    Started {
        /// Workflow id.
        workflow: String,
        /// Version.
        version: u32,
        /// Start payload.
        input: Value,
    },
    /// Entered a stage.
    Entered {
        /// The stage.
        stage: String,
    },
    /// Left a stage for another.
    Transitioned {
        /// From.
        from: String,
        /// To.
        to: String,
        /// What moved it: a transition, an event, a decision, a timeout, an error route, a
        /// join or a child's end.
        cause: Cause,
    },
    /// Variables assigned.
    VariablesSet {
        /// New values.
        vars: Map<String, Value>,
    },
    /// A tag was added.
    Tagged {
        /// The tag.
        tag: String,
    },
    /// A plugin call was requested.
    PluginCalled {
        /// Call id.
        call_id: String,
        /// Plugin.
        plugin: String,
        /// World.
        world: World,
    },
    /// A plugin call returned.
    PluginReturned {
        /// Call id.
        call_id: String,
        /// Output.
        output: Value,
        /// Measurements.
        #[serde(flatten)]
        metrics: crate::input::CallMetrics,
    },
    /// A plugin call failed.
    PluginFailed {
        /// Call id.
        call_id: String,
        /// Failure kind.
        kind: FailureKind,
        /// Details.
        message: String,
        /// Measurements.
        #[serde(flatten)]
        metrics: crate::input::CallMetrics,
    },
    /// A timer was armed.
    TimerArmed {
        /// Timer id.
        timer_id: String,
        /// Purpose.
        purpose: TimerPurpose,
        /// Due time.
        #[serde(with = "crate::timestamp")]
        due: DateTime<Utc>,
    },
    /// An escalation step fired: its actions follow in the history; the stage stays.
    Escalated {
        /// The stage.
        stage: String,
        /// The step's index in the stage's `escalation` list, from 0.
        step: u32,
        /// When it was due.
        #[serde(with = "crate::timestamp")]
        due: DateTime<Utc>,
    },
    /// A reminder fired: its actions follow in the history; the stage stays.
    Reminded {
        /// The stage.
        stage: String,
        /// The reminder's index in the stage's `reminders` list, from 0.
        reminder: u32,
        /// Which round this is, from 1.
        round: u32,
        /// How many rounds at most.
        times: u32,
        /// When it was due.
        #[serde(with = "crate::timestamp")]
        due: DateTime<Utc>,
    },
    /// A timer fired after its stage was left; nothing changed.
    TimerIgnored {
        /// Timer id.
        timer_id: String,
        /// Why nothing happened.
        reason: String,
    },
    /// The SLA state of the current stage changed.
    SlaChanged {
        /// Stage.
        stage: String,
        /// New state.
        sla: SlaState,
    },
    /// A named event was accepted.
    EventReceived {
        /// Event name.
        name: String,
        /// Payload.
        data: Value,
    },
    /// An approval task opened.
    ApprovalOpened {
        /// Task id.
        task_id: String,
        /// Level name.
        level: String,
        /// Who may decide.
        approver: Approver,
    },
    /// A level was skipped by its `skip_when`.
    LevelSkipped {
        /// Level name.
        level: String,
        /// The condition that held.
        because: String,
    },
    /// Someone decided a task.
    Decided {
        /// Task id.
        task_id: String,
        /// Level name.
        level: String,
        /// Who.
        decider: String,
        /// Approve or reject.
        decision: String,
        /// Their comment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// A message went to the outbox.
    MessageQueued {
        /// Message id.
        message_id: String,
        /// Channel.
        channel: String,
        /// Recipient.
        recipient: String,
    },
    /// A delivery attempt of an outbox message ended (written by the outbox dispatcher).
    DeliveryAttempted {
        /// Message id.
        message_id: String,
        /// Channel.
        channel: String,
        /// Which attempt, from 1.
        attempt: u32,
        /// How it ended.
        outcome: DeliveryOutcome,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// When the next attempt is due (outcome `retrying`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[serde(with = "crate::timestamp::option")]
        next_attempt_at: Option<DateTime<Utc>>,
        /// How long the attempt took.
        duration_ms: u64,
    },
    /// An operator put a dead message back in the delivery queue.
    DeliveryRetried {
        /// Message id.
        message_id: String,
        /// Who asked.
        by: String,
    },
    /// The current stage's work was given to someone, taken over, or released.
    Assigned {
        /// The stage.
        stage: String,
        /// Who owns it now; absent when released.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
        /// Who owned it before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
        /// Who assigned.
        by: String,
    },
    /// A branch of a parallel stage started (its first stage's `entered` follows).
    BranchStarted {
        /// The parallel stage.
        stage: String,
        /// The branch.
        branch: String,
    },
    /// A branch reached one of its end stages.
    BranchEnded {
        /// The parallel stage.
        stage: String,
        /// The branch.
        branch: String,
        /// The end stage's outcome.
        outcome: String,
        /// Whether it counts towards the join (the join's `when` held, or there is none).
        counted: bool,
    },
    /// A branch still running was stopped: the join was satisfied without it, the parallel
    /// stage was left (its timeout), or the instance ended. Its timers and tasks went with it.
    BranchCancelled {
        /// The parallel stage.
        stage: String,
        /// The branch.
        branch: String,
        /// The branch's stage when it was stopped. Not `at`: that is the entry's time,
        /// and the event's members sit beside it in one JSON object.
        in_stage: String,
    },
    /// A parallel stage's join was satisfied; its transitions follow.
    Joined {
        /// The parallel stage.
        stage: String,
        /// Each branch's outcome (null for a branch that did not end).
        outcomes: serde_json::Map<String, Value>,
    },
    /// A sub-workflow stage started a child instance.
    ChildStarted {
        /// The sub-workflow stage.
        stage: String,
        /// The child's instance id.
        child: String,
        /// The child's workflow.
        workflow: String,
    },
    /// The child of a sub-workflow stage ended; the stage's transition follows.
    ChildEnded {
        /// The sub-workflow stage.
        stage: String,
        /// The child's instance id.
        child: String,
        /// How it ended.
        status: crate::state::Status,
        /// Its outcome, when it completed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
    },
    /// A running child was cancelled because its sub-workflow stage was left.
    ChildCancelled {
        /// The sub-workflow stage.
        stage: String,
        /// The child's instance id.
        child: String,
    },
    /// Reached an end stage.
    Completed {
        /// Outcome.
        outcome: String,
    },
    /// Failed with a reason.
    Failed {
        /// What failed, for people: the expression, plugin call or stage and its error
        /// (e.g. `on_approve of stage 'review': ...`); also kept in the state's `failure`.
        reason: String,
    },
    /// Cancelled.
    Cancelled {
        /// By whom.
        by: String,
        /// The reason the canceller gave ([`crate::Input::Cancel`]'s), when one was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The customer's progress link was revoked: links given out before stop working; a
    /// new one is signed with `generation`.
    ProgressLinkRevoked {
        /// By whom (token name).
        by: String,
        /// The link's new generation.
        generation: u32,
    },
    /// A failed instance was set running again in the stage it failed in (an operator's
    /// retry): the stage's visit starts anew from `from_action` (see
    /// [`crate::state::RetryPoint`]).
    Retried {
        /// By whom (token name).
        by: String,
        /// The stage it failed in and runs again.
        stage: String,
        /// The failure it recovers from.
        failure: String,
        /// The first entry action run again: 0 re-runs them all; the number of actions
        /// runs none (only the stage's transitions or waiting are redone).
        from_action: usize,
    },
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver accepted the message.
    Delivered,
    /// It failed; another attempt is scheduled.
    Retrying,
    /// It failed for good (attempts used up, or a failure no retry can fix).
    Dead,
}
