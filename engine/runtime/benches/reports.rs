#![allow(missing_docs)]
//! Issue 15: what the report rollups cost per command, and how long a month's report takes.
//!
//! 1. **Cost per command.** `WAYSTATION_BENCH_COMMANDS` (default 20,000) orders, each
//!    started, begun and finished (three commits), through the same core calls and
//!    `Store::commit` as the runtime, on a fresh fjall store, with the rollups on and off
//!    (`set_rollups_for_benchmark`). The workflow has two keyword fields (tier, channel:
//!    three groups per instance) and a number field. Reported: time per command (core +
//!    commit, no flush: the fsync is the same either way), with the rollups on including
//!    every fold of the delta records into the cells. Orders start 37 s apart
//!    (`WAYSTATION_BENCH_SPACING_S` to change it); each one's
//!    steps are 10-60 minutes and 130-730 minutes after its start. With
//!    `WAYSTATION_BENCH_ORDER=order` (the default) each order's three commits run one after
//!    the other, so consecutive commits land in buckets hours apart (the worst case for the
//!    folds: few commands share a cell); with `WAYSTATION_BENCH_ORDER=time` every commit
//!    runs in the order of its time, as a running server would commit them.
//! 2. **A month's report.** `WAYSTATION_BENCH_INSTANCES` (default 1,000,000) orders spread
//!    evenly over October 2026 (flushed every 10,000), then the October report in
//!    Asia/Shanghai read `WAYSTATION_BENCH_QUERIES` times (default 20): all instances, and
//!    grouped by tier. Reported: median and slowest time, cells read.
//!
//! Run: `cargo bench -p waystation-runtime --bench reports`. Instructions per command, which
//! the machine's load does not move: `WAYSTATION_BENCH_ROLLUPS=off` (then `on`)
//! `WAYSTATION_BENCH_INSTANCES=0 valgrind --tool=callgrind <the bench binary>`, and compare
//! the inclusive count of `reports::per_command`.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::report::{spans, zone, Builder, PeriodKind};
use waystation_core::{Input, InstanceState, Workflow};
use waystation_runtime::NoPlugins;
use waystation_store::{Commit, FjallStore, ReportStore, Store};

const TIERS: [&str; 4] = ["gold", "silver", "bronze", "new"];
const CHANNELS: [&str; 3] = ["phone", "email", "app"];

fn workflow() -> Workflow {
    let d = json!({
        "id": "orders", "title": "Orders", "start": "todo",
        "fields": {
            "tier": {"type": "keyword", "value": "input.tier"},
            "channel": {"type": "keyword", "value": "input.channel"},
            "satisfaction": {"type": "number", "value": "input.satisfaction"}},
        "stages": {
            "todo": {"kind": "wait", "owner": "clerk", "deadline": "PT8H", "at_risk": "PT2H",
                     "on": {"begin": {"to": "in_progress"}}},
            "in_progress": {"kind": "wait", "owner": "clerk", "on": {"done": {"to": "done"}}},
            "done": {"kind": "end", "outcome": "resolved"}}});
    let mut wf = Workflow::from_value(&d, None).unwrap();
    wf.version = 1;
    wf
}

/// When order `i` started at `at` is begun (10 + i % 50 minutes later) and finished
/// (130 + i % 600 minutes after its start).
fn step_times(i: usize, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        at + TimeDelta::minutes(10 + (i % 50) as i64),
        at + TimeDelta::minutes(130 + (i % 600) as i64),
    )
}

/// Commits step `step` of order `i` at `now` (0: start, 1: begin, 2: finish) after
/// `before`, and gives the new state.
fn write_step(
    store: &FjallStore,
    wf: &Workflow,
    i: usize,
    step: usize,
    before: Option<InstanceState>,
    now: DateTime<Utc>,
) -> InstanceState {
    let next = match (step, &before) {
        (0, _) => {
            let input = json!({"tier": TIERS[i % 4], "channel": CHANNELS[i % 3],
                "satisfaction": i % 5 + 1});
            start_until_quiet(wf, format!("o{i:09}"), input, now, &NoPlugins).unwrap()
        }
        (_, Some(b)) => {
            let name = if step == 1 { "begin" } else { "done" };
            let input = Input::Event {
                name: name.into(),
                data: Value::Null,
                stage: None,
            };
            apply_until_quiet(wf, b.clone(), input, now, &NoPlugins).unwrap()
        }
        (_, None) => unreachable!("a later step follows the start"),
    };
    store
        .commit(&Commit {
            before: before.as_ref(),
            after: &next.state,
            effects: &next.effects,
            fired_timer: None,
            idempotency: None,
        })
        .unwrap();
    // As the runtime's report folder does (on its own thread there, here on this one, so
    // the fold is counted in the command's cost).
    if store.reports_pending() >= waystation_store::REPORT_FOLD_AT {
        store.fold_reports().unwrap();
    }
    next.state
}

/// Starts order `i` at `at`, then begins and finishes it ([`step_times`]).
fn write(store: &FjallStore, wf: &Workflow, i: usize, at: DateTime<Utc>) {
    let (begin, done) = step_times(i, at);
    let mut state = write_step(store, wf, i, 0, None, at);
    for (step, now) in [(1, begin), (2, done)] {
        state = write_step(store, wf, i, step, Some(state), now);
    }
}

fn october() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-10-01T00:00:00+08:00")
        .unwrap()
        .with_timezone(&Utc)
}

/// Commits `n` orders' three steps each and says the time per commit: each order's steps
/// one after the other, or (`in_time`) every commit in the order of its time.
fn per_command(rollups: bool, n: usize, in_time: bool) -> Duration {
    let dir = common::scratch_dir("reports-cost");
    let store = FjallStore::open(dir.path()).unwrap();
    store.set_rollups_for_benchmark(rollups);
    let wf = workflow();
    let spacing = common::env_usize("WAYSTATION_BENCH_SPACING_S", 37) as i64;
    let start = |i: usize| october() + TimeDelta::seconds(i as i64 * spacing);
    let t = Instant::now();
    if in_time {
        // (time, order, step): step 0 starts, 1 begins, 2 finishes.
        let mut plan: Vec<(DateTime<Utc>, usize, usize)> = (0..n)
            .flat_map(|i| {
                let at = start(i);
                let (begin, done) = step_times(i, at);
                [(at, i, 0), (begin, i, 1), (done, i, 2)]
            })
            .collect();
        plan.sort();
        let mut states = vec![None; n];
        for (at, i, step) in plan {
            states[i] = Some(write_step(&store, &wf, i, step, states[i].take(), at));
        }
    } else {
        for i in 0..n {
            write(&store, &wf, i, start(i));
        }
    }
    // The folds the commits ran are in the time already; the records still pending are
    // folded too, so the figure is the whole cost of keeping the rollups.
    store.fold_reports().unwrap();
    t.elapsed() / (3 * n as u32)
}

fn main() {
    let commands = common::env_usize("WAYSTATION_BENCH_COMMANDS", 20_000);
    let instances = common::env_usize("WAYSTATION_BENCH_INSTANCES", 1_000_000);
    let queries = common::env_usize("WAYSTATION_BENCH_QUERIES", 20);

    // `WAYSTATION_BENCH_ROLLUPS=on` or `off` runs only that half, for counting instructions
    // under `valgrind --tool=callgrind` (which the machine's load does not move).
    let only = std::env::var("WAYSTATION_BENCH_ROLLUPS").ok();
    let in_time = std::env::var("WAYSTATION_BENCH_ORDER").is_ok_and(|o| o == "time");
    // Warm up once, then alternate so both see the same machine.
    if only.is_none() {
        per_command(true, commands / 10, in_time);
    }
    let off = if only.as_deref() == Some("on") {
        Duration::ZERO
    } else {
        per_command(false, commands, in_time)
    };
    let on = if only.as_deref() == Some("off") {
        Duration::ZERO
    } else {
        per_command(true, commands, in_time)
    };
    println!(
        "per command, {commands} orders x 3 commits ({}): rollups off {off:?}, on {on:?} ({:+.1} %)",
        if in_time { "in time order" } else { "order by order" },
        (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0
    );

    let dir = common::scratch_dir("reports-month");
    let store = FjallStore::open(dir.path()).unwrap();
    let wf = workflow();
    let month = TimeDelta::days(31).num_seconds() as f64;
    let t = Instant::now();
    for i in 0..instances {
        let at = october() + TimeDelta::seconds((i as f64 * month / instances as f64) as i64);
        write(&store, &wf, i, at);
        if i % 10_000 == 9_999 {
            store.flush().unwrap();
        }
    }
    store.flush().unwrap();
    println!("wrote {instances} orders over October in {:?}", t.elapsed());

    let tz = zone("Asia/Shanghai").unwrap();
    for dim in ["", "tier"].into_iter().filter(|_| queries > 0) {
        let mut times = Vec::new();
        let mut cells = 0;
        let mut started = 0;
        for _ in 0..queries {
            let t = Instant::now();
            let s = spans(PeriodKind::Month, tz, "2026-10", None).unwrap();
            let mut b = Builder::new(s, !dim.is_empty(), None, Vec::new());
            let range = b.bucket_range();
            cells = 0;
            store
                .report_cells("orders", dim, range, &mut |bucket, g, f, c| {
                    cells += 1;
                    b.add(bucket, g, f, c).unwrap();
                    Ok(())
                })
                .unwrap();
            let rows = b.rows();
            started = rows.iter().map(|r| r.started).sum::<i64>();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "October report (by '{dim}'): median {:?}, slowest {:?}, {cells} cells, {started} started",
            times[times.len() / 2],
            times[times.len() - 1]
        );
        assert_eq!(started as usize, instances);
    }
    drop(store);
    drop(dir);
}
