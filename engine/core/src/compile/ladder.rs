//! Compiling a stage's time in place: spans (wall-clock or working time), escalation steps
//! and reminders, with the checks that need the whole stage (a step after the deadline, a
//! step counted back from a deadline the stage does not have).

use super::Checker;
use crate::definition::{parse_iso_duration, EscalationStep, Reminder, Span, Stage};
use crate::workflow::{CompiledReminder, CompiledSpan, CompiledStep, Deadline, StepAnchor};
use chrono::TimeDelta;

impl Checker<'_> {
    /// A duration at `pointer`, in the calendar `calendar` when one is named.
    pub(super) fn span_of(
        &mut self,
        pointer: &str,
        duration: &str,
        calendar: Option<&str>,
        calendar_pointer: &str,
    ) -> Option<CompiledSpan> {
        let delta = match parse_iso_duration(duration) {
            Ok(d) if d > TimeDelta::zero() => Some(d),
            Ok(_) => {
                self.error(pointer, "a duration here must be longer than zero");
                None
            }
            Err(e) => {
                self.error(pointer, e.to_string());
                None
            }
        };
        let calendar = match calendar {
            None => None,
            Some(name) => match self.calendars.get(name) {
                Some(c) => Some(c.clone()),
                None => {
                    let known: Vec<&str> = self.calendars.keys().map(String::as_str).collect();
                    let known = if known.is_empty() {
                        "no calendars are configured ([calendars.<name>] in the server configuration)".to_owned()
                    } else {
                        format!("known calendars: {}", known.join(", "))
                    };
                    self.error(
                        calendar_pointer,
                        format!("no business calendar named '{name}'; {known}"),
                    );
                    return None;
                }
            },
        };
        Some(CompiledSpan {
            delta: delta?,
            calendar,
        })
    }

    /// The stage's `calendar`: only meaningful with a duration deadline.
    pub(super) fn stage_calendar(
        &mut self,
        p: &str,
        stage: &Stage,
        deadline: Option<&Deadline>,
    ) -> Option<std::sync::Arc<crate::calendar::Calendar>> {
        let name = stage.calendar.as_deref()?;
        let pointer = format!("{p}/calendar");
        if matches!(deadline, Some(Deadline::At(_))) || stage.deadline.is_none() {
            self.error(
                pointer,
                "calendar counts a duration deadline and at_risk in working time, but this stage has no duration deadline",
            );
            return None;
        }
        // Any positive duration will do: only the calendar is looked up here.
        self.span_of(&pointer, "PT1S", Some(name), &pointer)
            .and_then(|s| s.calendar)
    }

    fn span(&mut self, pointer: &str, span: &Span) -> Option<CompiledSpan> {
        match span {
            Span::Clock(d) => self.span_of(pointer, d, None, pointer),
            Span::Working { duration, calendar } => self.span_of(
                &format!("{pointer}/duration"),
                duration,
                Some(calendar),
                &format!("{pointer}/calendar"),
            ),
        }
    }

    /// The stage's escalation steps, checked against its deadline.
    pub(super) fn escalation(
        &mut self,
        p: &str,
        stage: &Stage,
        deadline: Option<&Deadline>,
    ) -> Vec<CompiledStep> {
        let mut out = Vec::with_capacity(stage.escalation.len());
        for (i, step) in stage.escalation.iter().enumerate() {
            let sp = format!("{p}/escalation/{i}");
            if let Some(compiled) = self.step(&sp, step, stage, deadline) {
                out.push(compiled);
            }
        }
        out
    }

    fn step(
        &mut self,
        sp: &str,
        step: &EscalationStep,
        stage: &Stage,
        deadline: Option<&Deadline>,
    ) -> Option<CompiledStep> {
        let actions = self.actions(&format!("{sp}/actions"), &step.actions);
        let anchor = match (&step.after, &step.before_deadline) {
            (Some(after), None) => {
                let span = self.span(&format!("{sp}/after"), after)?;
                self.check_before_deadline(sp, &span, after, stage, deadline);
                StepAnchor::AfterEntry(span)
            }
            (None, Some(before)) => {
                if stage.deadline.is_none() {
                    self.error(
                        format!("{sp}/before_deadline"),
                        "before_deadline counts back from the deadline, but this stage has no deadline",
                    );
                    return None;
                }
                let span = self.span(&format!("{sp}/before_deadline"), before)?;
                if let Some(Deadline::After(d)) = deadline {
                    if span.calendar.is_none() && stage.calendar.is_none() && span.delta >= *d {
                        self.error(
                            format!("{sp}/before_deadline"),
                            format!("{} before the deadline ({}) is at or before entering the stage; the step would fire at once",
                                before.duration(), stage.deadline.as_deref().unwrap_or_default()),
                        );
                    }
                }
                StepAnchor::BeforeDeadline(span)
            }
            _ => {
                self.error(
                    sp.to_owned(),
                    "an escalation step needs exactly one of `after` and `before_deadline`",
                );
                return None;
            }
        };
        Some(CompiledStep { anchor, actions })
    }

    /// A step `after` entry that falls at or past a wall-clock deadline never fires while
    /// the stage waits: the deadline leaves it or breaches it first.
    fn check_before_deadline(
        &mut self,
        sp: &str,
        span: &CompiledSpan,
        after: &Span,
        stage: &Stage,
        deadline: Option<&Deadline>,
    ) {
        let Some(Deadline::After(d)) = deadline else {
            return;
        };
        // Both counted the same way (wall clock, or the same calendar) compare directly.
        let same_clock = after.calendar() == stage.calendar.as_deref();
        if same_clock && span.delta >= *d {
            self.error(
                format!("{sp}/after"),
                format!(
                    "this step ({}) comes at or after the stage's deadline ({}); use `before_deadline`, or a timeout branch for what happens at the deadline",
                    after.duration(),
                    stage.deadline.as_deref().unwrap_or_default()
                ),
            );
        }
    }

    /// The stage's reminders.
    pub(super) fn reminders(&mut self, p: &str, reminders: &[Reminder]) -> Vec<CompiledReminder> {
        let mut out = Vec::with_capacity(reminders.len());
        for (i, r) in reminders.iter().enumerate() {
            let rp = format!("{p}/reminders/{i}");
            let actions = self.actions(&format!("{rp}/actions"), &r.actions);
            let every = self.span(&format!("{rp}/every"), &r.every);
            if !(1..=crate::definition::MAX_REMINDER_TIMES).contains(&r.times) {
                self.error(
                    format!("{rp}/times"),
                    format!(
                        "times must be from 1 to {}",
                        crate::definition::MAX_REMINDER_TIMES
                    ),
                );
                continue;
            }
            if let Some(every) = every {
                out.push(CompiledReminder {
                    every,
                    times: r.times,
                    actions,
                });
            }
        }
        out
    }
}
