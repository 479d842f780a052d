#![allow(missing_docs)]
//! Issue 3, benchmark 1: durable `approval-flow` lifecycles per second.
//!
//! `WAYSTATION_BENCH_INSTANCES` instances (default 10,000) of `workflows/approval-flow.json`,
//! amounts alternating 5,000 and 50,000. Each is started, approved by a reviewer and, for
//! 50,000, by a manager, through to its end: 2.5 commands per lifecycle on average. They run
//! through the real `Runtime` on each real embedded store (`Engine::open`, as `waystation
//! serve` opens it): every command returns only after the group flush that covers it (an
//! fsync/fdatasync of the store's files); nothing is relaxed for the benchmark.
//! The client finds the open task the way a caller without the task id would: by reading
//! the instance.
//!
//! `WAYSTATION_BENCH_CONCURRENCY` (a list, default `1,64,256,1024`) is how many lifecycles
//! are in flight at once (tasks on a 2-worker tokio runtime, as the HTTP server would run
//! them); each value runs on a fresh store of each engine.
//!
//! `WAYSTATION_BENCH_STORES` (default `fjall,sled,redb,memory,core`) picks the engines
//! (`fjall`, `sled`, `redb`) and the diagnostics that run:
//! - `probe`: the same on sled with a probe under the store that counts and times what the
//!   store asks of sled (apply, get, flush), at `WAYSTATION_BENCH_PROBE_CONCURRENCY`
//!   (default 256); then the batches of that run replayed on one thread into a fresh sled
//!   database with no runtime around them: sled's own cost per batch, without and with
//!   flushes;
//! - `memory`: the runtime over the in-memory store (no disk, no sled);
//! - `core`: the pure core alone on one thread, with the JSON the store would write;
//! - `pg1`, `pg2`, `pg3` (issue 17): one, two or three runtimes ("nodes", each with its own
//!   connection pool, as separate `waystation serve` processes would have) over one fresh
//!   schema of the PostgreSQL at `WAYSTATION_BENCH_PG_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`), the lifecycles dealt out to the nodes in
//!   turn; the PostgreSQL server processes' CPU is reported beside the process's own.
//!
//! CPU is reported per command and per thread group (tokio workers, the runtime's flusher,
//! sled's IO threads; threads that have exited are not counted there).
//!
//! Run: `cargo bench -p waystation-runtime --bench lifecycles`

mod common;

use common::{ms, percentile};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::{Status, Workflow};
use waystation_runtime::{NoPlugins, Runtime, SystemClock};
use waystation_store::{Engine, Kv, KvStore, Mutation, SledKv, Store};

/// One run's figures.
struct Run {
    label: String,
    concurrency: usize,
    elapsed: Duration,
    cpu: Duration,
    lifecycles: usize,
    commands: u64,
    /// Per-command latency, microseconds, sorted.
    latencies: Vec<u64>,
    /// CPU per command by thread group, microseconds.
    threads: String,
    /// What the store did (probe summary, disk use).
    store: String,
    /// The 1-minute load average when the run began.
    load: String,
}

/// One lifecycle: start, then approve every open task until the instance ends.
async fn lifecycle(rt: &Runtime, n: usize, latencies: &mut Vec<u64>) -> u64 {
    let amount = if n.is_multiple_of(2) { 5_000 } else { 50_000 };
    let began = Instant::now();
    let started = rt
        .start(
            "approval-flow",
            json!({"request_id": format!("R{n}"), "amount": amount}),
            None,
        )
        .await
        .unwrap();
    latencies.push(began.elapsed().as_micros() as u64);
    let id = started.instance.id;
    let mut commands = 1;
    let mut status = started.instance.status;
    while status == Status::Running {
        let began = Instant::now();
        let state = rt.instance(&id).unwrap();
        let task = state
            .open_tasks()
            .first()
            .cloned()
            .expect("a running approval-flow instance has an open task");
        let role = match &task.approver {
            waystation_core::definition::Approver::Role(r) => r.clone(),
            waystation_core::definition::Approver::User(u) => u.clone(),
        };
        let decided = rt
            .decide(&task.id, common::decider(&role), true, None, None)
            .await
            .unwrap();
        latencies.push(began.elapsed().as_micros() as u64);
        status = decided.instance.status;
        commands += 1;
    }
    assert_eq!(status, Status::Completed);
    commands
}

async fn run(
    label: &str,
    store: Arc<dyn Store>,
    instances: usize,
    concurrency: usize,
) -> (Run, Arc<Runtime>) {
    let (r, mut rts) = run_nodes(label, vec![store], instances, concurrency).await;
    (r, rts.remove(0))
}

/// As [`run`] with one runtime ("node") per store, the lifecycles dealt out in turn: for
/// several nodes over one shared database.
async fn run_nodes(
    label: &str,
    stores: Vec<Arc<dyn Store>>,
    instances: usize,
    concurrency: usize,
) -> (Run, Vec<Arc<Runtime>>) {
    let load = common::loadavg();
    let rts: Vec<Arc<Runtime>> = stores
        .into_iter()
        .map(|store| {
            // As `waystation serve` does at start: build the instance counts, so every
            // commit of the run also keeps them.
            store.count_status(Status::Running).unwrap();
            Runtime::new(store, Arc::new(NoPlugins), Arc::new(SystemClock))
        })
        .collect();
    rts[0]
        .put_definition(&common::workflow_json("approval-flow"))
        .await
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let threads0 = common::thread_cpu();
    let cpu0 = common::cpu_time();
    let began = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    let db_cpu0 = common::postgres_cpu();
    for worker in 0..concurrency.min(instances) {
        let rt = rts[worker % rts.len()].clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut commands = 0;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= instances {
                    return (latencies, commands);
                }
                commands += lifecycle(&rt, n, &mut latencies).await;
            }
        });
    }
    let mut latencies = Vec::new();
    let mut commands = 0;
    while let Some(done) = workers.join_next().await {
        let (l, c) = done.unwrap();
        latencies.extend(l);
        commands += c;
    }
    let elapsed = began.elapsed();
    let cpu = common::cpu_time().saturating_sub(cpu0);
    let db_cpu = common::postgres_cpu().saturating_sub(db_cpu0);
    let threads = common::thread_cpu_delta(&threads0, &common::thread_cpu(), commands);
    latencies.sort_unstable();
    let r = Run {
        label: label.to_owned(),
        concurrency,
        elapsed,
        cpu,
        lifecycles: instances,
        commands,
        latencies,
        threads,
        store: if db_cpu.is_zero() {
            String::new()
        } else {
            format!(
                "PostgreSQL server processes: {:.0} us CPU per command, {:.2} of a core",
                db_cpu.as_secs_f64() * 1e6 / commands.max(1) as f64,
                db_cpu.as_secs_f64() / elapsed.as_secs_f64()
            )
        },
        load,
    };
    (r, rts)
}

fn print_runs(runs: &[Run]) {
    println!(
        "{:<8} {:>6} {:>10} {:>12} {:>10} {:>9} {:>9} {:>9} {:>10} {:>12}  load before",
        "store",
        "conc.",
        "lifecycles",
        "lifecycles/s",
        "commands/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU/wall",
        "CPU us/cmd"
    );
    for r in runs {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{:<8} {:>6} {:>10} {:>12.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>12.1}  {}",
            r.label,
            r.concurrency,
            r.lifecycles,
            r.lifecycles as f64 / secs,
            r.commands as f64 / secs,
            ms(percentile(&r.latencies, 50.0)),
            ms(percentile(&r.latencies, 99.0)),
            ms(r.latencies.last().copied().unwrap_or(0)),
            r.cpu.as_secs_f64() / secs,
            r.cpu.as_secs_f64() * 1e6 / r.commands.max(1) as f64,
            r.load,
        );
    }
    println!("(p50/p99/max: latency of one command, from the call until its durable answer)");
    for r in runs {
        println!(
            "  {} @ {}: CPU us per command by thread: {}",
            r.label, r.concurrency, r.threads
        );
        if !r.store.is_empty() {
            println!("  {} @ {}: {}", r.label, r.concurrency, r.store);
        }
    }
}

/// Sled alone: `batches` (recorded from a run) applied on one thread to a fresh sled
/// database, without a flush, with one flush per 64 batches, and with one per batch.
fn replay(batches: &[Vec<Mutation>]) {
    let mutations: usize = batches.iter().map(Vec::len).sum();
    println!(
        "sled alone, one thread: the {} batches of that run ({:.1} mutations each) applied to a fresh sled database",
        batches.len(),
        mutations as f64 / batches.len().max(1) as f64
    );
    for (label, flush_every) in [
        ("apply_batch, no flush", 0),
        ("apply_batch, flush per 64 batches", 64),
        ("apply_batch, flush per batch", 1),
    ] {
        let dir = common::scratch_dir("replay");
        let kv = SledKv::open(dir.path()).unwrap();
        let copy = batches.to_vec();
        let n = copy.len();
        let cpu0 = common::cpu_time();
        let began = Instant::now();
        for (i, b) in copy.into_iter().enumerate() {
            kv.apply(b).unwrap();
            if flush_every > 0 && (i + 1).is_multiple_of(flush_every) {
                kv.flush().unwrap();
            }
        }
        kv.flush().unwrap();
        let wall = began.elapsed().as_secs_f64();
        let cpu = common::cpu_time().saturating_sub(cpu0).as_secs_f64();
        println!(
            "  {label:<36} {:>8.0} batches/s; per batch {:>6.1} us wall, {:>6.1} us CPU (all threads)",
            n as f64 / wall,
            wall * 1e6 / n as f64,
            cpu * 1e6 / n as f64,
        );
    }
}

/// The pure core alone, one thread: start and decide `n` lifecycles, then encode each
/// resulting state and history entry as the store would, and decode each state back.
fn core_alone(n: usize) {
    let wf = Workflow::from_value(&common::workflow_json("approval-flow"), None).unwrap();
    let now = chrono::Utc::now();
    let (mut apply_ns, mut encode_ns, mut decode_ns) = (0u128, 0u128, 0u128);
    let (mut commands, mut state_bytes, mut history_bytes, mut history_entries) =
        (0u64, 0usize, 0usize, 0usize);
    for i in 0..n {
        let amount = if i.is_multiple_of(2) { 5_000 } else { 50_000 };
        let t = Instant::now();
        let mut step = start_until_quiet(
            &wf,
            format!("0190f3a2c41b-{i:08x}"),
            json!({"request_id": format!("R{i}"), "amount": amount}),
            now,
            &NoPlugins,
        )
        .unwrap();
        apply_ns += t.elapsed().as_nanos();
        commands += 1;
        loop {
            let t = Instant::now();
            let state = serde_json::to_vec(&step.state).unwrap();
            let mut hist = 0;
            for e in &step.effects {
                if let waystation_core::Effect::History(h) = e {
                    hist += serde_json::to_vec(h).unwrap().len();
                    history_entries += 1;
                }
            }
            encode_ns += t.elapsed().as_nanos();
            state_bytes += state.len();
            history_bytes += hist;
            let t = Instant::now();
            let back: waystation_core::InstanceState = serde_json::from_slice(&state).unwrap();
            decode_ns += t.elapsed().as_nanos();
            if back.status != Status::Running {
                break;
            }
            let input = common::approve_first_task(&back);
            let t = Instant::now();
            step = apply_until_quiet(&wf, back, input, now, &NoPlugins).unwrap();
            apply_ns += t.elapsed().as_nanos();
            commands += 1;
        }
    }
    let per = |ns: u128| ns as f64 / commands as f64 / 1e3;
    println!(
        "core alone, 1 thread, {n} lifecycles = {commands} commands: per command core apply {:.1} us, JSON encode (state + history) {:.1} us, \
         JSON decode (state) {:.1} us; state {} B, {:.1} history entries of {} B per command",
        per(apply_ns),
        per(encode_ns),
        per(decode_ns),
        state_bytes / commands as usize,
        history_entries as f64 / commands as f64,
        history_bytes / history_entries.max(1),
    );
}

fn main() {
    let instances = common::env_usize("WAYSTATION_BENCH_INSTANCES", 10_000);
    let concurrencies = common::env_list("WAYSTATION_BENCH_CONCURRENCY", &[1, 64, 256, 1024]);
    let probe_concurrency = common::env_usize("WAYSTATION_BENCH_PROBE_CONCURRENCY", 256);
    println!(
        "# durable approval-flow lifecycles: {instances} instances; {}; load average {}",
        common::machine(),
        common::loadavg()
    );
    let tokio = common::tokio_runtime();
    let stores = std::env::var("WAYSTATION_BENCH_STORES")
        .unwrap_or_else(|_| "fjall,sled,redb,memory,core".into());
    let stores: Vec<&str> = stores.split(',').map(str::trim).collect();
    let mut runs = embedded_runs(&tokio, &stores, instances, &concurrencies);
    runs.extend(pg_runs(&tokio, &stores, instances, &concurrencies));
    let mut recorded = Vec::new();
    if stores.contains(&"probe") {
        let (r, batches) = probe_run(&tokio, instances, probe_concurrency);
        runs.push(r);
        recorded = batches;
    }
    for &c in concurrencies.iter().filter(|_| stores.contains(&"memory")) {
        let store = common::memory();
        let (mut r, _rt) = tokio.block_on(run("memory", store.clone(), instances, c));
        r.store = store.backend().summary(r.commands);
        runs.push(r);
    }
    print_runs(&runs);
    if !recorded.is_empty() {
        replay(&recorded);
    }
    if stores.contains(&"core") {
        core_alone(instances);
    }
    let (rss, peak) = common::rss();
    println!(
        "process RSS {:.0} MiB (peak {:.0} MiB); load average at the end {}",
        common::mib(rss),
        common::mib(peak),
        common::loadavg()
    );
}

/// One run per embedded engine named in `stores` and concurrency, each on a fresh
/// directory; a run's store line is what stays on disk once the store is closed.
fn embedded_runs(
    tokio: &tokio::runtime::Runtime,
    stores: &[&str],
    instances: usize,
    concurrencies: &[usize],
) -> Vec<Run> {
    let mut runs = Vec::new();
    // `WAYSTATION_BENCH_ROLLUPS=on,off` runs each engine also without the report rollups
    // (named `{engine}-no-rollups`), to show what they cost in the same run.
    let rollups = std::env::var("WAYSTATION_BENCH_ROLLUPS").unwrap_or_else(|_| "on".into());
    let settings: Vec<bool> = rollups.split(',').map(|r| r.trim() != "off").collect();
    let runs_of = Engine::ALL
        .into_iter()
        .filter(|e| stores.contains(&e.as_str()))
        .flat_map(|e| settings.iter().map(move |on| (e, *on)));
    for (engine, rollups_on) in runs_of {
        let name = match rollups_on {
            true => engine.as_str().to_owned(),
            false => format!("{}-no-rollups", engine.as_str()),
        };
        for &c in concurrencies {
            let dir = common::scratch_dir("lifecycles");
            let store = Arc::new(KvStore::new(engine.open(dir.path()).unwrap()));
            store.set_rollups_for_benchmark(rollups_on);
            let (mut r, rt) = tokio.block_on(run(&name, store.clone(), instances, c));
            drop(rt);
            drop(store); // closed: what is on disk is what stays
            let disk = common::disk_usage(dir.path());
            r.store = format!(
                "on disk {:.1} MiB, {:.0} B per finished instance",
                common::mib(disk),
                disk as f64 / instances as f64
            );
            runs.push(r);
            drop(dir);
        }
    }
    runs
}

/// One run per concurrency on PostgreSQL with 1, 2 or 3 nodes, for each `pgN` named in
/// `stores`; each on a fresh schema.
fn pg_runs(
    tokio: &tokio::runtime::Runtime,
    stores: &[&str],
    instances: usize,
    concurrencies: &[usize],
) -> Vec<Run> {
    let mut runs = Vec::new();
    for nodes in 1..=3usize {
        let label = format!("pg{nodes}");
        if !stores.contains(&label.as_str()) {
            continue;
        }
        for &c in concurrencies {
            let schema = common::PgSchema::new("lifecycles");
            let stores: Vec<Arc<dyn Store>> = (0..nodes).map(|_| schema.open()).collect();
            let (r, rts) = tokio.block_on(run_nodes(&label, stores, instances, c));
            drop(rts);
            runs.push(r);
        }
    }
    runs
}

/// A run on sled through the probe, which counts the store's work and records every
/// batch (for [`replay`]); returns the run and the batches.
fn probe_run(
    tokio: &tokio::runtime::Runtime,
    instances: usize,
    concurrency: usize,
) -> (Run, Vec<Vec<Mutation>>) {
    let dir = common::scratch_dir("lifecycles-probe");
    let store = Arc::new(KvStore::new(
        common::Probe::new(SledKv::open(dir.path()).unwrap(), false).recording_batches(),
    ));
    let (mut r, rt) = tokio.block_on(run("probed", store.clone(), instances, concurrency));
    drop(rt);
    let probe = store.backend();
    r.store = probe.summary(r.commands);
    let recorded = std::mem::take(&mut *probe.recorded.as_ref().unwrap().lock().unwrap());
    drop(store);
    drop(dir);
    (r, recorded)
}
