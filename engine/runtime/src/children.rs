//! Sub-workflows in the runtime: children started in their parent's commit, their ends and
//! cancellations relayed exactly once.
//!
//! - **Start.** A step whose effects ask for children ([`Effect::StartChild`]) is committed
//!   with the children's first steps in one store batch ([`waystation_store::Store::commit_all`]):
//!   the parent waits for a child only if the child exists, and a crash before the batch
//!   leaves neither. A child that cannot be started (its workflow or version gone, its
//!   input refused, calls nested deeper than [`MAX_SUBWORKFLOW_DEPTH`]) is fed back to the
//!   parent at once as a failed child, which the stage's `on_error` routes.
//! - **End.** The child's last commit writes a record for the parent into the timer index
//!   ([`ChildRef::end_record`], due at once). The scheduler fires it under the parent's
//!   lock only: [`Input::ChildEnded`] built from the child's stored state, and the parent's
//!   commit deletes the record. A SIGKILL between the two leaves the record, and a parent
//!   that already took the end refuses it again ([`Rejection::UnexpectedChildEnd`]): the
//!   record then goes with no change. No command ever holds two instance locks.
//! - **Cancel.** A parent leaving a stage whose child still runs (cancelled, timed out, a
//!   branch cancelled, failed) writes a cancel record for the child ([`ChildRef::cancel_record`])
//!   in its own commit; it is fired under the child's lock as [`Input::Cancel`].

use crate::{Runtime, RuntimeError};
use chrono::{DateTime, Utc};
use waystation_core::definition::MAX_SUBWORKFLOW_DEPTH;
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::{
    ChildRef, ChildStart, Effect, Input, InstanceState, Rejection, Relay, Status, Step,
};
use waystation_store::DueTimer;

/// Who the history names for a cancellation the engine made on a parent's behalf.
pub const PARENT_CANCEL: &str = "engine";

/// One instance changed by a command: its state before (`None`: started by it) and its step.
pub(crate) struct Member {
    pub before: Option<InstanceState>,
    pub step: Step,
}

/// True when `step` asks for a child to be started.
pub(crate) fn starts_children(step: &Step) -> bool {
    step.effects
        .iter()
        .any(|e| matches!(e, Effect::StartChild(_)))
}

impl Runtime {
    /// The children `step` starts (and theirs, depth first), each as a member to commit
    /// with it. A child that cannot be started is fed back into its parent's step as a
    /// failed child (the parent's step grows by the entries that follow).
    ///
    /// # Errors
    /// Store errors; an engine failure of a parent's step taking a failed child.
    pub(crate) async fn children(
        &self,
        step: &mut Step,
        now: DateTime<Utc>,
    ) -> Result<Vec<Member>, RuntimeError> {
        let mut members: Vec<Member> = Vec::new();
        // (which step: None for the root, Some(i) for members[i]; effects already seen)
        let mut queue: Vec<(Option<usize>, usize)> = vec![(None, 0)];
        while let Some((who, seen)) = queue.pop() {
            let target = match who {
                None => &mut *step,
                Some(i) => &mut members[i].step,
            };
            let starts: Vec<ChildStart> = target.effects[seen..]
                .iter()
                .filter_map(|e| match e {
                    Effect::StartChild(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let seen_now = target.effects.len();
            let mut fed_back = false;
            for spec in starts {
                match self.start_child(&spec, now).await? {
                    Ok(child) => {
                        members.push(Member {
                            before: None,
                            step: child,
                        });
                        queue.push((Some(members.len() - 1), 0));
                    }
                    Err(reason) => {
                        let target = match who {
                            None => &mut *step,
                            Some(i) => &mut members[i].step,
                        };
                        self.feed_failed_child(target, &spec.id, reason, now)
                            .await?;
                        fed_back = true;
                    }
                }
            }
            if fed_back {
                // The parent moved on: what it asked for since may start children too.
                queue.push((who, seen_now));
            }
        }
        self.cancel_in_batch(step, &mut members, now).await?;
        Ok(members)
    }

    /// A child started and left behind in the same command (a branch that entered a
    /// sub-workflow stage was cancelled by its join in the same step): cancelled in the
    /// batch that starts it, since no record can be fired for an instance not yet stored.
    async fn cancel_in_batch(
        &self,
        step: &Step,
        members: &mut [Member],
        now: DateTime<Utc>,
    ) -> Result<(), RuntimeError> {
        let cancelled: Vec<(String, String)> = std::iter::once(step)
            .chain(members.iter().map(|m| &m.step))
            .flat_map(|s| &s.effects)
            .filter_map(|e| match e {
                Effect::CancelChild { child, reason } => Some((child.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        for (child, reason) in cancelled {
            let Some(m) = members
                .iter_mut()
                .find(|m| m.step.state.id == child && m.step.state.status == Status::Running)
            else {
                continue;
            };
            let wf = self
                .workflow(&m.step.state.workflow, Some(m.step.state.version))
                .await?;
            let input = Input::Cancel {
                by: PARENT_CANCEL.to_owned(),
                reason: Some(reason),
            };
            let state = m.step.state.clone();
            let more = self
                .drive(&wf, move |wf, p| {
                    apply_until_quiet(wf, state, input, now, p)
                })
                .await?;
            m.step.state = more.state;
            m.step.effects.extend(more.effects);
        }
        Ok(())
    }

    /// The first step of child `spec`, or why it cannot start (for the parent's `on_error`).
    async fn start_child(
        &self,
        spec: &ChildStart,
        now: DateTime<Utc>,
    ) -> Result<Result<Step, String>, RuntimeError> {
        if spec.parent.depth as usize > MAX_SUBWORKFLOW_DEPTH {
            return Ok(Err(format!(
                "sub-workflows nest {} deep, deeper than the limit of {MAX_SUBWORKFLOW_DEPTH}",
                spec.parent.depth
            )));
        }
        let wf = match self.workflow(&spec.workflow, spec.version).await {
            Ok(wf) => wf,
            Err(e @ (RuntimeError::NotFound { .. } | RuntimeError::InvalidDefinition(_))) => {
                return Ok(Err(format!("it could not be started: {e}")))
            }
            Err(e) => return Err(e),
        };
        // A key that cannot be computed is refused by the start below, with the reason.
        if let Ok(Some(key)) = wf.key_of(&spec.input, now) {
            if let Some(running) = self.store.running_with_key(&spec.workflow, &key)? {
                return Ok(Err(format!(
                    "it could not be started: instance '{running}' of workflow '{}' is running with key '{key}'",
                    spec.workflow
                )));
            }
        }
        let (id, input) = (spec.id.clone(), spec.input.clone());
        let step = self
            .drive(&wf, move |wf, p| start_until_quiet(wf, id, input, now, p))
            .await;
        let mut step = match step {
            Ok(step) => step,
            Err(RuntimeError::Rejected(r)) => {
                return Ok(Err(format!("it could not be started: {r}")))
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = self.check_step(&step, false) {
            return Ok(Err(format!("it could not be started: {e}")));
        }
        step.state.parent = Some(spec.parent.clone());
        Ok(Ok(step))
    }

    /// Applies "child `child` failed for `reason`" to the parent `step` in place.
    async fn feed_failed_child(
        &self,
        step: &mut Step,
        child: &str,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(), RuntimeError> {
        let wf = self
            .workflow(&step.state.workflow, Some(step.state.version))
            .await?;
        let input = Input::ChildEnded {
            child: child.to_owned(),
            status: Status::Failed,
            outcome: None,
            reason: Some(reason),
            output: serde_json::Value::Null,
        };
        let state = step.state.clone();
        let more = self
            .drive(&wf, move |wf, p| {
                apply_until_quiet(wf, state, input, now, p)
            })
            .await?;
        step.state = more.state;
        step.effects.extend(more.effects);
        Ok(())
    }

    /// The input a sub-workflow record fired on `before` stands for, or `None` for a
    /// timer. For a record with nothing left to do (the child is gone), the reason.
    pub(crate) fn relayed_input(
        &self,
        before: &InstanceState,
        timer: &DueTimer,
    ) -> Result<Option<Input>, RuntimeError> {
        match ChildRef::relay(&timer.timer_id) {
            None => Ok(None),
            Some(Relay::ChildEnded(child)) => {
                let input = match self.store.instance(child)? {
                    Some(c) => Input::ChildEnded {
                        child: child.to_owned(),
                        status: c.status,
                        outcome: c.outcome.clone(),
                        reason: match c.status {
                            Status::Failed => c.failure.clone(),
                            Status::Cancelled => Some("the child was cancelled".to_owned()),
                            _ => None,
                        },
                        output: serde_json::Value::Object(c.vars),
                    },
                    // Removed by retention before its end was taken: a failure of the child.
                    None => Input::ChildEnded {
                        child: child.to_owned(),
                        status: Status::Failed,
                        outcome: None,
                        reason: Some("the child instance no longer exists".to_owned()),
                        output: serde_json::Value::Null,
                    },
                };
                Ok(Some(input))
            }
            Some(Relay::CancelChild(_)) => Ok(Some(Input::Cancel {
                by: PARENT_CANCEL.to_owned(),
                reason: Some(match &before.parent {
                    Some(p) => format!(
                        "its parent {} left stage '{}' before it ended",
                        p.instance, p.stage
                    ),
                    None => "its parent left the stage waiting for it".to_owned(),
                }),
            })),
        }
    }
}

/// True for the refusals that mean a relayed record has nothing left to do: the parent
/// took this end already or left the stage; the child to cancel ended already.
pub(crate) fn relay_done(e: &RuntimeError) -> bool {
    matches!(
        e,
        RuntimeError::Rejected(Rejection::UnexpectedChildEnd(_) | Rejection::NotRunning(_))
    )
}
