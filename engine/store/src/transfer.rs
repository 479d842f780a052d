//! Copying a whole store into another of any kind (issue 17: "`waystation store migrate`
//! able to copy an embedded store into PostgreSQL and back").
//!
//! Two embedded stores copy key by key ([`crate::copy`]); between an embedded store and
//! PostgreSQL the layouts differ, so [`transfer`] copies *records* through the store
//! traits: definitions version by version, then each instance as one commit from nothing
//! to its state with its whole history (so every index, timer, task, count and retention
//! entry is derived by the target's own commit, exactly as for a live command), then the
//! outbox messages as they are (status, attempts, times), idempotency records, tokens and
//! schedules. Report rollups are recomputed on the target from what was copied
//! ([`crate::ReportStore::rebuild_reports`]) rather than copied: their layout is each
//! store's own.

use crate::keys::{self, part, prefix};
use crate::kv::{Kv, Mutation};
use crate::records::{DueTimer, IdempotencyRecord, OutboxRecord, OutboxStatus};
use crate::{Commit, KvStore, Store, StoreError};
use waystation_core::{Effect, InstanceState};

/// What a store must offer beyond the collection traits so it can be copied whole.
pub trait TransferStore {
    /// Up to `limit` instance ids after `after` (exclusive), in byte order of the id.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn instance_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` idempotency records with keys after `after` (exclusive), in key order.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read; [`StoreError::Unreadable`]
    /// for a record that does not parse.
    fn idempotency_records(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, IdempotencyRecord)>, StoreError>;

    /// Writes one row of the timer index as it is: for the rows no instance state derives
    /// (a sub-workflow's pending end or cancellation, `crate::commit::relays`), which a
    /// copy must carry over or the parent (the child) would never hear it. Durable after
    /// [`Store::flush`].
    ///
    /// # Errors
    /// [`StoreError::Backend`]; nothing was written then.
    fn restore_timer(&self, timer: &DueTimer) -> Result<(), StoreError>;

    /// Writes an outbox message exactly as `record` has it (status, attempts, times), with
    /// its place in its status queue. Its instance must be stored already. Durable after
    /// [`Store::flush`].
    ///
    /// # Errors
    /// [`StoreError::Backend`]; nothing was written then.
    fn restore_message(&self, record: &OutboxRecord) -> Result<(), StoreError>;
}

/// How many records [`transfer`] copied, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Definition versions.
    pub definitions: u64,
    /// Instances, each with its history, timers and tasks.
    pub instances: u64,
    /// History entries of those instances.
    pub history_entries: u64,
    /// Rows of the timer index no state derives: pending sub-workflow ends and
    /// cancellations.
    pub relays: u64,
    /// Outbox messages, whatever their status.
    pub messages: u64,
    /// Idempotency records.
    pub idempotency: u64,
    /// API tokens.
    pub tokens: u64,
    /// Schedules.
    pub schedules: u64,
}

/// Instances read and committed per batch: one atomic `commit_all` each (one transaction
/// on PostgreSQL), so a large store copies in few round trips without unbounded memory.
const BATCH: usize = 256;

/// Copies everything in `from` into `to`, which must be empty (no definition, no
/// instance), then recomputes `to`'s report rollups and flushes it. Neither store may be
/// served while it runs.
///
/// # Errors
/// [`StoreError::Backend`] naming what is in the way (`to` not empty) or what failed;
/// [`StoreError::Corrupt`] when a record of `from` does not read back as it should (a
/// history shorter than its instance says). `to` may then hold part of the copy: drop it
/// and run again.
pub fn transfer(from: &dyn Store, to: &dyn Store) -> Result<Transferred, StoreError> {
    if !to.list_definitions()?.is_empty() || !to.instance_ids(None, 1)?.is_empty() {
        return Err(StoreError::backend(
            "the target store is not empty: copy only into a new store",
        ));
    }
    let mut done = Transferred::default();
    copy_definitions(from, to, &mut done)?;
    copy_instances(from, to, &mut done)?;
    copy_relays(from, to, &mut done)?;
    copy_messages(from, to, &mut done)?;
    let mut after: Option<String> = None;
    loop {
        let records = from.idempotency_records(after.as_deref(), BATCH)?;
        for (key, record) in &records {
            to.put_idempotency(key, record)?;
            done.idempotency += 1;
        }
        match records.last() {
            Some((key, _)) if records.len() == BATCH => after = Some(key.clone()),
            _ => break,
        }
    }
    for token in from.tokens()? {
        to.put_token(&token)?;
        done.tokens += 1;
    }
    for schedule in from.schedules()? {
        to.put_schedule(&schedule)?;
        done.schedules += 1;
    }
    to.flush()?;
    to.rebuild_reports()?;
    to.flush()?;
    Ok(done)
}

/// Every version of every workflow, in version order, so the target numbers them alike.
fn copy_definitions(
    from: &dyn Store,
    to: &dyn Store,
    done: &mut Transferred,
) -> Result<(), StoreError> {
    for (id, latest) in from.list_definitions()? {
        for version in 1..=latest {
            let Some(stored) = from.definition(&id, version)? else {
                return Err(StoreError::Corrupt(format!(
                    "workflow '{id}' has version {latest} but no version {version}"
                )));
            };
            let put = to.put_definition(
                &id,
                &stored.definition,
                stored.stored_at,
                stored.uploaded_by.as_ref(),
            )?;
            if put.version != version {
                return Err(StoreError::Corrupt(format!(
                    "workflow '{id}' version {version} was stored as version {} (it equals the version before it)",
                    put.version
                )));
            }
            done.definitions += 1;
        }
    }
    Ok(())
}

/// Each instance as a commit from nothing to its state carrying its whole history.
fn copy_instances(
    from: &dyn Store,
    to: &dyn Store,
    done: &mut Transferred,
) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let ids = from.instance_ids(after.as_deref(), BATCH)?;
        let mut states: Vec<(InstanceState, Vec<Effect>)> = Vec::with_capacity(ids.len());
        for id in &ids {
            let Some(state) = from.instance(id)? else {
                continue; // purged since it was listed
            };
            let history = whole_history(from, &state)?;
            done.history_entries += history.len() as u64;
            states.push((state, history));
        }
        let commits: Vec<Commit<'_>> = states
            .iter()
            .map(|(state, history)| Commit {
                before: None,
                after: state,
                effects: history,
                fired_timer: None,
                idempotency: None,
            })
            .collect();
        if !commits.is_empty() {
            to.commit_all(&commits)?;
            done.instances += commits.len() as u64;
        }
        match ids.last() {
            Some(last) if ids.len() == BATCH => after = Some(last.clone()),
            _ => return Ok(()),
        }
    }
}

/// The history of `state`, every entry as an [`Effect::History`]; it must be as long as
/// the state says, or the target would number entries differently.
fn whole_history(from: &dyn Store, state: &InstanceState) -> Result<Vec<Effect>, StoreError> {
    const PAGE: usize = 1024;
    let mut entries = Vec::new();
    loop {
        let page = from.history(&state.id, entries.len() as u64, PAGE)?;
        let full = page.len() == PAGE;
        entries.extend(page.into_iter().map(|(_, e)| Effect::History(e)));
        if !full {
            break;
        }
    }
    if entries.len() as u64 != state.history_len {
        return Err(StoreError::Corrupt(format!(
            "instance {} says it has {} history entries, the store holds {}",
            state.id,
            state.history_len,
            entries.len()
        )));
    }
    Ok(entries)
}

/// Most overdue timer rows looked at for pending sub-workflow records: they are due when
/// written, so they are among the soonest; a store stopped with more overdue timers than
/// this is refused rather than copied without some of them.
const MAX_OVERDUE: usize = 1_000_000;

/// The timer rows due by now that no instance state derives: pending sub-workflow ends and
/// cancellations (each due at the commit that wrote it, so never in the future).
fn copy_relays(from: &dyn Store, to: &dyn Store, done: &mut Transferred) -> Result<(), StoreError> {
    let overdue = from.due_timers(chrono::Utc::now(), MAX_OVERDUE)?;
    if overdue.len() == MAX_OVERDUE {
        return Err(StoreError::backend(format!(
            "more than {MAX_OVERDUE} timers are overdue in the source: start a server on it to fire them, stop it, then copy"
        )));
    }
    for timer in overdue {
        let derived = from
            .instance(&timer.instance_id)?
            .is_some_and(|s| s.all_timers().iter().any(|t| t.id == timer.timer_id));
        if !derived {
            to.restore_timer(&timer)?;
            done.relays += 1;
        }
    }
    Ok(())
}

/// Every message of every status, as it is.
fn copy_messages(
    from: &dyn Store,
    to: &dyn Store,
    done: &mut Transferred,
) -> Result<(), StoreError> {
    for status in [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
    ] {
        let mut cursor: Option<String> = None;
        loop {
            let page = from.outbox(status, cursor.as_deref(), BATCH)?;
            for record in &page.items {
                to.restore_message(record)?;
                done.messages += 1;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(())
}

impl<B: Kv> TransferStore for KvStore<B> {
    fn instance_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let p = prefix(&[part::INSTANCE]);
        let start = after.map(keys::instance);
        let mut ids = Vec::new();
        self.backend().scan(&p, start.as_deref(), &mut |k, _| {
            ids.push(String::from_utf8_lossy(&k[p.len()..]).into_owned());
            ids.len() < limit
        })?;
        Ok(ids)
    }

    fn idempotency_records(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, IdempotencyRecord)>, StoreError> {
        let p = prefix(&[part::IDEMPOTENCY]);
        let start = after.map(keys::idempotency);
        let mut raw = Vec::new();
        self.backend().scan(&p, start.as_deref(), &mut |k, v| {
            raw.push((
                String::from_utf8_lossy(&k[p.len()..]).into_owned(),
                v.to_vec(),
            ));
            raw.len() < limit
        })?;
        raw.into_iter()
            .map(|(key, bytes)| {
                let record = serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::unreadable(format!("idempotency record {key}"), e))?;
                Ok((key, record))
            })
            .collect()
    }

    fn restore_timer(&self, timer: &DueTimer) -> Result<(), StoreError> {
        let k = keys::timer(timer.due, &timer.timer_id);
        self.backend().apply(vec![Mutation::Put(
            k.clone(),
            timer.instance_id.as_bytes().to_vec(),
        )])?;
        self.timer_armed(&k);
        Ok(())
    }

    fn restore_message(&self, record: &OutboxRecord) -> Result<(), StoreError> {
        let id = &record.message.id;
        let bytes = serde_json::to_vec(record)
            .map_err(|e| StoreError::encode(format!("message {id}"), e))?;
        self.backend().apply(vec![
            Mutation::Put(keys::outbox(id), bytes),
            Mutation::Put(
                keys::outbox_queue(record.status.as_str(), record.queue_time(), id),
                record.message.channel.as_bytes().to_vec(),
            ),
        ])
    }
}
