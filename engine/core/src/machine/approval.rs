//! Approval stages: levels opened in order (or skipped by `skip_when`), one task per
//! approver entry, quorum counted per level, any rejection rejects the stage.

use super::{Rejection, Run};
use crate::definition::{Approver, Quorum};
use crate::effect::{Cause, Effect, HistoryEvent};
use crate::input::Decider;
use crate::state::{ApprovalProgress, ApprovalTask, LevelApproval};
use crate::workflow::CompiledKind;
use serde_json::json;

impl<'w> Run<'w> {
    /// Opens level `from` of the current approval stage, skipping levels whose
    /// `skip_when` holds; approves the stage when no level is left.
    pub(super) fn open_level(&mut self, from: usize) {
        let (_, stage) = self.current();
        let CompiledKind::Approval {
            levels, on_approve, ..
        } = &stage.kind
        else {
            unreachable!("open_level is only called in approval stages")
        };
        for (index, level) in levels.iter().enumerate().skip(from) {
            if let Some(skip) = &level.skip_when {
                match skip.eval_bool(&self.scope()) {
                    Ok(true) => {
                        self.history(HistoryEvent::LevelSkipped {
                            level: level.name.clone(),
                            because: skip.source().to_owned(),
                        });
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        return self.fail(format!("skip_when of level '{}': {e}", level.name))
                    }
                }
            }
            let mut open = Vec::with_capacity(level.approvers.len());
            for approver in &level.approvers {
                let task = ApprovalTask {
                    id: self.state.next_id('a'),
                    instance_id: self.state.id.clone(),
                    stage: stage.name.clone(),
                    level: level.name.clone(),
                    approver: approver.clone(),
                    opened_at: self.now,
                };
                self.history(HistoryEvent::ApprovalOpened {
                    task_id: task.id.clone(),
                    level: level.name.clone(),
                    approver: approver.clone(),
                });
                self.effects.push(Effect::OpenApproval(task.clone()));
                open.push(task);
            }
            self.state.approval = Some(ApprovalProgress {
                level: index,
                level_name: level.name.clone(),
                quorum: level.quorum,
                open,
                approvals: Vec::new(),
            });
            return;
        }
        // Every level passed or was skipped.
        self.state.approval = None;
        if self
            .event
            .as_ref()
            .and_then(|e| e.get("type"))
            .is_none_or(|t| t != "approved")
        {
            // Every level was skipped: the stage approves itself.
            self.event = Some(json!({"type": "approved", "data": {"skipped": true}}));
        }
        match self.choose(on_approve) {
            Ok(Some(to)) => self.go(to, Cause::Approved),
            Ok(None) => self.fail(format!(
                "stage '{}' was approved, but no on_approve branch holds",
                stage.name
            )),
            Err(e) => self.fail(format!("on_approve of stage '{}': {e}", stage.name)),
        }
    }

    /// A decision on open task `task_id`: checked (the decider may decide it, has not
    /// decided this level, and keeps the separation of duties), recorded, then the stage is
    /// left by `on_reject`, or the approval counts towards the level's quorum.
    pub(super) fn decision(
        &mut self,
        task_id: &str,
        decider: Decider,
        approve: bool,
        comment: Option<String>,
    ) -> Result<(), Rejection> {
        self.require_running()?;
        self.check_decider(task_id, &decider)?;
        let progress = self.state.approval.as_ref().expect("checked above");
        let level = progress.level;
        let level_name = progress.level_name.clone();
        let (_, stage) = self.current();
        let place = format!("{}/{level_name}", stage.name);
        self.check_duties(task_id, &decider.id, &place)?;
        self.worked();
        self.state
            .deciders
            .entry(decider.id.clone())
            .or_insert(place);
        self.history(HistoryEvent::Decided {
            task_id: task_id.to_owned(),
            level: level_name.clone(),
            decider: decider.id.clone(),
            decision: if approve { "approve" } else { "reject" }.to_owned(),
            comment: comment.clone(),
        });
        let kind = if approve { "approved" } else { "rejected" };
        self.event = Some(
            json!({"type": kind, "data": {"by": decider.id, "comment": comment, "level": level_name}}),
        );
        if approve {
            self.approve(task_id, decider.id, level);
        } else {
            self.reject();
        }
        Ok(())
    }

    /// `decider` may decide open task `task_id` (by role or name) and has not yet decided
    /// its level.
    fn check_decider(&self, task_id: &str, decider: &Decider) -> Result<(), Rejection> {
        let progress = self
            .state
            .approval
            .as_ref()
            .ok_or_else(|| Rejection::UnknownTask(task_id.to_owned()))?;
        let task = progress
            .open
            .iter()
            .find(|t| t.id == task_id)
            .ok_or_else(|| Rejection::UnknownTask(task_id.to_owned()))?;
        let allowed = match &task.approver {
            Approver::Role(role) => decider.roles.iter().any(|r| r == role),
            Approver::User(user) => *user == decider.id,
        };
        if !allowed {
            return Err(Rejection::NotAnApprover {
                task_id: task_id.to_owned(),
                decider: decider.id.clone(),
                approver: task.approver.to_string(),
            });
        }
        if progress.approvals.iter().any(|a| a.decider == decider.id) {
            return Err(Rejection::AlreadyDecided {
                decider: decider.id.clone(),
                level: progress.level_name.clone(),
            });
        }
        Ok(())
    }

    /// A rejection leaves the stage by its first `on_reject` branch that holds; none
    /// holding fails the instance.
    fn reject(&mut self) {
        let (_, stage) = self.current();
        let CompiledKind::Approval { on_reject, .. } = &stage.kind else {
            unreachable!("approval progress only exists in approval stages")
        };
        match self.choose(on_reject) {
            Ok(Some(to)) => self.go(to, Cause::Rejected),
            Ok(None) => self.fail(format!(
                "stage '{}' was rejected, but no on_reject branch holds",
                stage.name
            )),
            Err(e) => self.fail(format!("on_reject of stage '{}': {e}", stage.name)),
        }
    }

    /// `decider`'s approval of `task_id` counts towards level `level`'s quorum; once it is
    /// met, the level's other tasks close and the next level opens.
    fn approve(&mut self, task_id: &str, decider: String, level: usize) {
        let progress = self.state.approval.as_mut().expect("checked above");
        progress.approvals.push(LevelApproval {
            task_id: task_id.to_owned(),
            decider,
        });
        let passed = match progress.quorum {
            Quorum::Any => true,
            Quorum::Count(n) => progress.approvals.len() >= n as usize,
            Quorum::All => {
                // Each approver entry needs its own approval: this task is done.
                progress.open.retain(|t| t.id != task_id);
                self.effects.push(Effect::CloseApproval {
                    task_id: task_id.to_owned(),
                });
                self.state
                    .approval
                    .as_ref()
                    .is_some_and(|p| p.open.is_empty())
            }
        };
        if passed {
            if let Some(progress) = self.state.approval.take() {
                for task in progress.open {
                    self.effects
                        .push(Effect::CloseApproval { task_id: task.id });
                }
            }
            self.open_level(level + 1);
        }
    }

    /// The current stage's separation of duties for `decider` deciding `task_id` at level
    /// `place` (`stage/level`): someone who decided another level of this instance already,
    /// or who started it, is refused unless the stage relaxes that rule. Deciding the same
    /// level again, when a rejection or an event brought the instance back to it, is allowed.
    fn check_duties(&self, task_id: &str, decider: &str, place: &str) -> Result<(), Rejection> {
        let (_, stage) = self.current();
        let CompiledKind::Approval { duties, .. } = &stage.kind else {
            return Ok(());
        };
        let refuse = |rule: &str| {
            Err(Rejection::SeparationOfDuties {
                task_id: task_id.to_owned(),
                decider: decider.to_owned(),
                rule: rule.to_owned(),
            })
        };
        if duties.one_level_per_person {
            if let Some(decided) = self.state.deciders.get(decider).filter(|d| *d != place) {
                return refuse(&format!(
                    "one person decides at most one level of an instance, and they decided {decided} already"
                ));
            }
        }
        if duties.starter_excluded && self.state.started_by.as_deref() == Some(decider) {
            return refuse("the person who started an instance does not decide its approvals");
        }
        Ok(())
    }
}
