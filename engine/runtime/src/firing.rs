//! Firing the due timers of many instances in one store batch (issue 13): a burst of
//! timers due at once (a deadline shared by a thousand orders, a restart after downtime)
//! costs one journal append and one group flush per [`TOGETHER`] timers instead of one
//! commit per timer. Exactly once still holds per timer: each timer's index key goes in
//! the batch that holds its effect, and the batch is all or nothing.

use crate::{Runtime, RuntimeError};
use waystation_core::{InstanceState, Step};
use waystation_store::{Commit, DueTimer};

/// Most timers fired in one batch. Their instances' locks are held while every step of
/// the batch is computed (pure steps, a few tens of µs each), so this bounds how long a
/// command on one of them can wait behind a burst (a few milliseconds).
pub(crate) const TOGETHER: usize = 128;

/// A timer whose step is ready to commit.
struct Ready {
    timer: DueTimer,
    before: InstanceState,
    step: Step,
}

impl Runtime {
    /// Fires `timers` (at most one per instance) in one store batch, and returns those it
    /// left for [`Runtime::fire_timer`]: the timers of workflows that call plugins, whose
    /// steps may take long enough that holding every lock of the batch meanwhile would
    /// stall commands. A timer whose step fails in the engine is recorded as
    /// [`Runtime::fire_timer`] records it (moved later, or the instance failed). If the
    /// batch itself is refused by the store, each ready timer is committed alone, so one
    /// bad commit cannot hold back the others.
    ///
    /// What it commits is applied, not yet durable: the caller waits for a group flush
    /// begun after it returns (the scheduler does once per round, while the next round's
    /// steps are computed).
    ///
    /// # Errors
    /// Store errors reading an instance, or recording a failure; the scheduler backs off.
    pub(crate) async fn fire_timers_together(
        &self,
        timers: Vec<DueTimer>,
    ) -> Result<Vec<DueTimer>, RuntimeError> {
        let names: Vec<String> = timers.iter().map(|t| t.instance_id.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let guards = self.locks.lock_all(&names).await;
        let now = self.now();
        let mut alone = Vec::new();
        let mut ready = Vec::with_capacity(timers.len());
        for timer in timers {
            let Some(before) = self.store.instance(&timer.instance_id)? else {
                tracing::warn!(timer = %timer.timer_id, instance = %timer.instance_id, "timer of an unknown instance");
                continue;
            };
            // A workflow that cannot be had fails in `timer_step` below, and is recorded.
            if let Ok(wf) = self.workflow(&before.workflow, Some(before.version)).await {
                // Sub-workflows start children and take their ends: alone too, so a
                // batch is one instance per commit.
                if wf.calls_plugins() || wf.starts_children() {
                    alone.push(timer);
                    continue;
                }
            }
            match self.timer_step(&before, &timer, now).await {
                // No children here (workflows that start them fire alone, above).
                Ok((step, _)) => ready.push(Ready {
                    timer,
                    before,
                    step,
                }),
                Err(e) => {
                    self.timer_failed(&before, &timer, now, &e)?;
                }
            }
        }
        let commits: Vec<Commit<'_>> = ready
            .iter()
            .map(|r| Commit {
                before: Some(&r.before),
                after: &r.step.state,
                effects: &r.step.effects,
                fired_timer: Some((r.timer.due, r.timer.timer_id.as_str())),
                idempotency: None,
            })
            .collect();
        match self.store.commit_all(&commits) {
            Ok(()) => {
                for r in &ready {
                    self.committed(Some(&r.before), &r.step);
                    self.timer_fired(&r.timer, now);
                }
            }
            Err(e) => {
                // On a shared store a conflict of one (another node moved that instance)
                // rolls back the batch: the others are then committed one by one.
                tracing::debug!(timers = ready.len(), error = %e, "a batch of timers was refused by the store; firing them one by one");
                for r in &ready {
                    let fired = Some((r.timer.due, r.timer.timer_id.as_str()));
                    match self.commit(Some(&r.before), &r.step, fired, None) {
                        Ok(_) => self.timer_fired(&r.timer, now),
                        // Another node changed the instance first (a shared store): nothing
                        // was written; the timer is gone if it fired there, else due again.
                        Err(e) if crate::contention::is_conflict(&e) => {}
                        Err(e) => self.timer_failed(&r.before, &r.timer, now, &e)?,
                    }
                }
            }
        }
        drop(guards);
        Ok(alone)
    }
}
