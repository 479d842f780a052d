//! The pure core of Waystation: workflow definitions, their validation, CEL expressions and
//! the state machine. No IO and no async: time comes in as a parameter and plugin calls go
//! out as [`Effect`]s, so every workflow rule is testable with a fixed clock and canned
//! plugin results in microseconds.
//!
//! The shape, in order of use:
//! 1. [`Workflow::from_text`] parses, validates and compiles a definition;
//! 2. [`start`] and [`apply`] move an instance, returning a [`Step`] (state and effects);
//! 3. [`drive`] loops `apply` through a [`PluginInvoker`] until the instance rests;
//! 4. [`sim::Simulation`] is an in-memory engine over all of it, for tests and benchmarks.

pub mod abandon;
pub mod branches;
pub mod calendar;
pub mod clock;
mod compile;
pub mod definition;
pub mod drive;
pub mod effect;
pub mod expr;
pub mod fields;
pub mod graph;
mod hint;
pub mod input;
mod load;
mod machine;
pub mod plugin;
pub mod report;
pub mod sim;
pub mod source;
pub mod state;
pub mod timestamp;
pub mod validate;
mod workflow;

pub use branches::{FrameRef, Unaddressed};
pub use clock::{Clock, ManualClock};
pub use definition::Definition;
pub use effect::{
    Actor, Cause, ChildStart, Effect, HistoryEntry, HistoryEvent, OutboundMessage, PluginCall,
};
pub use fields::FieldValue;
pub use input::{CallMetrics, Decider, Input};
pub use machine::subworkflow::CHILD_ENDED_EVENT;
pub use machine::timers::DeadlineError;
pub use machine::{apply, start, Rejection, Step, MAX_ENTRIES_PER_STEP};
pub use plugin::{
    CallOutcome, FailureKind, PluginCatalog, PluginFailure, PluginInvoker, PluginRef, World,
};
pub use state::{
    ApprovalTask, BranchState, BranchStatus, ChildRef, Frame, InstanceState, ParentLink, Relay,
    SlaState, StageSla, Status, Timer, TimerPurpose,
};
pub use validate::ValidationError;
pub use workflow::Workflow;

/// The workflow definition JSON Schema, as embedded in the binary.
pub use validate::structure::WORKFLOW_SCHEMA;
