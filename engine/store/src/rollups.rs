//! Report rollups (issue 15): one cell per workflow, group, 15-minute UTC bucket and
//! figure, moved in the same atomic batch as the change that moves it, so a report reads
//! a period's buckets instead of its instances, and a crash or a restart can neither lose
//! nor double a contribution (the batch is wholly there or wholly not).
//!
//! Key: `ru/{workflow}/{dim}/{bucket}/{value}/{figure}` (parts joined by a 0 byte),
//! `dim` empty with an empty `value` for all instances, else a keyword field's name and
//! its value; `bucket` is 15-minute steps since the epoch as 12 decimal digits (instances
//! before 1970 count in bucket 0). Value: [`Cell::encode`]. A figure's cells of one
//! period are next to each other per `dim`, so a month is one range scan.
//!
//! Each commit reads the cells it moves and writes them back: the store's rollup lock is
//! held from that read to the batch's apply, so two commits never move one cell from the
//! same old value.

use crate::keys::{key, prefix};
use crate::kv::{Kv, Mutation};
use crate::{Commit, StoreError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use waystation_core::report::{deltas, Cell, Change, Delta, Numbers};
use waystation_core::{Effect, HistoryEntry, InstanceState};

/// The key of one cell.
fn cell_key(workflow: &str, d: &Delta) -> Vec<u8> {
    key(&[
        b"ru",
        workflow.as_bytes(),
        d.group.dim.as_bytes(),
        format!("{:012}", d.bucket.max(0)).as_bytes(),
        d.group.value.as_bytes(),
        d.metric.as_bytes(),
    ])
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

/// Adds `deltas` of `workflow` into `pending` (cell key -> the change to apply).
fn gather(
    pending: &mut BTreeMap<Vec<u8>, Cell>,
    workflow: &str,
    deltas: Vec<Delta>,
) -> Result<(), StoreError> {
    for d in deltas {
        let k = cell_key(workflow, &d);
        let c = cell_of(d.change);
        match pending.get_mut(&k) {
            Some(old) => old.merge(&c).map_err(|e| corrupt(&k, e))?,
            None => {
                pending.insert(k, c);
            }
        }
    }
    Ok(())
}

/// The cells most recently written, decoded, so that the commits of one busy bucket do not
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

/// The rollup writes of one command's commit. The caller holds the rollup lock (and
/// `cache`) until the batch they join is applied, then keeps them in `cache`.
///
/// # Errors
/// Backend errors reading the cells, or a stored cell that cannot be read.
pub(crate) fn mutations<B: Kv>(
    kv: &B,
    cache: &CellCache,
    commit: &Commit<'_>,
) -> Result<Written, StoreError> {
    let history: Vec<&HistoryEntry> = commit
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::History(h) => Some(h),
            _ => None,
        })
        .collect();
    let moved = deltas(commit.before, commit.after, &history);
    if moved.is_empty() {
        return Ok(Written::default());
    }
    let mut pending = BTreeMap::new();
    gather(&mut pending, &commit.after.workflow, moved)?;
    merged(kv, cache, pending)
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
    let p = prefix(&[b"ru", workflow.as_bytes(), dim.as_bytes()]);
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

/// The key marking rollups that cover every stored instance.
const CURRENT: &[u8] = b"rumeta\0current";

/// See [`crate::ReportStore::reports_current`].
pub(crate) fn current<B: Kv>(kv: &B) -> Result<bool, StoreError> {
    if kv.get(CURRENT)?.is_some() {
        return Ok(true);
    }
    let mut any = false;
    kv.scan(&prefix(&[b"inst"]), None, &mut |_, _| {
        any = true;
        false
    })?;
    if !any {
        kv.apply(vec![Mutation::Put(CURRENT.to_vec(), Vec::new())])?;
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

/// Throws the rollups away and computes them again from every stored instance and its
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
    kv.scan(&prefix(&[b"ru"]), None, &mut |k, _| {
        old.push(Mutation::Delete(k.to_vec()));
        true
    })?;
    apply_chunked(kv, old)?;
    let mut pending = BTreeMap::new();
    let mut done = Rebuilt::default();
    let p = prefix(&[b"inst"]);
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
            gather(&mut pending, &s.workflow, deltas(None, &s, &refs))?;
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
    kv.apply(vec![Mutation::Put(CURRENT.to_vec(), Vec::new())])?;
    kv.flush()?;
    Ok(done)
}
