//! Every collection trait, implemented once over a [`Kv`] backend with the layout of
//! [`crate::keys`].

use crate::commit::{delivery_mutations, mutations, Commit};
use crate::keys::index_name as name;
use crate::keys::{self, parse_time, part, prefix, time};
use crate::kv::{Entry, Kv, Mutation};
use crate::query::{Counts, InstanceQuery, Page};
use crate::records::{
    DeliveryUpdate, DueMessage, DueTimer, IdempotencyRecord, OutboxRecord, OutboxStatus,
    PutDefinition, StoredDefinition,
};
use crate::search::Walk;
use crate::tally::{Tally, TallyState};
use crate::{
    ApprovalStore, DefinitionStore, HistoryStore, IdempotencyStore, InstanceStore, OutboxStore,
    QueryStore, Rebuilt, ReportStore, Store, StoreError, TimerStore,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};
use waystation_core::definition::Approver;
use waystation_core::{ApprovalTask, HistoryEntry, InstanceState};

/// The collections over one backend.
pub struct KvStore<B: Kv> {
    kv: B,
    // Version numbers are read-then-written; uploads are rare, so one lock suffices.
    definitions: Mutex<()>,
    // Counts for metrics and dashboards, built when first asked for. Held while a commit's
    // batch is applied, so each commit is counted once: by the scan that builds them or by
    // its own moves (the backends serialise batches anyway: sled takes a global write lock).
    tally: Mutex<TallyState>,
    /// Held by the one fold of report delta records under way (see `rollups.rs`); holds
    /// the cells written last.
    rollups: Mutex<crate::rollups::CellCache>,
    /// The number of the next report delta record, read from the store on first use;
    /// moved only under the tally lock, after the batch holding the records was applied.
    next_delta: std::sync::OnceLock<AtomicU64>,
    /// Delta records written since the last fold began (approximate: a fold may take
    /// some that were counted after it began).
    unfolded: AtomicUsize,
    /// False only in a benchmark measuring what the rollups cost.
    rollups_on: std::sync::atomic::AtomicBool,
    /// Where the due-timer scan may begin (past the timers already fired).
    timer_floor: crate::timer_floor::TimerFloor,
}

impl<B: Kv + Default> Default for KvStore<B> {
    fn default() -> Self {
        KvStore::new(B::default())
    }
}

impl<B: Kv> KvStore<B> {
    /// Collections over `kv`.
    pub fn new(kv: B) -> Self {
        KvStore {
            kv,
            definitions: Mutex::new(()),
            tally: Mutex::new(TallyState::Unbuilt),
            rollups: Mutex::default(),
            next_delta: std::sync::OnceLock::new(),
            unfolded: AtomicUsize::new(0),
            rollups_on: std::sync::atomic::AtomicBool::new(true),
            timer_floor: crate::timer_floor::TimerFloor::default(),
        }
    }

    /// `f` of the counts. The first time since open they are built by a scan, a chunk at a
    /// time, letting commits in between chunks.
    fn with_tally<R>(&self, f: impl FnOnce(&Tally) -> R) -> Result<R, StoreError> {
        loop {
            let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
            if tally.advance(&self.kv)? {
                return Ok(f(tally.ready().expect("advance said ready")));
            }
            drop(tally);
            std::thread::yield_now(); // let waiting commits take the lock
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.kv
    }

    fn get_json<T: DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>, StoreError> {
        match self.kv.get(k)? {
            None => Ok(None),
            Some(bytes) => decode(k, &bytes).map(Some),
        }
    }

    /// Up to `n` entries under `prefix` after `after`, collected so no backend lock is held
    /// while the caller reads further.
    fn collect(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        n: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        crate::kv::collect(&self.kv, prefix, after, n)
    }

    /// A page of whatever `load` makes of each entry under `prefix`; `None` skips one.
    fn page<T>(
        &self,
        prefix: &[u8],
        cursor: Option<&str>,
        limit: usize,
        load: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
        stop: impl FnMut(&[u8]) -> bool,
    ) -> Result<Page<T>, StoreError> {
        self.page_from(prefix, None, cursor, limit, load, stop)
    }

    /// As [`KvStore::page`], starting after `start` (exclusive) when there is no cursor.
    fn page_from<T>(
        &self,
        prefix: &[u8],
        start: Option<Vec<u8>>,
        cursor: Option<&str>,
        limit: usize,
        mut load: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
        mut stop: impl FnMut(&[u8]) -> bool,
    ) -> Result<Page<T>, StoreError> {
        let limit = match limit {
            0 => 100,
            n => n.min(1000),
        };
        let mut after = match cursor {
            Some(c) => Some(decode_cursor(c, prefix)?),
            None => start,
        };
        let mut items: Vec<(Vec<u8>, T)> = Vec::new();
        loop {
            let chunk = self.collect(prefix, after.as_deref(), 256)?;
            let exhausted = chunk.len() < 256;
            for (k, v) in chunk {
                if stop(&k) {
                    return Ok(finish(items, limit));
                }
                if let Some(item) = load(&k, &v)? {
                    items.push((k.clone(), item));
                    if items.len() > limit {
                        return Ok(finish(items, limit));
                    }
                }
                after = Some(k);
            }
            if exhausted {
                return Ok(finish(items, limit));
            }
        }
    }
}

fn finish<T>(mut items: Vec<(Vec<u8>, T)>, limit: usize) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|(k, _)| hex(k))
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cursor back to the key it names. Cursors are the lowercase hex this store hands out
/// ([`hex`]); anything else - odd length, non-hex or non-ASCII characters, uppercase, a
/// sign - is [`StoreError::BadCursor`]. Reads bytes, never slices the string, so no input
/// can land between the bytes of a character.
fn decode_cursor(cursor: &str, prefix: &[u8]) -> Result<Vec<u8>, StoreError> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = cursor.as_bytes();
    if !text.len().is_multiple_of(2) || text.len() > 2048 {
        return Err(StoreError::BadCursor);
    }
    let bytes = text
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(StoreError::BadCursor)?;
    if bytes.starts_with(prefix) {
        Ok(bytes)
    } else {
        Err(StoreError::BadCursor)
    }
}

fn decode<T: DeserializeOwned>(k: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let at = keys::shown(k);
        StoreError::unreadable(format!("record at {at}"), e)
    })
}

fn utf8(b: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(b.to_vec()).map_err(|_| StoreError::Corrupt("a key is not UTF-8".to_owned()))
}

impl<B: Kv> DefinitionStore for KvStore<B> {
    fn put_definition(
        &self,
        id: &str,
        definition: &Value,
        now: DateTime<Utc>,
        uploaded_by: Option<&waystation_core::Actor>,
    ) -> Result<PutDefinition, StoreError> {
        let _guard = self
            .definitions
            .lock()
            .map_err(|_| StoreError::backend("definition lock poisoned"))?;
        let latest = self.latest_definition(id)?;
        if let Some(latest) = &latest {
            if latest.definition == *definition {
                return Ok(PutDefinition {
                    version: latest.version,
                    created: false,
                });
            }
        }
        let version = latest.map_or(1, |l| l.version + 1);
        let record = StoredDefinition {
            id: id.to_owned(),
            version,
            definition: definition.clone(),
            stored_at: now,
            uploaded_by: uploaded_by.cloned(),
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| StoreError::encode(format!("definition {id} version {version}"), e))?;
        self.kv.apply(vec![
            Mutation::Put(keys::definition(id, version), bytes),
            Mutation::Put(keys::latest(id), version.to_be_bytes().to_vec()),
        ])?;
        Ok(PutDefinition {
            version,
            created: true,
        })
    }

    fn definition(&self, id: &str, version: u32) -> Result<Option<StoredDefinition>, StoreError> {
        self.get_json(&keys::definition(id, version))
    }

    fn latest_definition(&self, id: &str) -> Result<Option<StoredDefinition>, StoreError> {
        match self.kv.get(&keys::latest(id))? {
            None => Ok(None),
            Some(v) => {
                let version = u32::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt(format!("latest version of {id}")))?,
                );
                self.definition(id, version)
            }
        }
    }

    fn list_definitions(&self) -> Result<Vec<(String, u32)>, StoreError> {
        let p = prefix(&[part::LATEST]);
        let mut out = Vec::new();
        for (k, v) in self.collect(&p, None, usize::MAX)? {
            let version = v
                .as_slice()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("version".into()))?;
            out.push((utf8(&k[p.len()..])?, version));
        }
        Ok(out)
    }
}

impl<B: Kv> InstanceStore for KvStore<B> {
    fn instance(&self, id: &str) -> Result<Option<InstanceState>, StoreError> {
        self.get_json(&keys::instance(id))
    }
}

impl<B: Kv> HistoryStore for KvStore<B> {
    fn history(
        &self,
        id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, StoreError> {
        // A key holds the entries of one change under the number of its last entry (see
        // `commit::history`): the first key past `from - 1` holds entry `from`.
        let p = prefix(&[part::HISTORY, id.as_bytes()]);
        let start = from.checked_sub(1).map(|before| keys::history(id, before));
        let mut out = Vec::with_capacity(limit.min(1024));
        // Each key holds at least one entry, so `limit` keys hold enough.
        for (k, v) in self.collect(&p, start.as_deref(), limit)? {
            let last = k[p.len()..]
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("history key".into()))?;
            let entries: Vec<HistoryEntry> = if v.first() == Some(&b'[') {
                decode(&k, &v)?
            } else {
                vec![decode(&k, &v)?]
            };
            let first = (last + 1)
                .checked_sub(entries.len() as u64)
                .ok_or_else(|| StoreError::Corrupt("history key".into()))?;
            for (seq, entry) in (first..).zip(entries) {
                if seq >= from && out.len() < limit {
                    out.push((seq, entry));
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

impl<B: Kv> TimerStore for KvStore<B> {
    fn due_timers(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        let p = prefix(&[part::TIMER]);
        let until = time(until);
        let mut out = Vec::new();
        let mut corrupt = None;
        // From the low-water mark, not the front: the fired timers before it are
        // tombstones a scan from the front would walk (see `timer_floor.rs`).
        self.timer_floor.scanning(|after| {
            let mut first = None;
            self.kv.scan(&p, after, &mut |k, v| {
                if first.is_none() {
                    first = Some(k.to_vec());
                }
                let rest = &k[p.len()..];
                if rest.len() < 9 || rest[..8] > until[..] {
                    return false;
                }
                match (parse_time(rest), utf8(&rest[9..]), utf8(v)) {
                    (Some(due), Ok(timer_id), Ok(instance_id)) => out.push(DueTimer {
                        due,
                        timer_id,
                        instance_id,
                    }),
                    _ => corrupt = Some(StoreError::Corrupt("a timer key".into())),
                }
                out.len() < limit && corrupt.is_none()
            })?;
            Ok::<_, StoreError>(first)
        })?;
        match corrupt {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let p = prefix(&[part::TIMER]);
        let mut next = None;
        let after = self.timer_floor.after();
        self.kv.scan(&p, after.as_deref(), &mut |k, _| {
            next = parse_time(&k[p.len()..]);
            false
        })?;
        Ok(next)
    }
}

impl<B: Kv> ApprovalStore for KvStore<B> {
    fn task(&self, id: &str) -> Result<Option<ApprovalTask>, StoreError> {
        self.get_json(&keys::task(id))
    }

    fn open_tasks(
        &self,
        approver: &Approver,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApprovalTask>, StoreError> {
        let p = match approver {
            Approver::Role(r) => prefix(&[part::INBOX, part::INBOX_ROLE, r.as_bytes()]),
            Approver::User(u) => prefix(&[part::INBOX, part::INBOX_USER, u.as_bytes()]),
        };
        let plen = p.len();
        self.page(
            &p,
            cursor,
            limit,
            |k, _| self.task(&utf8(&k[plen..])?),
            |_| false,
        )
    }
}

impl<B: Kv> OutboxStore for KvStore<B> {
    fn outbox(
        &self,
        status: OutboxStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<OutboxRecord>, StoreError> {
        let p = prefix(&[part::OUTBOX_QUEUE, status.as_str().as_bytes()]);
        let plen = p.len();
        self.page(
            &p,
            cursor,
            limit,
            |k, _| self.get_json(&keys::outbox(&utf8(&k[plen + 9..])?)),
            |_| false,
        )
    }

    fn outbox_message(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        self.get_json(&keys::outbox(id))
    }

    fn due_messages(
        &self,
        until: DateTime<Utc>,
        after: Option<&DueMessage>,
        visit: &mut dyn FnMut(DueMessage) -> bool,
    ) -> Result<(), StoreError> {
        let p = prefix(&[
            part::OUTBOX_QUEUE,
            OutboxStatus::Pending.as_str().as_bytes(),
        ]);
        let until = time(until);
        // Collected a chunk at a time, so no backend lock is held while `visit` runs.
        let mut after: Option<Vec<u8>> =
            after.map(|m| keys::outbox_queue(OutboxStatus::Pending.as_str(), m.due, &m.id));
        loop {
            let chunk = self.collect(&p, after.as_deref(), 256)?;
            let exhausted = chunk.len() < 256;
            for (k, v) in chunk {
                let rest = &k[p.len()..];
                if rest.len() < 9 || rest[..8] > until[..] {
                    return Ok(());
                }
                let due = parse_time(rest)
                    .ok_or_else(|| StoreError::Corrupt("an outbox queue key".into()))?;
                let id = utf8(&rest[9..])?;
                let channel = self.queued_channel(&id, &v)?;
                if !visit(DueMessage { due, id, channel }) {
                    return Ok(());
                }
                after = Some(k);
            }
            if exhausted {
                return Ok(());
            }
        }
    }

    fn next_message_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let p = prefix(&[
            part::OUTBOX_QUEUE,
            OutboxStatus::Pending.as_str().as_bytes(),
        ]);
        let mut next = None;
        self.kv.scan(&p, None, &mut |k, _| {
            next = parse_time(&k[p.len()..]);
            false
        })?;
        Ok(next)
    }

    fn update_message(&self, update: &DeliveryUpdate<'_>) -> Result<(), StoreError> {
        self.kv.apply(delivery_mutations(update)?)
    }
}

impl<B: Kv> KvStore<B> {
    /// The channel of a queue entry: the key's value, or the record's for entries written
    /// before queue keys carried it.
    fn queued_channel(&self, id: &str, value: &[u8]) -> Result<String, StoreError> {
        if !value.is_empty() {
            return utf8(value);
        }
        Ok(self
            .outbox_message(id)?
            .map(|r| r.message.channel)
            .unwrap_or_default())
    }
}

impl<B: Kv> IdempotencyStore for KvStore<B> {
    fn idempotency(&self, k: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get_json(&keys::idempotency(k))
    }

    fn put_idempotency(&self, k: &str, record: &IdempotencyRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| StoreError::encode(format!("idempotency record {k}"), e))?;
        let mut batch = vec![Mutation::Put(keys::idempotency(k), bytes)];
        // Into the expiry queue too, like the records commands keep (see commit.rs).
        if let Some(at) = record.at {
            batch.push(Mutation::Put(keys::idempotency_kept(at, k), Vec::new()));
        }
        self.kv.apply(batch)
    }
}

pub(crate) fn matches(q: &InstanceQuery, s: &InstanceState) -> bool {
    q.workflow.as_ref().is_none_or(|w| *w == s.workflow)
        && q.version.is_none_or(|v| v == s.version)
        && q.stage
            .as_ref()
            .is_none_or(|st| s.current_stages().contains(&st.as_str()))
        && q.status.is_none_or(|st| st == s.status)
        && q.sla.is_none_or(|sla| {
            sla == s.worst_sla().state && s.status == waystation_core::Status::Running
        })
        && q.tag.as_ref().is_none_or(|t| s.tags.contains(t))
        && q.updated_before.is_none_or(|t| s.updated_at < t)
        && q.untouched
            .is_none_or(|u| s.status == waystation_core::Status::Running && u == untouched(s))
        && crate::search::matches(q, s)
}

/// Nobody has acted in the current stage: no approval recorded, and the open level is the
/// one that opened when the stage was entered (a decided level opens the next one later).
///
/// Work is an accepted event or decision (`worked_at`): one accepted in the stage, or the one
/// that led into it, counts. Instances written before `worked_at` was kept are judged by
/// their approvals alone.
fn untouched(s: &InstanceState) -> bool {
    s.worked_at.is_none_or(|w| w < s.stage_entered_at)
        && s.approval.as_ref().is_none_or(|a| {
            a.approvals.is_empty() && a.open.iter().all(|t| t.opened_at <= s.stage_entered_at)
        })
}

impl<B: Kv> QueryStore for KvStore<B> {
    fn query(&self, q: &InstanceQuery) -> Result<Page<InstanceState>, StoreError> {
        if let Some(walk) = crate::search::plan(q) {
            return self.page_from(
                &walk.prefix,
                walk.start.clone(),
                q.cursor.as_deref(),
                q.limit,
                |k, _| {
                    let id = Walk::instance_of(k).ok_or_else(|| {
                        StoreError::Corrupt("an index key names no instance".into())
                    })?;
                    let Some(state) = self.instance(&utf8(id)?)? else {
                        return Ok(None);
                    };
                    Ok((matches(q, &state) && walk.counts(k, &state, q)).then_some(state))
                },
                |k| walk.past_end(k),
            );
        }
        let ix = |parts: &[&[u8]]| {
            let mut all: Vec<&[u8]> = vec![part::INDEX];
            all.extend_from_slice(parts);
            prefix(&all)
        };
        let version_bytes = q.version.map(u32::to_be_bytes);
        let sla = q.sla.map(|s| s.as_str().as_bytes());
        let status = q.status.map(|s| s.as_str().as_bytes());
        // The most selective index the filters allow; the rest are checked on each state.
        let (p, time_prefixed) = match (
            &q.tag,
            &q.workflow,
            &q.stage,
            version_bytes,
            q.updated_before,
            sla,
            status,
        ) {
            (Some(tag), ..) => (ix(&[name::TAG, tag.as_bytes()]), false),
            (None, Some(wf), Some(stage), ..) => {
                (ix(&[name::STAGE, wf.as_bytes(), stage.as_bytes()]), false)
            }
            (None, Some(wf), None, Some(v), ..) => (ix(&[name::VERSION, wf.as_bytes(), &v]), false),
            (None, _, _, _, Some(_), ..) => (ix(&[name::UPDATED]), true),
            (None, Some(wf), _, _, None, Some(sla), _) => {
                (ix(&[name::WORKFLOW_SLA, wf.as_bytes(), sla]), false)
            }
            (None, None, _, _, None, Some(sla), _) => (ix(&[name::SLA, sla]), false),
            (None, None, _, _, None, None, Some(st)) => (ix(&[name::STATUS, st]), false),
            (None, Some(wf), ..) => (ix(&[name::WORKFLOW, wf.as_bytes()]), false),
            _ => (prefix(&[part::INSTANCE]), false),
        };
        let plen = p.len();
        let instances = p == prefix(&[part::INSTANCE]);
        let before = q.updated_before.map(time);
        self.page(
            &p,
            q.cursor.as_deref(),
            q.limit,
            |k, v| {
                let state: InstanceState = if instances {
                    decode(k, v)?
                } else {
                    let id = if time_prefixed {
                        &k[plen + 9..]
                    } else {
                        &k[plen..]
                    };
                    match self.instance(&utf8(id)?)? {
                        Some(s) => s,
                        None => return Ok(None),
                    }
                };
                Ok(matches(q, &state).then_some(state))
            },
            |k| time_prefixed && before.is_some_and(|b| k[plen..plen + 8] >= b[..]),
        )
    }

    fn running_with_key(&self, workflow: &str, key: &str) -> Result<Option<String>, StoreError> {
        // Every keyed start asks this, nearly always of a key nobody holds: a point lookup
        // (bloom filters) answers that, where a range scan would seek into every table.
        let held = keys::key(&[
            part::INDEX,
            keys::index_name::KEY_HELD,
            workflow.as_bytes(),
            key.as_bytes(),
        ]);
        if self.kv.get(&held)?.is_none() {
            return Ok(None);
        }
        // Held: which instance holds it is among the few that ever had the key.
        let p = prefix(&[
            part::INDEX,
            keys::index_name::KEY,
            workflow.as_bytes(),
            key.as_bytes(),
        ]);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let had = self.collect(&p, after.as_deref(), 64)?;
            let Some((last, _)) = had.last() else {
                return Ok(None);
            };
            after = Some(last.clone());
            for (k, _) in &had {
                let id = utf8(&k[p.len()..])?;
                let running = self
                    .instance(&id)?
                    .is_some_and(|s| s.status == waystation_core::Status::Running);
                if running {
                    return Ok(Some(id));
                }
            }
        }
    }

    fn counts(&self, workflow: &str) -> Result<Counts, StoreError> {
        self.with_tally(|t| t.counts(workflow))
    }

    fn count_status(&self, status: waystation_core::Status) -> Result<u64, StoreError> {
        self.with_tally(|t| t.status(status))
    }

    fn build_counts_step(&self) -> Result<bool, StoreError> {
        self.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .advance(&self.kv)
    }
}

/// Index rows one batch of [`KvStore::upgrade_layout`] rewrites.
const UPGRADE_BATCH: usize = 4096;

impl<B: Kv> KvStore<B> {
    /// Collections over `kv` opened on a store's files: [`KvStore::new`], then
    /// [`KvStore::upgrade_layout`], so nothing reads a layout an earlier version wrote.
    ///
    /// # Errors
    /// As [`KvStore::upgrade_layout`].
    pub fn opened(kv: B) -> Result<Self, StoreError> {
        let store = KvStore::new(kv);
        store.upgrade_layout()?;
        Ok(store)
    }

    /// Rewrites what a store written by an earlier version keeps in an earlier layout:
    /// the running instances' business keys (`ix/rkey/{workflow}/{key}/{instance}`) as
    /// point keys (`ix/rk/{workflow}/{key}`), and the report cells (one key per figure,
    /// `ru/...`) as bucket values (`rb/...`, see the `rollups` module). Call it once after
    /// opening, before any command: a store that was never in an old layout costs two
    /// empty range reads. In batches of 4,096 keys, each atomic; one interrupted is
    /// finished at the next open. Returns how many keys it rewrote.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for an old key that is not
    /// `{workflow}/{key}/{instance}`, or an old report cell that does not decode.
    pub fn upgrade_layout(&self) -> Result<usize, StoreError> {
        let keys = self.upgrade_running_keys()?;
        Ok(keys + crate::rollups::upgrade_cells(&self.kv)?)
    }

    /// The running business keys of [`KvStore::upgrade_layout`].
    fn upgrade_running_keys(&self) -> Result<usize, StoreError> {
        let p = prefix(&[part::INDEX, keys::index_name::RUNNING_KEY]);
        let mut rewritten = 0;
        // Each batch after the last key of the one before: not over its deletions.
        let mut after: Option<Vec<u8>> = None;
        loop {
            let old = self.collect(&p, after.as_deref(), UPGRADE_BATCH)?;
            let Some((last, _)) = old.last() else {
                return Ok(rewritten);
            };
            after = Some(last.clone());
            let mut batch = Vec::with_capacity(2 * old.len());
            for (k, _) in old {
                let rest = &k[p.len()..];
                // `{workflow} 0 {key} 0 {instance}`: a workflow id has no 0 byte, an
                // instance id neither, so the key is what lies between.
                let first = rest.iter().position(|b| *b == 0);
                let last = rest.iter().rposition(|b| *b == 0);
                let (Some(first), Some(last)) = (first, last.filter(|l| Some(*l) > first)) else {
                    return Err(StoreError::Corrupt(format!(
                        "running business key index entry {}",
                        keys::shown(&k)
                    )));
                };
                let (workflow, key) = (&rest[..first], &rest[first + 1..last]);
                batch.push(Mutation::Put(
                    keys::key(&[part::INDEX, keys::index_name::KEY_HELD, workflow, key]),
                    Vec::new(),
                ));
                batch.push(Mutation::Delete(k));
                rewritten += 1;
            }
            self.kv.apply(batch)?;
        }
    }

    /// Turns the report rollups off (or on again), for a benchmark measuring what they cost
    /// per command. A store that commits with them off answers reports wrongly until
    /// `waystation reports rebuild`: nothing else may turn them off.
    #[doc(hidden)]
    pub fn set_rollups_for_benchmark(&self, on: bool) {
        self.rollups_on.store(on, Ordering::Relaxed);
    }

    /// Applies `batch`, moving the counts by the index keys it puts and deletes.
    pub(crate) fn apply_counted(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        self.apply_recorded(batch, Vec::new())
    }

    /// [`KvStore::apply_counted`] with report delta `records` added to the batch. Their
    /// numbers are taken under the lock that orders the batches, so records are numbered
    /// in the order they become visible: a fold that has seen record `n` has seen every
    /// record before it, and the next fold may start after `n`.
    fn apply_recorded(
        &self,
        mut batch: Vec<Mutation>,
        records: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let moves = tally.moves_of(&batch);
        let numbers = match records.is_empty() {
            true => None,
            false => Some(self.delta_numbers()?),
        };
        let first = numbers.map_or(0, |n| n.load(Ordering::Relaxed));
        let recorded = records.len() as u64;
        for (seq, record) in (first..).zip(records) {
            batch.push(Mutation::Put(crate::rollups::delta_key(seq), record));
        }
        let armed = earliest_timer(&batch);
        self.kv.apply(batch)?;
        if let Some(k) = armed {
            self.timer_floor.armed(&k);
        }
        // Only now: a batch that failed leaves no gap in the numbering.
        if let Some(n) = numbers {
            n.store(first + recorded, Ordering::Relaxed);
        }
        tally.record(&moves);
        Ok(())
    }
}

/// The smallest timer key `batch` puts, if it puts any.
fn earliest_timer(batch: &[Mutation]) -> Option<Vec<u8>> {
    let p = prefix(&[part::TIMER]);
    batch
        .iter()
        .filter_map(|m| match m {
            Mutation::Put(k, _) if k.starts_with(&p) => Some(k),
            _ => None,
        })
        .min()
        .cloned()
}

impl<B: Kv> KvStore<B> {
    /// A timer key was put outside a commit (a restore): the due scan's mark goes below
    /// it.
    pub(crate) fn timer_armed(&self, k: &[u8]) {
        self.timer_floor.armed(k);
    }

    /// The report delta record numbering: the number of the next record.
    fn delta_numbers(&self) -> Result<&AtomicU64, StoreError> {
        if let Some(n) = self.next_delta.get() {
            return Ok(n);
        }
        // Two first commits may both read; both read the same (no record is numbered
        // before one of them sets it), and the one that sets it wins.
        let first = crate::rollups::next_delta_seq(&self.kv)?;
        let _ = self.next_delta.set(AtomicU64::new(first));
        self.next_delta
            .get()
            .ok_or_else(|| StoreError::Corrupt("report delta numbering not initialised".into()))
    }

    /// Runs `fold` with the rollup lock held, and with the tally lock too when the fold
    /// must scan while no batch is applied (see `rollups::CellCache`).
    fn folding<T>(
        &self,
        cache: &mut crate::rollups::CellCache,
        fold: impl FnOnce(&mut crate::rollups::CellCache) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _quiet = cache
            .needs_quiet_scan()
            .then(|| self.tally.lock().unwrap_or_else(PoisonError::into_inner));
        fold(cache)
    }

    /// See [`crate::RetentionStore::purge_report_cells`]. Under the rollup lock, after
    /// folding what is pending (else a later fold would bring a purged cell back from its
    /// delta records), with the cell cache emptied (else a fold would write a purged cell
    /// back from its cached value).
    pub(crate) fn purge_rollups(&self, before: i64, max: usize) -> Result<usize, StoreError> {
        let mut cache = self.rollups.lock().unwrap_or_else(PoisonError::into_inner);
        self.unfolded.store(0, Ordering::Relaxed);
        self.folding(&mut cache, |c| crate::rollups::fold_all(&self.kv, c))?;
        cache.clear();
        crate::rollups::purge(&self.kv, before, max)
    }

    /// Folds a chunk of the pending report delta records when the backlog reached
    /// `rollups::FOLD_INLINE_AT` (the runtime's folder folds long before, off the command's
    /// thread) and no other fold is under way. The commit that calls it is already applied, so a failure here must
    /// not fail it: the records stay pending, and the next fold (at the latest the one a
    /// report read runs, which returns its error) takes them.
    fn fold_if_due(&self, written: usize) {
        if self.unfolded.fetch_add(written, Ordering::Relaxed) + written
            < crate::rollups::FOLD_INLINE_AT
        {
            return;
        }
        let mut cache = match self.rollups.try_lock() {
            Ok(c) => c,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        self.unfolded.store(0, Ordering::Relaxed);
        let _ = self.folding(&mut cache, |c| crate::rollups::fold(&self.kv, c));
    }
}

impl<B: Kv> KvStore<B> {
    /// Adds `commit`'s mutations to `batch` and its report delta record, if it moves a
    /// figure, to `records`.
    fn add_commit(
        &self,
        batch: &mut Vec<Mutation>,
        records: &mut Vec<Vec<u8>>,
        commit: &Commit<'_>,
    ) -> Result<(), StoreError> {
        batch.append(&mut mutations(commit)?);
        if self.rollups_on.load(Ordering::Relaxed) {
            records.extend(crate::rollups::delta_record(commit));
        }
        Ok(())
    }
}

impl<B: Kv> Store for KvStore<B> {
    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        self.commit_all(std::slice::from_ref(commit))
    }

    fn commit_all(&self, commits: &[Commit<'_>]) -> Result<(), StoreError> {
        let mut batch = Vec::new();
        let mut records = Vec::new();
        for commit in commits {
            self.add_commit(&mut batch, &mut records, commit)?;
        }
        let recorded = records.len();
        self.apply_recorded(batch, records)?;
        if recorded > 0 {
            self.fold_if_due(recorded);
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush()
    }

    fn flush_holds_commits(&self) -> bool {
        self.kv.flush_holds_commits()
    }
}

impl<B: Kv> ReportStore for KvStore<B> {
    fn report_cells(
        &self,
        workflow: &str,
        dim: &str,
        buckets: (i64, i64),
        visit: &mut crate::CellVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.fold_reports()?;
        crate::rollups::scan(&self.kv, workflow, dim, buckets, visit)
    }

    fn fold_reports(&self) -> Result<usize, StoreError> {
        let mut cache = self.rollups.lock().unwrap_or_else(PoisonError::into_inner);
        self.unfolded.store(0, Ordering::Relaxed);
        self.folding(&mut cache, |c| crate::rollups::fold_all(&self.kv, c))
    }

    fn reports_pending(&self) -> usize {
        self.unfolded.load(Ordering::Relaxed)
    }

    fn reports_current(&self) -> Result<bool, StoreError> {
        let _rollups = self.rollups.lock().unwrap_or_else(PoisonError::into_inner);
        crate::rollups::current(&self.kv)
    }

    fn rebuild_reports(&self) -> Result<Rebuilt, StoreError> {
        let mut cache = self.rollups.lock().unwrap_or_else(PoisonError::into_inner);
        cache.reset();
        crate::rollups::rebuild(&self.kv, &|id| {
            Ok(self
                .history(id, 0, usize::MAX)?
                .into_iter()
                .map(|(_, e)| e)
                .collect())
        })
    }
}

impl KvStore<crate::SledKv> {
    /// Opens the sled store in directory `path`.
    ///
    /// # Errors
    /// As [`crate::SledKv::open`] and [`KvStore::upgrade_layout`].
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        KvStore::opened(crate::SledKv::open(path)?)
    }
}

impl KvStore<crate::FjallKv> {
    /// Opens the fjall store in directory `path`.
    ///
    /// # Errors
    /// As [`crate::FjallKv::open`] and [`KvStore::upgrade_layout`].
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        KvStore::opened(crate::FjallKv::open(path)?)
    }
}

impl KvStore<crate::RedbKv> {
    /// Opens the redb store in directory `path`.
    ///
    /// # Errors
    /// As [`crate::RedbKv::open`] and [`KvStore::upgrade_layout`].
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        KvStore::opened(crate::RedbKv::open(path)?)
    }
}
