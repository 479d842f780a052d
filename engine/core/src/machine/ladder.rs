//! Time in place: escalation steps and reminders. Both are timers of the stage that run
//! actions without leaving it; leaving the stage cancels them like its deadline.
//!
//! Each step is one timer, armed when the stage is entered (after its deadline, so a step
//! may count back from it); a reminder is one timer at a time, the next round armed when the
//! previous one fires. A timer's key leaves the store in the batch of its effect, so each
//! step and each round fires exactly once, across crashes (ARCHITECTURE.md, "Timers fire
//! exactly once").

use super::timers::{out_of_range, DeadlineError};
use super::Run;
use crate::effect::HistoryEvent;
use crate::state::{ActionList, Timer, TimerPurpose};
use crate::workflow::{CompiledAction, CompiledStage, StepAnchor};

impl ActionList {
    /// The actions this list names in `stage`.
    pub(crate) fn of<'s>(&self, stage: &'s CompiledStage) -> &'s [CompiledAction] {
        match *self {
            ActionList::Entry => &stage.actions,
            ActionList::Escalation(i) => &stage.escalation[i as usize].actions,
            ActionList::Reminder(i) => &stage.reminders[i as usize].actions,
        }
    }

    /// How a failure names the list ("escalation step 1", "reminder 0").
    pub(crate) fn describe(&self) -> String {
        match self {
            ActionList::Entry => "entry".to_owned(),
            ActionList::Escalation(i) => format!("escalation step {i}:"),
            ActionList::Reminder(i) => format!("reminder {i}:"),
        }
    }
}

impl<'w> Run<'w> {
    /// Arms every escalation step and the first round of every reminder of `stage`, just
    /// entered (its deadline, if any, already armed).
    pub(super) fn arm_in_place(&mut self, stage: &CompiledStage) -> Result<(), DeadlineError> {
        let entered = self.state.stage_entered_at;
        for (i, step) in stage.escalation.iter().enumerate() {
            let due = match &step.anchor {
                StepAnchor::AfterEntry(span) => span
                    .after(entered)
                    .ok_or_else(|| out_of_range("escalation step", entered, span.delta, '+'))?,
                StepAnchor::BeforeDeadline(span) => {
                    let Some(deadline) = self.state.sla.deadline else {
                        continue; // validation requires a deadline; nothing to count from
                    };
                    span.before(deadline)
                        .ok_or_else(|| out_of_range("escalation step", deadline, span.delta, '-'))?
                }
            };
            self.arm_timer(
                TimerPurpose::Escalation,
                due,
                &stage.name,
                Some(i as u32),
                None,
            );
        }
        for (i, reminder) in stage.reminders.iter().enumerate() {
            let due = reminder
                .every
                .after(entered)
                .ok_or_else(|| out_of_range("reminder", entered, reminder.every.delta, '+'))?;
            self.arm_timer(
                TimerPurpose::Reminder,
                due,
                &stage.name,
                Some(i as u32),
                Some(1),
            );
        }
        Ok(())
    }

    /// An escalation step or a reminder round fired in its stage: record it, arm the next
    /// round while rounds are left, and run the actions in place.
    pub(super) fn in_place_fired(&mut self, timer: &Timer) {
        let (_, stage) = self.current();
        let index = timer.step.unwrap_or(0);
        let list = match timer.purpose {
            TimerPurpose::Escalation => {
                if stage.escalation.get(index as usize).is_none() {
                    return;
                }
                self.history(HistoryEvent::Escalated {
                    stage: stage.name.clone(),
                    step: index,
                    due: timer.due,
                });
                ActionList::Escalation(index)
            }
            _ => {
                let Some(reminder) = stage.reminders.get(index as usize) else {
                    return;
                };
                let round = timer.round.unwrap_or(1);
                self.history(HistoryEvent::Reminded {
                    stage: stage.name.clone(),
                    reminder: index,
                    round,
                    times: reminder.times,
                    due: timer.due,
                });
                if round < reminder.times {
                    // From the round's due time, not from now: a late firing (after a
                    // restart) does not push the later rounds back.
                    match reminder.every.after(timer.due) {
                        Some(next) => self.arm_timer(
                            TimerPurpose::Reminder,
                            next,
                            &stage.name,
                            Some(index),
                            Some(round + 1),
                        ),
                        None => {
                            let e = out_of_range("reminder", timer.due, reminder.every.delta, '+');
                            return self
                                .fail(format!("reminder {index} of stage '{}': {e}", stage.name));
                        }
                    }
                }
                ActionList::Reminder(index)
            }
        };
        self.run_actions_in(list, 0);
    }
}
