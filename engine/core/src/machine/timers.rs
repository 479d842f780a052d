//! Deadlines: armed on entry (with an at-risk timer before them), fired by the driver.
//! A timer whose stage was left changes nothing and says so in the history.

use super::{Rejection, Run};
use crate::effect::{Cause, Effect, HistoryEvent};
use crate::expr::EvalError;
use crate::state::{SlaState, StageSla, Status, Timer, TimerPurpose, MAX_SLA_RECORDS};
use crate::workflow::{CompiledStage, Deadline};
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::json;

/// Why a stage's deadline could not be armed. The instance fails with this as its reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeadlineError {
    /// The deadline expression failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The deadline or its at-risk time falls outside the years 0001-9999, which RFC 3339
    /// (and so every client) can write.
    #[error("the {what} {from} {sign} {delta} falls outside the years 0001-9999")]
    OutOfRange {
        /// "deadline" or "at-risk time".
        what: &'static str,
        /// The time counted from (RFC 3339).
        from: String,
        /// "+" or "-".
        sign: char,
        /// The duration added or taken away (ISO 8601).
        delta: String,
    },
}

/// The error of a working-time sum that walked past what a calendar can reach.
pub(super) fn out_of_range(
    what: &'static str,
    from: DateTime<Utc>,
    delta: TimeDelta,
    sign: char,
) -> DeadlineError {
    DeadlineError::OutOfRange {
        what,
        from: from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        sign,
        delta: format!(
            "{} working time",
            crate::definition::format_iso_duration(delta)
        ),
    }
}

/// `from + delta` (or `-`), when it stays within the years RFC 3339 can write.
///
/// # Errors
/// [`DeadlineError::OutOfRange`] when the sum overflows or leaves 0001-9999.
pub(crate) fn shift(
    what: &'static str,
    from: DateTime<Utc>,
    delta: TimeDelta,
    forward: bool,
) -> Result<DateTime<Utc>, DeadlineError> {
    let sum = if forward {
        from.checked_add_signed(delta)
    } else {
        from.checked_sub_signed(delta)
    };
    sum.filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| DeadlineError::OutOfRange {
            what,
            from: from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            sign: if forward { '+' } else { '-' },
            delta: crate::definition::format_iso_duration(delta),
        })
}

impl<'w> Run<'w> {
    pub(super) fn arm_deadline(&mut self, stage: &CompiledStage) -> Result<(), DeadlineError> {
        let due = match &stage.deadline {
            None => return Ok(()),
            Some(Deadline::After(delta)) => match &stage.calendar {
                None => shift("deadline", self.state.stage_entered_at, *delta, true)?,
                Some(c) => c
                    .add_working(self.state.stage_entered_at, *delta)
                    .ok_or_else(|| {
                        out_of_range("deadline", self.state.stage_entered_at, *delta, '+')
                    })?,
            },
            Some(Deadline::At(expr)) => expr.eval_time(&self.scope())?,
        };
        if let Some(before) = stage.at_risk {
            let at = match &stage.calendar {
                None => shift("at-risk time", due, before, false)?,
                Some(c) => c
                    .sub_working(due, before)
                    .ok_or_else(|| out_of_range("at-risk time", due, before, '-'))?,
            };
            self.state.sla.deadline = Some(due);
            self.state.sla.at_risk_at = Some(at);
            if at <= self.now {
                // Entered already inside the at-risk window: yellow from the start.
                self.set_sla(SlaState::AtRisk, self.now);
            } else {
                self.arm(TimerPurpose::AtRisk, at, &stage.name);
            }
        }
        self.state.sla.deadline = Some(due);
        self.arm(TimerPurpose::Deadline, due, &stage.name);
        Ok(())
    }

    fn arm(&mut self, purpose: TimerPurpose, due: chrono::DateTime<chrono::Utc>, stage: &str) {
        self.arm_timer(purpose, due, stage, None, None);
    }

    /// Arms a timer of the current stage; `step` and `round` for escalation and reminders.
    pub(super) fn arm_timer(
        &mut self,
        purpose: TimerPurpose,
        due: chrono::DateTime<chrono::Utc>,
        stage: &str,
        step: Option<u32>,
        round: Option<u32>,
    ) {
        let timer = Timer {
            id: self.state.next_id('t'),
            due,
            purpose,
            stage: stage.to_owned(),
            step,
            round,
        };
        self.history(HistoryEvent::TimerArmed {
            timer_id: timer.id.clone(),
            purpose,
            due,
        });
        self.effects.push(Effect::ArmTimer(timer.clone()));
        self.state.timers.push(timer);
    }

    pub(super) fn timer_fired(&mut self, timer_id: &str) -> Result<(), Rejection> {
        let Some(pos) = self.state.timers.iter().position(|t| t.id == timer_id) else {
            let reason = if self.state.status == Status::Running {
                format!(
                    "its stage was already left; the instance is in '{}'",
                    self.state.stage
                )
            } else {
                format!("the instance is already {}", self.state.status.as_str())
            };
            self.history(HistoryEvent::TimerIgnored {
                timer_id: timer_id.to_owned(),
                reason,
            });
            return Ok(());
        };
        if let Some(p) = &self.state.pending {
            return Err(Rejection::AwaitingPlugin(p.call_id.clone()));
        }
        let timer = self.state.timers.remove(pos);
        let stage_name = timer.stage.clone();
        match timer.purpose {
            TimerPurpose::AtRisk => {
                if self.state.sla.state == SlaState::OnTime {
                    self.set_sla(SlaState::AtRisk, timer.due);
                }
            }
            TimerPurpose::Deadline => {
                // After downtime both may be overdue and reach the engine in any order: the
                // stage went at risk before it breached, whichever fires first.
                if let Some(at) = self
                    .state
                    .timers
                    .iter()
                    .position(|t| t.purpose == TimerPurpose::AtRisk && t.stage == stage_name)
                {
                    let at_risk = self.state.timers.remove(at);
                    self.effects.push(Effect::CancelTimer {
                        timer_id: at_risk.id,
                    });
                    if self.state.sla.state == SlaState::OnTime {
                        self.set_sla(SlaState::AtRisk, at_risk.due);
                    }
                }
                self.set_sla(SlaState::Breached, timer.due);
                let (_, stage) = self.current();
                self.event = Some(
                    json!({"type": "timeout", "data": {"stage": stage_name, "deadline": timer.due}}),
                );
                match self.choose(&stage.timeout) {
                    Ok(Some(to)) => self.go(to, Cause::Timeout),
                    Ok(None) => {} // stays, breached: the board shows it red
                    Err(e) => self.fail(format!("timeout of stage '{stage_name}': {e}")),
                }
            }
            TimerPurpose::Escalation | TimerPurpose::Reminder => self.in_place_fired(&timer),
        }
        Ok(())
    }

    /// Moves the SLA to `sla`, which it reached at `at` (the due time of the timer that
    /// says so: a timer fired late, after downtime, still records when the stage breached).
    fn set_sla(&mut self, sla: SlaState, at: DateTime<Utc>) {
        self.state.sla.state = sla;
        self.note_sla(sla, at);
        self.history(HistoryEvent::SlaChanged {
            stage: self.state.stage.clone(),
            sla,
        });
    }

    /// Records in the SLA record that the current stage visit went at risk or breached.
    fn note_sla(&mut self, sla: SlaState, at: DateTime<Utc>) {
        let s = &mut self.state;
        // Branches of a parallel stage keep records side by side: find this visit's.
        let open = s.sla_record.iter().rposition(|r| {
            r.left_at.is_none() && r.stage == s.stage && r.entered_at == s.stage_entered_at
        });
        let index = if let Some(i) = open {
            i
        } else {
            if s.sla_record.len() >= MAX_SLA_RECORDS {
                s.sla_record.remove(0);
            }
            s.sla_record.push(StageSla {
                stage: s.stage.clone(),
                entered_at: s.stage_entered_at,
                deadline: s.sla.deadline,
                at_risk_at: None,
                breached_at: None,
                left_at: None,
                overdue_seconds: None,
            });
            s.sla_record.len() - 1
        };
        let record = &mut s.sla_record[index];
        match sla {
            SlaState::AtRisk => record.at_risk_at = Some(at),
            SlaState::Breached => record.breached_at = Some(at),
            SlaState::OnTime => {}
        }
    }

    /// Closes the current stage visit's SLA record, if it has one: when it was left and by
    /// how much it overran.
    pub(super) fn close_sla_record(&mut self) {
        let s = &mut self.state;
        if let Some(r) = s.sla_record.iter_mut().rev().find(|r| {
            r.left_at.is_none() && r.stage == s.stage && r.entered_at == s.stage_entered_at
        }) {
            r.left_at = Some(self.now);
            if let (Some(_), Some(deadline)) = (r.breached_at, r.deadline) {
                r.overdue_seconds = Some((self.now - deadline).num_seconds());
            }
        }
    }
}
