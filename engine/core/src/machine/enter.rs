//! Entering a stage: arm its deadline, run its actions, then settle by kind. Leaving one:
//! cancel its timers and close its tasks. Failing: park the instance with the reason.

use super::{Run, MAX_ENTRIES_PER_STEP};
use crate::effect::{Cause, Effect, HistoryEntry, HistoryEvent, PluginCall};
use crate::expr::EvalError;
use crate::plugin::World;
use crate::state::{ActionList, PendingCall, Sla, Status};
use crate::workflow::{CompiledAction, CompiledBranch, CompiledKind};
use serde_json::{json, Value};

/// The assigner recorded when an `assign` action, not a person, gives out work.
pub const ENGINE: &str = "engine";

/// Longest person name an `assign` action may give (token names are shorter).
const MAX_ASSIGNEE_BYTES: usize = 200;

impl<'w> Run<'w> {
    /// Moves to stage `to` for `cause`. Always the last thing its caller does.
    pub(super) fn go(&mut self, to: usize, cause: Cause) {
        self.leave_stage();
        let from = std::mem::take(&mut self.state.stage);
        self.history(HistoryEvent::Transitioned {
            from,
            to: self.wf.stages[to].name.clone(),
            cause,
        });
        self.enter(to);
    }

    /// Cancels the current stage's timers and closes its tasks; closes its SLA record.
    /// A self-loop that keeps the deadline keeps the timers, the SLA and the record.
    pub(super) fn leave_stage(&mut self) {
        if let Some(progress) = self.state.approval.take() {
            for task in progress.open {
                self.effects
                    .push(Effect::CloseApproval { task_id: task.id });
            }
        }
        self.state.pending = None;
        self.cancel_child();
        if self.keep_deadline {
            return;
        }
        if self.state.has_branches() {
            self.cancel_branches();
        }
        for timer in std::mem::take(&mut self.state.timers) {
            self.effects
                .push(Effect::CancelTimer { timer_id: timer.id });
        }
        self.close_sla_record();
        self.state.sla = Sla::default();
        self.state.timers_armed = false;
        // The work of the next stage is nobody's until someone claims or is given it.
        self.state.assignee = None;
    }

    pub(super) fn enter(&mut self, index: usize) {
        self.enter_from(index, 0);
    }

    /// Enters stage `index` and runs its entry actions from `from` (0: all of them; a
    /// retry skips those that ran before the failure).
    pub(super) fn enter_from(&mut self, index: usize, from: usize) {
        let stage = &self.wf.stages[index];
        self.state.stage.clone_from(&stage.name);
        if !self.keep_deadline {
            self.state.stage_entered_at = self.now;
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES_PER_STEP {
            // Said as it is: a loop (this stage was entered before in the step) or a chain
            // of task stages longer than one step may pass through.
            let looped = self.effects.iter().any(|e| {
                matches!(e, Effect::History(HistoryEntry { event: HistoryEvent::Entered { stage: s }, .. }) if *s == stage.name)
            });
            return self.fail(if looped {
                format!(
                    "entered {MAX_ENTRIES_PER_STEP} stages in one step without resting; stage '{}' is part of a loop of task stages",
                    stage.name
                )
            } else {
                format!(
                    "a step may pass through at most {MAX_ENTRIES_PER_STEP} stages without resting, and this one reached stage '{}' still going; put a wait or approval stage on the way, or fewer task stages in a row",
                    stage.name
                )
            });
        }
        self.history(HistoryEvent::Entered {
            stage: stage.name.clone(),
        });
        self.run_actions(from);
    }

    /// Runs the current stage's actions from `from`, pausing at a plugin call.
    pub(super) fn run_actions(&mut self, from: usize) {
        self.run_actions_in(ActionList::Entry, from);
    }

    /// Runs the actions of `list` of the current stage from `from`, pausing at a plugin
    /// call. The entry actions then settle the stage; an escalation step's or reminder's
    /// leave it as it is.
    pub(super) fn run_actions_in(&mut self, list: ActionList, from: usize) {
        let (_, stage) = self.current();
        for (i, action) in list.of(stage).iter().enumerate().skip(from) {
            let outcome = match action {
                CompiledAction::Set(assignments) => self.set_vars(assignments),
                CompiledAction::Tag(tag) => {
                    if self.state.tags.insert(tag.clone()) {
                        self.history(HistoryEvent::Tagged { tag: tag.clone() });
                    }
                    Ok(())
                }
                CompiledAction::Assign(expr) => self.assign_by_engine(expr),
                CompiledAction::Call { plugin, input, .. }
                | CompiledAction::Notify { plugin, input } => {
                    let world = if matches!(action, CompiledAction::Call { .. }) {
                        World::Scorer
                    } else {
                        World::Notifier
                    };
                    let payload = match input {
                        Some(e) => e.eval(&self.scope()),
                        None => Ok(self.default_plugin_input()),
                    };
                    match payload {
                        Ok(payload) => {
                            let call_id = self.state.next_id('c');
                            self.state.pending = Some(PendingCall {
                                call_id: call_id.clone(),
                                action: i,
                                event: self.event.clone(),
                                list,
                            });
                            self.history(HistoryEvent::PluginCalled {
                                call_id: call_id.clone(),
                                plugin: plugin.to_string(),
                                world,
                            });
                            self.effects.push(Effect::CallPlugin(PluginCall {
                                call_id,
                                plugin: plugin.clone(),
                                world,
                                input: payload,
                            }));
                            return;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = outcome {
                let reason = format!(
                    "{} action {i} of stage '{}': {e}",
                    list.describe(),
                    stage.name
                );
                // A failed entry action is retried itself; anything else re-enters the stage.
                let resume = if list == ActionList::Entry { i } else { 0 };
                return self.fail_at(reason, resume);
            }
        }
        if list == ActionList::Entry {
            self.settle();
        }
    }

    fn set_vars(&mut self, assignments: &[(String, crate::expr::Expr)]) -> Result<(), EvalError> {
        // Evaluate all first, so `set: {a: .., b: vars.a}` reads the old `a`, like a
        // simultaneous assignment; then store.
        let mut values = serde_json::Map::new();
        for (name, expr) in assignments {
            values.insert(name.clone(), expr.eval(&self.scope())?);
        }
        for (name, value) in &values {
            self.state.vars.insert(name.clone(), value.clone());
        }
        self.history(HistoryEvent::VariablesSet { vars: values });
        Ok(())
    }

    /// The `assign` action: the engine names who owns the stage's work (e.g. the
    /// supervisor of an escalation stage). Null leaves the work as it is.
    fn assign_by_engine(&mut self, expr: &crate::expr::Expr) -> Result<(), EvalError> {
        let Some(user) = expr.eval_person(&self.scope(), MAX_ASSIGNEE_BYTES)? else {
            return Ok(());
        };
        if self.state.assignee.as_ref().map(|a| a.user.as_str()) != Some(user.as_str()) {
            self.give_work(Some(user), ENGINE.to_owned());
        }
        Ok(())
    }

    fn default_plugin_input(&self) -> Value {
        let s = &self.state;
        json!({
            "input": s.input,
            "vars": s.vars,
            "instance": {"id": s.id, "workflow": s.workflow, "version": s.version, "stage": s.stage, "tags": s.tags},
            "now": self.now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    }

    /// After the actions: what the stage's kind does next.
    pub(super) fn settle(&mut self) {
        let (_, stage) = self.current();
        // A failure here ran every entry action: a retry only settles again.
        let all = ActionList::Entry.of(stage).len();
        match &stage.kind {
            CompiledKind::Task { transitions } => match self.choose(transitions) {
                Ok(Some(to)) => self.go(to, Cause::Transition),
                Ok(None) => self.fail_at(
                    format!(
                        "no transition of task stage '{}' holds; add one without `when` as the default",
                        stage.name
                    ),
                    all,
                ),
                Err(e) => self.fail_at(format!("stage '{}': {e}", stage.name), all),
            },
            CompiledKind::Approval { .. }
            | CompiledKind::Wait { .. }
            | CompiledKind::Parallel { .. }
            | CompiledKind::Subworkflow { .. } => {
                // Armed after the actions, so a deadline may use variables they set. A
                // self-loop that kept the stage's timers keeps its deadline.
                let armed = self.state.timers_armed
                    || self.state.timers.iter().any(|t| t.stage == stage.name);
                if !armed {
                    self.state.timers_armed = true;
                    if let Err(e) = self.arm_deadline(stage) {
                        return self.fail_at(format!("deadline of stage '{}': {e}", stage.name), all);
                    }
                    if let Err(e) = self.arm_in_place(stage) {
                        return self.fail_at(
                            format!("escalation or reminder of stage '{}': {e}", stage.name),
                            all,
                        );
                    }
                }
                match &stage.kind {
                    CompiledKind::Approval { .. } => self.open_level(0),
                    CompiledKind::Parallel {
                        branches,
                        for_each: None,
                        ..
                    } => self.fork(branches),
                    CompiledKind::Parallel {
                        branches,
                        for_each: Some(each),
                        ..
                    } => {
                        if let Err(reason) = self.fork_each(stage, each, &branches[0]) {
                            self.fail_at(reason, all);
                        }
                    }
                    CompiledKind::Subworkflow { .. } => self.start_child(stage),
                    _ => {}
                }
            }
            CompiledKind::End { outcome } if self.in_a_branch() => {
                // The branch is over; the parallel stage records it and checks its join.
                self.leave_stage();
                self.branch_ended = Some(outcome.clone());
            }
            CompiledKind::End { outcome } => {
                self.leave_stage();
                self.state.status = Status::Completed;
                self.state.outcome = Some(outcome.clone());
                self.history(HistoryEvent::Completed {
                    outcome: outcome.clone(),
                });
            }
        }
    }

    /// The target of the first branch whose `when` holds, over the current event.
    pub(super) fn choose(&self, branches: &[CompiledBranch]) -> Result<Option<usize>, EvalError> {
        Ok(self.choose_branch(branches)?.map(|b| b.to))
    }

    /// The first branch whose `when` holds, over the current event.
    pub(super) fn choose_branch<'b>(
        &self,
        branches: &'b [CompiledBranch],
    ) -> Result<Option<&'b CompiledBranch>, EvalError> {
        for b in branches {
            let holds = match &b.when {
                None => true,
                Some(w) => w.eval_bool(&self.scope())?,
            };
            if holds {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Parks the instance as failed, with the reason, keeping its stage for the record; a
    /// retry enters that stage again from its first action.
    pub(super) fn fail(&mut self, reason: String) {
        self.fail_at(reason, 0);
    }

    /// [`Run::fail`], a retry resuming at entry action `action` of the stage (with the
    /// event being handled now).
    pub(super) fn fail_at(&mut self, reason: String, action: usize) {
        self.state.retry_from = Some(crate::state::RetryPoint {
            action,
            event: self.event.clone(),
        });
        let stage = self.state.stage.clone();
        self.leave_stage();
        self.state.stage = stage;
        self.state.status = Status::Failed;
        self.state.failure = Some(reason.clone());
        self.history(HistoryEvent::Failed { reason });
    }

    pub(super) fn current(&self) -> (usize, &'w crate::workflow::CompiledStage) {
        let wf: &'w crate::workflow::Workflow = self.wf;
        wf.stage(&self.state.stage)
            .expect("an instance's stage exists in the version it runs on")
    }
}
