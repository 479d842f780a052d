//! What can happen to an instance, as data handed to [`crate::apply`].

use crate::plugin::PluginFailure;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who decides an approval task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decider {
    /// User id, recorded in the history.
    pub id: String,
    /// Approver roles the user holds (`manager`, not `approver:manager`).
    pub roles: Vec<String>,
}

/// Measurements of a plugin call, taken by the driver and kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallMetrics {
    /// Hex SHA-256 of the JSON input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<String>,
    /// Wall time of the call in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// Fuel the guest consumed, where metered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Lines the guest logged through the host `log` import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// A command or occurrence applied to a running instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// A named event from outside (`replied`, `payment_received`, ...).
    Event {
        /// Event name, matched against the stage's `on`.
        name: String,
        /// Event payload, visible to expressions as `event.data`.
        #[serde(default)]
        data: Value,
        /// The current stage it is for. Needed only in a parallel stage where several
        /// branches' stages accept an event of this name; otherwise the one stage that
        /// accepts it takes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
    /// An approval decision.
    Decision {
        /// The task decided.
        task_id: String,
        /// Who decided.
        decider: Decider,
        /// Approve (true) or reject (false).
        approve: bool,
        /// Free text recorded in the history.
        #[serde(default)]
        comment: Option<String>,
    },
    /// A timer came due.
    TimerFired {
        /// The timer's id.
        timer_id: String,
    },
    /// The result of a requested plugin call.
    PluginResult {
        /// The call's id, from the request.
        call_id: String,
        /// The plugin's JSON output, or why there is none.
        outcome: Result<Value, PluginFailure>,
        /// Measurements for the history.
        #[serde(default)]
        metrics: CallMetrics,
    },
    /// Give the current stage's work to a named person, or take it back (`assignee: None`).
    /// Who may do so is the driver's concern (roles live outside the core).
    Assign {
        /// The person (token name) who owns the stage's work from now on; `None` releases it.
        assignee: Option<String>,
        /// Who assigned (a supervisor, the person claiming, the engine).
        by: String,
        /// The current stage whose work this is, addressed as events address it (a stage
        /// name, or `{branch}/{stage}` in a `for_each`): a branch's stage has its own
        /// assignee. Without it, the instance's one current stage; refused
        /// ([`crate::Rejection::StageRequired`]) while branches run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
    /// Run a failed instance again from where it failed, on the same version (see
    /// [`crate::state::RetryPoint`]). Refused unless the instance is failed.
    Retry {
        /// Who retried (token name), recorded in the history.
        by: String,
    },
    /// A child instance started by a sub-workflow stage ended. Taken once: the stage
    /// forgets the child when it takes its end, so the same end delivered again is refused
    /// with [`crate::Rejection::UnexpectedChildEnd`] and changes nothing.
    ChildEnded {
        /// The child's instance id.
        child: String,
        /// How it ended: completed, failed or cancelled.
        status: crate::state::Status,
        /// The outcome of the end stage it reached, when completed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
        /// Why it failed or was cancelled, in words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The child's variables at its end: the parent's expressions see them as
        /// `event.data.output` (and in the stage's `result` variable).
        #[serde(default)]
        output: Value,
    },
    /// Stop the instance.
    Cancel {
        /// Who cancelled.
        by: String,
        /// The reason the canceller gave, recorded in the history's `cancelled` entry.
        #[serde(default)]
        reason: Option<String>,
    },
}

impl Input {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Event { .. } => "event",
            Input::Decision { .. } => "decision",
            Input::TimerFired { .. } => "timer",
            Input::PluginResult { .. } => "plugin_result",
            Input::Cancel { .. } => "cancel",
            Input::Retry { .. } => "retry",
            Input::Assign { .. } => "assign",
            Input::ChildEnded { .. } => "child_ended",
        }
    }
}
