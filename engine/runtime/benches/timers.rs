#![allow(missing_docs)]
//! Issue 3, benchmark 2: a million armed timers. Disk and memory they take, and how late
//! the real scheduler fires them.
//!
//! Workload: `WAYSTATION_BENCH_TIMERS` instances (default 1,000,000) of a one-stage workflow
//! whose `wait` stage has the deadline `timestamp(input.due_at)` and a timeout branch to an
//! end stage: one armed timer per instance, one durable command to fire it. The due times
//! are spread evenly over a window of `WAYSTATION_BENCH_WINDOW_S` seconds (default 3,600,
//! i.e. 278 timers due per second) that opens after every timer is armed; the timers due in
//! its first `WAYSTATION_BENCH_MEASURE_S` seconds (default 600: 166,667 timers, while the
//! rest stay armed) are measured. `WAYSTATION_BENCH_WINDOW_S=600` with the same measure
//! fires all of them at 1,667 per second, above what sled lets the engine fire per second
//! at this size: then the lag is a backlog. Arming runs `WAYSTATION_BENCH_CONCURRENCY`
//! starts at once (default 512), through the runtime, durably.
//! `Runtime::run_scheduler` with `SystemClock` runs from the beginning, as in production, and
//! fires them.
//!
//! Lag per timer, two ways: the runtime's own timer-lag metric (`Metrics::timer_lag`, the
//! figure `/metrics` exports: clock read when the firing command starts, minus the due
//! time; a histogram, so percentiles are bucket bounds), and, exactly per timer, when the
//! batch with its effect was applied (visible) and when the group flush covering it
//! returned (durable: when the runtime considers it done) minus its due time, taken by a
//! pass-through probe between the store (`KvStore`) and the engine.
//!
//! Then a burst: `WAYSTATION_BENCH_BURST` timers (default 100,000) on a fresh store, all due
//! at the same instant: the scheduler's top firing rate, and the lag a backlog produces.
//!
//! The store is the engine `WAYSTATION_BENCH_ENGINE` names (`fjall`, the default, `sled`
//! or `redb`).
//!
//! Then, with `WAYSTATION_BENCH_PG_BURST=N` (default 0: skipped), the same burst of N timers
//! on the local PostgreSQL (`WAYSTATION_BENCH_PG_URL`) with each node count of
//! `WAYSTATION_BENCH_PG_NODES` (default `1,3`): every node is a runtime with its own pool
//! and its own scheduler, as `waystation serve` processes would be; they claim due timers
//! in the database (`FOR UPDATE SKIP LOCKED`). Measured: from the due instant until every
//! instance has ended (its timer fired, committed), polled in the database every 50 ms;
//! PostgreSQL's CPU per timer from `/proc`.
//!
//! Run: `cargo bench -p waystation-runtime --bench timers`

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{mib, ms, percentile, ProbedDisk};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waystation_runtime::metrics::LAG_BUCKETS_MS;
use waystation_runtime::{NoPlugins, Runtime, SystemClock};

fn workflow() -> Value {
    json!({
        "id": "bench-timer",
        "title": "One deadline",
        "start": "wait",
        "stages": {
            "wait": {
                "kind": "wait",
                "deadline": "timestamp(input.due_at)",
                "on": {"done": {"to": "done"}},
                "timeout": {"to": "expired"}
            },
            "done": {"kind": "end", "outcome": "resolved"},
            "expired": {"kind": "end", "outcome": "expired"}
        }
    })
}

/// Starts `n` instances, the i-th due at `due(i)`, `concurrency` at a time.
async fn arm(
    rt: &Arc<Runtime>,
    n: usize,
    concurrency: usize,
    due: Arc<dyn Fn(usize) -> DateTime<Utc> + Send + Sync>,
) -> Duration {
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(n) {
        let (rt, next, due) = (rt.clone(), next.clone(), due.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let at = due(i).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                rt.start("bench-timer", json!({"due_at": at}), None)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    began.elapsed()
}

/// Waits until `n` timers have fired durably (or `limit` passes), printing progress.
async fn wait_fired(store: &ProbedDisk, n: usize, limit: Duration) -> Duration {
    let began = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let fired = store.backend().fired_durable.lock().unwrap().len();
        if fired >= n || began.elapsed() > limit {
            return began.elapsed();
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            eprintln!("  ... {fired} of {n} fired");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `p`-th percentile of the runtime's lag histogram, as the bound of its bucket.
fn histogram_percentile(buckets: &[u64], p: f64) -> String {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return "-".to_owned();
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return match LAG_BUCKETS_MS.get(i) {
                Some(bound) => format!("<= {bound} ms"),
                None => format!("> {} ms", LAG_BUCKETS_MS[LAG_BUCKETS_MS.len() - 1]),
            };
        }
    }
    unreachable!("the ranks add up")
}

fn lag_row(name: &str, lags: &mut [u64]) {
    lags.sort_unstable();
    println!(
        "{:<28} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>10.1}",
        name,
        lags.len(),
        ms(percentile(lags, 50.0)),
        ms(percentile(lags, 99.0)),
        ms(percentile(lags, 99.9)),
        ms(lags.last().copied().unwrap_or(0)),
    );
}

struct Scenario {
    name: &'static str,
    timers: usize,
    /// Seconds over which due times spread (0: all due at once).
    window_s: f64,
    /// How many timers, the soonest due, to wait for and measure.
    measure: usize,
}

fn run(tokio: &tokio::runtime::Runtime, s: &Scenario, concurrency: usize) {
    let dir = common::scratch_dir("timers");
    let store = common::open_disk(dir.path(), true);
    let rt = Runtime::new(store.clone(), Arc::new(NoPlugins), Arc::new(SystemClock));
    let (rss0, _) = common::rss();
    let cpu0 = common::cpu_time();
    tokio.block_on(async {
        rt.put_definition(&workflow()).await.unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let scheduler = tokio::spawn(rt.clone().run_scheduler(async move {
            let _ = stop_rx.await;
        }));

        let (opens, fired_early) =
            arm_phase(&rt, &store, dir.path(), s, concurrency, rss0, cpu0).await;
        fire_phase(&rt, &store, dir.path(), s, opens, fired_early).await;
        let _ = stop_tx.send(());
        scheduler.await.unwrap();
    });
    drop(rt);
    drop(store);
    drop(dir);
}

/// Arms `s.timers` timers due over `s.window_s` seconds, the window opening after arming
/// is expected to end (a calibration first measures this machine's rate); prints what
/// arming cost (`rss0` and `cpu0` were read before it). Returns when the window opens and
/// how many timers fired while arming.
async fn arm_phase(
    rt: &Arc<Runtime>,
    store: &ProbedDisk,
    dir: &std::path::Path,
    s: &Scenario,
    concurrency: usize,
    rss0: u64,
    cpu0: Duration,
) -> (DateTime<Utc>, usize) {
    // Calibrate: how fast does this machine arm? A throwaway store, 1% of the timers.
    let calib_n = (s.timers / 100).clamp(1000, 20_000).min(s.timers);
    let rate = {
        let cdir = common::scratch_dir("timers-calibration");
        let cstore = common::open_disk(cdir.path(), false);
        let crt = Runtime::new(cstore, Arc::new(NoPlugins), Arc::new(SystemClock));
        crt.put_definition(&workflow()).await.unwrap();
        let far = Utc::now() + TimeDelta::days(365);
        let took = arm(&crt, calib_n, concurrency, Arc::new(move |_| far)).await;
        calib_n as f64 / took.as_secs_f64()
    };
    // The window opens after arming is expected to end, with a margin: stores slow
    // down as they grow, so assume half the calibrated rate, plus 10 s.
    let lead = Duration::from_secs_f64(s.timers as f64 / (rate / 2.0) + 10.0);
    let opens = Utc::now() + TimeDelta::from_std(lead).unwrap();
    let window = s.window_s;
    let n = s.timers;
    println!(
        "## {}: {} timers, due {} from {} (calibrated arm rate {:.0}/s, lead {:.0} s)",
        s.name,
        n,
        if window > 0.0 {
            format!("evenly over {window:.0} s ({:.0}/s)", n as f64 / window)
        } else {
            "all at once".to_owned()
        },
        opens.format("%H:%M:%S"),
        rate,
        lead.as_secs_f64()
    );
    let due = Arc::new(move |i: usize| {
        opens + TimeDelta::microseconds((window * 1e6 * i as f64 / n as f64) as i64)
    });
    let armed_in = arm(rt, n, concurrency, due).await;
    let arm_cpu = common::cpu_time().saturating_sub(cpu0);
    let armed_at = Utc::now();
    let (rss_armed, _) = common::rss();
    let du = common::disk_usage(dir);
    let fired_early = store.backend().fired_durable.lock().unwrap().len();
    println!(
        "armed {n} in {:.1} s ({:.0} starts/s, CPU {:.0}%); arming ended {:.1} s before the first due time{}",
        armed_in.as_secs_f64(),
        n as f64 / armed_in.as_secs_f64(),
        100.0 * arm_cpu.as_secs_f64() / armed_in.as_secs_f64(),
        (opens - armed_at).num_milliseconds() as f64 / 1000.0,
        if fired_early > 0 { format!(" ({fired_early} fired while arming)") } else { String::new() }
    );
    println!(
        "with {n} timers armed: on disk {:.0} MiB, {:.0} B per armed instance; \
         RSS {:.0} MiB (+{:.0} MiB while arming)",
        mib(du),
        du as f64 / n as f64,
        mib(rss_armed),
        mib(rss_armed.saturating_sub(rss0)),
    );
    println!("arming, store work: {}", store.backend().summary(n as u64));
    (opens, fired_early)
}

/// Waits for the window to open, then for the `s.measure` timers due first to fire;
/// prints their lags, what firing cost, and the runtime's own timer-lag metric.
async fn fire_phase(
    rt: &Runtime,
    store: &ProbedDisk,
    dir: &std::path::Path,
    s: &Scenario,
    opens: DateTime<Utc>,
    fired_early: usize,
) {
    let window = s.window_s;
    let n = s.timers;
    store.backend().reset();
    let fire_cpu0 = common::cpu_time();
    let fire_threads0 = common::thread_cpu();

    // Fire: wait for the window, then until all have fired.
    let until_open = (opens - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_open).await;
    let fire_began = Instant::now();
    let measure = s.measure.min(n);
    let measure_window = window * measure as f64 / n as f64;
    let took = wait_fired(
        store,
        measure.saturating_sub(fired_early),
        Duration::from_secs_f64(measure_window + 600.0 + measure as f64 / 500.0),
    )
    .await;
    let fire_cpu = common::cpu_time().saturating_sub(fire_cpu0);
    let fire_threads = common::thread_cpu();
    let mut applied = store.backend().fired_applied.lock().unwrap().clone();
    let mut durable = store.backend().fired_durable.lock().unwrap().clone();
    let fired = durable.len();
    println!(
        "fired {fired} (measured: the {measure} due first, of {n} armed) in {:.1} s after the first came due ({:.0}/s; due rate {}); CPU {:.0}% of one core; store: {}",
        took.as_secs_f64(),
        fired as f64 / took.as_secs_f64(),
        if window > 0.0 { format!("{:.0}/s", n as f64 / window) } else { "all at once".to_owned() },
        100.0 * fire_cpu.as_secs_f64() / fire_began.elapsed().as_secs_f64(),
        store.backend().summary(fired as u64),
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "lag (due -> ...)", "timers", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    lag_row("committed (visible)", &mut applied);
    lag_row("flushed (durable, acked)", &mut durable);
    println!(
        "firing, CPU us per timer by thread: {}",
        common::thread_cpu_delta(&fire_threads0, &fire_threads, fired as u64)
    );
    // The runtime's own metric (`Metrics::timer_lag`): the clock read when the firing
    // command starts (instance locked and loaded) minus the due time.
    let (buckets, sum_ms) = rt.metrics().timer_lag();
    let counted: u64 = buckets.iter().sum();
    println!(
        "runtime timer-lag metric: {counted} timers, p50 {}, p99 {}, p99.9 {}, mean {:.1} ms; counts per bucket <= {LAG_BUCKETS_MS:?} ms, more: {buckets:?}",
        histogram_percentile(&buckets, 50.0),
        histogram_percentile(&buckets, 99.0),
        histogram_percentile(&buckets, 99.9),
        sum_ms as f64 / counted.max(1) as f64,
    );
    let (rss_after, peak) = common::rss();
    println!(
        "after firing: on disk {:.0} MiB; RSS {:.0} MiB, peak {:.0} MiB",
        mib(common::disk_usage(dir)),
        mib(rss_after),
        mib(peak)
    );
}

/// The burst on PostgreSQL with `nodes` runtimes: see the module doc.
fn pg_burst(tokio: &tokio::runtime::Runtime, n: usize, nodes: usize, concurrency: usize) {
    let schema = common::PgSchema::new("timers");
    let stores: Vec<Arc<dyn waystation_store::Store>> = (0..nodes).map(|_| schema.open()).collect();
    let rts: Vec<Arc<Runtime>> = stores
        .iter()
        .map(|s| Runtime::new(s.clone(), Arc::new(NoPlugins), Arc::new(SystemClock)))
        .collect();
    tokio.block_on(async {
        rts[0].put_definition(&workflow()).await.unwrap();
        // Arming: as fast as the first node goes, due well after it ends.
        let calib = (n / 20).clamp(200, 2000);
        let far = Utc::now() + TimeDelta::days(365);
        let took = arm(&rts[0], calib, concurrency, Arc::new(move |_| far)).await;
        let rate = calib as f64 / took.as_secs_f64();
        let lead = Duration::from_secs_f64(n as f64 / (rate / 2.0) + 5.0);
        let opens = Utc::now() + TimeDelta::from_std(lead).unwrap();
        let armed_in = arm(&rts[0], n, concurrency, Arc::new(move |_| opens)).await;
        println!(
            "## pg burst, {nodes} node(s): {n} timers due at {} (armed in {:.1} s, {:.0} starts/s)",
            opens.format("%H:%M:%S"),
            armed_in.as_secs_f64(),
            n as f64 / armed_in.as_secs_f64()
        );
        let mut stops = Vec::new();
        let mut schedulers = Vec::new();
        for rt in &rts {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            stops.push(tx);
            schedulers.push(tokio::spawn(rt.clone().run_scheduler(async move {
                let _ = rx.await;
            })));
        }
        let until_open = (opens - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(until_open).await;
        let began = Instant::now();
        let (cpu0, pg0) = (common::cpu_time(), common::postgres_cpu());
        let ended = |store: &Arc<dyn waystation_store::Store>| {
            store
                .count_status(waystation_core::Status::Completed)
                .unwrap() as usize
        };
        // `calib` far-future instances stay running; the burst's all end.
        loop {
            let done = ended(&stores[0]);
            if done >= n || began.elapsed() > Duration::from_secs(1800) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = began.elapsed();
        let (cpu, pg) = (
            common::cpu_time().saturating_sub(cpu0),
            common::postgres_cpu().saturating_sub(pg0),
        );
        println!(
            "pg{nodes}: fired {} in {:.1} s after they came due: {:.0} timers/s; engine CPU {:.0} us and PostgreSQL CPU {:.0} us per timer",
            ended(&stores[0]),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / n as f64,
            pg.as_secs_f64() * 1e6 / n as f64,
        );
        for tx in stops {
            let _ = tx.send(());
        }
        for s in schedulers {
            s.await.unwrap();
        }
    });
}

fn main() {
    let timers = common::env_usize("WAYSTATION_BENCH_TIMERS", 1_000_000);
    let window = common::env_usize("WAYSTATION_BENCH_WINDOW_S", 3600);
    let measure_s = common::env_usize("WAYSTATION_BENCH_MEASURE_S", 600).min(window);
    let burst = common::env_usize("WAYSTATION_BENCH_BURST", 100_000);
    let concurrency = common::env_usize("WAYSTATION_BENCH_CONCURRENCY", 512);
    println!(
        "# armed timers; {}; load average {}",
        common::machine(),
        common::loadavg()
    );
    let tokio = common::tokio_runtime();
    if timers > 0 {
        run(
            &tokio,
            &Scenario {
                name: "spread",
                timers,
                window_s: window as f64,
                measure: if window == 0 {
                    timers
                } else {
                    (timers as f64 * measure_s as f64 / window as f64).ceil() as usize
                },
            },
            concurrency,
        );
    }
    if burst > 0 {
        run(
            &tokio,
            &Scenario {
                name: "burst",
                timers: burst,
                window_s: 0.0,
                measure: burst,
            },
            concurrency,
        );
    }
    let pg = common::env_usize("WAYSTATION_BENCH_PG_BURST", 0);
    if pg > 0 {
        for nodes in common::env_list("WAYSTATION_BENCH_PG_NODES", &[1, 3]) {
            println!("load average before pg{nodes}: {}", common::loadavg());
            pg_burst(&tokio, pg, nodes, concurrency.min(64));
        }
    }
    println!("load average at the end {}", common::loadavg());
}
