//! The on-entry actions of stages, escalation steps and reminders: in a module of its own
//! because both the definition and its escalation ladders name it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An on-entry action. Exactly one of the verbs is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Action {
    /// Assign variables from CEL expressions.
    Set {
        /// Variable name to expression.
        set: BTreeMap<String, String>,
    },
    /// Call a scorer plugin and keep its result in a variable.
    Call {
        /// Plugin reference: `name` (newest) or `name@sha256:<hex>` (pinned).
        call: String,
        /// CEL expression building the plugin's JSON input; default `{input, vars}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        /// Variable that receives the result.
        result: String,
    },
    /// Ask a notifier plugin to render messages; the engine delivers them.
    Notify {
        /// Plugin reference.
        notify: String,
        /// CEL expression building the plugin's JSON input; default `{input, vars}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    /// Tag the instance (searchable, e.g. `special-approval`).
    Tag {
        /// The tag.
        tag: String,
    },
    /// Give the stage's work to a named person chosen by the engine (e.g. the supervisor an
    /// escalation stage names): a CEL expression giving the person's token name, or `null`
    /// to leave the work unassigned. Recorded in the history as assigned by `engine` and
    /// notified on the `assignment` outbox channel, like an assignment by a supervisor.
    Assign {
        /// CEL expression over `input`, `vars` and `event`: a string (the person) or null.
        assign: String,
    },
}
