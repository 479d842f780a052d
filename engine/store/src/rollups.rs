//! Report rollups (issue 15): one value per workflow, group and 15-minute UTC bucket
//! holding a cell per figure, so a report reads a period's buckets instead of its
//! instances.
//!
//! Key: `rb/{workflow}/{dim}/{bucket}/{value}` (parts joined by a 0 byte), `dim` empty
//! with an empty `value` for all instances, else a keyword field's name and its value;
//! `bucket` is 15-minute steps since the epoch as 12 decimal digits (instances before 1970
//! count in bucket 0). Value: every figure's cell, [`Bucket`]. The buckets of one period
//! are next to each other per `dim`, so a month is one range scan. Stores written before
//! kept one key per figure (`ru/{workflow}/{dim}/{bucket}/{value}/{figure}`); opening one
//! rewrites them ([`upgrade_cells`]).
//!
//! **Blind writes, folded later.** A commit does not read the cells it moves: it writes one
//! *delta record* `rm/{seq}` (what moves, once, and the groups it counts in: [`encode_moves`];
//! stores written before it hold `rd/{seq}` records naming every cell, [`decode_deltas`]) in the
//! same atomic batch as the change, so a crash can neither lose nor double a contribution,
//! and commits never wait for each other on the rollups. A *fold* reads the pending delta
//! records in `seq` order, adds them into their cells, and writes the cells and deletes the
//! records it read in one batch: the busy cells of a bucket are read, merged and written
//! once per fold instead of once per command. A fold runs on the runtime's report folder
//! thread when [`FOLD_AT`] records are pending, on the committing thread only past
//! [`FOLD_INLINE_AT`] (a backstop), and before every report read, so a report always
//! includes every applied commit.

mod bucket;

pub(crate) use bucket::cell_of;
pub use bucket::{Bucket, BucketError};

use crate::keys::{part, prefix};
use crate::kv::{Kv, Mutation};
use crate::{Commit, StoreError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use waystation_core::effect::history_of;
use waystation_core::report::{deltas, moves, Change, Delta, Move, Moves};
use waystation_core::{HistoryEntry, InstanceState};

/// The key of the bucket value a delta moves (its figure is `d.metric` inside it).
fn bucket_key(workflow: &str, d: &Delta) -> Vec<u8> {
    let mut k =
        Vec::with_capacity(2 + 4 + workflow.len() + d.group.dim.len() + 12 + d.group.value.len());
    write_bucket_key(
        &mut k,
        workflow.as_bytes(),
        (d.group.dim.as_bytes(), d.group.value.as_bytes()),
        &bucket_digits(d.bucket),
    );
    k
}

/// The bucket as 12 decimal digits, zero-padded (buckets before 1970 count as 0).
fn bucket_digits(bucket: i64) -> [u8; 12] {
    let mut digits = [b'0'; 12];
    let mut b = bucket.max(0);
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (b % 10) as u8;
        b /= 10;
    }
    digits
}

/// Appends a bucket value's key to `out` without allocating (`digits`:
/// [`bucket_digits`]): this runs for every group of every move a fold takes.
fn write_bucket_key(
    out: &mut Vec<u8>,
    workflow: &[u8],
    (dim, value): (&[u8], &[u8]),
    digits: &[u8; 12],
) {
    out.extend_from_slice(part::ROLLUP_BUCKET);
    out.push(0);
    out.extend_from_slice(workflow);
    out.push(0);
    out.extend_from_slice(dim);
    out.push(0);
    out.extend_from_slice(digits);
    out.push(0);
    out.extend_from_slice(value);
}

/// A cell key of the earlier layout (`ru/{workflow}/{dim}/{bucket}/{value}/{figure}`) as
/// the key of its bucket value and its figure; `None` when it has no figure part.
fn split_cell_key(k: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let rest = k.strip_prefix(part::ROLLUP)?.strip_prefix(&[0])?;
    let split = rest.iter().rposition(|b| *b == 0)?;
    let mut key = prefix(&[part::ROLLUP_BUCKET]);
    key.extend_from_slice(&rest[..split]);
    Some((key, &rest[split + 1..]))
}

fn corrupt(k: &[u8], e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("report bucket {}: {e}", crate::keys::shown(k)))
}

/// Adds `changes` (bucket key, figure, how it moves) into `pending`, for a rebuild.
fn gather(
    pending: &mut BTreeMap<Vec<u8>, Bucket>,
    changes: impl IntoIterator<Item = (Vec<u8>, String, Change)>,
) -> Result<(), StoreError> {
    for (k, figure, change) in changes {
        let b = pending.entry(k.clone()).or_default();
        b.add(figure.as_bytes(), change)
            .map_err(|e| corrupt(&k, e))?;
    }
    Ok(())
}

/// The bucket values most recently written, so that the folds of one busy bucket do not
/// read them from the store again: at most [`CACHED`] of them, the oldest written
/// forgotten first. Only the holder of the rollup lock touches it. A fold takes the buckets
/// it moves out and puts them back only once its batch is applied, so the cache never
/// holds a value the store does not.
#[derive(Debug, Default)]
pub(crate) struct CellCache {
    cells: HashMap<Vec<u8>, Bucket>,
    order: VecDeque<Vec<u8>>,
    /// The number of the newest record folded: the next fold scans after it, not over
    /// the deletions of every record folded since the store's memtable was last flushed.
    /// Records are numbered without gaps in the order their batches are applied (see
    /// `KvStore::apply_recorded`); a fold takes only the unbroken run after this one, so a
    /// record whose batch a scan met half-applied is taken by the next fold. `None` (a
    /// store just opened, a rebuild): the next fold must scan while no batch is applied
    /// ([`CellCache::needs_quiet_scan`]).
    folded: Option<u64>,
    /// No record of the first layout is left (none is ever written again).
    legacy_done: bool,
}

/// Most bucket values the cache holds, as their stored bytes (a bucket holds a few dozen
/// figures in a few KB: a few MB in all, tens of MB for workflows of many stages).
const CACHED: usize = 2_048;

impl CellCache {
    /// Forgets the cells (after a purge of old cells).
    pub(crate) fn clear(&mut self) {
        self.cells.clear();
        self.order.clear();
    }

    /// Forgets everything, where folding has reached too (after a rebuild).
    pub(crate) fn reset(&mut self) {
        *self = CellCache::default();
    }

    /// True when the next fold must scan while no commit's batch is being applied: it
    /// does not know which record comes next.
    pub(crate) fn needs_quiet_scan(&self) -> bool {
        self.folded.is_none()
    }

    /// Puts back the cells of an applied fold: a cell taken out keeps its place in the
    /// order, a new one goes last.
    fn put_back(&mut self, cells: CellMap) {
        for (k, mut slot) in cells {
            if !slot.cached {
                self.order.push_back(k.clone());
            }
            slot.bucket.release_cells();
            self.cells.insert(k, slot.bucket);
        }
        while self.order.len() > CACHED {
            if let Some(old) = self.order.pop_front() {
                self.cells.remove(&old);
            }
        }
    }
}

/// A bucket value a fold moves, with every change so far added.
struct Slot {
    bucket: Bucket,
    /// Taken out of the cache (its key is still in the cache's order).
    cached: bool,
}

/// The bucket values one fold moves, each read once (from the cache, else the store) on
/// its first change and changed in place after that.
struct Folding<'a, B: Kv> {
    kv: &'a B,
    cache: &'a mut CellCache,
    cells: CellMap,
}

/// The bucket values of one fold by key.
type CellMap = HashMap<Vec<u8>, Slot, foldhash::fast::RandomState>;

impl<B: Kv> Folding<'_, B> {
    /// Adds each `(figure, change)` into bucket value `k`, in order.
    fn add(&mut self, k: &[u8], figures: &[(&[u8], Change)]) -> Result<(), StoreError> {
        let add_all = |b: &mut Bucket| {
            figures
                .iter()
                .try_for_each(|(figure, change)| b.add(figure, *change))
                .map_err(|e| corrupt(k, e))
        };
        if let Some(slot) = self.cells.get_mut(k) {
            return add_all(&mut slot.bucket);
        }
        let (mut bucket, cached) = match self.cache.cells.remove(k) {
            Some(b) => (b, true),
            None => {
                let stored = self.kv.get(k)?;
                let old = stored
                    .map(|bytes| Bucket::decode(&bytes).map_err(|e| corrupt(k, e)))
                    .transpose()?;
                (old.unwrap_or_default(), false)
            }
        };
        add_all(&mut bucket)?;
        self.cells.insert(k.to_vec(), Slot { bucket, cached });
        Ok(())
    }

    /// Writes the moved bucket values (one whose counts all came back to zero is
    /// removed) and deletes `records` in one batch, then puts the values back into the
    /// cache.
    fn apply(mut self, records: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let mut batch = Vec::with_capacity(self.cells.len() + records.len());
        for (k, slot) in &mut self.cells {
            batch.push(match slot.bucket.encode() {
                None => Mutation::Delete(k.clone()),
                Some(bytes) => Mutation::Put(k.clone(), bytes),
            });
        }
        batch.extend(records.into_iter().map(Mutation::Delete));
        self.kv.apply(batch)?;
        self.cache.put_back(self.cells);
        Ok(())
    }
}

/// The delta record of one command's commit ([`encode_moves`]), or `None` when it moves
/// nothing. Reads nothing, so it needs no lock.
pub(crate) fn delta_record(commit: &Commit<'_>) -> Option<Vec<u8>> {
    let history = history_of(commit.effects);
    let moved = moves(commit.before, commit.after, &history);
    (!moved.is_empty()).then(|| encode_moves(&commit.after.workflow, &moved))
}

const DELTA_COUNT: u8 = b'c';
const DELTA_DURATION: u8 = b'd';
const DELTA_NUMBER: u8 = b'n';

/// The scope byte of a move counted in every group of the record.
const EVERY_GROUP: u8 = b'e';
/// The scope byte of a move counted in the one group that follows it.
const ONE_GROUP: u8 = b'g';

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_move(out: &mut Vec<u8>, m: &Move<'_>) {
    out.extend_from_slice(&m.bucket.to_le_bytes());
    out.extend_from_slice(&(m.metric.name_len() as u32).to_le_bytes());
    m.metric.write_name(out);
    let (kind, word) = match m.change {
        Change::Count(n) => (DELTA_COUNT, n.to_le_bytes()),
        Change::Duration(s) => (DELTA_DURATION, s.to_le_bytes()),
        Change::Number(v) => (DELTA_NUMBER, v.to_le_bytes()),
    };
    out.push(kind);
    out.extend_from_slice(&word);
}

/// A delta record's bytes (lengths are u32 little-endian, each string preceded by its
/// length): the workflow; the number of groups (u32) and each group's field and value;
/// then per move a scope byte (`e`: every group; `g`: the group whose field and value
/// follow), the bucket (i64), the figure's name, a kind byte (`c` count, `d` duration in
/// seconds, `n` number field value) and its 8-byte value (i64 or f64). A move is stored
/// once, not once per group: the fold spreads it.
pub(crate) fn encode_moves(workflow: &str, moved: &Moves<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 48 * (moved.cohort.len() + moved.events.len()));
    put_str(&mut out, workflow);
    out.extend_from_slice(&(moved.groups.len() as u32).to_le_bytes());
    for g in &moved.groups {
        put_str(&mut out, g.dim);
        put_str(&mut out, g.value);
    }
    for (g, m) in &moved.cohort {
        out.push(ONE_GROUP);
        put_str(&mut out, g.dim);
        put_str(&mut out, g.value);
        put_move(&mut out, m);
    }
    for m in &moved.events {
        out.push(EVERY_GROUP);
        put_move(&mut out, m);
    }
    out
}

/// The change a kind byte and its 8-byte value stand for (both record layouts); `None`
/// for a kind no layout writes.
fn change_of(kind: u8, word: [u8; 8]) -> Option<Change> {
    match kind {
        DELTA_COUNT => Some(Change::Count(i64::from_le_bytes(word))),
        DELTA_DURATION => Some(Change::Duration(f64::from_le_bytes(word))),
        DELTA_NUMBER => Some(Change::Number(f64::from_le_bytes(word))),
        _ => None,
    }
}

/// Reads an [`encode_moves`] record from the front.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(head)
    }

    fn word(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    fn len(&mut self) -> Option<usize> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    /// A move's bucket, figure name and change.
    fn one_move(&mut self) -> Option<(i64, &'a [u8], Change)> {
        let bucket = i64::from_le_bytes(self.word()?);
        let metric = self.bytes()?;
        let kind = *self.take(1)?.first()?;
        let word = self.word()?;
        Some((bucket, metric, change_of(kind, word)?))
    }
}

/// The inverse of [`encode_moves`], spread over the groups: `visit(bucket key, figures)`
/// for each group's bucket that moves, with each of its figures that moves and how.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the record `at` when the bytes are not such a record, or
/// what `visit` returns.
fn decode_moves(at: &[u8], bytes: &[u8], visit: &mut DeltaVisitor<'_>) -> Result<(), StoreError> {
    let mut counts = Counts::default();
    gather_moves(at, bytes, &mut counts, visit)?;
    counts.spread(visit)
}

/// The count moves of one fold, summed per record head (workflow and the groups the
/// instance is in), scope, bucket and figure before they are spread over the groups.
///
/// Why: most moves are counts, and in a busy bucket many records share a head (the same
/// tier, category, priority), so a fold that sums first spreads each sum once over the
/// groups instead of each record's move. Counts are integers, so summing first gives the
/// same cells to the bit; durations and number values are added one by one in record
/// order as before, so their floating sums do not depend on where folds begin.
#[derive(Default)]
struct Counts<'r> {
    /// Each distinct head, by its bytes: its index in `parsed`.
    heads: HashMap<&'r [u8], usize, foldhash::fast::RandomState>,
    /// The heads read: workflow and groups (field, value).
    parsed: Vec<Head<'r>>,
    /// `(head, one group or every group, bucket, figure)` -> the summed count.
    sums: HashMap<CountKey<'r>, i64, foldhash::fast::RandomState>,
}

/// A record head: its workflow and the groups its instance is in.
/// Taken as bytes: they go into keys as they are, and the record was written from
/// strings (no UTF-8 check per record).
type Head<'r> = (&'r [u8], Vec<(&'r [u8], &'r [u8])>);

/// Where a summed count goes: a head, the one group a cohort move names (else every group
/// of the head), a bucket and a figure.
type CountKey<'r> = (usize, Option<(&'r [u8], &'r [u8])>, i64, &'r [u8]);

impl<'r> Counts<'r> {
    /// Spreads every sum over its groups: `visit(bucket key, figures)` once per group's
    /// bucket, with every figure of it that moves; a sum of zero moves nothing.
    fn spread(self, visit: &mut DeltaVisitor<'_>) -> Result<(), StoreError> {
        let mut sums: Vec<(CountKey<'r>, i64)> =
            self.sums.into_iter().filter(|(_, n)| *n != 0).collect();
        // The sums of one head, scope and bucket together: one key per group for them all.
        let place = |k: &CountKey<'r>| (k.0, k.1, k.2);
        sums.sort_unstable_by(|a, b| place(&a.0).cmp(&place(&b.0)));
        let mut key = Vec::with_capacity(128);
        let mut figures = Vec::new();
        for run in sums.chunk_by(|a, b| place(&a.0) == place(&b.0)) {
            let (head, one, bucket, _) = run[0].0;
            let Some((workflow, groups)) = self.parsed.get(head) else {
                continue;
            };
            figures.clear();
            figures.extend(run.iter().map(|(k, n)| (k.3, Change::Count(*n))));
            let digits = bucket_digits(bucket);
            let spread_over = match &one {
                Some(g) => std::slice::from_ref(g),
                None => &groups[..],
            };
            for g in spread_over {
                key.clear();
                write_bucket_key(&mut key, workflow, *g, &digits);
                visit(&key, &figures)?;
            }
        }
        Ok(())
    }
}

/// Reads an [`encode_moves`] record: its count moves are summed into `counts`, its other
/// moves spread over the groups at once, `visit(bucket key, figures)` per group's bucket
/// (in record order within a figure, so floating sums do not depend on the grouping).
///
/// # Errors
/// As [`decode_moves`].
fn gather_moves<'r>(
    at: &[u8],
    bytes: &'r [u8],
    counts: &mut Counts<'r>,
    visit: &mut DeltaVisitor<'_>,
) -> Result<(), StoreError> {
    let bad = || corrupt(at, "delta record");
    let mut r = Reader { bytes };
    let workflow = r.bytes().ok_or_else(bad)?;
    let n = r.len().ok_or_else(bad)?;
    let mut groups = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        groups.push((r.bytes().ok_or_else(bad)?, r.bytes().ok_or_else(bad)?));
    }
    let head_bytes = bytes.get(..bytes.len() - r.bytes.len()).ok_or_else(bad)?;
    let head = match counts.heads.get(head_bytes) {
        Some(&h) => h,
        None => {
            let h = counts.parsed.len();
            counts.heads.insert(head_bytes, h);
            counts.parsed.push((workflow, groups));
            h
        }
    };
    // The record's moves other than counts: (scope, bucket, figure, change).
    let mut others = Vec::new();
    while let Some(scope) = r.take(1) {
        let one = match scope {
            [EVERY_GROUP] => None,
            [ONE_GROUP] => Some((r.bytes().ok_or_else(bad)?, r.bytes().ok_or_else(bad)?)),
            _ => return Err(bad()),
        };
        let (bucket, metric, change) = r.one_move().ok_or_else(bad)?;
        match change {
            Change::Count(n) => *counts.sums.entry((head, one, bucket, metric)).or_insert(0) += n,
            _ => others.push((one, bucket, metric, change)),
        }
    }
    // Each scope and bucket once (a record's moves mostly share one bucket); the sort is
    // stable, so a figure's moves stay in record order.
    others.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let groups = &counts.parsed.get(head).ok_or_else(bad)?.1;
    let (mut key, mut figures) = (Vec::with_capacity(128), Vec::new());
    for run in others.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (one, bucket, _, _) = run[0];
        figures.clear();
        figures.extend(run.iter().map(|m| (m.2, m.3)));
        let digits = bucket_digits(bucket);
        let spread_over = match &one {
            Some(g) => std::slice::from_ref(g),
            None => &groups[..],
        };
        for g in spread_over {
            key.clear();
            write_bucket_key(&mut key, workflow, *g, &digits);
            visit(&key, &figures)?;
        }
    }
    Ok(())
}

/// What [`decode_deltas`] and [`decode_moves`] call per bucket value moved: `(bucket key,
/// [(figure, change)])`, so a fold looks each bucket up once for all its figures.
type DeltaVisitor<'a> = dyn FnMut(&[u8], &[(&[u8], Change)]) -> Result<(), StoreError> + 'a;

/// Reads a delta record of the first layout (`rd/{seq}`, written before the `rm` records):
/// per delta, the cell key's length (u32 little-endian), the key (of the one-key-per-figure
/// layout), a kind byte and its 8-byte value; `visit(bucket key, [(figure, change)])` for
/// each.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the record `at` when the bytes are not such a record, or
/// what `visit` returns.
fn decode_deltas(at: &[u8], bytes: &[u8], visit: &mut DeltaVisitor<'_>) -> Result<(), StoreError> {
    let bad = || corrupt(at, "delta record");
    let mut r = Reader { bytes };
    while !r.bytes.is_empty() {
        let k = r.bytes().ok_or_else(bad)?;
        let (bucket, figure) = split_cell_key(k).ok_or_else(bad)?;
        let kind = *r.take(1).and_then(|b| b.first()).ok_or_else(bad)?;
        let word = r.word().ok_or_else(bad)?;
        visit(&bucket, &[(figure, change_of(kind, word).ok_or_else(bad)?)])?;
    }
    Ok(())
}

/// Pending delta records at which a fold pays (a few hundred commands' worth: enough that
/// a busy bucket's cells are merged many commands at a time, few enough that a fold takes
/// milliseconds, not tens). The runtime's report folder folds on its own thread when this
/// many are pending ([`crate::ReportStore::reports_pending`]).
pub const FOLD_AT: usize = 512;

/// Pending delta records at which a commit folds them itself, on its own thread: a backstop
/// for a store used without the runtime's folder (tools, benchmarks of the store alone) or
/// with a folder that cannot keep up, so the records never pile up without bound. A fold of
/// this many runs for tens of milliseconds on the committing thread.
pub(crate) const FOLD_INLINE_AT: usize = 64 * FOLD_AT;

/// Delta records one fold batch takes at most.
const FOLD_CHUNK: usize = 4096;

/// The key of delta record `seq`: big-endian, so records sort in the order they were
/// numbered.
pub(crate) fn delta_key(seq: u64) -> Vec<u8> {
    let mut k = prefix(&[part::MOVES]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The number after the newest pending delta record (0 when none is pending), where a
/// store just opened continues numbering.
///
/// # Errors
/// [`StoreError::Backend`] when the scan cannot read the store (an IO error);
/// [`StoreError::Corrupt`] when a record key under `rm/` is not 8 bytes of sequence number.
pub(crate) fn next_delta_seq<B: Kv>(kv: &B) -> Result<u64, StoreError> {
    let p = prefix(&[part::MOVES]);
    let mut next = Ok(0);
    kv.scan(&p, None, &mut |k, _| {
        next = record_seq(&p, k).map(|n| n + 1);
        next.is_ok()
    })?;
    next
}

/// Folds up to [`FOLD_CHUNK`] pending delta records into their cells in one batch (the
/// cell writes and the records' deletion together), and says how many it folded: the
/// first layout's records (`rd`) while any is left, then the current ones (`rm`). The
/// caller holds the rollup lock (and `cache`): two folds never read the same records.
///
/// # Errors
/// Backend errors, or an unreadable record or cell; nothing was written then.
pub(crate) fn fold<B: Kv>(kv: &B, cache: &mut CellCache) -> Result<usize, StoreError> {
    if !cache.legacy_done {
        let n = fold_layout(kv, cache, part::DELTA, decode_deltas)?;
        if n > 0 {
            return Ok(n);
        }
        cache.legacy_done = true;
    }
    fold_layout(kv, cache, part::MOVES, decode_moves)
}

/// How a record layout is read.
type Decode = fn(&[u8], &[u8], &mut DeltaVisitor<'_>) -> Result<(), StoreError>;

/// The number of a record key under `p`.
fn record_seq(p: &[u8], k: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(&k[p.len()..])
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(k, "delta record key"))
}

/// [`fold`] of the records under `layout`: for the current layout only the unbroken run
/// of numbers after the last one folded (see [`CellCache`]'s `folded`).
fn fold_layout<B: Kv>(
    kv: &B,
    cache: &mut CellCache,
    layout: &[u8],
    decode: Decode,
) -> Result<usize, StoreError> {
    let p = prefix(&[layout]);
    let current = layout == part::MOVES;
    let after = cache.folded.filter(|_| current).map(delta_key);
    let mut next = cache.folded.filter(|_| current).map(|n| n + 1);
    // A quiet scan (no batch being applied) takes what it finds, a gap left by a crash
    // included; a scan after a known record takes only the unbroken run.
    let unbroken = next.is_some();
    let mut records = Vec::new();
    let mut failed = None;
    kv.scan(&p, after.as_deref(), &mut |k, v| {
        if current {
            match record_seq(&p, k) {
                // A record whose predecessor is not visible yet: stop before it.
                Ok(seq) if unbroken && next.is_some_and(|n| n != seq) => return false,
                Ok(seq) => next = Some(seq + 1),
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
        }
        records.push((k.to_vec(), v.to_vec()));
        records.len() < FOLD_CHUNK
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if records.is_empty() {
        return Ok(0);
    }
    let mut folding = Folding {
        kv,
        cache: &mut *cache,
        cells: CellMap::default(),
    };
    if current {
        let mut counts = Counts::default();
        for (k, v) in &records {
            gather_moves(k, v, &mut counts, &mut |bucket, figures| {
                folding.add(bucket, figures)
            })?;
        }
        counts.spread(&mut |bucket, figures| folding.add(bucket, figures))?;
    } else {
        for (k, v) in &records {
            decode(k, v, &mut |bucket, figures| folding.add(bucket, figures))?;
        }
    }
    let n = records.len();
    folding.apply(records.into_iter().map(|(k, _)| k).collect())?;
    if current {
        cache.folded = next.map(|n| n - 1);
    }
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
        if n == 0 {
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
    let p = prefix(&[part::ROLLUP_BUCKET, workflow.as_bytes(), dim.as_bytes()]);
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
            let value = std::str::from_utf8(rest.get(13..)?).ok()?;
            Some((bucket, value))
        })();
        let Some((bucket, value)) = parsed else {
            failed = Some(corrupt(k, "key"));
            return false;
        };
        if bucket >= to {
            return false;
        }
        let r = Bucket::decode(v).map_err(|e| corrupt(k, e)).and_then(|b| {
            b.figures().try_for_each(|figure| {
                let (figure, cell) = figure.map_err(|e| corrupt(k, e))?;
                visit(bucket, value, figure, cell)
            })
        });
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
    crate::keys::key(&[part::ROLLUP_META, part::ROLLUP_CURRENT])
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
    for p in [
        prefix(&[part::ROLLUP]),
        prefix(&[part::ROLLUP_BUCKET]),
        prefix(&[part::DELTA]),
        prefix(&[part::MOVES]),
    ] {
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
        let chunk = crate::kv::collect(kv, &p, cursor.as_deref(), REBUILD_BATCH)?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        cursor = Some(last.clone());
        for (k, v) in chunk {
            let s: InstanceState = serde_json::from_slice(&v).map_err(|e| {
                StoreError::unreadable(format!("record at {}", crate::keys::shown(&k)), e)
            })?;
            let entries = history(&s.id)?;
            let refs: Vec<&HistoryEntry> = entries.iter().collect();
            let moved = deltas(None, &s, &refs);
            gather(
                &mut pending,
                moved
                    .into_iter()
                    .map(|d| (bucket_key(&s.workflow, &d), d.metric, d.change)),
            )?;
            done.instances += 1;
        }
    }
    let mut writes = Vec::with_capacity(pending.len());
    for (k, mut b) in pending {
        if let Some(bytes) = b.encode() {
            done.cells += b.len() as u64;
            writes.push(Mutation::Put(k, bytes));
        }
    }
    apply_chunked(kv, writes)?;
    kv.apply(vec![Mutation::Put(current_key(), Vec::new())])?;
    kv.flush()?;
    Ok(done)
}

/// Cells of the earlier layout rewritten per batch of an upgrade.
const UPGRADE_BATCH: usize = 4096;

/// Rewrites the report cells of the one-key-per-figure layout
/// (`ru/{workflow}/{dim}/{bucket}/{value}/{figure}`) into bucket values
/// (`rb/{workflow}/{dim}/{bucket}/{value}`), [`UPGRADE_BATCH`] cells per atomic batch (the
/// old keys deleted in the batch that writes them anew; a bucket split over two batches is
/// read back and merged by the second), and says how many cells it moved. Runs when a
/// store opens, before any fold: a crash between two batches leaves every cell in exactly
/// one of the layouts, and the next open goes on from there.
///
/// # Errors
/// Backend errors, or an old cell that does not decode; nothing of that batch was written.
pub(crate) fn upgrade_cells<B: Kv>(kv: &B) -> Result<usize, StoreError> {
    use std::collections::btree_map::Entry;
    let p = prefix(&[part::ROLLUP]);
    let mut moved = 0;
    // Each batch after the last key of the one before: not over its deletions.
    let mut after: Option<Vec<u8>> = None;
    loop {
        let old = crate::kv::collect(kv, &p, after.as_deref(), UPGRADE_BATCH)?;
        let Some((last, _)) = old.last() else {
            return Ok(moved);
        };
        after = Some(last.clone());
        let mut buckets: BTreeMap<Vec<u8>, Bucket> = BTreeMap::new();
        let mut batch = Vec::with_capacity(old.len() + old.len() / 8);
        for (k, v) in &old {
            let (key, figure) = split_cell_key(k).ok_or_else(|| corrupt(k, "key"))?;
            let cell = waystation_core::report::Cell::decode(v).map_err(|e| corrupt(k, e))?;
            let b = match buckets.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let stored = kv.get(e.key())?;
                    let b = stored
                        .map(|bytes| Bucket::decode(&bytes).map_err(|err| corrupt(e.key(), err)))
                        .transpose()?;
                    e.insert(b.unwrap_or_default())
                }
            };
            b.merge(figure, cell).map_err(|e| corrupt(k, e))?;
            batch.push(Mutation::Delete(k.clone()));
        }
        for (k, mut b) in buckets {
            batch.push(match b.encode() {
                Some(bytes) => Mutation::Put(k, bytes),
                None => Mutation::Delete(k),
            });
        }
        kv.apply(batch)?;
        moved += old.len();
    }
}

/// Deletes up to `max` bucket values of buckets before `before` (a 15-minute bucket
/// number), and says how many. Walks one `(workflow, dim)` range at a time from its oldest
/// bucket, and skips to the next range at the first value that is recent enough, so it
/// reads only the values it deletes and one more per range.
///
/// # Errors
/// Backend errors, or a cell key that does not have the layout; nothing was deleted then.
pub(crate) fn purge<B: Kv>(kv: &B, before: i64, max: usize) -> Result<usize, StoreError> {
    let root = prefix(&[part::ROLLUP_BUCKET]);
    let mut doomed = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    while doomed.len() < max {
        let mut first = None;
        kv.scan(&root, after.as_deref(), &mut |k, _| {
            first = Some(k.to_vec());
            false
        })?;
        let Some(first) = first else { break };
        // `rb/{workflow}/{dim}/`: the range of one workflow and dim.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryKv;
    use chrono::{DateTime, TimeDelta, Utc};
    use serde_json::{json, Value};
    use waystation_core::drive::{apply_until_quiet, start_until_quiet};
    use waystation_core::sim::FakePlugins;
    use waystation_core::{Input, Step, Workflow};

    fn orders() -> Workflow {
        let d = json!({
            "id": "orders", "title": "Orders", "start": "todo",
            "fields": {
                "tier": {"type": "keyword", "value": "input.tier"},
                "satisfaction": {"type": "number", "value": "input.satisfaction"}},
            "stages": {
                "todo": {"kind": "wait", "owner": "clerk", "on": {"begin": {"to": "doing"}}},
                "doing": {"kind": "wait", "owner": "clerk", "on": {"done": {"to": "done"}}},
                "done": {"kind": "end", "outcome": "resolved"}}});
        let mut wf = Workflow::from_value(&d, None).unwrap();
        wf.version = 1;
        wf
    }

    /// An order's three steps: started, begun 20 minutes later, done 3 hours later.
    fn lifecycle() -> Vec<(Option<Step>, Step)> {
        lifecycle_of("o1", "gold", 0)
    }

    /// [`lifecycle`] of order `id` in `tier`, started `late` minutes after 08:00.
    fn lifecycle_of(id: &str, tier: &str, late: i64) -> Vec<(Option<Step>, Step)> {
        let wf = orders();
        let t0: DateTime<Utc> = "2026-10-01T08:00:00Z".parse().unwrap();
        let t0 = t0 + TimeDelta::minutes(late);
        let input = json!({"tier": tier, "satisfaction": 4});
        let start = start_until_quiet(&wf, id.into(), input, t0, &FakePlugins::new()).unwrap();
        let mut out = vec![(None, start)];
        for (name, after) in [("begin", 20), ("done", 180)] {
            let before = out.last().unwrap().1.clone();
            let input = Input::Event {
                name: name.into(),
                data: Value::Null,
                stage: None,
            };
            let now = t0 + TimeDelta::minutes(after);
            let next =
                apply_until_quiet(&wf, before.state.clone(), input, now, &FakePlugins::new())
                    .unwrap();
            out.push((Some(before), next));
        }
        out
    }

    /// The commit of `step` from `before`.
    fn commit_of<'a>(before: Option<&'a InstanceState>, step: &'a Step) -> Commit<'a> {
        Commit {
            before,
            after: &step.state,
            effects: &step.effects,
            fired_timer: None,
            idempotency: None,
        }
    }

    /// `(bucket key, figure, change)` per figure a record moves, sorted.
    fn cells_of(record: &[u8]) -> Vec<(Vec<u8>, String, String)> {
        let mut out = Vec::new();
        decode_moves(b"test", record, &mut |k, figures| {
            for (figure, c) in figures {
                let figure = String::from_utf8(figure.to_vec()).unwrap();
                out.push((k.to_vec(), figure, format!("{c:?}")));
            }
            Ok(())
        })
        .unwrap();
        out.sort();
        out
    }

    /// The bucket value stored under `k`.
    fn stored_bucket(kv: &MemoryKv, k: &[u8]) -> Option<Bucket> {
        kv.get(k).unwrap().map(|b| Bucket::decode(&b).unwrap())
    }

    /// The count of `figure` in `b` (0 when it is not there).
    fn count_of(b: &Bucket, figure: &str) -> i64 {
        b.figures()
            .map(Result::unwrap)
            .find(|(n, _)| *n == figure)
            .map_or(0, |(_, c)| c.count())
    }

    /// The key of `d`'s cell in the earlier one-key-per-figure layout.
    fn old_cell_key(d: &Delta) -> Vec<u8> {
        let digits = format!("{:012}", d.bucket);
        let parts: [&[u8]; 6] = [
            part::ROLLUP,
            b"orders",
            d.group.dim.as_bytes(),
            digits.as_bytes(),
            d.group.value.as_bytes(),
            d.metric.as_bytes(),
        ];
        crate::keys::key(&parts)
    }

    #[test]
    fn a_record_spreads_over_the_groups_to_exactly_the_cells_the_deltas_name() {
        for (before, step) in lifecycle() {
            let before = before.map(|b| b.state);
            let commit = commit_of(before.as_ref(), &step);
            let record = delta_record(&commit).expect("every step moves a figure");
            let spread = cells_of(&record);
            let history = history_of(&step.effects);
            let mut expected: Vec<(Vec<u8>, String, String)> =
                deltas(before.as_ref(), &step.state, &history)
                    .iter()
                    .map(|d| {
                        let change = format!("{:?}", d.change);
                        (bucket_key("orders", d), d.metric.clone(), change)
                    })
                    .collect();
            expected.sort();
            assert_eq!(spread, expected);
            // Every event in both groups (all, tier=gold): the record names it once.
            assert!(spread.len() >= 2);
        }
    }

    #[test]
    fn a_fold_that_sums_counts_first_writes_the_cells_change_by_change_adding_would() {
        let kv = MemoryKv::default();
        let mut expected = BTreeMap::new();
        let mut seq = 0;
        // Orders of two tiers, 7 minutes apart, interleaved, all in one fold: counts of
        // one head (tier) and bucket are summed, the running count nets to zero.
        let orders = (0..12).map(|i| {
            let tier = if i % 3 == 0 { "silver" } else { "gold" };
            lifecycle_of(&format!("o{i}"), tier, 7 * i)
        });
        for steps in orders {
            for (before, step) in steps {
                let before = before.map(|b| b.state);
                let commit = commit_of(before.as_ref(), &step);
                let record = delta_record(&commit).unwrap();
                kv.apply(vec![Mutation::Put(delta_key(seq), record)])
                    .unwrap();
                seq += 1;
                let history = history_of(&step.effects);
                let moved = deltas(before.as_ref(), &step.state, &history);
                gather(
                    &mut expected,
                    moved
                        .into_iter()
                        .map(|d| (bucket_key("orders", &d), d.metric, d.change)),
                )
                .unwrap();
            }
        }
        assert_eq!(fold_all(&kv, &mut CellCache::default()).unwrap(), 36);
        let mut written = Vec::new();
        kv.scan(&prefix(&[part::ROLLUP_BUCKET]), None, &mut |k, v| {
            written.push((k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
        let figures: usize = expected.values().map(Bucket::len).sum();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = expected
            .into_iter()
            .filter_map(|(k, mut b)| b.encode().map(|bytes| (k, bytes)))
            .collect();
        assert!(figures > 20, "{figures} figures");
        assert!(expected.len() > 4, "{} bucket values", expected.len());
        assert_eq!(written, expected);
    }

    #[test]
    fn commits_leave_their_records_to_the_report_folder_until_the_inline_backstop() {
        use crate::{KvStore, ReportStore, Store};
        let store = KvStore::new(MemoryKv::default());
        let mut commits = 0;
        for i in 0..(FOLD_AT as i64 / 3 + 10) {
            for (before, step) in lifecycle_of(&format!("o{i}"), "gold", i) {
                let before = before.map(|b| b.state);
                store.commit(&commit_of(before.as_ref(), &step)).unwrap();
                commits += 1;
            }
        }
        assert!(commits > FOLD_AT && commits < FOLD_INLINE_AT);
        // No fold on the committing thread: every record waits for the folder.
        assert_eq!(store.reports_pending(), commits);
        assert_eq!(store.fold_reports().unwrap(), commits);
        assert_eq!(store.reports_pending(), 0);
    }

    #[test]
    fn a_delta_record_of_the_first_layout_is_still_folded_after_the_upgrade() {
        let kv = MemoryKv::default();
        let d = Delta {
            group: waystation_core::report::Group::all(),
            bucket: 7,
            metric: "started".into(),
            change: Change::Count(3),
        };
        let k = old_cell_key(&d);
        // Per delta: key length (u32 LE), key, kind byte, 8-byte value.
        let mut old = (k.len() as u32).to_le_bytes().to_vec();
        old.extend_from_slice(&k);
        old.push(b'c');
        old.extend_from_slice(&3i64.to_le_bytes());
        let mut record_key = prefix(&[part::DELTA]);
        record_key.extend_from_slice(&0u64.to_be_bytes());
        kv.apply(vec![Mutation::Put(record_key, old)]).unwrap();
        let mut cache = CellCache::default();
        assert_eq!(fold_all(&kv, &mut cache).unwrap(), 1);
        let b = stored_bucket(&kv, &bucket_key("orders", &d)).expect("the bucket was written");
        assert_eq!(count_of(&b, "started"), 3);
        assert_eq!(fold_all(&kv, &mut cache).unwrap(), 0, "the record is gone");
    }

    #[test]
    fn a_cell_moved_by_two_folds_adds_up_from_the_cache_and_from_the_store() {
        let kv = MemoryKv::default();
        let mut cache = CellCache::default();
        for (seq, (before, step)) in lifecycle().into_iter().enumerate() {
            let before = before.map(|b| b.state);
            let commit = commit_of(before.as_ref(), &step);
            let record = delta_record(&commit).unwrap();
            kv.apply(vec![Mutation::Put(delta_key(seq as u64), record)])
                .unwrap();
            fold_all(&kv, &mut cache).unwrap();
            if seq == 1 {
                // A restart: the next fold reads the cells from the store.
                cache.reset();
            }
        }
        let all = Delta {
            group: waystation_core::report::Group::all(),
            bucket: waystation_core::report::bucket("2026-10-01T08:00:00Z".parse().unwrap()),
            metric: "stage/todo/entered".into(),
            change: Change::Count(0),
        };
        let b = stored_bucket(&kv, &bucket_key("orders", &all)).unwrap();
        assert_eq!(count_of(&b, "stage/todo/entered"), 1);
        assert!(
            b.figures().all(|f| f.unwrap().0 != "running"),
            "an order that finished left the running count (zero counts are removed)"
        );
    }

    #[test]
    fn a_record_whose_predecessor_is_not_visible_yet_waits_for_the_next_fold() {
        let kv = MemoryKv::default();
        let steps = lifecycle();
        let record = |i: usize| {
            let (before, step) = &steps[i];
            let before = before.as_ref().map(|b| b.state.clone());
            delta_record(&commit_of(before.as_ref(), step)).unwrap()
        };
        let mut cache = CellCache::default();
        kv.apply(vec![Mutation::Put(delta_key(0), record(0))])
            .unwrap();
        assert_eq!(
            fold_all(&kv, &mut cache).unwrap(),
            1,
            "the first fold (a quiet scan)"
        );
        // Record 2 is visible before record 1 (its batch still being applied).
        kv.apply(vec![Mutation::Put(delta_key(2), record(2))])
            .unwrap();
        assert_eq!(fold_all(&kv, &mut cache).unwrap(), 0, "nothing after a gap");
        kv.apply(vec![Mutation::Put(delta_key(1), record(1))])
            .unwrap();
        assert_eq!(
            fold_all(&kv, &mut cache).unwrap(),
            2,
            "then the rest, in order"
        );
        let mut left = 0;
        kv.scan(&prefix(&[part::MOVES]), None, &mut |_, _| {
            left += 1;
            true
        })
        .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn the_first_fold_after_an_open_takes_every_pending_record_a_crash_gap_included() {
        let kv = MemoryKv::default();
        let steps = lifecycle();
        let (_, start) = &steps[0];
        let record = delta_record(&Commit {
            before: None,
            after: &start.state,
            effects: &start.effects,
            fired_timer: None,
            idempotency: None,
        })
        .unwrap();
        for seq in [3, 4, 6] {
            kv.apply(vec![Mutation::Put(delta_key(seq), record.clone())])
                .unwrap();
        }
        assert_eq!(next_delta_seq(&kv).unwrap(), 7);
        let mut cache = CellCache::default();
        assert!(cache.needs_quiet_scan());
        assert_eq!(fold_all(&kv, &mut cache).unwrap(), 3);
        assert!(!cache.needs_quiet_scan());
    }

    #[test]
    fn report_cells_of_the_earlier_layout_become_bucket_values_when_the_store_opens() {
        use crate::{KvStore, ReportStore};
        use waystation_core::report::{Cell, Group};
        let kv = MemoryKv::default();
        let gold = Group {
            dim: "tier".into(),
            value: "gold".into(),
        };
        let delta = |group: &Group, metric: &str| Delta {
            group: group.clone(),
            bucket: 1_978_000,
            metric: metric.into(),
            change: Change::Count(0),
        };
        let mut old = Vec::new();
        for (group, metric, n) in [
            (Group::all(), "started", 5),
            (Group::all(), "running", 2),
            (gold.clone(), "started", 3),
        ] {
            old.push(Mutation::Put(
                old_cell_key(&delta(&group, metric)),
                Cell::Count(n).encode(),
            ));
        }
        let mut cycle = Cell::duration(600.0);
        cycle.add(Change::Duration(1200.0)).unwrap();
        old.push(Mutation::Put(
            old_cell_key(&delta(&Group::all(), "cycle")),
            cycle.encode(),
        ));
        // A bucket value written already (an upgrade interrupted after its first batch):
        // the cells of the same bucket left in the old layout join it.
        let mut half = Bucket::default();
        half.add(b"ended/completed", Change::Count(1)).unwrap();
        old.push(Mutation::Put(
            bucket_key("orders", &delta(&gold, "")),
            half.encode().unwrap(),
        ));
        kv.apply(old).unwrap();

        let store = KvStore::opened(kv).unwrap();
        let mut left = 0;
        let backend = store.backend();
        backend
            .scan(&prefix(&[part::ROLLUP]), None, &mut |_, _| {
                left += 1;
                true
            })
            .unwrap();
        assert_eq!(left, 0, "no cell is left in the old layout");
        let all = stored_bucket(backend, &bucket_key("orders", &delta(&Group::all(), ""))).unwrap();
        assert_eq!(
            (count_of(&all, "started"), count_of(&all, "running")),
            (5, 2)
        );
        let Some(Ok((_, Cell::Sketch(s)))) = all
            .figures()
            .find(|f| f.as_ref().is_ok_and(|(n, _)| *n == "cycle"))
        else {
            panic!("the cycle sketch moved with the counts")
        };
        assert_eq!((s.count(), s.max()), (2, Some(1200.0)));
        let gold_bucket = stored_bucket(backend, &bucket_key("orders", &delta(&gold, ""))).unwrap();
        assert_eq!(
            (
                count_of(&gold_bucket, "started"),
                count_of(&gold_bucket, "ended/completed")
            ),
            (3, 1)
        );
        // And a report reads them.
        let mut started = 0;
        store
            .report_cells(
                "orders",
                "",
                (1_977_999, 1_978_001),
                &mut |_, _, figure, cell| {
                    if figure == "started" {
                        started += cell.count();
                    }
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(started, 5);
    }
}
