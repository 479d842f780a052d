//! Report rollups (issue 15): one cell per workflow, group, 15-minute UTC bucket and
//! figure, so a report reads a period's buckets instead of its instances.
//!
//! Key: `ru/{workflow}/{dim}/{bucket}/{value}/{figure}` (parts joined by a 0 byte),
//! `dim` empty with an empty `value` for all instances, else a keyword field's name and
//! its value; `bucket` is 15-minute steps since the epoch as 12 decimal digits (instances
//! before 1970 count in bucket 0). Value: [`Cell::encode`]. A figure's cells of one
//! period are next to each other per `dim`, so a month is one range scan.
//!
//! **Blind writes, folded later.** A commit does not read the cells it moves: it writes one
//! *delta record* `rd/{seq}` (every cell it moves and by how much, [`encode_deltas`]) in the
//! same atomic batch as the change, so a crash can neither lose nor double a contribution,
//! and commits never wait for each other on the rollups. A *fold* reads the pending delta
//! records in `seq` order, adds them into their cells, and writes the cells and deletes the
//! records it read in one batch: the busy cells of a bucket are read, merged and written
//! once per fold instead of once per command. A fold runs when [`FOLD_AT`] records are
//! pending (on the committing thread that crosses the mark, unless another fold is under
//! way) and before every report read, so a report always includes every applied commit.

use crate::keys::{part, prefix};
use crate::kv::{Kv, Mutation};
use crate::{Commit, StoreError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use waystation_core::report::{deltas, Cell, Change, Delta, Numbers};
use waystation_core::{Effect, HistoryEntry, InstanceState};

/// The key of one cell.
fn cell_key(workflow: &str, d: &Delta) -> Vec<u8> {
    let mut k = Vec::with_capacity(cell_key_len(workflow, d));
    write_cell_key(&mut k, workflow, d);
    k
}

/// The length of [`cell_key`]: `ru`, five parts and their separators.
fn cell_key_len(workflow: &str, d: &Delta) -> usize {
    2 + 5 + workflow.len() + d.group.dim.len() + 12 + d.group.value.len() + d.metric.len()
}

/// Appends [`cell_key`] to `out` without allocating: this runs for every delta of every
/// command.
fn write_cell_key(out: &mut Vec<u8>, workflow: &str, d: &Delta) {
    out.extend_from_slice(part::ROLLUP);
    out.push(0);
    out.extend_from_slice(workflow.as_bytes());
    out.push(0);
    out.extend_from_slice(d.group.dim.as_bytes());
    out.push(0);
    // The bucket as 12 decimal digits, zero-padded (buckets before 1970 count as 0).
    let mut digits = [b'0'; 12];
    let mut b = d.bucket.max(0);
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (b % 10) as u8;
        b /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(0);
    out.extend_from_slice(d.group.value.as_bytes());
    out.push(0);
    out.extend_from_slice(d.metric.as_bytes());
}

pub(crate) fn cell_of(change: Change) -> Cell {
    match change {
        Change::Count(n) => Cell::Count(n),
        Change::Duration(s) => Cell::duration(s),
        Change::Number(v) => Cell::Numbers(Numbers::one(v)),
    }
}

fn corrupt(k: &[u8], e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("report cell {}: {e}", String::from_utf8_lossy(k)))
}

/// Adds one change of cell `k` into `pending` (cell key -> the change to apply); the key
/// is copied only the first time it is seen.
fn gather_one(
    pending: &mut BTreeMap<Vec<u8>, Cell>,
    k: &[u8],
    change: Change,
) -> Result<(), StoreError> {
    match pending.get_mut(k) {
        Some(old) => old.add(change).map_err(|e| corrupt(k, e)),
        None => {
            pending.insert(k.to_vec(), cell_of(change));
            Ok(())
        }
    }
}

/// Adds `changes` (cell key, how it moves) into `pending`.
fn gather(
    pending: &mut BTreeMap<Vec<u8>, Cell>,
    changes: impl IntoIterator<Item = (Vec<u8>, Change)>,
) -> Result<(), StoreError> {
    for (k, change) in changes {
        gather_one(pending, &k, change)?;
    }
    Ok(())
}

/// The cells most recently written, decoded, so that the folds of one busy bucket do not
/// read and decode the same cells again: at most [`CACHED`] of them, the oldest written
/// forgotten first. Only the holder of the rollup lock touches it, and only with values
/// that were applied (see [`Written::keep`]), so it always equals the store.
#[derive(Debug, Default)]
pub(crate) struct CellCache {
    cells: HashMap<Vec<u8>, Cell>,
    order: VecDeque<Vec<u8>>,
}

/// Most cells the cache holds (a few MB).
const CACHED: usize = 16_384;

impl CellCache {
    /// Forgets everything (after a rebuild).
    pub(crate) fn clear(&mut self) {
        self.cells.clear();
        self.order.clear();
    }
}

/// A commit's rollup writes, and the cells to remember once its batch is applied.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// The writes, for the batch.
    pub(crate) mutations: Vec<Mutation>,
    cells: Vec<(Vec<u8>, Cell)>,
}

impl Written {
    /// Remembers the written cells; call only after the batch was applied.
    pub(crate) fn keep(self, cache: &mut CellCache) {
        for (k, c) in self.cells {
            if cache.cells.insert(k.clone(), c).is_none() {
                cache.order.push_back(k);
            }
        }
        while cache.order.len() > CACHED {
            if let Some(old) = cache.order.pop_front() {
                cache.cells.remove(&old);
            }
        }
    }
}

/// The writes that add `pending` to the stored cells: read (from `cache`, else the store),
/// merge, write back; a count that reaches zero is removed.
fn merged<B: Kv>(
    kv: &B,
    cache: &CellCache,
    pending: BTreeMap<Vec<u8>, Cell>,
) -> Result<Written, StoreError> {
    let mut out = Written::default();
    for (k, change) in pending {
        let old = match cache.cells.get(&k) {
            Some(c) => Some(c.clone()),
            None => kv
                .get(&k)?
                .map(|bytes| Cell::decode(&bytes).map_err(|e| corrupt(&k, e)))
                .transpose()?,
        };
        let cell = match old {
            Some(mut old) => {
                old.merge(&change).map_err(|e| corrupt(&k, e))?;
                old
            }
            None => change,
        };
        out.mutations.push(if cell.is_zero() {
            Mutation::Delete(k.clone())
        } else {
            Mutation::Put(k.clone(), cell.encode())
        });
        out.cells.push((k, cell));
    }
    Ok(out)
}

/// The delta record of one command's commit: every cell it moves and how, or `None` when
/// it moves none. Reads nothing, so it needs no lock.
pub(crate) fn delta_record(commit: &Commit<'_>) -> Option<Vec<u8>> {
    let history: Vec<&HistoryEntry> = commit
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::History(h) => Some(h),
            _ => None,
        })
        .collect();
    let moved = deltas(commit.before, commit.after, &history);
    (!moved.is_empty()).then(|| encode_deltas(&commit.after.workflow, &moved))
}

const DELTA_COUNT: u8 = b'c';
const DELTA_DURATION: u8 = b'd';
const DELTA_NUMBER: u8 = b'n';

/// A delta record's bytes: per delta, the cell key's length (u32 little-endian), the key,
/// a kind byte (`c` count, `d` duration in seconds, `n` number field value) and its 8-byte
/// little-endian value (i64 or f64).
pub(crate) fn encode_deltas(workflow: &str, deltas: &[Delta]) -> Vec<u8> {
    let size: usize = deltas.iter().map(|d| 13 + cell_key_len(workflow, d)).sum();
    let mut out = Vec::with_capacity(size);
    for d in deltas {
        out.extend_from_slice(&(cell_key_len(workflow, d) as u32).to_le_bytes());
        write_cell_key(&mut out, workflow, d);
        let (kind, word) = match d.change {
            Change::Count(n) => (DELTA_COUNT, n.to_le_bytes()),
            Change::Duration(s) => (DELTA_DURATION, s.to_le_bytes()),
            Change::Number(v) => (DELTA_NUMBER, v.to_le_bytes()),
        };
        out.push(kind);
        out.extend_from_slice(&word);
    }
    out
}

/// What [`decode_deltas`] calls per delta: `(cell key, change)`.
type DeltaVisitor<'a> = dyn FnMut(&[u8], Change) -> Result<(), StoreError> + 'a;

/// The inverse of [`encode_deltas`]: `visit(cell key, change)` for each delta.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the record `at` when the bytes are not such a record, or
/// what `visit` returns.
fn decode_deltas(
    at: &[u8],
    mut bytes: &[u8],
    visit: &mut DeltaVisitor<'_>,
) -> Result<(), StoreError> {
    let bad = || corrupt(at, "delta record");
    while !bytes.is_empty() {
        let len: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let len = u32::from_le_bytes(len) as usize;
        let k = bytes.get(4..4 + len).ok_or_else(bad)?;
        let kind = *bytes.get(4 + len).ok_or_else(bad)?;
        let word: [u8; 8] = bytes
            .get(5 + len..13 + len)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let change = match kind {
            DELTA_COUNT => Change::Count(i64::from_le_bytes(word)),
            DELTA_DURATION => Change::Duration(f64::from_le_bytes(word)),
            DELTA_NUMBER => Change::Number(f64::from_le_bytes(word)),
            _ => return Err(bad()),
        };
        visit(k, change)?;
        bytes = &bytes[13 + len..];
    }
    Ok(())
}

/// Pending delta records that make a commit fold them (a few hundred commands' worth:
/// enough that a busy bucket's cells are merged many commands at a time, few enough that
/// the commit that folds takes a millisecond or two longer, not tens).
pub(crate) const FOLD_AT: usize = 512;

/// Delta records one fold batch takes at most.
const FOLD_CHUNK: usize = 4096;

/// The key of delta record `seq`: big-endian, so records sort in the order they were
/// numbered.
pub(crate) fn delta_key(seq: u64) -> Vec<u8> {
    let mut k = prefix(&[part::DELTA]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The number after the newest pending delta record (0 when none is pending), where a
/// store just opened continues numbering.
///
/// # Errors
/// Backend errors.
pub(crate) fn next_delta_seq<B: Kv>(kv: &B) -> Result<u64, StoreError> {
    let p = prefix(&[part::DELTA]);
    let mut next = 0;
    let mut failed = None;
    kv.scan(&p, None, &mut |k, _| {
        match <[u8; 8]>::try_from(&k[p.len()..]) {
            Ok(b) => next = u64::from_be_bytes(b) + 1,
            Err(_) => failed = Some(corrupt(k, "delta record key")),
        }
        failed.is_none()
    })?;
    failed.map_or(Ok(next), Err)
}

/// Folds up to [`FOLD_CHUNK`] pending delta records into their cells in one batch (the
/// cell writes and the records' deletion together), and says how many it folded. The
/// caller holds the rollup lock (and `cache`): two folds never read the same records.
///
/// # Errors
/// Backend errors, or an unreadable record or cell; nothing was written then.
pub(crate) fn fold<B: Kv>(kv: &B, cache: &mut CellCache) -> Result<usize, StoreError> {
    let p = prefix(&[part::DELTA]);
    let mut records = Vec::new();
    kv.scan(&p, None, &mut |k, v| {
        records.push((k.to_vec(), v.to_vec()));
        records.len() < FOLD_CHUNK
    })?;
    if records.is_empty() {
        return Ok(0);
    }
    let mut pending: BTreeMap<Vec<u8>, Cell> = BTreeMap::new();
    for (k, v) in &records {
        decode_deltas(k, v, &mut |cell, change| {
            gather_one(&mut pending, cell, change)
        })?;
    }
    let mut written = merged(kv, cache, pending)?;
    let n = records.len();
    written
        .mutations
        .extend(records.into_iter().map(|(k, _)| Mutation::Delete(k)));
    kv.apply(std::mem::take(&mut written.mutations))?;
    written.keep(cache);
    Ok(n)
}

/// Folds every pending delta record (a chunk per batch), and says how many.
///
/// # Errors
/// As [`fold`]; the chunks before the failing one stay folded.
pub(crate) fn fold_all<B: Kv>(kv: &B, cache: &mut CellCache) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let n = fold(kv, cache)?;
        total += n;
        if n < FOLD_CHUNK {
            return Ok(total);
        }
    }
}

/// Visits the cells of `workflow` grouped by `dim` (empty: all instances) in buckets
/// `from..to`, in bucket order: `visit(bucket, value, figure, cell)`.
///
/// # Errors
/// Backend errors, an unreadable cell, or what `visit` returns.
pub(crate) fn scan<B: Kv>(
    kv: &B,
    workflow: &str,
    dim: &str,
    (from, to): (i64, i64),
    visit: &mut crate::CellVisitor<'_>,
) -> Result<(), StoreError> {
    let p = prefix(&[part::ROLLUP, workflow.as_bytes(), dim.as_bytes()]);
    // Start just before bucket `from`: its keys sort after `p + digits(from - 1) + 0xff`.
    let mut after = p.clone();
    after.extend_from_slice(format!("{:012}", (from - 1).max(0)).as_bytes());
    after.push(0xff);
    let start = (from > 0).then_some(after);
    let mut failed = None;
    kv.scan(&p, start.as_deref(), &mut |k, v| {
        let rest = &k[p.len()..];
        let parsed = (|| {
            let bucket: i64 = std::str::from_utf8(rest.get(..12)?).ok()?.parse().ok()?;
            let tail = rest.get(13..)?;
            let split = tail.iter().rposition(|b| *b == 0)?;
            let value = std::str::from_utf8(&tail[..split]).ok()?;
            let figure = std::str::from_utf8(&tail[split + 1..]).ok()?;
            Some((bucket, value, figure))
        })();
        let Some((bucket, value, figure)) = parsed else {
            failed = Some(corrupt(k, "key"));
            return false;
        };
        if bucket >= to {
            return false;
        }
        let r = Cell::decode(v)
            .map_err(|e| corrupt(k, e))
            .and_then(|c| visit(bucket, value, figure, c));
        match r {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// Rollup keys deleted and written per batch of a rebuild.
const REBUILD_BATCH: usize = 4096;

/// The key marking rollups that cover every stored instance (`rumeta/current`).
fn current_key() -> Vec<u8> {
    crate::keys::key(&[part::ROLLUP_META, b"current"])
}

/// See [`crate::ReportStore::reports_current`].
pub(crate) fn current<B: Kv>(kv: &B) -> Result<bool, StoreError> {
    if kv.get(&current_key())?.is_some() {
        return Ok(true);
    }
    let mut any = false;
    kv.scan(&prefix(&[part::INSTANCE]), None, &mut |_, _| {
        any = true;
        false
    })?;
    if !any {
        kv.apply(vec![Mutation::Put(current_key(), Vec::new())])?;
    }
    Ok(!any)
}

/// Applies `batch` [`REBUILD_BATCH`] mutations at a time.
fn apply_chunked<B: Kv>(kv: &B, mut batch: Vec<Mutation>) -> Result<(), StoreError> {
    while !batch.is_empty() {
        let rest = batch.split_off(batch.len().min(REBUILD_BATCH));
        kv.apply(std::mem::replace(&mut batch, rest))?;
    }
    Ok(())
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Instances read.
    pub instances: u64,
    /// Cells written.
    pub cells: u64,
}

/// Throws the rollups (cells and pending delta records) away and computes them again from every stored instance and its
/// whole history (instances removed by retention no longer count). For an upgrade that
/// changes what is rolled up, on a store no server has open.
///
/// # Errors
/// Backend errors, an unreadable instance or history.
pub(crate) fn rebuild<B: Kv>(
    kv: &B,
    history: &dyn Fn(&str) -> Result<Vec<HistoryEntry>, StoreError>,
) -> Result<Rebuilt, StoreError> {
    let mut old = Vec::new();
    for p in [prefix(&[part::ROLLUP]), prefix(&[part::DELTA])] {
        kv.scan(&p, None, &mut |k, _| {
            old.push(Mutation::Delete(k.to_vec()));
            true
        })?;
    }
    apply_chunked(kv, old)?;
    let mut pending = BTreeMap::new();
    let mut done = Rebuilt::default();
    let p = prefix(&[part::INSTANCE]);
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        // A chunk of instances at a time: histories are read outside the scan.
        let mut chunk = Vec::new();
        kv.scan(&p, cursor.as_deref(), &mut |k, v| {
            chunk.push((k.to_vec(), v.to_vec()));
            chunk.len() < REBUILD_BATCH
        })?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        cursor = Some(last.clone());
        for (k, v) in chunk {
            let s: InstanceState = serde_json::from_slice(&v).map_err(|e| corrupt(&k, e))?;
            let entries = history(&s.id)?;
            let refs: Vec<&HistoryEntry> = entries.iter().collect();
            let moved = deltas(None, &s, &refs);
            gather(
                &mut pending,
                moved.iter().map(|d| (cell_key(&s.workflow, d), d.change)),
            )?;
            done.instances += 1;
        }
    }
    let writes: Vec<Mutation> = pending
        .into_iter()
        .filter(|(_, c)| !c.is_zero())
        .map(|(k, c)| Mutation::Put(k, c.encode()))
        .collect();
    done.cells = writes.len() as u64;
    apply_chunked(kv, writes)?;
    kv.apply(vec![Mutation::Put(current_key(), Vec::new())])?;
    kv.flush()?;
    Ok(done)
}

/// Deletes up to `max` cells of buckets before `before` (a 15-minute bucket number), and
/// says how many. Walks one `(workflow, dim)` range at a time from its oldest bucket, and
/// skips to the next range at the first cell that is recent enough, so it reads only the
/// cells it deletes and one more per range.
///
/// # Errors
/// Backend errors, or a cell key that does not have the layout; nothing was deleted then.
pub(crate) fn purge<B: Kv>(kv: &B, before: i64, max: usize) -> Result<usize, StoreError> {
    let root = prefix(&[part::ROLLUP]);
    let mut doomed = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    while doomed.len() < max {
        let mut first = None;
        kv.scan(&root, after.as_deref(), &mut |k, _| {
            first = Some(k.to_vec());
            false
        })?;
        let Some(first) = first else { break };
        // `ru/{workflow}/{dim}/`: the range of one workflow and dim.
        let mut seps = first
            .iter()
            .enumerate()
            .skip(root.len())
            .filter(|(_, b)| **b == 0)
            .map(|(i, _)| i);
        let (Some(_), Some(end)) = (seps.next(), seps.next()) else {
            return Err(corrupt(&first, "key"));
        };
        let range = first[..=end].to_vec();
        let mut failed = None;
        kv.scan(&range, None, &mut |k, _| {
            let bucket = std::str::from_utf8(k.get(range.len()..range.len() + 12).unwrap_or(b""))
                .ok()
                .and_then(|d| d.parse::<i64>().ok());
            match bucket {
                Some(b) if b < before => {
                    doomed.push(Mutation::Delete(k.to_vec()));
                    doomed.len() < max
                }
                Some(_) => false,
                None => {
                    failed = Some(corrupt(k, "key"));
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        // Past every key of the range: bucket digits are ASCII, below 0xff.
        let mut next = range;
        next.push(0xff);
        after = Some(next);
    }
    let n = doomed.len();
    if n > 0 {
        kv.apply(doomed)?;
    }
    Ok(n)
}
