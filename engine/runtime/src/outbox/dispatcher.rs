//! The dispatcher: one task that reads due messages from the store's due-time queue, keeps
//! a short ready queue per channel, and starts attempts while the channel has capacity.
//! Each attempt runs in its own task and reports back when its outcome is written.
//!
//! It wakes when a commit queues messages, when an attempt ends, when the soonest retry is
//! due, and on shutdown (then it waits a little for attempts in flight, whose outcomes
//! would otherwise be attempted again after the restart).

use super::policy::jitter;
use super::{DeliveryError, Outbox};
use crate::{Runtime, RuntimeError};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use waystation_core::effect::DeliveryOutcome;
use waystation_core::{HistoryEntry, HistoryEvent};
use waystation_store::{DueMessage, OutboxRecord, OutboxStatus, StoreError};

/// Attempts for unconfigured channels (they only write their dead letter) at once.
const ORPHAN_CONCURRENCY: usize = 16;
/// How long shutdown waits for attempts in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long to wait before reading the store again after it failed.
const STORE_RETRY: TimeDelta = TimeDelta::seconds(1);
/// A shared store's claim on a message lasts the channel's timeout and this much more.
const CLAIM_MARGIN: Duration = Duration::from_secs(2);

/// Messages a channel keeps ready beyond those in flight: enough to refill its slots
/// between two reads of the queue.
fn ready_cap(concurrency: usize) -> usize {
    (concurrency * 4).max(64)
}

/// An attempt's report to the dispatcher.
struct Done {
    id: String,
    channel: String,
    /// When the message is due again, if it still is pending.
    due_again: Option<DateTime<Utc>>,
}

/// Reports an attempt as ended even if its task panics, so its slot is not lost.
struct DoneGuard {
    tx: mpsc::UnboundedSender<Done>,
    done: Option<Done>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = self.tx.send(done);
        }
    }
}

/// What the dispatcher task knows between wake-ups. Only that task touches it.
#[derive(Default)]
struct Queues {
    /// Messages with an attempt running.
    in_flight: HashSet<String>,
    /// Messages waiting in `ready` or `orphans`.
    queued: HashSet<String>,
    /// Due messages per configured channel, soonest first.
    ready: HashMap<String, VecDeque<DueMessage>>,
    /// Due messages of channels that are not configured.
    orphans: VecDeque<DueMessage>,
    /// Attempts running per configured channel.
    active: HashMap<String, usize>,
    /// Attempts running for unconfigured channels.
    orphans_active: usize,
    /// Channels (and `None` for orphans) that had more due messages than fit at the last
    /// read: read again once their queue runs low.
    more: HashSet<Option<String>>,
    /// When the soonest message not yet queued is due.
    next_wake: Option<DateTime<Utc>>,
    /// The message just before the first one a full queue left out at the last read:
    /// a refill resumes there instead of walking the whole backlog again. (Messages queued
    /// or put back later may sort before it; they wake the dispatcher for a full read.)
    resume: Option<DueMessage>,
}

impl Queues {
    /// Reads due messages into the queues: from the start of the due-time queue when
    /// `full`, else (a refill) from where the last read first found a queue full.
    fn read(
        &mut self,
        rt: &Runtime,
        outbox: &Outbox,
        now: DateTime<Utc>,
        full: bool,
    ) -> Result<(), StoreError> {
        self.more.clear();
        let start = if full { None } else { self.resume.take() };
        let mut next = None;
        let mut previous = start.clone();
        let mut resume: Option<Option<DueMessage>> = None;
        rt.store
            .due_messages(DateTime::<Utc>::MAX_UTC, start.as_ref(), &mut |m| {
                if m.due > now {
                    next = Some(m.due);
                    return false;
                }
                let seen = m.clone();
                if !self.in_flight.contains(&m.id) && !self.queued.contains(&m.id) {
                    let full_queue = match outbox.channels.get(&m.channel) {
                        Some(slot) => {
                            let queue = self.ready.entry(m.channel.clone()).or_default();
                            if queue.len() < ready_cap(slot.concurrency) {
                                self.queued.insert(m.id.clone());
                                queue.push_back(m);
                                None
                            } else {
                                Some(Some(m.channel))
                            }
                        }
                        None if self.orphans.len() < ready_cap(ORPHAN_CONCURRENCY) => {
                            self.queued.insert(m.id.clone());
                            self.orphans.push_back(m);
                            None
                        }
                        None => Some(None),
                    };
                    if let Some(channel) = full_queue {
                        self.more.insert(channel);
                        resume.get_or_insert_with(|| previous.clone());
                    }
                }
                previous = Some(seen);
                true
            })?;
        self.resume = resume.flatten();
        self.next_wake = next;
        Ok(())
    }

    /// Takes the messages whose channel has a free slot, marking them in flight.
    fn startable(&mut self, outbox: &Outbox) -> Vec<DueMessage> {
        let mut out = Vec::new();
        for (name, queue) in &mut self.ready {
            let limit = outbox.channels.get(name).map_or(0, |s| s.concurrency);
            let active = self.active.entry(name.clone()).or_default();
            while *active < limit {
                let Some(m) = queue.pop_front() else { break };
                *active += 1;
                out.push(m);
            }
        }
        while self.orphans_active < ORPHAN_CONCURRENCY {
            let Some(m) = self.orphans.pop_front() else {
                break;
            };
            self.orphans_active += 1;
            out.push(m);
        }
        for m in &out {
            self.queued.remove(&m.id);
            self.in_flight.insert(m.id.clone());
        }
        out
    }

    /// An attempt ended; true when the queue should be read again.
    fn finished(&mut self, done: Done, outbox: &Outbox) -> bool {
        self.in_flight.remove(&done.id);
        if let Some(due) = done.due_again {
            self.next_wake = Some(self.next_wake.map_or(due, |w| w.min(due)));
        }
        let (key, left, cap) = match outbox.channels.get(&done.channel) {
            Some(slot) => {
                if let Some(n) = self.active.get_mut(&done.channel) {
                    *n = n.saturating_sub(1);
                }
                let left = self.ready.get(&done.channel).map_or(0, VecDeque::len);
                (Some(done.channel), left, ready_cap(slot.concurrency))
            }
            None => {
                self.orphans_active = self.orphans_active.saturating_sub(1);
                (None, self.orphans.len(), ready_cap(ORPHAN_CONCURRENCY))
            }
        };
        self.more.contains(&key) && left <= cap / 2
    }

    /// How long to sleep before the soonest known due time.
    fn sleep(&self, now: DateTime<Utc>, shared: bool) -> Duration {
        let sleep = self.next_wake.map_or(Duration::from_secs(3600), |t| {
            (t - now).to_std().unwrap_or(Duration::ZERO)
        });
        // Other nodes queue messages this one does not hear of, and leave theirs when
        // they die: look again at least every second.
        if shared {
            sleep.min(crate::scheduler::SHARED_POLL)
        } else {
            sleep
        }
    }
}

impl Runtime {
    /// Delivers the outbox through `outbox`'s channels until `shutdown` completes; then
    /// waits up to 10 s for attempts in flight.
    pub async fn run_dispatcher(
        self: Arc<Self>,
        outbox: Outbox,
        shutdown: impl Future<Output = ()>,
    ) {
        let outbox = Arc::new(outbox);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut queues = Queues::default();
        let mut tasks = JoinSet::new();
        // `read`: read the due-time queue again; `full`: from its start (new messages, a
        // retry due, an error), rather than a refill where the last read stopped.
        let (mut read, mut full) = (true, true);
        tokio::pin!(shutdown);
        loop {
            if read {
                read = false;
                if let Err(e) = queues.read(&self, &outbox, self.now(), full) {
                    tracing::error!(error = %e, "reading the outbox failed; retrying in 1 s");
                    queues.next_wake = Some(self.now() + STORE_RETRY);
                }
                full = false;
            }
            for m in queues.startable(&outbox) {
                let guard = DoneGuard {
                    tx: done_tx.clone(),
                    done: Some(Done {
                        id: m.id.clone(),
                        channel: m.channel.clone(),
                        due_again: None,
                    }),
                };
                tasks.spawn(self.clone().attempt(outbox.clone(), m, guard));
            }
            let sleep = queues.sleep(self.now(), self.store.shared());
            tokio::select! {
                Some(done) = done_rx.recv() => {
                    read |= queues.finished(done, &outbox);
                    while let Ok(done) = done_rx.try_recv() {
                        read |= queues.finished(done, &outbox);
                    }
                }
                () = self.outbox_wake.notified() => (read, full) = (true, true),
                () = tokio::time::sleep(sleep) => (read, full) = (true, true),
                () = &mut shutdown => break,
            }
            while tasks.try_join_next().is_some() {}
        }
        if !tasks.is_empty() {
            tracing::info!(
                in_flight = tasks.len(),
                "outbox: waiting for deliveries in flight"
            );
            let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    abandoned = tasks.len(),
                    "outbox: deliveries still in flight at shutdown will be attempted again"
                );
            }
        }
    }

    /// One attempt: deliver, write the outcome, report to the dispatcher, wait for the
    /// flush (so an idle server does not leave outcomes only in memory).
    async fn attempt(self: Arc<Self>, outbox: Arc<Outbox>, due: DueMessage, mut guard: DoneGuard) {
        let written = match self.attempt_once(&outbox, &due).await {
            Ok((written, due_again)) => {
                if let Some(done) = guard.done.as_mut() {
                    done.due_again = due_again;
                }
                written
            }
            Err(e) => {
                tracing::error!(message = %due.id, error = %e, "outbox: cannot record a delivery attempt");
                if let Some(done) = guard.done.as_mut() {
                    done.due_again = Some(self.now() + STORE_RETRY);
                }
                false
            }
        };
        drop(guard);
        if written {
            if let Err(e) = self.durability.durable().await {
                tracing::error!(message = %due.id, error = %e, "outbox: flushing a delivery outcome failed");
            }
        }
    }

    /// Delivers `due` once and records the outcome. Answers whether anything was written,
    /// and when the message is due again if it still is pending.
    async fn attempt_once(
        &self,
        outbox: &Outbox,
        due: &DueMessage,
    ) -> Result<(bool, Option<DateTime<Utc>>), RuntimeError> {
        let Some(record) = self.store.outbox_message(&due.id)? else {
            return Ok((false, None));
        };
        // Changed since it was read (delivered meanwhile, or due later): nothing to do now.
        if record.status != OutboxStatus::Pending {
            return Ok((false, None));
        }
        if record.queue_time() > self.now() {
            return Ok((false, Some(record.queue_time())));
        }
        let attempt = record.attempts + 1;
        let channel = &record.message.channel;
        // On a shared store, one node's dispatcher at a time: the claim lasts the channel's
        // timeout and 2 s more, so a node that dies mid-attempt leaves the message to
        // another after that (an embedded store always grants it).
        let lease = outbox
            .channels
            .get(channel)
            .map_or(Duration::ZERO, |s| s.timeout)
            + CLAIM_MARGIN;
        if !self.store.claim_message(&due.id, lease)? {
            return Ok((false, None));
        }
        let started = Instant::now();
        let result = match outbox.channels.get(channel) {
            None => Err(outbox.channels.unconfigured(channel)),
            Some(slot) => {
                // A channel that panics fails this attempt like any other error, retried
                // by the policy and dead in the end; the task unwinding instead would leave
                // the message due at once and read again in a loop.
                let delivery = crate::contain::CatchUnwind::new(
                    slot.channel.deliver(&record.message, attempt),
                );
                match tokio::time::timeout(slot.timeout, delivery).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(panic)) => {
                        tracing::error!(message = %record.message.id, channel = %channel, "outbox: the channel panicked: {panic}");
                        Err(DeliveryError::transient(format!(
                            "the channel failed: {panic}"
                        )))
                    }
                    Err(_) => Err(DeliveryError::transient(format!(
                        "no answer within {} ms",
                        slot.timeout.as_millis()
                    ))),
                }
            }
        };
        let took = started.elapsed();
        self.record_attempt(outbox, &record, attempt, result, took)
            .await
    }

    /// Writes an attempt's outcome and its history entry, under the instance's lock.
    async fn record_attempt(
        &self,
        outbox: &Outbox,
        record: &OutboxRecord,
        attempt: u32,
        result: Result<(), DeliveryError>,
        took: Duration,
    ) -> Result<(bool, Option<DateTime<Utc>>), RuntimeError> {
        let id = &record.message.id;
        let (after, outcome) = {
            let _guard = self.locks.lock(&record.message.instance_id).await;
            if self.store.outbox_message(id)?.as_ref() != Some(record) {
                tracing::warn!(message = %id, "outbox: the message changed during its attempt; outcome not recorded");
                return Ok((false, None));
            }
            let now = self.now();
            let (after, outcome) =
                outbox
                    .policy
                    .after_attempt(record, attempt, &result, now, jitter(id, attempt));
            let entry = HistoryEntry {
                at: now,
                event: HistoryEvent::DeliveryAttempted {
                    message_id: id.clone(),
                    channel: record.message.channel.clone(),
                    attempt,
                    outcome,
                    error: result.as_ref().err().map(|e| e.message.clone()),
                    next_attempt_at: after.next_attempt_at,
                    duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                },
                actor: None,
            };
            self.write_message(record, &after, entry, None)?;
            (after, outcome)
        };
        let m = &self.metrics;
        let (channel, error) = (&record.message.channel, after.last_error.as_deref());
        match outcome {
            DeliveryOutcome::Delivered => {
                m.messages_delivered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(message = %id, %channel, attempt, "outbox: delivered");
            }
            DeliveryOutcome::Retrying => {
                m.delivery_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(message = %id, %channel, attempt, error, next_attempt_at = ?after.next_attempt_at, "outbox: attempt failed");
            }
            DeliveryOutcome::Dead => {
                m.delivery_failures.fetch_add(1, Ordering::Relaxed);
                m.messages_dead.fetch_add(1, Ordering::Relaxed);
                tracing::error!(message = %id, %channel, attempt, error, "outbox: message is dead");
            }
        }
        Ok((true, after.next_attempt_at))
    }

    /// Writes `before -> after` with `entry` in the instance history (when the instance
    /// exists), atomically. The caller holds the instance's lock.
    pub(super) fn write_message(
        &self,
        before: &OutboxRecord,
        after: &OutboxRecord,
        entry: HistoryEntry,
        idempotency: Option<(&str, &waystation_store::IdempotencyRecord)>,
    ) -> Result<(), RuntimeError> {
        let history = [entry];
        // On a shared store another node may move the instance's history on between the
        // read and the write (the update then conflicts and writes nothing): read again.
        let mut attempt = 0;
        loop {
            let mut instance = self.store.instance(&before.message.instance_id)?;
            if let Some(i) = instance.as_mut() {
                i.history_len += 1;
            }
            let written = self
                .store
                .update_message(&waystation_store::DeliveryUpdate {
                    before,
                    after,
                    instance: instance.as_ref(),
                    history: if instance.is_some() { &history } else { &[] },
                    idempotency,
                });
            match written {
                // The other write has landed (it made this one conflict): no pause needed.
                Err(StoreError::Conflict { .. }) if attempt + 1 < crate::contention::ATTEMPTS => {
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    if let Some(i) = &instance {
                        self.changes
                            .publish(i, crate::ChangeKind::Delivery, history[0].at);
                    }
                    return Ok(());
                }
            }
        }
    }
}
