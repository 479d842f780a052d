//! One command's changes, turned into one atomic batch: the state, its history, timers,
//! approval tasks, outbox messages, indexes and idempotency record together.

use crate::index::index_keys;
use crate::keys;
use crate::kv::Mutation;
use crate::records::{DeliveryUpdate, IdempotencyRecord, OutboxRecord, OutboxStatus};
use crate::StoreError;
use std::collections::HashSet;
use waystation_core::effect::history_of;
use waystation_core::{ChildRef, Effect, HistoryEntry, InstanceState, Status};

/// Everything one command changed.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// The instance before the command (`None` for a start).
    pub before: Option<&'a InstanceState>,
    /// The instance after it.
    pub after: &'a InstanceState,
    /// The effects the core returned (history and messages are taken from here; timers,
    /// tasks and indexes are derived from the two states).
    pub effects: &'a [Effect],
    /// A timer that fired: its index key goes even if the state no longer knew it.
    pub fired_timer: Option<(chrono::DateTime<chrono::Utc>, &'a str)>,
    /// The idempotency record to keep, under its key.
    pub idempotency: Option<(&'a str, &'a IdempotencyRecord)>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::encode("a record", e))
}

/// The child-end and child-cancel records `commit` writes, as `(instance it is for,
/// record id)`: see [`waystation_core::Relay`].
pub(crate) fn relays(commit: &Commit<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(parent) = commit.after.parent_to_tell(commit.before) {
        out.push((
            parent.instance.clone(),
            ChildRef::end_record(&commit.after.id),
        ));
    }
    for e in commit.effects {
        if let Effect::CancelChild { child, .. } = e {
            out.push((child.clone(), ChildRef::cancel_record(child)));
        }
    }
    out
}

/// The batch for `commit`: the state, then its history, outbox messages, timers, relays,
/// approval tasks, query indexes, the retention queue and the idempotency record, in that
/// order.
///
/// # Errors
/// Only if a record cannot be encoded as JSON.
pub(crate) fn mutations(commit: &Commit<'_>) -> Result<Vec<Mutation>, StoreError> {
    let after = commit.after;
    let mut batch = Vec::with_capacity(16 + commit.effects.len());
    batch.push(Mutation::Put(keys::instance(&after.id), json(after)?));
    // The entries take the sequence numbers just below the new length.
    let entries = history_of(commit.effects);
    if let Some(m) = history(&after.id, after.history_len, &entries)? {
        batch.push(m);
    }
    outbox(&mut batch, commit)?;
    timers(&mut batch, commit);
    relay_timers(&mut batch, commit);
    tasks(&mut batch, commit)?;
    indexes(&mut batch, commit);
    retention(&mut batch, commit);
    if let Some((key, record)) = commit.idempotency {
        idempotency(&mut batch, key, record)?;
    }
    Ok(batch)
}

/// Each queued message's record and its key in the pending queue.
fn outbox(batch: &mut Vec<Mutation>, commit: &Commit<'_>) -> Result<(), StoreError> {
    for e in commit.effects {
        if let Effect::Enqueue(message) = e {
            let record = OutboxRecord::queued(message.clone(), commit.after.updated_at);
            batch.push(Mutation::Put(keys::outbox(&message.id), json(&record)?));
            // The queue key carries the channel, so the dispatcher can pick messages for
            // channels with free capacity without reading their records.
            batch.push(Mutation::Put(
                keys::outbox_queue(
                    OutboxStatus::Pending.as_str(),
                    record.queue_time(),
                    &message.id,
                ),
                message.channel.as_bytes().to_vec(),
            ));
        }
    }
    Ok(())
}

/// The due index follows the state's armed timers: every current stage's (a parallel
/// stage's branches each have their own), plus the deletion of a timer that fired.
fn timers(batch: &mut Vec<Mutation>, commit: &Commit<'_>) {
    let after = commit.after;
    let old_timers = commit
        .before
        .map(InstanceState::all_timers)
        .unwrap_or_default();
    let new_timers = after.all_timers();
    let new_ids: HashSet<&str> = new_timers.iter().map(|t| t.id.as_str()).collect();
    let old_ids: HashSet<&str> = old_timers.iter().map(|t| t.id.as_str()).collect();
    for t in old_timers
        .iter()
        .filter(|t| !new_ids.contains(t.id.as_str()))
    {
        batch.push(Mutation::Delete(keys::timer(t.due, &t.id)));
    }
    if let Some((due, id)) = commit.fired_timer {
        batch.push(Mutation::Delete(keys::timer(due, id)));
    }
    for t in new_timers
        .iter()
        .filter(|t| !old_ids.contains(t.id.as_str()))
    {
        batch.push(Mutation::Put(
            keys::timer(t.due, &t.id),
            after.id.as_bytes().to_vec(),
        ));
    }
}

/// What this instance owes others (sub-workflows), as records due at once in the timer
/// index, fired under the other instance's lock and deleted by the commit that acts:
/// a child's end for its parent, a cancellation for each child left behind.
fn relay_timers(batch: &mut Vec<Mutation>, commit: &Commit<'_>) {
    for (owner, record) in relays(commit) {
        batch.push(Mutation::Put(
            keys::timer(commit.after.updated_at, &record),
            owner.as_bytes().to_vec(),
        ));
    }
}

/// Approval tasks and inboxes follow the state's open tasks.
fn tasks(batch: &mut Vec<Mutation>, commit: &Commit<'_>) -> Result<(), StoreError> {
    let old_tasks = commit
        .before
        .map(InstanceState::all_open_tasks)
        .unwrap_or_default();
    let new_tasks = commit.after.all_open_tasks();
    for t in old_tasks
        .iter()
        .filter(|t| !new_tasks.iter().any(|n| n.id == t.id))
    {
        batch.push(Mutation::Delete(keys::task(&t.id)));
        batch.push(Mutation::Delete(keys::inbox(&t.approver, &t.id)));
    }
    for t in new_tasks
        .iter()
        .filter(|t| !old_tasks.iter().any(|o| o.id == t.id))
    {
        batch.push(Mutation::Put(keys::task(&t.id), json(t)?));
        batch.push(Mutation::Put(keys::inbox(&t.approver, &t.id), Vec::new()));
    }
    Ok(())
}

/// The query indexes: keys of the state before that the state after no longer has go,
/// new ones come.
fn indexes(batch: &mut Vec<Mutation>, commit: &Commit<'_>) {
    let new_ix = index_keys(commit.after);
    let old_ix = commit.before.map(index_keys).unwrap_or_default();
    for k in old_ix.difference(&new_ix) {
        batch.push(Mutation::Delete(k.clone()));
    }
    for k in new_ix.difference(&old_ix) {
        batch.push(Mutation::Put(k.clone(), Vec::new()));
    }
}

/// Retention: an instance that finishes joins the queue of finished instances; a retried
/// instance runs again and leaves it (the purge also skips running instances, should their
/// entry have been written at another time).
fn retention(batch: &mut Vec<Mutation>, commit: &Commit<'_>) {
    let after = commit.after;
    let was_running = commit.before.is_none_or(|b| b.status == Status::Running);
    if was_running && after.status != Status::Running {
        batch.push(Mutation::Put(
            keys::finished(after.updated_at, &after.id),
            Vec::new(),
        ));
    }
    if let Some(b) = commit.before.filter(|b| b.status != Status::Running) {
        if after.status == Status::Running {
            batch.push(Mutation::Delete(keys::finished(b.updated_at, &b.id)));
        }
    }
}

/// The history entries one change adds, as ONE value under the sequence number of the last
/// of them (`history_len - 1`): a single entry as its JSON object, several as a JSON array
/// of them, the first taking the number `history_len - entries.len()`. None for no entries.
/// (One key per command instead of one per entry: a start writes 4 to 6 entries.)
fn history(
    id: &str,
    history_len: u64,
    entries: &[&HistoryEntry],
) -> Result<Option<Mutation>, StoreError> {
    let value = match entries {
        [] => return Ok(None),
        [one] => json(one)?,
        many => json(&many)?,
    };
    Ok(Some(Mutation::Put(
        keys::history(id, history_len - 1),
        value,
    )))
}

/// An idempotency record and its place in the expiry queue.
fn idempotency(
    batch: &mut Vec<Mutation>,
    key: &str,
    record: &IdempotencyRecord,
) -> Result<(), StoreError> {
    batch.push(Mutation::Put(keys::idempotency(key), json(record)?));
    if let Some(at) = record.at {
        batch.push(Mutation::Put(keys::idempotency_kept(at, key), Vec::new()));
    }
    Ok(())
}

/// The batch for one outbox message's change and the history it adds.
///
/// # Errors
/// Only if a record cannot be encoded as JSON.
pub(crate) fn delivery_mutations(update: &DeliveryUpdate<'_>) -> Result<Vec<Mutation>, StoreError> {
    let (before, after) = (update.before, update.after);
    let id = &after.message.id;
    let mut batch = Vec::with_capacity(4 + update.history.len());
    batch.push(Mutation::Delete(keys::outbox_queue(
        before.status.as_str(),
        before.queue_time(),
        &before.message.id,
    )));
    batch.push(Mutation::Put(
        keys::outbox_queue(after.status.as_str(), after.queue_time(), id),
        after.message.channel.as_bytes().to_vec(),
    ));
    batch.push(Mutation::Put(keys::outbox(id), json(after)?));
    if let Some(instance) = update.instance {
        batch.push(Mutation::Put(keys::instance(&instance.id), json(instance)?));
        let entries: Vec<&HistoryEntry> = update.history.iter().collect();
        if let Some(m) = history(&instance.id, instance.history_len, &entries)? {
            batch.push(m);
        }
    }
    if let Some((key, record)) = update.idempotency {
        idempotency(&mut batch, key, record)?;
    }
    Ok(batch)
}
