//! Retention over the key layout: the expiry queue of idempotency records (`idemat/`) and
//! the queue of finished instances (`done/`), both ordered by time, purged from the oldest.

use crate::index::index_keys;
use crate::keys::{self, parse_time, part, prefix, time};
use crate::kv::{Kv, Mutation};
use crate::records::{IdempotencyRecord, OutboxRecord, OutboxStatus};
use crate::{InstanceStore, KvStore, RetentionStore, StoreError};
use chrono::{DateTime, Utc};

/// A queue entry: its key, its time, and the rest of the key (an instance id or an
/// idempotency key).
type Queued = (Vec<u8>, DateTime<Utc>, String);

/// The keys of a time-ordered queue under `name` due before `before`, up to `max`, each
/// with its time and the rest of the key (after the time and separator).
fn due<B: Kv>(
    kv: &B,
    name: &[u8],
    before: DateTime<Utc>,
    max: usize,
) -> Result<Vec<Queued>, StoreError> {
    let p = prefix(&[name]);
    let before = time(before);
    let mut out = Vec::new();
    let mut corrupt = None;
    kv.scan(&p, None, &mut |k, _| {
        let rest = &k[p.len()..];
        if out.len() >= max || rest.len() < 9 || rest[..8] >= before[..] {
            return false;
        }
        match (parse_time(rest), String::from_utf8(rest[9..].to_vec())) {
            (Some(at), Ok(id)) => out.push((k.to_vec(), at, id)),
            _ => corrupt = Some(StoreError::Corrupt("a retention queue key".into())),
        }
        corrupt.is_none()
    })?;
    match corrupt {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

impl<B: Kv> RetentionStore for KvStore<B> {
    fn expire_idempotency(&self, before: DateTime<Utc>, max: usize) -> Result<usize, StoreError> {
        let queued = due(self.backend(), part::IDEMPOTENCY_KEPT, before, max)?;
        let mut batch = Vec::with_capacity(queued.len() * 2);
        for (queue_key, at, key) in &queued {
            batch.push(Mutation::Delete(queue_key.clone()));
            // The key may have been used again since (after its record expired): only the
            // record kept at this queue entry's time goes.
            let record = self.backend().get(&keys::idempotency(key))?;
            let current = record
                .map(|bytes| serde_json::from_slice::<IdempotencyRecord>(&bytes))
                .transpose()
                .map_err(|e| StoreError::unreadable(format!("idempotency record {key}"), e))?;
            if current.is_some_and(|r| r.at == Some(*at)) {
                batch.push(Mutation::Delete(keys::idempotency(key)));
            }
        }
        if !batch.is_empty() {
            self.backend().apply(batch)?;
        }
        Ok(queued.len())
    }

    fn purge_report_cells(&self, before: i64, max: usize) -> Result<usize, StoreError> {
        self.purge_rollups(before, max)
    }

    fn purge_finished(&self, before: DateTime<Utc>, max: usize) -> Result<usize, StoreError> {
        let queued = due(self.backend(), part::FINISHED, before, max)?;
        let mut batch = Vec::new();
        for (queue_key, _, id) in &queued {
            let state = match self.instance(id)? {
                // Gone, or running again after a retry: nothing to purge.
                Some(s) if s.status != waystation_core::Status::Running => s,
                _ => {
                    batch.push(Mutation::Delete(queue_key.clone()));
                    continue;
                }
            };
            let messages = self.messages_of(id)?;
            if messages.iter().any(|m| m.status == OutboxStatus::Pending) {
                continue; // still being delivered: its history may grow
            }
            batch.push(Mutation::Delete(queue_key.clone()));
            batch.push(Mutation::Delete(keys::instance(id)));
            self.backend().scan(
                &prefix(&[part::HISTORY, id.as_bytes()]),
                None,
                &mut |k, _| {
                    batch.push(Mutation::Delete(k.to_vec()));
                    true
                },
            )?;
            for t in state.all_timers().iter() {
                batch.push(Mutation::Delete(keys::timer(t.due, &t.id)));
            }
            for t in state.all_open_tasks().iter() {
                batch.push(Mutation::Delete(keys::task(&t.id)));
                batch.push(Mutation::Delete(keys::inbox(&t.approver, &t.id)));
            }
            for k in index_keys(&state) {
                batch.push(Mutation::Delete(k));
            }
            for m in &messages {
                batch.push(Mutation::Delete(keys::outbox(&m.message.id)));
                batch.push(Mutation::Delete(keys::outbox_queue(
                    m.status.as_str(),
                    m.queue_time(),
                    &m.message.id,
                )));
            }
        }
        if !batch.is_empty() {
            self.apply_counted(batch)?;
        }
        Ok(queued.len())
    }
}

impl<B: Kv> KvStore<B> {
    /// The outbox messages of instance `id` (their ids are `{id}.m{n}`).
    fn messages_of(&self, id: &str) -> Result<Vec<OutboxRecord>, StoreError> {
        let p = keys::key(&[part::OUTBOX, format!("{id}.m").as_bytes()]);
        let mut out = Vec::new();
        let mut bad = None;
        self.backend().scan(&p, None, &mut |k, v| {
            match serde_json::from_slice(v) {
                Ok(r) => out.push(r),
                Err(e) => {
                    let at = crate::keys::shown(k);
                    bad = Some(StoreError::unreadable(format!("outbox record at {at}"), e));
                }
            }
            bad.is_none()
        })?;
        bad.map_or(Ok(out), Err)
    }
}
