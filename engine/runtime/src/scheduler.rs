//! The timer scheduler: sleeps until the soonest timer in the store's due-time index, or
//! until a command arms an earlier one; fires everything due, the timers of many instances
//! in one store batch (`firing.rs`), batches concurrently so they share group flushes.
//! After a restart, overdue timers are simply due: they fire at once.
//!
//! On a shared store (several nodes on one PostgreSQL) each round claims its timers for
//! [`TIMER_LEASE`], and the scheduler polls at least every [`SHARED_POLL`]: a timer armed
//! by another node, or left by a node that died, fires within about a second of being
//! due (or of the dead node's claim running out).

use crate::firing::TOGETHER;
use crate::{Runtime, RuntimeError};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use waystation_store::DueTimer;

/// How many due timers one round reads and fires at most.
const ROUND: usize = 512;

/// How long a shared store keeps this node's claim on the timers of a round: others take
/// them over this long after a node dies (or stalls) mid-round.
pub(crate) const TIMER_LEASE: Duration = Duration::from_secs(3);

/// On a shared store, the longest the scheduler sleeps: other nodes arm timers it does not
/// hear of, and take over a dead node's, so it looks again at least this often.
pub(crate) const SHARED_POLL: Duration = Duration::from_secs(1);

/// The group flush of a round of timers, under way.
type Flushing = tokio::task::JoinHandle<Result<(), waystation_store::StoreError>>;

/// Waits for `flushing` (if any): the round it follows is durable when this returns `Ok`.
async fn wait(flushing: Option<Flushing>) -> Result<(), RuntimeError> {
    match flushing {
        None => Ok(()),
        Some(f) => match f.await {
            Ok(done) => done.map_err(RuntimeError::from),
            Err(e) => Err(RuntimeError::Engine(format!(
                "a group flush task failed: {e}"
            ))),
        },
    }
}

/// Due timers grouped by instance, each group in due order (the index's order). Instances
/// fire together; the timers of one instance fire one after another, so after downtime
/// an escalation step due before the deadline is recorded before the breach.
fn by_instance(due: Vec<DueTimer>) -> Vec<Vec<DueTimer>> {
    let mut groups: Vec<Vec<DueTimer>> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for timer in due {
        match at.get(&timer.instance_id) {
            Some(&i) => groups[i].push(timer),
            None => {
                at.insert(timer.instance_id.clone(), groups.len());
                groups.push(vec![timer]);
            }
        }
    }
    groups
}

impl Runtime {
    /// Fires every timer due now, in rounds; returns how many fired.
    ///
    /// # Errors
    /// Store errors reading the index; [`RuntimeError::Engine`] when a timer of the round
    /// could not be fired nor its failure recorded (the store refused both), so the
    /// scheduler backs off instead of reading the same due timers again at once. A timer
    /// that fails in the engine is not an error here: [`Runtime::fire_timer`] records it.
    pub async fn fire_due_timers(self: &Arc<Self>) -> Result<usize, RuntimeError> {
        let mut fired = 0;
        // The group flush that makes a round durable runs while the next round reads its
        // timers and computes its steps: the CPU work of one round and the disk sync of the
        // one before overlap, and at most one round waits to be durable.
        let mut flushing: Option<Flushing> = None;
        let outcome = loop {
            let due = match self.store.claim_due_timers(self.now(), ROUND, TIMER_LEASE) {
                Ok(due) => due,
                Err(e) => break Err(e.into()),
            };
            let count = due.len();
            let mut queues: Vec<VecDeque<DueTimer>> =
                by_instance(due).into_iter().map(VecDeque::from).collect();
            let mut stuck = 0;
            // Each pass fires the next timer of every instance of the round, so the timers
            // of one instance fire in due order.
            loop {
                let next: Vec<DueTimer> =
                    queues.iter_mut().filter_map(VecDeque::pop_front).collect();
                if next.is_empty() {
                    break;
                }
                stuck += self.fire_pass(next).await;
            }
            fired += count;
            if let Err(e) = wait(flushing.take()).await {
                break Err(e);
            }
            if count > 0 {
                let rt = self.clone();
                flushing = Some(tokio::spawn(async move { rt.durability.durable().await }));
            }
            if stuck > 0 {
                break Err(RuntimeError::Engine(format!(
                    "firing timers: {stuck} of {count} could not be fired nor their failure recorded"
                )));
            }
            if count < ROUND {
                break Ok(fired);
            }
        };
        // Whatever happened, what was applied is durable before the scheduler goes on.
        wait(flushing).await?;
        outcome
    }

    /// Fires `timers` (one per instance): in batches of [`TOGETHER`], the batches
    /// concurrently so they share group flushes, then those a batch left to fire alone
    /// (workflows that call plugins), concurrently too. Returns how many could not be fired
    /// nor their failure recorded.
    async fn fire_pass(self: &Arc<Self>, mut timers: Vec<DueTimer>) -> usize {
        let mut set = JoinSet::new();
        while !timers.is_empty() {
            let rest = timers.split_off(timers.len().min(TOGETHER));
            let batch = std::mem::replace(&mut timers, rest);
            let rt = self.clone();
            set.spawn(async move {
                let size = batch.len();
                rt.fire_timers_together(batch).await.map_err(|e| {
                    tracing::error!(error = %e, timers = size, "a batch of timers failed to fire");
                    size
                })
            });
        }
        let mut stuck = 0;
        let mut alone = Vec::new();
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(left)) => alone.extend(left),
                Ok(Err(size)) => stuck += size,
                Err(e) => {
                    tracing::error!(error = %e, "a timer firing task panicked");
                    stuck += 1;
                }
            }
        }
        let mut set = JoinSet::new();
        for timer in alone {
            let rt = self.clone();
            set.spawn(async move {
                rt.fire_timer(&timer).await.map_err(|e| {
                    tracing::error!(timer = %timer.timer_id, error = %e, "timer failed to fire");
                })
            });
        }
        while let Some(done) = set.join_next().await {
            if !matches!(done, Ok(Ok(()))) {
                stuck += 1;
            }
        }
        stuck
    }

    /// Runs the scheduler until `shutdown` completes.
    pub async fn run_scheduler(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.fire_due_timers().await {
                tracing::error!(error = %e, "reading due timers failed; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => return,
                }
            }
            let now = self.now();
            let next = match self.store.next_due() {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "reading the next timer failed");
                    None
                }
            };
            let wake_ms = next.map_or(i64::MAX, |t| t.timestamp_millis());
            self.scheduler_wakes_at.store(wake_ms, Ordering::Release);
            // Re-check after publishing the wake time: a timer armed in between may have
            // seen the old value and not notified.
            if let Ok(Some(again)) = self.store.next_due() {
                if again.timestamp_millis() < wake_ms {
                    continue;
                }
            }
            let mut sleep = next.map_or(Duration::from_secs(3600), |t| {
                (t - now).to_std().unwrap_or(Duration::ZERO)
            });
            if self.store.shared() {
                sleep = sleep.min(SHARED_POLL);
            }
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.timers_changed.notified() => {}
                () = &mut shutdown => return,
            }
        }
    }
}
