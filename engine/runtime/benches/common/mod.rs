//! Shared by the runtime benchmarks: environment knobs, a store wrapper that counts and
//! times what the runtime asks of the store, percentiles, process memory, scratch dirs.
//!
//! The wrapper only observes: every call goes to the real store unchanged, so durability
//! is exactly the runtime's (one group flush before every acknowledgement).

#![allow(dead_code)]

/// Every benchmark runs with the allocator the server binary runs with, so that its
/// figures are the server's (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::Utc;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waystation_store::keys::{parse_time, part, prefix};
use waystation_store::{Kv, KvStore, MemoryKv, Mutation, SledKv, StoreError};

/// `name` from the environment as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// `name` from the environment as a comma-separated list of numbers, or `default`.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|p| {
                p.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v} is not a list of numbers"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// A scratch directory for a sled store, removed when dropped: under
/// `WAYSTATION_BENCH_DIR` when set, else the system temp dir.
pub fn scratch_dir(what: &str) -> tempfile::TempDir {
    let base =
        std::env::var_os("WAYSTATION_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(&format!("waystation-bench-{what}-"))
        .tempdir_in(base)
        .unwrap()
}

/// The tokio runtime every benchmark uses: multi-thread, 2 workers (the target machine).
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    let workers = env_usize("WAYSTATION_BENCH_WORKERS", 2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A workflow from the repository's `workflows/` directory.
pub fn workflow_json(name: &str) -> Value {
    let path = format!("{}/../../workflows/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The `p`-th percentile (0..=100) of sorted `values`.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds, as a float in milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Resident set size now and its peak, in bytes (Linux `/proc/self/status`).
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes the files under `dir` occupy on disk (allocated blocks, like `du`).
pub fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Duration {
    // /proc/self/stat fields 14 and 15, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the `)`: field 3 is index 0, so utime (14) is index 11 and stime (15) index 12.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// CPU time (user + system) used so far by this process's live threads, summed by thread
/// name with any trailing number dropped (`sled-io-3` counts as `sled-io`), largest first.
/// Threads that have exited are missing: compare the sum with [`cpu_time`].
pub fn thread_cpu() -> Vec<(String, Duration)> {
    let mut by_name: std::collections::BTreeMap<String, Duration> = Default::default();
    for entry in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("", |(_, n)| n);
        let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '#');
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        *by_name.entry(name.to_owned()).or_default() +=
            Duration::from_millis((ticks(11) + ticks(12)) * 10);
    }
    let mut out: Vec<_> = by_name.into_iter().collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.1));
    out
}

/// The CPU each thread group used between two [`thread_cpu`] readings, per `per` units of
/// work, in microseconds: `"tokio-rt-worker 61.0, waystation-flush 9.1, ..."`.
pub fn thread_cpu_delta(
    before: &[(String, Duration)],
    after: &[(String, Duration)],
    per: u64,
) -> String {
    after
        .iter()
        .filter_map(|(name, t)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Duration::ZERO, |(_, t)| *t);
            let us = t.saturating_sub(b).as_secs_f64() * 1e6 / per.max(1) as f64;
            (us >= 0.05).then(|| format!("{name} {us:.1}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine, for the report.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    format!(
        "{cores} cores ({cpu}), {:.1} GiB RAM",
        mem as f64 / (1024.0 * 1024.0)
    )
}

/// Counts and times what the store asks of its key-value backend. Observes only: every
/// call goes to the real backend unchanged. Wrapped at the `Kv` level so that the store
/// above is the real `KvStore` (same encoding, same batches) whatever traits it grows.
pub struct Probe<B> {
    inner: B,
    /// Batches applied and the time spent applying them (backend only: the JSON encoding
    /// happens above, in `KvStore::commit`).
    pub applies: AtomicU64,
    pub apply_ns: AtomicU64,
    pub mutations: AtomicU64,
    pub bytes: AtomicU64,
    /// Flushes and the time spent in them (write + fsync).
    pub flushes: AtomicU64,
    pub flush_ns: AtomicU64,
    /// Point reads and the time spent in them.
    pub gets: AtomicU64,
    pub get_ns: AtomicU64,
    /// Batches covered by each flush, in order.
    pub batches: Mutex<Vec<u32>>,
    applied_since_flush: AtomicU64,
    /// Timers removed from the due index, not yet covered by a flush: their due time (us).
    fired_pending: Mutex<Vec<i64>>,
    /// Per timer removed from the due index (fired), the lag in microseconds from its due
    /// time until the batch with its effect was applied (visible) ...
    pub fired_applied: Mutex<Vec<u64>>,
    /// ... and until the group flush covering that batch returned (durable).
    pub fired_durable: Mutex<Vec<u64>>,
    record_fired: bool,
    /// Every batch applied, when recording (for replaying them on sled alone).
    pub recorded: Option<Mutex<Vec<Vec<Mutation>>>>,
}

impl<B> Probe<B> {
    /// Wraps `inner`; with `record_fired`, keeps the lag of every timer that fires.
    pub fn new(inner: B, record_fired: bool) -> Self {
        Probe {
            inner,
            applies: AtomicU64::new(0),
            apply_ns: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            flush_ns: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            get_ns: AtomicU64::new(0),
            batches: Mutex::new(Vec::new()),
            applied_since_flush: AtomicU64::new(0),
            fired_pending: Mutex::new(Vec::new()),
            fired_applied: Mutex::new(Vec::new()),
            fired_durable: Mutex::new(Vec::new()),
            record_fired,
            recorded: None,
        }
    }

    /// Also keeps a copy of every batch applied.
    pub fn recording_batches(mut self) -> Self {
        self.recorded = Some(Mutex::new(Vec::new()));
        self
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Zeroes the counters (between phases).
    pub fn reset(&self) {
        for c in [
            &self.applies,
            &self.apply_ns,
            &self.mutations,
            &self.bytes,
            &self.flushes,
            &self.flush_ns,
            &self.gets,
            &self.get_ns,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.batches.lock().unwrap().clear();
        self.fired_applied.lock().unwrap().clear();
        self.fired_durable.lock().unwrap().clear();
    }

    /// A summary of the backend work so far, per `commands` commands.
    pub fn summary(&self, commands: u64) -> String {
        let applies = self.applies.load(Ordering::Relaxed).max(1);
        let flushes = self.flushes.load(Ordering::Relaxed).max(1);
        let gets = self.gets.load(Ordering::Relaxed).max(1);
        let mut batches = self.batches.lock().unwrap().clone();
        batches.sort_unstable();
        let per_cmd =
            |ns: &AtomicU64| ns.load(Ordering::Relaxed) as f64 / commands.max(1) as f64 / 1e3;
        format!(
            "{applies} batches ({:.1} mutations, {:.0} B each; apply {:.1} us each); {gets} gets ({:.1} us each); \
             {flushes} flushes ({:.2} ms each; batches per flush: mean {:.1}, p50 {}, p99 {}, max {}); \
             per command: apply {:.1} us, get {:.1} us, flush {:.1} us (flusher thread)",
            self.mutations.load(Ordering::Relaxed) as f64 / applies as f64,
            self.bytes.load(Ordering::Relaxed) as f64 / applies as f64,
            self.apply_ns.load(Ordering::Relaxed) as f64 / applies as f64 / 1e3,
            self.get_ns.load(Ordering::Relaxed) as f64 / gets as f64 / 1e3,
            self.flush_ns.load(Ordering::Relaxed) as f64 / flushes as f64 / 1e6,
            applies as f64 / flushes as f64,
            percentile(&batches, 50.0),
            percentile(&batches, 99.0),
            batches.last().copied().unwrap_or(0),
            per_cmd(&self.apply_ns),
            per_cmd(&self.get_ns),
            per_cmd(&self.flush_ns),
        )
    }
}

impl<B: Kv> Kv for Probe<B> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let began = Instant::now();
        let out = self.inner.get(key);
        self.get_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.gets.fetch_add(1, Ordering::Relaxed);
        out
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.inner.scan(prefix, after, visit)
    }

    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let fired: Vec<i64> = if self.record_fired {
            // A fired timer's key may be deleted twice in one batch (as fired, and as no
            // longer armed): count each key once.
            let timers = prefix(&[part::TIMER]);
            let mut keys: Vec<&[u8]> = batch
                .iter()
                .filter_map(|m| match m {
                    Mutation::Delete(k) if k.starts_with(&timers) => Some(k.as_slice()),
                    _ => None,
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            keys.iter()
                .filter_map(|k| parse_time(&k[timers.len()..]).map(|t| t.timestamp_micros()))
                .collect()
        } else {
            Vec::new()
        };
        let n = batch.len() as u64;
        let bytes: usize = batch
            .iter()
            .map(|m| match m {
                Mutation::Put(k, v) => k.len() + v.len(),
                Mutation::Delete(k) => k.len(),
            })
            .sum();
        if let Some(recorded) = &self.recorded {
            recorded.lock().unwrap().push(batch.clone());
        }
        let began = Instant::now();
        let out = self.inner.apply(batch);
        self.apply_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.applies.fetch_add(1, Ordering::Relaxed);
        self.mutations.fetch_add(n, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.applied_since_flush.fetch_add(1, Ordering::Relaxed);
        if out.is_ok() && !fired.is_empty() {
            let now = Utc::now().timestamp_micros();
            self.fired_applied
                .lock()
                .unwrap()
                .extend(fired.iter().map(|due| (now - due).max(0) as u64));
            self.fired_pending.lock().unwrap().extend(fired);
        }
        out
    }

    fn flush_holds_commits(&self) -> bool {
        self.inner.flush_holds_commits()
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Everything applied before this point is covered by this flush.
        let covered = self.applied_since_flush.swap(0, Ordering::Relaxed);
        let pending = if self.record_fired {
            std::mem::take(&mut *self.fired_pending.lock().unwrap())
        } else {
            Vec::new()
        };
        let began = Instant::now();
        let out = if std::env::var_os("XX_NOSYNC").is_some() {
            Ok(())
        } else {
            self.inner.flush()
        };
        self.flush_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.batches.lock().unwrap().push(covered as u32);
        if out.is_ok() && !pending.is_empty() {
            let now = Utc::now().timestamp_micros();
            self.fired_durable
                .lock()
                .unwrap()
                .extend(pending.into_iter().map(|due| (now - due).max(0) as u64));
        }
        out
    }
}

/// The sled store with a probe between it and sled.
pub type ProbedSled = KvStore<Probe<SledKv>>;

/// Opens the probed sled store in `dir`.
pub fn open_sled(dir: &std::path::Path, record_fired: bool) -> Arc<ProbedSled> {
    Arc::new(KvStore::new(Probe::new(
        SledKv::open(dir).unwrap(),
        record_fired,
    )))
}

/// A disk store of engine `WAYSTATION_BENCH_ENGINE` (`fjall`, the default, `sled` or
/// `redb`) with a probe between it and the engine.
pub type ProbedDisk = KvStore<Probe<waystation_store::AnyKv>>;

/// Opens the probed disk store in `dir`, of engine `WAYSTATION_BENCH_ENGINE`.
pub fn open_disk(dir: &std::path::Path, record_fired: bool) -> Arc<ProbedDisk> {
    let engine: waystation_store::Engine = std::env::var("WAYSTATION_BENCH_ENGINE")
        .map(|e| e.parse().unwrap())
        .unwrap_or(waystation_store::Engine::DEFAULT);
    Arc::new(KvStore::new(Probe::new(
        engine.open(dir).unwrap(),
        record_fired,
    )))
}

/// The probed in-memory store.
pub fn memory() -> Arc<KvStore<Probe<MemoryKv>>> {
    Arc::new(KvStore::new(Probe::new(MemoryKv::default(), false)))
}

/// CPU time of the PostgreSQL server processes on this machine (every process called
/// `postgres`), from `/proc`: zero where there is none.
#[allow(dead_code)]
pub fn postgres_cpu() -> Duration {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !name.ends_with("(postgres") {
            continue;
        }
        // Fields after the name: state is 3rd overall; utime and stime are 14th and 15th.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (u, s) = (fields.get(11), fields.get(12));
        if let (Some(u), Some(s)) = (u, s) {
            total += u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0);
        }
    }
    Duration::from_secs_f64(total / tick)
}

/// A fresh schema in the benchmark PostgreSQL (`WAYSTATION_BENCH_PG_URL`), dropped at the
/// end.
#[allow(dead_code)]
pub struct PgSchema {
    url: String,
    name: String,
}

#[allow(dead_code)]
impl PgSchema {
    pub fn new(what: &str) -> Self {
        let url = std::env::var("WAYSTATION_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        PgSchema {
            url,
            name: format!("ws_bench_{what}_{}_{nanos}", std::process::id()),
        }
    }

    /// A store ("node") over the schema, with its own pool.
    pub fn open(&self) -> Arc<dyn waystation_store::Store> {
        let options = waystation_store::PgOptions {
            schema: Some(self.name.clone()),
            ..waystation_store::PgOptions::new(self.url.clone())
        };
        Arc::new(waystation_store::PgStore::open(&options).expect("the benchmark PostgreSQL"))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-q", "-d", &self.url, "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .output();
    }
}

/// An approval-flow approver with `role`: `mei` the manager, or `rui` the reviewer.
pub fn decider(role: &str) -> waystation_core::Decider {
    let id = if role == "manager" { "mei" } else { "rui" };
    waystation_core::Decider {
        id: id.into(),
        roles: vec![role.into()],
    }
}

/// The approval-flow role that decides at `stage`: the manager at `manager`, the reviewer
/// elsewhere.
pub fn role_at(stage: &str) -> &'static str {
    if stage == "manager" {
        "manager"
    } else {
        "reviewer"
    }
}

/// The approval of `state`'s first open task by the approver of its stage.
///
/// # Panics
/// If no task is open.
pub fn approve_first_task(state: &waystation_core::InstanceState) -> waystation_core::Input {
    waystation_core::Input::Decision {
        task_id: state.open_tasks()[0].id.clone(),
        decider: decider(role_at(&state.stage)),
        approve: true,
        comment: None,
    }
}
