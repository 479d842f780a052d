//! Time inside a stage that does not leave it: escalation ladders, reminders, and the
//! durations they (and deadlines) may count in working time.
//!
//! ```json
//! "escalation": [
//!   {"after": "PT1H", "actions": [{"notify": "supervisor-mail"}]},
//!   {"after": {"duration": "PT4H", "calendar": "cn-office"}, "actions": [{"tag": "escalated"}]},
//!   {"before_deadline": "PT30M", "actions": [{"set": {"urgent": "true"}}]}
//! ],
//! "reminders": [{"every": "PT2H", "times": 3, "actions": [{"notify": "reminder-mail"}]}]
//! ```

use super::action::Action;
use serde::{Deserialize, Serialize};

/// The most reminders one reminder entry may send: a bound on the timers one stage visit
/// arms, so no definition can make the scheduler fire without end.
pub const MAX_REMINDER_TIMES: u32 = 1_000;

/// A duration: wall-clock (`"PT4H"`) or working time in a named business calendar
/// (`{"duration": "PT4H", "calendar": "cn-office"}`: four hours of that calendar's office
/// hours, skipping nights, weekends and holidays in its time zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Span {
    /// An ISO 8601 duration of wall-clock time.
    Clock(String),
    /// An ISO 8601 duration of working time.
    Working {
        /// The amount of working time (ISO 8601).
        duration: String,
        /// The business calendar's name (`[calendars.<name>]` in the server configuration).
        calendar: String,
    },
}

impl Span {
    /// The ISO 8601 text, whichever kind.
    pub fn duration(&self) -> &str {
        match self {
            Span::Clock(d) | Span::Working { duration: d, .. } => d,
        }
    }

    /// The calendar counted in, if working time.
    pub fn calendar(&self) -> Option<&str> {
        match self {
            Span::Clock(_) => None,
            Span::Working { calendar, .. } => Some(calendar),
        }
    }
}

/// One step of an escalation ladder: when it fires (exactly one of `after` and
/// `before_deadline`), and the actions it runs without leaving the stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Counted from entering the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Span>,
    /// Counted back from the stage's deadline (the stage needs one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_deadline: Option<Span>,
    /// What to do: the same actions a stage runs on entry.
    pub actions: Vec<Action>,
}

/// A repeating reminder: every `every` from entering the stage, at most `times` times,
/// until the stage is left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminder {
    /// The interval, counted from entry and then from the previous reminder's due time.
    pub every: Span,
    /// How many reminders at most (1 to [`MAX_REMINDER_TIMES`]).
    pub times: u32,
    /// What each reminder does.
    pub actions: Vec<Action>,
}
