#![allow(missing_docs)]
//! Plugin call latency: the four example plugins through the real `PluginHost`, and the
//! order-health-score logic in native Rust as the floor.
//!
//! Setup, as a server restart sees it: the components of `plugins/dist/` are added to a
//! registry in a temporary directory (checked, compiled, artifact written), the host and
//! its sandbox are dropped, and a fresh sandbox and host are opened on the same directory,
//! so every plugin is mapped from its compiled artifact on disk (the run asserts that
//! nothing is compiled again). Each plugin then gets warm-up calls before it is measured.
//!
//! What one measured call is: `PluginHost::invoke_with_logs` on a sample from
//! `workflows/*.samples` wrapped in the engine's envelope, timed from the caller's side.
//! That is everything the engine pays per call: registry lookup, input JSON to text, a
//! fresh store (and WASI context, for a plugin that imports WASI), instantiation of the
//! pre-instantiated component, the guest's own work, lifting and checking the result, log
//! lines, and tearing the instance down. Nothing is reused between calls. The
//! `sandbox p50` column is the host's own `CallReport::duration` (store creation,
//! instantiation and the call only).
//!
//! The `host-only` row is the host's own test scorer (`tests/fixtures/scorer.wat`, which
//! reads nothing and returns a fixed assessment) on the C plugin's input: the cost of a
//! call to the host itself, with next to no guest.
//!
//! Then `WAYSTATION_BENCH_THREADS` threads (default 2) call the same plugin at once for
//! calls per second, and the native floor runs the order-health-score logic of
//! `plugins/order-health-score/src/health.c`, ported to Rust below, from the same input
//! `Value` to the same output `Value` (serde_json for the parsing); the run asserts that it
//! returns exactly what the C plugin returns for the samples.
//!
//! Knobs: `WAYSTATION_BENCH_CALLS_C` (default 2,000), `WAYSTATION_BENCH_CALLS_JS` (400),
//! `WAYSTATION_BENCH_CALLS_PY` (400), calls measured per plugin (and per thread in the
//! throughput run); `WAYSTATION_BENCH_PLUGINS`, a comma-separated subset of plugin names;
//! `WAYSTATION_BENCH_KEEP_RESIDENT`, the host's `keep_resident_bytes` (0: every slot is
//! discarded with `madvise` after each call, as before that setting existed).
//! Without `--bench` (`cargo test --benches`) every plugin is called only a few times.
//!
//! Run: `cargo bench -p waystation-wasm --bench call`

use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use waystation_core::{PluginRef, World};
use waystation_fixtures::{example_plugin, sample};
use waystation_wasm::{HostConfig, PluginHost, Sandbox};

/// Targets for the p50 of one call, from the issue.
const TARGET_C: Duration = Duration::from_micros(15);
const TARGET_JS: Duration = Duration::from_micros(600);
const TARGET_PY: Duration = Duration::from_micros(1200);

/// The name of the native floor's row.
const NATIVE: &str = "native Rust floor";

/// One example plugin and the call it is measured on.
struct Example {
    name: &'static str,
    language: &'static str,
    world: World,
    calls: usize,
    /// The p50 target; none for the host-only row.
    target: Option<Duration>,
    input: Value,
    /// The component in WAT text; `None` for an example plugin read from `plugins/dist`.
    wat: Option<&'static str>,
}

/// The well-behaved scorer of the host's tests: reads nothing, logs the input, returns a
/// fixed assessment. Called with the C plugin's input, it shows what a call costs the
/// host itself (store, instantiation, input and output, teardown) with next to no guest.
const HOST_ONLY: &str = include_str!("../tests/fixtures/scorer.wat");

/// One plugin's figures.
struct Figures {
    name: String,
    language: &'static str,
    calls: usize,
    /// Caller-side latency of each sequential call, sorted.
    latencies: Vec<Duration>,
    /// `CallReport::duration` of each sequential call, sorted (empty for the native floor).
    in_sandbox: Vec<Duration>,
    /// Calls per second with one thread: calls / the sum of their latencies.
    one_thread: f64,
    /// Calls per second with `threads` threads calling at once.
    many_threads: f64,
    target: Option<Duration>,
    /// Calls (of all runs, warm-up included) that returned an error.
    failed: usize,
    /// What the first of them returned.
    first_failure: Option<String>,
    /// Bytes the pool's idle slots kept resident after this plugin's calls, beyond what
    /// they kept before (the price of `keep_resident_bytes`).
    resident: Option<u64>,
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// The engine's default plugin input for an instance started with `input`.
fn envelope(workflow: &str, stage: &str, input: Value, vars: Value, now: &str) -> Value {
    json!({
        "input": input,
        "vars": vars,
        "instance": {"id": "bench-1", "workflow": workflow, "version": 1, "stage": stage, "tags": []},
        "now": now,
    })
}

// Kept whole: a table of the benchmarked examples, one entry per plugin, read top to bottom.
fn examples(smoke: bool) -> Vec<Example> {
    let calls = |var, default| if smoke { 3 } else { env_usize(var, default) };
    let late_regular = sample("delay-early-warning", "late-regular");
    let health_input = envelope(
        "delay-early-warning",
        "score",
        late_regular.clone(),
        json!({"threshold": 70}),
        "2024-05-08T10:00:00Z",
    );
    let all = vec![
        Example {
            name: "host-only",
            language: "WAT",
            world: World::Scorer,
            calls: calls("WAYSTATION_BENCH_CALLS_C", 2000),
            target: None,
            input: health_input.clone(),
            wat: Some(HOST_ONLY),
        },
        Example {
            name: "order-health-score",
            language: "C",
            world: World::Scorer,
            calls: calls("WAYSTATION_BENCH_CALLS_C", 2000),
            target: Some(TARGET_C),
            wat: None,
            input: health_input,
        },
        Example {
            name: "order-priority",
            language: "Python",
            world: World::Scorer,
            calls: calls("WAYSTATION_BENCH_CALLS_PY", 400),
            target: Some(TARGET_PY),
            wat: None,
            input: envelope(
                "order-quick-response",
                "prioritise",
                sample("order-quick-response", "vip-high"),
                json!({}),
                "2024-05-06T09:00:00Z",
            ),
        },
        Example {
            name: "dispute-classifier",
            language: "JavaScript",
            world: World::Scorer,
            calls: calls("WAYSTATION_BENCH_CALLS_JS", 400),
            target: Some(TARGET_JS),
            wat: None,
            input: envelope(
                "dispute-handling",
                "classify",
                sample("dispute-handling", "quality-zh"),
                json!({}),
                "2024-05-02T09:00:00Z",
            ),
        },
        Example {
            name: "tiered-notifier",
            language: "JavaScript",
            world: World::Notifier,
            calls: calls("WAYSTATION_BENCH_CALLS_JS", 400),
            target: Some(TARGET_JS),
            wat: None,
            input: envelope(
                "delay-early-warning",
                "emergency",
                late_regular,
                json!({"threshold": 70, "health": {
                    "score": 75,
                    "reasons": ["production is 33% over its standard 72 h (96 h so far)"],
                    "labels": {"late": "true", "band": "red"}
                }}),
                "2024-05-09T00:00:00Z",
            ),
        },
    ];
    chosen(all)
}

/// The examples `WAYSTATION_BENCH_PLUGINS` names (a comma-separated list), or all of them.
fn chosen(all: Vec<Example>) -> Vec<Example> {
    match std::env::var("WAYSTATION_BENCH_PLUGINS") {
        Ok(list) => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            all.into_iter()
                .filter(|e| wanted.contains(&e.name))
                .collect()
        }
        Err(_) => all,
    }
}

/// The server's sandbox: the default configuration (`WAYSTATION_BENCH_KEEP_RESIDENT`
/// overrides `keep_resident_bytes`, to compare).
fn sandbox() -> Sandbox {
    let defaults = HostConfig::default();
    let config = HostConfig {
        keep_resident_bytes: env_usize(
            "WAYSTATION_BENCH_KEEP_RESIDENT",
            defaults.keep_resident_bytes,
        ),
        ..defaults
    };
    Sandbox::new(config).expect("the host configuration")
}

/// Adds every example to a registry in `dir`, then reopens it with a fresh sandbox so
/// that each plugin is mapped from its compiled artifact.
fn warm_host(dir: &Path, examples: &[Example]) -> PluginHost {
    {
        let host = PluginHost::open(dir, sandbox()).unwrap();
        for e in examples {
            let bytes = match e.wat {
                Some(text) => wat::parse_str(text).unwrap(),
                None => example_plugin(e.name),
            };
            let started = Instant::now();
            let info = host
                .add(e.name, &bytes)
                .unwrap_or_else(|err| panic!("adding {}: {err}", e.name));
            println!(
                "added {:<20} {:>6.1} MB  checked, compiled and cached in {:>6.2} s",
                info.name,
                info.size as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let started = Instant::now();
    let host = PluginHost::open(dir, sandbox()).unwrap();
    let failed = host.warm();
    assert!(failed.is_empty(), "plugins failed to load: {failed:?}");
    let stats = host.stats();
    assert_eq!(stats.compiles, 0, "the reopened host compiled again");
    assert_eq!(stats.artifact_loads as usize, examples.len());
    println!(
        "reopened: {} artifacts mapped from disk in {:.1} ms, nothing compiled\n",
        stats.artifact_loads,
        started.elapsed().as_secs_f64() * 1e3
    );
    host
}

fn measure(host: &PluginHost, e: &Example, threads: usize, smoke: bool) -> Figures {
    let plugin = PluginRef::parse(e.name).unwrap();
    let resident_before = host.sandbox().idle_resident_bytes();
    // A failed call is counted and reported, not hidden; its time counts like any other.
    let failed = AtomicUsize::new(0);
    let first_failure = Mutex::new(None);
    let call = |host: &PluginHost| {
        let report = host.invoke_with_logs(&plugin, e.world, &e.input);
        if let Err(err) = &report.result {
            failed.fetch_add(1, Ordering::Relaxed);
            first_failure
                .lock()
                .unwrap()
                .get_or_insert_with(|| err.to_string());
        }
        black_box(report)
    };

    if let Err(err) = host.invoke_with_logs(&plugin, e.world, &e.input).result {
        panic!("{} fails on its sample: {err}", e.name);
    }
    let warm_up = if smoke { 1 } else { (e.calls / 10).max(20) };
    for _ in 0..warm_up {
        call(host);
    }

    let mut latencies = Vec::with_capacity(e.calls);
    let mut in_sandbox = Vec::with_capacity(e.calls);
    for _ in 0..e.calls {
        let started = Instant::now();
        let report = call(host);
        latencies.push(started.elapsed());
        in_sandbox.push(report.duration);
    }
    let total: Duration = latencies.iter().sum();
    latencies.sort();
    in_sandbox.sort();

    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..e.calls {
                    call(host);
                }
            });
        }
    });
    let wall = started.elapsed();

    Figures {
        name: e.name.to_owned(),
        language: e.language,
        calls: e.calls,
        latencies,
        in_sandbox,
        one_thread: e.calls as f64 / total.as_secs_f64(),
        many_threads: (e.calls * threads) as f64 / wall.as_secs_f64(),
        target: e.target,
        failed: failed.into_inner(),
        first_failure: first_failure.into_inner().unwrap(),
        resident: Some(
            host.sandbox()
                .idle_resident_bytes()
                .saturating_sub(resident_before),
        ),
    }
}

/// The native floor: the order-health-score logic in Rust, one call = `native::call`.
fn measure_native(input: &Value, calls: usize, threads: usize) -> Figures {
    let call = || {
        let mut logs = Vec::new();
        let out = native::call(input, &mut logs).unwrap();
        black_box((out, logs))
    };
    for _ in 0..(calls / 10).max(20) {
        call();
    }
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call();
        latencies.push(started.elapsed());
    }
    let total: Duration = latencies.iter().sum();
    latencies.sort();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..calls {
                    call();
                }
            });
        }
    });
    let wall = started.elapsed();
    Figures {
        name: NATIVE.into(),
        language: "Rust",
        calls,
        in_sandbox: Vec::new(),
        latencies,
        one_thread: calls as f64 / total.as_secs_f64(),
        many_threads: (calls * threads) as f64 / wall.as_secs_f64(),
        target: None,
        failed: 0,
        first_failure: None,
        resident: None,
    }
}

/// The C plugin and its native port must agree, or the floor measures something else.
fn check_native_matches_plugin(host: &PluginHost) {
    let plugin = PluginRef::parse("order-health-score").unwrap();
    let mut docs = Vec::new();
    for name in ["late-regular", "healthy-strategic", "urgent-custom"] {
        let order = sample("delay-early-warning", name);
        for now in [
            "2024-05-08T10:00:00Z",
            "2024-05-09T03:30:00+02:00",
            "2024-05-11T00:00:00Z",
        ] {
            docs.push(envelope(
                "delay-early-warning",
                "score",
                order.clone(),
                json!({}),
                now,
            ));
        }
        docs.push(envelope(
            "delay-early-warning",
            "score",
            order.clone(),
            json!({"threshold": "40"}),
            "2024-05-08T10:00:00Z",
        ));
    }
    docs.push(json!({"progress": {"standard_hours": 10, "elapsed_hours": 100}, "systems_in_sync": "false",
        "owner_workload": 95, "similar_anomaly_rate": 0.5, "order_type": "custom", "season": "peak",
        "customer_level": "VIP", "urgent": true, "promised_at": "2024-05-10", "now": "2024-05-09T23:59:59Z"}));
    docs.push(json!({"input": {"systems_in_sync": false, "owner_workload": "0.9 "}, "vars": {"threshold": 20}}));
    docs.push(json!({"order_id": "x", "progress": {"stage": "qc", "standard_hours": 7, "elapsed_hours": 7.5}, "similar_anomaly_rate": 1.5}));
    docs.push(json!({}));
    docs.push(json!([1, 2]));
    for doc in &docs {
        let report = host.invoke_with_logs(&plugin, World::Scorer, doc);
        let mut logs = Vec::new();
        let native = native::call(doc, &mut logs);
        let plugin_logs: Vec<String> = report.logs.iter().map(|l| l.message.clone()).collect();
        match (&report.result, &native) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "native and C plugin disagree on {doc}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), format!("returned an error: {b}")),
            _ => panic!(
                "native {native:?} and C plugin {:?} disagree on {doc}",
                report.result
            ),
        }
        assert_eq!(plugin_logs, logs, "log lines differ on {doc}");
    }
    println!(
        "native port checked: same output and log lines as the C plugin on {} inputs\n",
        docs.len()
    );
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// The `p`-th percentile (nearest rank) of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap().max(1)
}

fn print_table(rows: &[Figures], threads: usize) {
    println!(
        "{:<20} {:<10} {:>6} {:>10} {:>10} {:>10} {:>12} {:>10} {:>10} {:>9} {:>11}  {:<4} failed",
        "plugin",
        "language",
        "calls",
        "p50",
        "p99",
        "mean",
        "sandbox p50",
        "calls/s 1t",
        format!("calls/s {threads}t"),
        "idle MB",
        "p50 target",
        "met"
    );
    for r in rows {
        let p50 = percentile(&r.latencies, 50.0);
        println!(
            "{:<20} {:<10} {:>6} {:>10} {:>10} {:>10} {:>12} {:>10.0} {:>10.0} {:>9} {:>11}  {:<4} {}",
            r.name,
            r.language,
            r.calls,
            show(p50),
            show(percentile(&r.latencies, 99.0)),
            show(mean(&r.latencies)),
            if r.in_sandbox.is_empty() {
                "-".into()
            } else {
                show(percentile(&r.in_sandbox, 50.0))
            },
            r.one_thread,
            r.many_threads,
            r.resident
                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1e6)),
            r.target.map_or("-".into(), |t| format!("<= {}", show(t))),
            match r.target {
                Some(t) if p50 <= t => "yes",
                Some(_) => "NO",
                None => "",
            },
            r.failed
        );
    }
    println!(
        "\np50 / p99 / mean: one call as the engine makes it, timed by the caller \
         (sequential calls on one thread).\n\
         sandbox p50: the host's own CallReport::duration (store, instantiation, call).\n\
         calls/s 1t: calls / the sum of their latencies; calls/s {threads}t: {threads} threads \
         calling at once, each as many calls.\n\
         idle MB: memory the pool's idle slots keep resident for the plugin's next calls."
    );
    for r in rows.iter().filter(|r| r.failed > 0) {
        println!(
            "{}: {} calls failed, the first with: {}",
            r.name,
            r.failed,
            r.first_failure.as_deref().unwrap_or("?")
        );
    }
}

/// The 1, 5 and 15 minute load averages, when the system says.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let threads = env_usize("WAYSTATION_BENCH_THREADS", 2);
    let examples = examples(smoke);
    println!(
        "plugin call latency: {} cores, load average {} at the start{}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        if smoke {
            " (smoke run: a few calls each; `cargo bench` measures)"
        } else {
            ""
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let host = warm_host(&dir.path().join("plugins"), &examples);
    println!(
        "keep_resident_bytes = {} (per memory and table, with PAGEMAP_SCAN)\n",
        host.sandbox().config().keep_resident_bytes
    );

    let health = examples.iter().find(|e| e.name == "order-health-score");
    if health.is_some() {
        check_native_matches_plugin(&host);
    }

    let mut rows = Vec::new();
    for e in &examples {
        rows.push(measure(&host, e, threads, smoke));
    }
    if let Some(e) = health {
        let calls = if smoke { 3 } else { e.calls * 10 };
        rows.push(measure_native(&e.input, calls, threads));
    }
    print_table(&rows, threads);
    let p50 = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| percentile(&r.latencies, 50.0))
    };
    if let (Some(c), Some(native)) = (p50("order-health-score"), p50(NATIVE)) {
        println!(
            "\nC plugin / native Rust, p50: {:.1}x ({} vs {})",
            c.as_secs_f64() / native.as_secs_f64(),
            show(c),
            show(native)
        );
        if let Some(host) = p50("host-only") {
            println!(
                "of the C plugin's p50, the host's share (host-only row): {}; the rest, {}, \
                 is the guest's own work and its larger instance",
                show(host),
                show(c.saturating_sub(host))
            );
        }
    }
    println!("load average at the end: {}", load_average());
}

/// `plugins/order-health-score/src/health.c` and the result handling of `plugin.c`, in
/// Rust: same factors, thresholds, wording, number formatting (the plugin's own `fmt.c`,
/// not libc's) and date arithmetic. Known differences, none reachable from the samples:
/// numeric strings in hexadecimal (C `strtod` reads them), and text cut at a buffer limit
/// (C may cut inside a UTF-8 sequence; this port cuts at a character boundary).
mod native {
    use serde_json::{Map, Value};
    use std::fmt::Write;

    const KEY_THRESHOLD: f64 = 50.0;
    const NORMAL_THRESHOLD: f64 = 70.0;
    const WARNING_HOURS: i64 = 36;
    /// `char buf[512]` in `add_reason`, `char buf[256]` in `add_label`, `char line[200]`
    /// for the log line: the C plugin keeps one byte less than each for the NUL.
    const REASON_BYTES: usize = 511;
    const LABEL_BYTES: usize = 255;
    const LOG_BYTES: usize = 199;

    /// What the host returns for one call: the output JSON (as `PluginHost` shapes it) or
    /// the plugin's error, with the log lines the plugin wrote.
    pub fn call(input: &Value, logs: &mut Vec<String>) -> Result<Value, String> {
        let text = serde_json::to_string(input).unwrap();
        let doc: Value = match serde_json::from_str(&text) {
            Ok(doc) => doc,
            Err(e) => {
                let message = format!("input is not valid JSON: {e}");
                logs.push(format!("order-health-score: {message}"));
                return Err(message);
            }
        };
        let r = match assess(&doc) {
            Ok(r) => r,
            Err(message) => {
                logs.push(format!("order-health-score: {message}"));
                return Err(message);
            }
        };
        let label = |key| {
            r.labels
                .iter()
                .find(|(k, _)| *k == key)
                .map_or("(null)", |(_, v)| v.as_str())
        };
        let mut line = format!(
            "order-health-score: {} scored {} ({}), late={}",
            r.order_no.unwrap_or("order"),
            ftoa(r.score, 0, false),
            label("band"),
            label("late")
        );
        clip(&mut line, LOG_BYTES);
        logs.push(line);

        let mut labels = Map::new();
        for (key, value) in r.labels {
            labels.insert(key.to_owned(), Value::String(value));
        }
        let mut out = Map::new();
        out.insert("score".into(), Value::from(r.score));
        out.insert(
            "reasons".into(),
            Value::Array(r.reasons.into_iter().map(Value::String).collect()),
        );
        out.insert("labels".into(), Value::Object(labels));
        Ok(Value::Object(out))
    }

    pub struct Assessment<'a> {
        pub score: f64,
        pub reasons: Vec<String>,
        pub labels: Vec<(&'static str, String)>,
        pub order_no: Option<&'a str>,
    }

    fn clip(text: &mut String, max: usize) {
        if text.len() > max {
            let mut end = max;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
    }

    fn reason(reasons: &mut Vec<String>, mut text: String) {
        clip(&mut text, REASON_BYTES);
        reasons.push(text);
    }

    fn label(labels: &mut Vec<(&'static str, String)>, key: &'static str, mut value: String) {
        clip(&mut value, LABEL_BYTES);
        labels.push((key, value));
    }

    // ---- the JSON accessors of json.c ---------------------------------------------------

    fn get<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
        v?.as_object()?.get(key)
    }

    fn path<'a>(v: Option<&'a Value>, dotted: &str) -> Option<&'a Value> {
        dotted
            .split('.')
            .try_fold(v?, |v, key| v.as_object()?.get(key))
    }

    fn string(v: Option<&Value>) -> Option<&str> {
        v?.as_str()
    }

    /// `json_num`: a number, or a string holding one (C `strtod`, trailing spaces allowed).
    fn number(v: Option<&Value>) -> Option<f64> {
        match v? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if !s.is_empty() => {
                let t = s
                    .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
                    .trim_end_matches(' ');
                let d: f64 = t.parse().ok()?;
                let spelled_inf = t
                    .trim_start_matches(['+', '-'])
                    .get(..3)
                    .is_some_and(|p| p.eq_ignore_ascii_case("inf"));
                // strtod sets ERANGE on overflow; NaN is refused explicitly.
                (!d.is_nan() && (d.is_finite() || spelled_inf)).then_some(d)
            }
            _ => None,
        }
    }

    /// `json_bool`: true / false, or the strings "true" / "false".
    fn boolean(v: Option<&Value>) -> Option<bool> {
        match v? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    // ---- fmt.c: fixed point, rounding half away from zero --------------------------------

    /// `%.Nf` is `ftoa(v, N, false)`, `%g` is `ftoa(v, 6, true)`.
    pub fn ftoa(v: f64, prec: usize, trim: bool) -> String {
        if v.is_nan() {
            return "nan".into();
        }
        let mut out = String::new();
        let mut v = v;
        if v < 0.0 {
            out.push('-');
            v = -v;
        }
        if v.is_infinite() {
            out.push_str("inf");
            return out;
        }
        let prec = prec.min(9);
        if v >= 1e18 {
            let mut exp10 = 0u64;
            while v >= 10.0 {
                v /= 10.0;
                exp10 += 1;
            }
            let _ = write!(out, "{}e{exp10}", v as u64);
            return out;
        }
        let mut scale = 1.0;
        for _ in 0..prec {
            scale *= 10.0;
        }
        let mut whole = v.floor();
        let mut frac = ((v - whole) * scale).round();
        if frac >= scale {
            whole += 1.0;
            frac -= scale;
        }
        let _ = write!(out, "{}", whole as u64);
        if prec > 0 {
            let mut digits = [b'0'; 9];
            let mut f = frac as u64;
            for d in digits[..prec].iter_mut().rev() {
                *d = b'0' + (f % 10) as u8;
                f /= 10;
            }
            let mut keep = prec;
            if trim {
                while keep > 0 && digits[keep - 1] == b'0' {
                    keep -= 1;
                }
            }
            if keep > 0 {
                out.push('.');
                out.extend(digits[..keep].iter().map(|&b| b as char));
            }
        }
        if out == "-0" {
            return "0".into();
        }
        out
    }

    // ---- time ---------------------------------------------------------------------------

    fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = (y - era * 400) as u32;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + i64::from(doe) - 719_468
    }

    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = (z - era * 146_097) as u32;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (i64::from(yoe) + era * 400 + i64::from(m <= 2), m, d)
    }

    fn digits(s: &[u8]) -> Option<i64> {
        s.iter().try_fold(0i64, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
        })
    }

    /// `rfc3339_parse`: RFC 3339 (or a plain date, midnight UTC) to Unix seconds.
    pub fn rfc3339(text: Option<&str>) -> Option<i64> {
        let s = text?.as_bytes();
        if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
            return None;
        }
        let (y, mo, d) = (digits(&s[..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return None;
        }
        let mut p = &s[10..];
        let (mut h, mut mi, mut sec, mut offset) = (0, 0, 0, 0);
        if let [b'T' | b't' | b' ', rest @ ..] = p {
            p = rest;
            if p.len() < 8 || p[2] != b':' || p[5] != b':' {
                return None;
            }
            (h, mi, sec) = (digits(&p[..2])?, digits(&p[3..5])?, digits(&p[6..8])?);
            if h > 23 || mi > 59 || sec > 60 {
                return None;
            }
            p = &p[8..];
            if let [b'.', rest @ ..] = p {
                let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
                p = &rest[n..];
            }
            match p {
                [b'Z' | b'z', rest @ ..] => p = rest,
                [sign @ (b'+' | b'-'), rest @ ..] => {
                    if rest.len() < 5 || rest[2] != b':' {
                        return None;
                    }
                    let (oh, om) = (digits(&rest[..2])?, digits(&rest[3..5])?);
                    offset = (oh * 60 + om) * 60 * if *sign == b'-' { -1 } else { 1 };
                    p = &rest[5..];
                }
                _ => return None,
            }
        }
        if !p.is_empty() {
            return None;
        }
        Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec - offset)
    }

    /// `rfc3339_format`: Unix seconds to `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339_format(t: i64) -> String {
        let days = if t >= 0 {
            t / 86_400
        } else {
            -((-t + 86_399) / 86_400)
        };
        let rem = t - days * 86_400;
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }

    // ---- the score ----------------------------------------------------------------------

    fn customer_rank(order: Option<&Value>) -> Option<&str> {
        [
            string(path(order, "customer.tier")),
            string(path(order, "customer.level")),
            string(get(order, "customer_tier")),
            string(get(order, "customer_level")),
        ]
        .into_iter()
        .flatten()
        .find(|c| !c.is_empty())
    }

    fn is_key_customer(rank: Option<&str>) -> bool {
        matches!(rank, Some("strategic" | "vip" | "VIP" | "key"))
    }

    /// `health_assess`: the five factors' points and reasons, the verdict against the
    /// threshold, its labels, and the early warning before the promised delivery.
    pub fn assess(doc: &Value) -> Result<Assessment<'_>, String> {
        if !doc.is_object() {
            return Err("input must be a JSON object".into());
        }
        let (order, vars) = order_and_vars(doc);
        let now_text = string(doc.get("now")).or_else(|| string(get(order, "now")));
        let order_no = string(get(order, "order_no")).or_else(|| string(get(order, "order_id")));

        let mut tally = Tally {
            score: 0.0,
            reasons: Vec::new(),
            unscored: Vec::new(),
        };
        tally.stage_time(order);
        tally.systems_in_sync(order);
        tally.workload(order);
        tally.anomaly_rate(order);
        tally.type_and_season(order);
        let Tally {
            score,
            mut reasons,
            unscored,
        } = tally;
        let mut score = score.round();
        if score > 100.0 {
            score = 100.0;
        }

        // Customer importance and urgency: the threshold.
        let rank = customer_rank(order);
        let urgent = boolean(get(order, "urgent")) == Some(true);
        let (threshold, why) = threshold(order, vars, is_key_customer(rank), urgent);
        let late = score >= threshold;
        let unscored = unscored.join(",");
        let mut labels = verdict_labels(score, late, threshold, rank, urgent, &unscored);

        // The 36-hour early warning.
        let promised = rfc3339(string(get(order, "promised_at")));
        let now = rfc3339(now_text);
        let (due, due_text) = warning_labels(&mut labels, promised, now);

        reason(
            &mut reasons,
            format!(
                "score {} {} threshold {} ({why}): {}",
                ftoa(score, 0, false),
                if late { ">=" } else { "<" },
                ftoa(threshold, 6, true),
                if late {
                    "expected to be late"
                } else {
                    "on track"
                }
            ),
        );
        if let (true, Some(promised), Some(now)) = (late, promised, now) {
            reason(&mut reasons, advice(promised, now, due, &due_text));
        }
        if !unscored.is_empty() {
            reason(
                &mut reasons,
                format!("not scored, the input lacks: {unscored}"),
            );
        }
        Ok(Assessment {
            score,
            reasons,
            labels,
            order_no,
        })
    }

    /// The order and the workflow's variables: from the engine's envelope (`input` beside
    /// `instance`, `vars` or `now`), or the document itself as the order.
    fn order_and_vars(doc: &Value) -> (Option<&Value>, Option<&Value>) {
        if let Some(inner @ Value::Object(_)) = doc.get("input") {
            if doc.get("instance").is_some()
                || doc.get("vars").is_some()
                || doc.get("now").is_some()
            {
                return (Some(inner), doc.get("vars"));
            }
        }
        (Some(doc), None)
    }

    /// The score's points so far, its reasons, and the inputs no factor could score.
    /// Each factor adds its points in turn (the C plugin's order of additions).
    struct Tally {
        score: f64,
        reasons: Vec<String>,
        unscored: Vec<&'static str>,
    }

    impl Tally {
        /// Factor 1: stage time against its standard: a point per percent over, at most 40.
        fn stage_time(&mut self, order: Option<&Value>) {
            match (
                number(path(order, "progress.standard_hours")),
                number(path(order, "progress.elapsed_hours")),
            ) {
                (Some(standard), Some(elapsed)) if standard > 0.0 && elapsed >= 0.0 => {
                    let stage = string(path(order, "progress.stage"));
                    let over = (elapsed - standard) / standard * 100.0;
                    if over > 0.0 {
                        self.score += if over < 40.0 { over } else { 40.0 };
                        reason(
                            &mut self.reasons,
                            format!(
                                "{} is {}% over its standard {} h ({} h so far)",
                                stage.unwrap_or("the current stage"),
                                ftoa(over, 0, false),
                                ftoa(standard, 6, true),
                                ftoa(elapsed, 6, true)
                            ),
                        );
                    }
                }
                _ => self.unscored.push("stage_time"),
            }
        }

        /// Factor 2: sales, warehouse and ERP in sync: 20 points when they disagree.
        fn systems_in_sync(&mut self, order: Option<&Value>) {
            match boolean(get(order, "systems_in_sync")) {
                Some(false) => {
                    self.score += 20.0;
                    reason(
                        &mut self.reasons,
                        "sales, warehouse and ERP disagree about this order".into(),
                    );
                }
                Some(true) => {}
                None => self.unscored.push("systems_in_sync"),
            }
        }

        /// Factor 3: workload of the people on the order: 10 points over 85% (a fraction, or a
        /// percentage when above 1.5).
        fn workload(&mut self, order: Option<&Value>) {
            match number(get(order, "owner_workload")) {
                Some(mut v) => {
                    if v > 1.5 {
                        v /= 100.0;
                    }
                    if v > 0.85 {
                        self.score += 10.0;
                        reason(
                            &mut self.reasons,
                            format!(
                                "the people on the order are overloaded ({}% utilisation)",
                                ftoa(v * 100.0, 0, false)
                            ),
                        );
                    }
                }
                None => self.unscored.push("owner_workload"),
            }
        }

        /// Factor 4: the anomaly rate of similar orders: a point per percent, at most 15,
        /// none under one.
        fn anomaly_rate(&mut self, order: Option<&Value>) {
            match number(get(order, "similar_anomaly_rate")) {
                Some(mut v) => {
                    if v > 1.0 {
                        v /= 100.0;
                    }
                    let points = if v * 100.0 < 15.0 { v * 100.0 } else { 15.0 };
                    if points >= 1.0 {
                        self.score += points;
                        reason(
                            &mut self.reasons,
                            format!(
                                "{}% of similar orders ran into trouble",
                                ftoa(v * 100.0, 0, false)
                            ),
                        );
                    }
                }
                None => self.unscored.push("similar_anomaly_rate"),
            }
        }

        /// Factor 5: order type and season: 5 points for custom work, 10 in the peak season.
        fn type_and_season(&mut self, order: Option<&Value>) {
            if string(get(order, "order_type")) == Some("custom") {
                self.score += 5.0;
                reason(&mut self.reasons, "custom work".into());
            }
            if string(get(order, "season")) == Some("peak") {
                self.score += 10.0;
                reason(&mut self.reasons, "peak season".into());
            }
        }
    }

    /// The threshold and why: the order's or the workflow's own, else stricter for a key
    /// customer or an urgent order, else the normal one.
    fn threshold(
        order: Option<&Value>,
        vars: Option<&Value>,
        key: bool,
        urgent: bool,
    ) -> (f64, String) {
        match number(get(order, "threshold")).or_else(|| number(get(vars, "threshold"))) {
            Some(t) => (t, "the workflow's threshold".to_owned()),
            None if key || urgent => (
                KEY_THRESHOLD,
                format!(
                    "stricter threshold for {}",
                    match (key, urgent) {
                        (true, true) => "a key customer's urgent order",
                        (true, false) => "a key customer",
                        _ => "an urgent order",
                    }
                ),
            ),
            None => (NORMAL_THRESHOLD, "normal threshold".to_owned()),
        }
    }

    /// The verdict's labels: late, band, threshold, and the customer, urgency and unscored
    /// inputs when there are any.
    fn verdict_labels(
        score: f64,
        late: bool,
        threshold: f64,
        rank: Option<&str>,
        urgent: bool,
        unscored: &str,
    ) -> Vec<(&'static str, String)> {
        let mut labels = Vec::new();
        label(
            &mut labels,
            "late",
            if late { "true" } else { "false" }.into(),
        );
        let band = if score >= 70.0 {
            "red"
        } else if score >= 50.0 {
            "amber"
        } else {
            "green"
        };
        label(&mut labels, "band", band.into());
        label(&mut labels, "threshold", ftoa(threshold, 6, true));
        if let Some(rank) = rank {
            label(&mut labels, "customer", rank.to_owned());
        }
        if urgent {
            label(&mut labels, "urgent", "true".into());
        }
        if !unscored.is_empty() {
            label(&mut labels, "unscored", unscored.to_owned());
        }
        labels
    }

    /// With a promised delivery: when the emergency plan is due ([`WARNING_HOURS`] before
    /// it, in seconds and as text; `(0, "")` without one), labelled with the hours left
    /// when `now` is known.
    fn warning_labels(
        labels: &mut Vec<(&'static str, String)>,
        promised: Option<i64>,
        now: Option<i64>,
    ) -> (i64, String) {
        let Some(promised) = promised else {
            return (0, String::new());
        };
        let due = promised - WARNING_HOURS * 3600;
        let due_text = rfc3339_format(due);
        label(labels, "emergency_at", due_text.clone());
        if let Some(now) = now {
            label(
                labels,
                "hours_to_promise",
                ftoa((promised - now) as f64 / 3600.0, 1, false),
            );
        }
        (due, due_text)
    }

    /// What to do about a late order at `now`, by where it stands against the promised
    /// delivery and the emergency plan's `due` time.
    fn advice(promised: i64, now: i64, due: i64, due_text: &str) -> String {
        if now >= promised {
            "the promised delivery has passed: run the emergency response now".into()
        } else if now >= due {
            format!(
                "inside the {WARNING_HOURS} hours before the promised delivery: start the \
                 emergency plan now (re-plan production, change carrier, tell the customer)"
            )
        } else {
            format!(
                "start the emergency plan at {due_text}, {WARNING_HOURS} hours before the \
                 promised delivery, unless the score improves"
            )
        }
    }
}
