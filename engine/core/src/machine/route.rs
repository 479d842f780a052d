//! Which frame an input is for: the instance itself, or one branch (at any depth) of a
//! parallel stage, found by the timer, plugin call, child or task the input names, or by
//! the stages that accept an event. While some frame waits for a plugin result, inputs
//! that would move a branch are refused with [`Rejection::AwaitingPlugin`].

use super::subworkflow::ChildEnd;
use super::{pending_call, Rejection, Run};
use crate::input::{Decider, Input};
use crate::state::Status;

impl Run<'_> {
    /// Applies `input` in the frame it is for.
    pub(super) fn route(&mut self, input: Input) -> Result<(), Rejection> {
        match input {
            Input::TimerFired { timer_id } => self.route_timer(&timer_id),
            Input::Cancel { by, reason } => self.cancel(by, reason),
            Input::Retry { by } => self.retry(by),
            Input::Assign {
                assignee,
                by,
                stage,
            } => {
                let path = self.work_target(stage.as_deref())?;
                self.with_path(&path, |r| r.assign(assignee, by))
            }
            Input::PluginResult {
                call_id,
                outcome,
                metrics,
            } => {
                let path = self
                    .state
                    .find_frame(|f| f.pending.is_some_and(|p| p.call_id == call_id))
                    .unwrap_or_default();
                self.with_path(&path, |r| r.plugin_result(call_id, outcome, metrics))
            }
            Input::Event { name, data, stage } => {
                if self.state.status == Status::Running && self.any_pending() {
                    return Err(Rejection::AwaitingPlugin(pending_call(&self.state)));
                }
                let path = if self.state.status == Status::Running {
                    self.event_target(&name, stage.as_deref())?
                } else {
                    Vec::new()
                };
                self.with_path(&path, |r| r.event(name, data))
            }
            Input::ChildEnded {
                child,
                status,
                outcome,
                reason,
                output,
            } => self.route_child_end(ChildEnd {
                child,
                status,
                outcome,
                reason,
                output,
            }),
            Input::Decision {
                task_id,
                decider,
                approve,
                comment,
            } => self.route_decision(&task_id, decider, approve, comment),
        }
    }

    /// A timer fires in the frame that armed it; the instance itself takes its own timers
    /// and those no frame holds any longer (it records them as ignored).
    fn route_timer(&mut self, timer_id: &str) -> Result<(), Rejection> {
        let path = self
            .state
            .find_frame(|f| f.timers.iter().any(|t| t.id == timer_id));
        match path {
            Some(path) if !path.is_empty() => {
                self.refuse_while_pending()?;
                self.with_path(&path, |r| r.timer_fired(timer_id))
            }
            _ => self.timer_fired(timer_id),
        }
    }

    /// A child's end goes to the frame waiting for that child.
    fn route_child_end(&mut self, end: ChildEnd) -> Result<(), Rejection> {
        let Some(path) = self
            .state
            .find_frame(|f| f.child.is_some_and(|c| c.id == end.child))
        else {
            return Err(Rejection::UnexpectedChildEnd(end.child));
        };
        if !path.is_empty() {
            self.refuse_while_pending()?;
        }
        self.with_path(&path, |r| r.child_ended(end))
    }

    /// A decision goes to the frame holding the task (the instance itself when none does,
    /// which then refuses it).
    fn route_decision(
        &mut self,
        task_id: &str,
        decider: Decider,
        approve: bool,
        comment: Option<String>,
    ) -> Result<(), Rejection> {
        let path = self
            .state
            .find_frame(|f| {
                f.approval
                    .is_some_and(|a| a.open.iter().any(|t| t.id == task_id))
            })
            .unwrap_or_default();
        if !path.is_empty() {
            self.refuse_while_pending()?;
        }
        self.with_path(&path, |r| r.decision(task_id, decider, approve, comment))
    }

    /// [`Rejection::AwaitingPlugin`] while some frame waits for a plugin result.
    fn refuse_while_pending(&self) -> Result<(), Rejection> {
        if self.any_pending() {
            return Err(Rejection::AwaitingPlugin(pending_call(&self.state)));
        }
        Ok(())
    }
}
