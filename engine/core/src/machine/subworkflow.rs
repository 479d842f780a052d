//! The sub-workflow stage: start a child instance, wait for its end, branch on its outcome.
//!
//! The child lives outside this instance: the stage only asks the driver to start it
//! ([`Effect::StartChild`], committed with this step) and remembers its id in the frame
//! ([`crate::state::Frame::child`]). Its end comes back as [`Input::ChildEnded`]; taking it
//! forgets the id, so the same end delivered again is refused and changes nothing. Leaving
//! the stage before the child ended (cancellation, timeout, a cancelled branch, a failure)
//! asks the driver to cancel the child ([`Effect::CancelChild`]).
//!
//! [`Input::ChildEnded`]: crate::Input::ChildEnded

use super::{Rejection, Run};
use crate::effect::{Cause, ChildStart, Effect, HistoryEvent};
use crate::state::{ChildRef, ParentLink, Status};
use crate::workflow::{CompiledKind, CompiledStage};
use serde_json::{json, Map, Value};

/// The event type the expressions of `on_outcome` and `on_error` see after a child's end
/// (`event.data` holds `{instance, workflow, status, outcome, reason, output}`).
pub const CHILD_ENDED_EVENT: &str = "child_ended";

/// How a child ended, as the parent's step takes it.
pub(crate) struct ChildEnd {
    pub child: String,
    pub status: Status,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub output: Value,
}

impl<'w> Run<'w> {
    /// Settles a sub-workflow stage just entered (after its actions and timers): maps the
    /// child's input and asks for the child.
    pub(super) fn start_child(&mut self, stage: &'w CompiledStage) {
        let CompiledKind::Subworkflow { child, input, .. } = &stage.kind else {
            return;
        };
        let mut payload = Map::new();
        for (member, expr) in input {
            match expr.eval(&self.scope()) {
                Ok(v) => {
                    payload.insert(member.clone(), v);
                }
                Err(e) => {
                    // Every entry action ran: a retry only settles again (and maps anew).
                    let all = stage.actions.len();
                    return self.fail_at(
                        format!(
                            "input '{member}' of sub-workflow stage '{}': {e}",
                            stage.name
                        ),
                        all,
                    );
                }
            }
        }
        let id = self.state.next_id('w');
        let depth = self.state.parent.as_ref().map_or(1, |p| p.depth + 1);
        let link = ChildRef {
            id: id.clone(),
            workflow: child.workflow.clone(),
            stage: stage.name.clone(),
        };
        self.state.child = Some(link.clone());
        self.state.children.push(link);
        self.history(HistoryEvent::ChildStarted {
            stage: stage.name.clone(),
            child: id.clone(),
            workflow: child.workflow.clone(),
        });
        self.effects.push(Effect::StartChild(ChildStart {
            id,
            workflow: child.workflow.clone(),
            version: child.version,
            input: Value::Object(payload),
            parent: ParentLink {
                instance: self.state.id.clone(),
                stage: stage.name.clone(),
                depth,
            },
        }));
    }

    /// Part of leaving a stage: a child still running is cancelled with it.
    pub(super) fn cancel_child(&mut self) {
        let Some(child) = self.state.child.take() else {
            return;
        };
        self.effects.push(Effect::CancelChild {
            child: child.id.clone(),
            reason: format!(
                "its parent {} left stage '{}' before it ended",
                self.state.id, child.stage
            ),
        });
        self.history(HistoryEvent::ChildCancelled {
            stage: child.stage,
            child: child.id,
        });
    }

    /// The child of the current frame's sub-workflow stage ended: record it, keep its
    /// result, and go where its outcome (or its failure) leads.
    pub(super) fn child_ended(&mut self, end: ChildEnd) -> Result<(), Rejection> {
        let waiting = self.state.status == Status::Running
            && self.state.child.as_ref().is_some_and(|c| c.id == end.child);
        if !waiting {
            return Err(Rejection::UnexpectedChildEnd(end.child));
        }
        let child = self.state.child.take().expect("checked above");
        let (_, stage) = self.current();
        let CompiledKind::Subworkflow {
            on_outcome, result, ..
        } = &stage.kind
        else {
            return Err(Rejection::UnexpectedChildEnd(end.child));
        };
        let data = json!({
            "instance": end.child,
            "workflow": child.workflow,
            "status": end.status.as_str(),
            "outcome": end.outcome,
            "reason": end.reason,
            "output": end.output,
        });
        self.history(HistoryEvent::ChildEnded {
            stage: stage.name.clone(),
            child: end.child.clone(),
            status: end.status,
            outcome: end.outcome.clone(),
        });
        if let Some(var) = result {
            self.state.vars.insert(var.clone(), data.clone());
            let mut set = Map::new();
            set.insert(var.clone(), data.clone());
            self.history(HistoryEvent::VariablesSet { vars: set });
        }
        self.event = Some(json!({"type": CHILD_ENDED_EVENT, "data": data}));
        let outcome = end.outcome.as_deref().unwrap_or_default();
        if end.status != Status::Completed {
            let error = json!({
                "child": end.child,
                "status": end.status.as_str(),
                "message": end.reason,
            });
            self.state.vars.insert("error".to_owned(), error);
            let why = format!(
                "child {} {}: {}",
                end.child,
                end.status.as_str(),
                end.reason.as_deref().unwrap_or("no reason given")
            );
            self.child_error(stage, why);
            return Ok(());
        }
        match on_outcome.get(outcome).map(|b| self.choose(b)) {
            Some(Ok(Some(to))) => self.go(to, Cause::ChildEnded),
            Some(Ok(None)) => {
                let why = format!(
                    "child {} completed '{outcome}', but no branch of on_outcome '{outcome}' holds",
                    end.child
                );
                self.unrouted(&end.child, &why);
                self.child_error(stage, why);
            }
            Some(Err(e)) => self.fail(format!(
                "on_outcome '{outcome}' of stage '{}': {e}",
                stage.name
            )),
            None => {
                let why = format!(
                    "child {} completed with outcome '{outcome}', which on_outcome does not route",
                    end.child
                );
                self.unrouted(&end.child, &why);
                self.child_error(stage, why);
            }
        }
        Ok(())
    }

    /// `vars.error` for a child that completed with an outcome nothing routes, as for one
    /// that failed: `on_error`'s expressions and the people reading the instance see why.
    fn unrouted(&mut self, child: &str, why: &str) {
        let error = json!({"child": child, "status": Status::Completed.as_str(), "message": why});
        self.state.vars.insert("error".to_owned(), error);
    }

    /// A child that failed, was cancelled or ended unrouted: the stage's `on_error`, else
    /// the instance fails (a retry enters the stage again and starts a new child).
    fn child_error(&mut self, stage: &'w CompiledStage, why: String) {
        match self.choose(&stage.on_error) {
            Ok(Some(to)) => self.go(to, Cause::Error),
            Ok(None) => self.fail(format!("sub-workflow stage '{}': {why}", stage.name)),
            Err(e) => self.fail(format!("on_error of stage '{}': {e}", stage.name)),
        }
    }
}
