//! What an instance is at rest: plain data, serialized as JSON by the stores.

use crate::definition::{Approver, Quorum};
use crate::fields::FieldValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Lifecycle of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Moving or waiting.
    Running,
    /// Reached an end stage (see `outcome`).
    Completed,
    /// Stopped by an error it could not route (see `failure`).
    Failed,
    /// Cancelled by an operator.
    Cancelled,
}

impl Status {
    /// The name used in the API and indexes.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Where the current stage stands against its deadline: the board's green, yellow, red.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Before the at-risk threshold, or no deadline.
    #[default]
    OnTime,
    /// Past the at-risk threshold, before the deadline.
    AtRisk,
    /// Past the deadline.
    Breached,
}

impl SlaState {
    /// The name used in the API and indexes.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::OnTime => "on_time",
            SlaState::AtRisk => "at_risk",
            SlaState::Breached => "breached",
        }
    }
}

/// The SLA of the current stage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sla {
    /// On time, at risk or breached.
    pub state: SlaState,
    /// When the current stage is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub deadline: Option<DateTime<Utc>>,
    /// When the current stage turns at risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub at_risk_at: Option<DateTime<Utc>>,
}

/// Why a timer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerPurpose {
    /// Turns the stage at risk.
    AtRisk,
    /// The stage deadline: breach, then the timeout branches.
    Deadline,
    /// An escalation step: runs its actions in place (`Timer::step` says which).
    Escalation,
    /// A reminder: runs its actions in place and arms the next round while rounds are left
    /// (`Timer::step` says which reminder, `Timer::round` which round, from 1).
    Reminder,
}

/// An armed timer. Its id is unique across all instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// `<instance id>.t<n>`.
    pub id: String,
    /// When it fires.
    #[serde(with = "crate::timestamp")]
    pub due: DateTime<Utc>,
    /// What it does.
    pub purpose: TimerPurpose,
    /// The stage it belongs to; leaving the stage cancels it.
    pub stage: String,
    /// The escalation step or reminder (index in the stage's list), for those purposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The reminder's round, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

/// An open approval task: one approver entry of one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalTask {
    /// `<instance id>.a<n>`, unique across all instances.
    pub id: String,
    /// The instance it belongs to.
    pub instance_id: String,
    /// The approval stage.
    pub stage: String,
    /// The level's name.
    pub level: String,
    /// Who may decide it.
    pub approver: Approver,
    /// When it opened.
    #[serde(with = "crate::timestamp")]
    pub opened_at: DateTime<Utc>,
}

/// One decision recorded at the current level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelApproval {
    /// The task decided.
    pub task_id: String,
    /// Who approved.
    pub decider: String,
}

/// Progress through an approval stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalProgress {
    /// Index of the current level.
    pub level: usize,
    /// Its name.
    pub level_name: String,
    /// Its quorum.
    pub quorum: Quorum,
    /// Tasks still open at this level.
    pub open: Vec<ApprovalTask>,
    /// Approvals so far at this level.
    pub approvals: Vec<LevelApproval>,
}

/// A plugin call the instance is waiting for, and where to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCall {
    /// `<instance id>.c<n>`.
    pub call_id: String,
    /// Index of the action in the current stage's action list.
    pub action: usize,
    /// The event being handled when the call was made, restored for the actions after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// Which of the stage's action lists `action` indexes: its entry actions (the default),
    /// an escalation step's or a reminder's.
    #[serde(default, skip_serializing_if = "ActionList::is_entry")]
    pub list: ActionList,
}

/// One of a stage's action lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionList {
    /// The actions run on entering the stage.
    #[default]
    Entry,
    /// The actions of escalation step `n` (from 0).
    Escalation(u32),
    /// The actions of reminder `n` (from 0).
    Reminder(u32),
}

impl ActionList {
    /// True for the entry actions (not written out when serialised).
    pub fn is_entry(&self) -> bool {
        *self == ActionList::Entry
    }
}

/// An instance of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// Unique id.
    pub id: String,
    /// Workflow id.
    pub workflow: String,
    /// Definition version; the instance stays on it to the end.
    pub version: u32,
    /// Lifecycle.
    pub status: Status,
    /// Current stage name.
    pub stage: String,
    /// The start payload.
    pub input: Value,
    /// Variables set by actions and plugin results.
    pub vars: Map<String, Value>,
    /// SLA of the current stage.
    pub sla: Sla,
    /// Armed timers.
    pub timers: Vec<Timer>,
    /// Open approval progress, in an approval stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalProgress>,
    /// Tags (searchable).
    pub tags: BTreeSet<String>,
    /// A plugin call in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingCall>,
    /// The end stage's outcome, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why the instance failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When it started.
    #[serde(with = "crate::timestamp")]
    pub started_at: DateTime<Utc>,
    /// When it entered the current stage.
    #[serde(with = "crate::timestamp")]
    pub stage_entered_at: DateTime<Utc>,
    /// When anything last changed.
    #[serde(with = "crate::timestamp")]
    pub updated_at: DateTime<Utc>,
    /// Counter for ids of timers, tasks, calls and messages.
    pub seq: u64,
    /// How many history entries the instance has: the next entry's sequence number.
    #[serde(default)]
    pub history_len: u64,
    /// The business key (the definition's `key`), fixed at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The definition's fields as last computed; an empty field is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
    /// When a person or an outside system last acted on the instance (its start, an
    /// accepted event or decision, a cancellation). What the engine does on its own (SLA
    /// changes, timers, plugin calls, deliveries) does not count: this is the board's
    /// "no update" clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub acted_at: Option<DateTime<Utc>>,
    /// When an event or decision was last accepted: work done. Work counts for the stage it
    /// was done in and for the stage it led into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub worked_at: Option<DateTime<Utc>>,
    /// The named person who owns the current stage's work; cleared when the stage is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assignment>,
    /// Stage visits that went at risk or breached, oldest first, kept after the stage is
    /// left (at most [`MAX_SLA_RECORDS`]; the oldest go first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla_record: Vec<StageSla>,
    /// Who started the instance (token name), when a person or system did: the starter
    /// may not decide its approvals ([`crate::definition::SeparationOfDuties`]). Set by the
    /// driver, which knows the caller; the core only reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// Everyone who has decided a level of this instance (approved or rejected, in any
    /// approval stage), with the level they decided as `stage/level`: one person decides at
    /// most one level, though the same level again when the instance comes back to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deciders: BTreeMap<String, String>,
    /// True once the current stage visit's timers (deadline, escalation, reminders) were
    /// armed: a self-loop that keeps the deadline keeps them, and must not arm them again
    /// once they have all fired. Cleared when the stage is left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timers_armed: bool,
    /// Where a retry picks up, while the instance is failed: set by the failure, cleared
    /// by the retry. Absent on a failed instance (one failed before retries existed, or by
    /// the driver giving up on a timer): a retry then enters the stage from its first action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_from: Option<RetryPoint>,
    /// The generation of the customer's progress link: the link is signed over the
    /// instance id and this number, so revoking it (one more) makes every earlier link
    /// stop working. Set by the driver, which holds the signing key; the core only keeps it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub progress_link: u32,
    /// In a parallel stage: its branches, each with its own current stage, SLA, timers and
    /// tasks (see [`BranchState`]). Empty elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<BranchState>,
    /// In a sub-workflow stage: the child instance it waits for. Cleared when its end is
    /// taken (so a second delivery of that end changes nothing) or the stage is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<ChildRef>,
    /// Every child instance its sub-workflow stages started, oldest first, for the record
    /// (the API lists them); kept after they end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildRef>,
    /// The instance whose sub-workflow stage started this one, when one did. Set by the
    /// driver when it starts the child; the core only keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentLink>,
}

/// A child instance started by a sub-workflow stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRef {
    /// The child's instance id: `<parent id>.w<n>`, derived from the parent's counter when
    /// the stage is entered, so a step computed again from the same state names the same
    /// child (and the store refuses a second instance with that id).
    pub id: String,
    /// The child's workflow.
    pub workflow: String,
    /// The parent's sub-workflow stage that started it.
    pub stage: String,
}

/// Where a child instance came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    /// The parent instance's id.
    pub instance: String,
    /// The parent's sub-workflow stage waiting for this child.
    pub stage: String,
    /// How many sub-workflow calls deep this instance is (1: its parent was started by
    /// a person or a system).
    #[serde(default = "one")]
    pub depth: u32,
}

fn one() -> u32 {
    1
}

/// The suffix of a child-end record's id (see [`ChildRef::end_record`]).
const ENDED: &str = ".ended";
/// The suffix of a child-cancel record's id (see [`ChildRef::cancel_record`]).
const CANCEL: &str = ".cancel";

/// A record the driver keeps in its timer index, due at once, so that what one instance
/// owes another happens exactly once across crashes, each under one instance's lock: the
/// commit that makes it writes it, the commit that acts on it deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay<'a> {
    /// Child `.0` ended: deliver its end to its parent (the record's instance) as
    /// [`crate::Input::ChildEnded`].
    ChildEnded(&'a str),
    /// The parent left the stage waiting for child `.0` (the record's instance): cancel it.
    CancelChild(&'a str),
}

impl ChildRef {
    /// The id of the record that delivers child `child`'s end to its parent: written by the
    /// child's last commit, under the parent's id; never the id of a timer (`<id>.t<n>`).
    pub fn end_record(child: &str) -> String {
        format!("{child}{ENDED}")
    }

    /// The id of the record that cancels child `child`: written by the commit of the parent
    /// that left its stage, under the child's id.
    pub fn cancel_record(child: &str) -> String {
        format!("{child}{CANCEL}")
    }

    /// What a timer-index id is, when it is a record of [`ChildRef::end_record`] or
    /// [`ChildRef::cancel_record`] rather than a timer.
    pub fn relay(timer_id: &str) -> Option<Relay<'_>> {
        if let Some(child) = timer_id.strip_suffix(ENDED) {
            return Some(Relay::ChildEnded(child));
        }
        timer_id.strip_suffix(CANCEL).map(Relay::CancelChild)
    }
}

impl InstanceState {
    /// The parent to tell, when this commit ends a child: `before` running (or absent), this
    /// state ended, and a parent recorded.
    pub fn parent_to_tell(&self, before: Option<&InstanceState>) -> Option<&ParentLink> {
        let was_running = before.is_none_or(|b| b.status == Status::Running);
        match (&self.parent, self.status) {
            (Some(p), s) if s != Status::Running && was_running => Some(p),
            _ => None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a failed instance resumes when an operator retries it: the failed step, not the
/// whole stage, so actions that already ran (a customer message queued, a variable set)
/// do not run twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPoint {
    /// The first entry action of the stage to run again: the one that failed (an
    /// expression error, a plugin failure no `on_error` routed). Equal to the number of the
    /// stage's actions when they all ran and settling failed (no transition held, the
    /// deadline could not be computed): only settling is redone. 0 for a failure outside
    /// the entry actions (an escalation step, a timeout or approval branch): the stage is
    /// entered again from the start.
    pub action: usize,
    /// The event being handled when it failed (`{type, data}`), visible again to the
    /// expressions of the retried step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
}

/// Who owns the current stage's work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The person (token name).
    pub user: String,
    /// Who assigned them (themselves when they claimed it).
    pub by: String,
    /// When.
    #[serde(with = "crate::timestamp")]
    pub at: DateTime<Utc>,
    /// The stage the work belongs to.
    pub stage: String,
}

/// Most stage visits [`InstanceState::sla_record`] keeps.
pub const MAX_SLA_RECORDS: usize = 64;

/// How one visit of a stage fared against its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSla {
    /// The stage.
    pub stage: String,
    /// When the visit began.
    #[serde(with = "crate::timestamp")]
    pub entered_at: DateTime<Utc>,
    /// The stage's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub deadline: Option<DateTime<Utc>>,
    /// When it went at risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub at_risk_at: Option<DateTime<Utc>>,
    /// When it breached (the deadline timer fired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub breached_at: Option<DateTime<Utc>>,
    /// When the stage was left; absent while the instance is still there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::timestamp::option")]
    pub left_at: Option<DateTime<Utc>>,
    /// By how much the stage overran its deadline, in seconds, once left after breaching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_seconds: Option<i64>,
}

impl StageSla {
    /// True when the visit breached.
    pub fn breached(&self) -> bool {
        self.breached_at.is_some()
    }
}

impl InstanceState {
    pub(crate) fn next_id(&mut self, prefix: char) -> String {
        self.seq += 1;
        format!("{}.{prefix}{}", self.id, self.seq)
    }

    /// Open approval tasks (empty outside approval stages).
    pub fn open_tasks(&self) -> &[ApprovalTask] {
        self.approval.as_ref().map_or(&[], |a| a.open.as_slice())
    }
}

/// Where a branch of a parallel stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchStatus {
    /// Not entered yet: branches start one after another, and one that waits for a plugin
    /// call holds back those after it until the result is in.
    Waiting,
    /// In one of its stages.
    Running,
    /// Reached one of its end stages (`outcome` says which).
    Ended,
    /// Still running when the join was satisfied, the parallel stage was left (its
    /// timeout), or the instance ended: stopped, with its timers and tasks.
    Cancelled,
}

impl BranchStatus {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BranchStatus::Waiting => "waiting",
            BranchStatus::Running => "running",
            BranchStatus::Ended => "ended",
            BranchStatus::Cancelled => "cancelled",
        }
    }
}

/// One branch of the parallel stage an instance (or an enclosing branch) is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchState {
    /// The branch's name in the definition (`production`); a `for_each` branch's name with
    /// its element's index (`shipment[2]`).
    pub name: String,
    /// Waiting, running, ended or cancelled.
    pub status: BranchStatus,
    /// The outcome of the end stage it reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// True when it ended and counts towards the join (its `when` held).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted: bool,
    /// The element of the `for_each` list this branch runs for (`vars.{as}` inside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<serde_json::Value>,
    /// Its current stage and that stage's SLA, timers and work.
    pub frame: Frame,
}

/// The part of an instance that belongs to one current stage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Frame {
    /// The stage (empty until the branch starts).
    pub stage: String,
    /// Its SLA.
    #[serde(default)]
    pub sla: Sla,
    /// Its armed timers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<Timer>,
    /// Its approval progress, in an approval stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalProgress>,
    /// The plugin call it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingCall>,
    /// Who owns its work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assignment>,
    /// When the stage was entered.
    #[serde(with = "crate::timestamp")]
    pub stage_entered_at: DateTime<Utc>,
    /// True once the stage visit's timers were armed (see [`InstanceState::timers_armed`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timers_armed: bool,
    /// The branches of the stage, when it is a parallel stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<BranchState>,
    /// The child instance its stage waits for, when it is a sub-workflow stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<ChildRef>,
}
