#![allow(missing_docs)]
//! Issue 3, benchmark 3: restart to ready with a million instances stored.
//!
//! What `waystation serve` does at start (`waystation_server::open`, then `run`): open the
//! store of engine `WAYSTATION_BENCH_ENGINE` (`fjall`, the default, `sled` or `redb`) with
//! `Engine::open`, build the `Runtime`, and serve. Measured here: the
//! open, the runtime, the first query (instances of `approval-flow` at stage `review`, a
//! page of 20, from the stage index) and the first command (approving the oldest of them,
//! acknowledged after its group flush), each from the moment the process starts opening.
//! "Ready" is the first command acknowledged. The plugin registry and token bootstrap of
//! the server are not part of the runtime crate and not measured.
//!
//! The store: `WAYSTATION_BENCH_INSTANCES` (default 1,000,000) `approval-flow` instances:
//! a quarter waiting at `review` (5,000), a quarter at `manager` (50,000, reviewer approved),
//! a quarter approved by the reviewer (5,000) and a quarter by both (50,000): 2 commands per
//! instance, 2,000,000 commits. They are written by a child process through a bulk path
//! that writes exactly what the runtime writes: the same core calls
//! (`start_until_quiet`, `apply_until_quiet`) and the same `Store::commit` of the same
//! `Commit` as `Runtime::commit`, command by command, but flushed once per
//! `WAYSTATION_BENCH_FLUSH_EVERY` commits (default 10,000) instead of before each
//! acknowledgement (there is nobody to acknowledge). The child is then killed with SIGKILL.
//!
//! Every restart is a new process, as in production. After it is ready, it serves
//! `WAYSTATION_BENCH_LOAD` more commands (default 100,000: `approval-flow` lifecycles,
//! 256 at a time, through the runtime, durable), as a server would before it stops, then
//! stops. Rounds (`WAYSTATION_BENCH_ROUNDS`, default 2) of four restarts, each finding
//! the store as the one before left it:
//! - after SIGKILL (of the populating child, or of the previous round's last process),
//!   page cache cold;
//! - after a clean stop (runtime and store dropped, process exited), cold;
//! - after a clean stop, page cache warm;
//! - after SIGKILL, warm.
//!
//! Why the load matters: sled 0.34 writes its page-table snapshot only while it opens
//! (`snapshot_after_ops` is a no-op in 0.34), so every open replays all the log written
//! since the previous open, whether that process stopped cleanly or was killed. fjall
//! replays at most its bounded journal; redb opens at its last durable commit (and after a
//! kill, checks and repairs its allocator state).
//!
//! "Cold" evicts the store's files from the OS page cache first (`dd oflag=nocache`), so
//! the open reads from the disk as after a reboot.
//!
//! `WAYSTATION_BENCH_STORE_DIR`: keep the populated store in that directory and reuse it on
//! the next run (populated again when it holds another count); by default a scratch
//! directory under `WAYSTATION_BENCH_DIR` (or the temp dir), deleted at the end.
//!
//! Run: `cargo bench -p waystation-runtime --bench restart`

mod common;

use chrono::Utc;
use common::mib;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::{Status, Workflow};
use waystation_runtime::{NoPlugins, Runtime, SystemClock};
use waystation_store::{
    Commit, DefinitionStore, DiskStore, Engine, InstanceQuery, KvStore, QueryStore, Store,
};

/// The engine under test.
fn engine() -> Engine {
    std::env::var("WAYSTATION_BENCH_ENGINE")
        .map(|e| e.parse().unwrap())
        .unwrap_or(Engine::DEFAULT)
}

/// Opens the store in `dir` as the server does.
fn open_store(dir: &Path) -> DiskStore {
    KvStore::new(engine().open(dir).unwrap())
}

/// The child-process roles, by environment variable.
const POPULATE: &str = "WAYSTATION_BENCH_RESTART_POPULATE";
const RESTART: &str = "WAYSTATION_BENCH_RESTART_CHILD";
/// How a restart child reports its milestones.
const RESULT: &str = "restart-result";
/// The line a child prints when the parent may kill it.
const KILL_ME: &str = "kill me now";
/// Prefix of a child's line that belongs under its result row, not before it.
const FOOTNOTE: &str = "footnote:";

fn marker(dir: &Path) -> PathBuf {
    dir.join("waystation-bench-populated")
}

/// Child: writes `n` instances into the store in `dir`, then waits to be killed.
fn populate(dir: &Path, n: usize) {
    let flush_every = common::env_usize("WAYSTATION_BENCH_FLUSH_EVERY", 10_000).max(1);
    let store = open_store(dir);
    let definition = common::workflow_json("approval-flow");
    let put = store
        .put_definition("approval-flow", &definition, Utc::now(), None)
        .unwrap();
    let mut wf = Workflow::from_value(&definition, None).unwrap();
    wf.version = put.version;
    // Instance ids as the runtime makes them: creation time in ms, then a counter.
    let seed = std::process::id() << 20;
    let began = Instant::now();
    let (mut commits, mut flushed_at) = (0usize, 0usize);
    let mut last_print = Instant::now();
    let commit = |before: Option<&waystation_core::InstanceState>, step: &waystation_core::Step| {
        store
            .commit(&Commit {
                before,
                after: &step.state,
                effects: &step.effects,
                fired_timer: None,
                idempotency: None,
            })
            .unwrap();
    };
    for i in 0..n {
        commits += write_instance(&wf, i, seed, &commit);
        if commits - flushed_at >= flush_every {
            store.flush().unwrap();
            flushed_at = commits;
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "  ... {} of {n} instances written ({:.0} commits/s)",
                i + 1,
                commits as f64 / began.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
    }
    store.flush().unwrap();
    let took = began.elapsed();
    std::fs::write(marker(dir), n.to_string()).unwrap();
    println!(
        "populated {n} instances with {commits} commits in {:.0} s ({:.0} commits/s, one flush per {flush_every})",
        took.as_secs_f64(),
        commits as f64 / took.as_secs_f64()
    );
    println!("{KILL_ME}");
    std::thread::sleep(Duration::from_secs(3600));
}

/// Starts instance `i` (id made from `seed` and `i`) and decides it to its place in the
/// mix, through `commit`; returns how many commits that took. Amounts alternate between
/// 5,000 and 50,000; by `i % 4` an instance waits at review (0), at manager (1), or is
/// approved to the end (2, 3).
fn write_instance(
    wf: &Workflow,
    i: usize,
    seed: u32,
    commit: &impl Fn(Option<&waystation_core::InstanceState>, &waystation_core::Step),
) -> usize {
    let now = Utc::now();
    let amount = if i.is_multiple_of(2) { 5_000 } else { 50_000 };
    let id = format!(
        "{:012x}-{:08x}",
        now.timestamp_millis(),
        seed.wrapping_add(i as u32)
    );
    let input = json!({"request_id": format!("R{i}"), "amount": amount});
    let mut step = start_until_quiet(wf, id, input, now, &NoPlugins).unwrap();
    commit(None, &step);
    let mut commits = 1;
    // 0: waits at review; 1: at manager; 2 and 3: approved to the end.
    let decisions = match i % 4 {
        0 => 0,
        1 | 2 => 1,
        _ => 2,
    };
    for _ in 0..decisions {
        let before = step.state;
        let input = common::approve_first_task(&before);
        step = apply_until_quiet(wf, before.clone(), input, Utc::now(), &NoPlugins).unwrap();
        commit(Some(&before), &step);
        commits += 1;
    }
    commits
}

/// Child: one restart. Opens the store until ready, prints the milestones, then stops the
/// way `WAYSTATION_BENCH_RESTART_STOP` says: `clean` (the runtime and store dropped, the
/// process exits) or `kill` (it waits, running, for the parent's SIGKILL).
fn restart_child(dir: &Path) {
    let tokio = common::tokio_runtime();
    let (ready, rt) = tokio.block_on(open_until_ready(dir));
    println!(
        "{RESULT} {} {} {} {} {}",
        ready.open.as_micros(),
        ready.runtime.as_micros(),
        ready.query.as_micros(),
        ready.command.as_micros(),
        ready.rss_bytes
    );
    let load = common::env_usize("WAYSTATION_BENCH_LOAD", 100_000);
    if load > 0 {
        let began = Instant::now();
        let served = tokio.block_on(serve(&rt, load));
        println!(
            "{FOOTNOTE}  (then served {served} commands in {:.0} s before stopping)",
            began.elapsed().as_secs_f64()
        );
    }
    if std::env::var("WAYSTATION_BENCH_RESTART_STOP").as_deref() == Ok("clean") {
        // A clean stop: the runtime joins its flusher, the store flushes and closes.
        drop(rt);
        drop(tokio);
        return;
    }
    println!("{KILL_ME}");
    std::thread::sleep(Duration::from_secs(3600));
}

/// Runs `approval-flow` lifecycles, 256 at a time, until at least `commands` commands are
/// acknowledged; returns how many.
async fn serve(rt: &Arc<Runtime>, commands: usize) -> usize {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..256usize {
        let (rt, done) = (rt.clone(), done.clone());
        tasks.spawn(async move {
            let mut n = t;
            while done.load(std::sync::atomic::Ordering::Relaxed) < commands {
                let amount = if n.is_multiple_of(2) { 5_000 } else { 50_000 };
                let input = json!({"request_id": format!("L{n}"), "amount": amount});
                let mut now = rt
                    .start("approval-flow", input, None)
                    .await
                    .unwrap()
                    .instance;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                while now.status == Status::Running {
                    let task = rt.instance(&now.id).unwrap().open_tasks()[0].clone();
                    let role = common::role_at(&now.stage);
                    now = rt
                        .decide(&task.id, common::decider(role), true, None, None)
                        .await
                        .unwrap()
                        .instance;
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                n += 256;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    done.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs this benchmark binary as a child with `envs`, passes its output through, and
/// returns the line starting with [`RESULT`], if any, and the lines starting with
/// [`FOOTNOTE`] (without it), to be printed after the result. A child that prints
/// [`KILL_ME`] is killed with SIGKILL; any other must exit successfully.
fn child(envs: &[(&str, &std::ffi::OsStr)]) -> (Option<String>, Vec<String>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut result = None;
    let mut footnotes = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line == KILL_ME {
            child.kill().unwrap(); // SIGKILL
            killed = true;
            break;
        }
        if line.starts_with(RESULT) {
            result = Some(line);
        } else if let Some(note) = line.strip_prefix(FOOTNOTE) {
            footnotes.push(note.to_string());
        } else {
            println!("{line}");
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.success(),
        !killed,
        "child {envs:?} ended with {status}"
    );
    (result, footnotes)
}

/// Drops every file of `dir` from the OS page cache (after writing back dirty pages).
fn evict_page_cache(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let ok = Command::new("dd")
                .arg("if=/dev/null")
                .arg(format!("of={}", path.display()))
                .args([
                    "oflag=nocache",
                    "conv=notrunc,fdatasync",
                    "count=0",
                    "status=none",
                ])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "dd could not evict {}", path.display());
        }
    }
}

/// Milestones from the start of the open, and the opened runtime.
struct Ready {
    open: Duration,
    runtime: Duration,
    query: Duration,
    command: Duration,
    rss_bytes: u64,
}

/// Opens the store and the runtime the way the server does, then answers a first query
/// and a first command.
async fn open_until_ready(dir: &Path) -> (Ready, Arc<Runtime>) {
    let began = Instant::now();
    let store = Arc::new(open_store(dir));
    let open = began.elapsed();
    let rt = Runtime::new(store, Arc::new(NoPlugins), Arc::new(SystemClock));
    let runtime = began.elapsed();
    let page = rt
        .query(&InstanceQuery {
            workflow: Some("approval-flow".into()),
            stage: Some("review".into()),
            limit: 20,
            ..InstanceQuery::default()
        })
        .unwrap();
    let query = began.elapsed();
    let first = page
        .items
        .first()
        .expect("an instance waiting at review")
        .clone();
    let state = rt.instance(&first.id).unwrap();
    let task = state.open_tasks()[0].clone();
    let done = rt
        .decide(&task.id, common::decider("reviewer"), true, None, None)
        .await
        .unwrap();
    assert_ne!(done.instance.stage, "review");
    let command = began.elapsed();
    let (rss_bytes, _) = common::rss();
    (
        Ready {
            open,
            runtime,
            query,
            command,
            rss_bytes,
        },
        rt,
    )
}

fn main() {
    if let Some(dir) = std::env::var_os(POPULATE) {
        let n = common::env_usize("WAYSTATION_BENCH_INSTANCES", 1_000_000);
        populate(Path::new(&dir), n);
        return;
    }
    if let Some(dir) = std::env::var_os(RESTART) {
        restart_child(Path::new(&dir));
        return;
    }
    let n = common::env_usize("WAYSTATION_BENCH_INSTANCES", 1_000_000);
    let rounds = common::env_usize("WAYSTATION_BENCH_ROUNDS", 2);
    println!(
        "# restart to ready with {n} instances stored on {}; {}; load average {}",
        engine(),
        common::machine(),
        common::loadavg()
    );
    let (_scratch, dir) = bench_dir();
    // How the last process on the store stopped: every restart below is a new process.
    let last_stop = dir.join("waystation-bench-last-stop");
    ensure_populated(&dir, n, &last_stop);
    println!("store: {:.0} MiB on disk", mib(common::disk_usage(&dir)));
    let worst = restarts(&dir, rounds, &last_stop);
    let (counted, first, kept) = time_counts(&dir);
    std::fs::write(&last_stop, "clean").unwrap();
    println!(
        "instances in the status index: {counted}; store {:.0} MiB on disk; slowest ready {:.0} ms (target 2,000 ms)",
        mib(common::disk_usage(&dir)),
        worst.as_secs_f64() * 1e3
    );
    println!(
        "counts for /metrics: first after the open (one scan of the indexes) {:.0} ms, then {:.1} us",
        first.as_secs_f64() * 1e3,
        kept.as_secs_f64() * 1e6
    );
    println!("load average at the end {}", common::loadavg());
}

/// The store's directory: `WAYSTATION_BENCH_STORE_DIR` (kept, so a populated store is
/// reused by the next run), or a scratch directory removed when the guard drops.
fn bench_dir() -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("WAYSTATION_BENCH_STORE_DIR") {
        Some(d) => {
            std::fs::create_dir_all(&d).unwrap();
            (None, PathBuf::from(d))
        }
        None => {
            let t = common::scratch_dir("restart");
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    }
}

/// Fills `dir` with `n` instances in a child process, unless its marker says it holds
/// them already; a fresh fill counts as stopped by SIGKILL (`last_stop`).
fn ensure_populated(dir: &Path, n: usize, last_stop: &Path) {
    let populated = std::fs::read_to_string(marker(dir)).ok() == Some(n.to_string());
    if !populated {
        if dir.read_dir().unwrap().next().is_some() {
            std::fs::remove_dir_all(dir).unwrap();
            std::fs::create_dir_all(dir).unwrap();
        }
        println!("populating {}", dir.display());
        child(&[(POPULATE, dir.as_os_str())]);
        std::fs::write(last_stop, "kill").unwrap();
    } else {
        println!("reusing the populated store in {}", dir.display());
    }
}

/// `rounds` rounds of four restarts, each a new process, printed one line each; returns
/// the slowest time to ready.
fn restarts(dir: &Path, rounds: usize, last_stop: &Path) -> Duration {
    println!(
        "{:<30} {:>9} {:>9} {:>12} {:>14} {:>8}  load before",
        "restart (a new process)", "open ms", "+runtime", "+1st query", "+1st command", "RSS MiB"
    );
    let mut worst = Duration::ZERO;
    let ms = |us: &str| us.parse::<f64>().unwrap() / 1e3;
    for _ in 0..rounds {
        // (page cache cold?, how this process stops): each restart finds the store as the
        // previous one left it, so a round sees both a SIGKILL and a clean stop, cold and warm.
        for (cold, stop) in [
            (true, "clean"),
            (true, "clean"),
            (false, "kill"),
            (false, "kill"),
        ] {
            let before = std::fs::read_to_string(last_stop).unwrap_or_default();
            let load = common::loadavg();
            if cold {
                evict_page_cache(dir);
            }
            let (line, footnotes) = child(&[
                (RESTART, dir.as_os_str()),
                ("WAYSTATION_BENCH_RESTART_STOP", stop.as_ref()),
            ]);
            let line = line.expect("the restart child reports");
            std::fs::write(last_stop, stop).unwrap();
            let f: Vec<&str> = line.split_whitespace().skip(1).collect();
            let ready = Duration::from_micros(f[3].parse().unwrap());
            worst = worst.max(ready);
            println!(
                "{:<30} {:>9.0} {:>9.0} {:>12.0} {:>14.0} {:>8.0}  {load}",
                format!(
                    "after {}, {} cache",
                    if before == "clean" {
                        "clean stop"
                    } else {
                        "SIGKILL"
                    },
                    if cold { "cold" } else { "warm" }
                ),
                ms(f[0]),
                ms(f[1]),
                ms(f[2]),
                ms(f[3]),
                mib(f[4].parse().unwrap()),
            );
            for note in footnotes {
                println!("{note}");
            }
        }
    }
    worst
}

/// Not part of any restart: the count from the status index, and what `/metrics` pays for
/// it: `(count, first count after an open (it scans the indexes), a later one (it reads the
/// counts the commits keep))`. The store is closed cleanly after.
fn time_counts(dir: &Path) -> (u64, Duration, Duration) {
    let store = open_store(dir);
    let count = || {
        let began = Instant::now();
        let n = [Status::Running, Status::Completed]
            .iter()
            .map(|s| store.count_status(*s).unwrap())
            .sum::<u64>();
        (n, began.elapsed())
    };
    let (counted, first) = count();
    let (_, kept) = count();
    drop(store);
    (counted, first, kept)
}
