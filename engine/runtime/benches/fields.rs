#![allow(missing_docs)]
//! Issue 14: what business keys and fields cost, and what searching them costs.
//!
//! 1. **Cost per command.** `WAYSTATION_BENCH_COMMANDS` (default 20,000) orders started
//!    and moved once (two commits each), through the same core calls and `Store::commit` as
//!    the runtime, on a fresh fjall store (the default engine), for the same workflow with and without its `key`
//!    and five `fields` (text, keyword, number, timestamp, boolean). Reported: time per
//!    command (core + commit, no flush: the fsync is the same with or without fields) and
//!    index keys written per command.
//! 2. **Field queries over a large store.** `WAYSTATION_BENCH_INSTANCES` (default
//!    1,000,000) orders written the same way (flushed every 10,000 commits), then each
//!    query answered `WAYSTATION_BENCH_QUERIES` times (default 200, different values):
//!    a keyword equality matching 1 % of the orders, a narrow number range, a text word
//!    prefix, a business key, a timestamp range sorted by the field; a page of 50.
//!
//! `WAYSTATION_BENCH_STORE_DIR` keeps the populated store between runs (populated again
//! when it holds another count).
//!
//! Run: `cargo bench -p waystation-runtime --bench fields`

mod common;

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use waystation_core::definition::FieldType;
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::{FieldValue, Input, Workflow};
use waystation_runtime::NoPlugins;
use waystation_store::{
    Bound, Commit, FieldFilter, FieldTest, FjallStore, InstanceQuery, Kv, QueryStore, SortBy, Store,
};

/// The default engine, the one `waystation serve` opens.
type BenchStore = FjallStore;

const TIERS: [&str; 4] = ["gold", "silver", "bronze", "new"];
const CUSTOMERS: [&str; 8] = [
    "ACME Corp Shenzhen",
    "Globex Trading",
    "Initech Logistics",
    "Umbrella Retail",
    "Hooli Devices",
    "Stark Industries",
    "Wayne Components",
    "Tyrell Systems",
];

fn definition(with_fields: bool) -> Value {
    let mut d = json!({
        "id": "orders",
        "title": "Orders",
        "start": "todo",
        "stages": {
            "todo": {"kind": "wait", "owner": "clerk", "deadline": "PT8H", "at_risk": "PT2H",
                     "on": {"begin": {"to": "in_progress"}}},
            "in_progress": {"kind": "wait", "owner": "clerk", "deadline": "P2D",
                            "on": {"done": {"to": "done"}}},
            "done": {"kind": "end", "outcome": "resolved"}
        }
    });
    if with_fields {
        d["key"] = json!("input.order_no");
        d["fields"] = json!({
            "customer": {"type": "text", "value": "input.customer", "show": true},
            "tier": {"type": "keyword", "value": "input.tier", "show": true},
            "amount": {"type": "number", "value": "input.amount", "show": true},
            "promised_at": {"type": "timestamp", "value": "input.promised_at"},
            "urgent": {"type": "boolean", "value": "input.amount > 90000"}
        });
    }
    d
}

/// Order `i`: 1 in 100 is `platinum`; amounts spread over 0..100,000.
fn order(i: usize) -> Value {
    let tier = if i.is_multiple_of(100) {
        "platinum"
    } else {
        TIERS[i % 4]
    };
    let promised = Utc::now() + TimeDelta::minutes((i % 100_000) as i64);
    json!({
        "order_no": format!("2024-{i:08}"),
        "customer": format!("{} {}", CUSTOMERS[i % 8], i % 1000),
        "tier": tier,
        "amount": (i * 7919) % 100_000,
        "promised_at": promised.to_rfc3339(),
    })
}

/// Starts order `i` and, when `advance`, moves it on once; returns the commits made.
fn write(store: &BenchStore, wf: &Workflow, i: usize, seed: u32, advance: bool) -> usize {
    let now = Utc::now();
    let id = format!(
        "{:012x}-{:08x}",
        now.timestamp_millis(),
        seed.wrapping_add(i as u32)
    );
    let step = start_until_quiet(wf, id, order(i), now, &NoPlugins).unwrap();
    let commit = |before, step: &waystation_core::Step| {
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
    commit(None, &step);
    if !advance {
        return 1;
    }
    let before = step.state;
    let input = Input::Event {
        name: "begin".into(),
        data: Value::Null,
        stage: None,
    };
    let next = apply_until_quiet(wf, before.clone(), input, now, &NoPlugins).unwrap();
    commit(Some(&before), &next);
    2
}

fn workflow(with_fields: bool) -> Workflow {
    let mut wf = Workflow::from_value(&definition(with_fields), None).unwrap();
    wf.version = 1;
    wf
}

/// Index keys (`ix/...`) the store holds.
fn index_keys(store: &BenchStore) -> u64 {
    let mut n = 0;
    store
        .backend()
        .scan(
            &waystation_store::keys::prefix(&[waystation_store::keys::part::INDEX]),
            None,
            &mut |_, _| {
                n += 1;
                true
            },
        )
        .unwrap();
    n
}

fn cost_per_command(commands: usize) {
    println!("\n1. Cost per command ({commands} orders, each started and moved once; no flush)\n");
    println!("| workflow | per command (core + commit) | index keys per instance |");
    println!("| --- | --- | --- |");
    let mut results = Vec::new();
    for with_fields in [false, true] {
        let dir = common::scratch_dir("fields-cost");
        let wf = workflow(with_fields);
        let keys = {
            let store = BenchStore::open(dir.path()).unwrap();
            let began = Instant::now();
            let mut n = 0;
            for i in 0..commands {
                n += write(&store, &wf, i, 7 << 20, true);
            }
            let took = began.elapsed();
            store.flush().unwrap();
            results.push(took.as_secs_f64() * 1e6 / n as f64);
            index_keys(&store)
        };
        println!(
            "| {} | {:.1} µs | {:.1} |",
            if with_fields {
                "with key and 5 fields"
            } else {
                "without"
            },
            results.last().unwrap(),
            keys as f64 / commands as f64
        );
    }
    println!(
        "\nFields add {:.1} µs per command ({:+.0} %).",
        results[1] - results[0],
        (results[1] / results[0] - 1.0) * 100.0
    );
}

fn populated(dir: &Path, n: usize) -> BenchStore {
    let marker = dir.join("waystation-bench-fields-populated");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&n.to_string()) {
        return BenchStore::open(dir).unwrap();
    }
    let store = BenchStore::open(dir).unwrap();
    let wf = workflow(true);
    let began = Instant::now();
    let mut last = Instant::now();
    for i in 0..n {
        write(&store, &wf, i, 9 << 20, false);
        if i % 10_000 == 9_999 {
            store.flush().unwrap();
        }
        if last.elapsed() > Duration::from_secs(30) {
            eprintln!("  ... {} of {n} orders written", i + 1);
            last = Instant::now();
        }
    }
    store.flush().unwrap();
    eprintln!(
        "  {n} orders written in {:.0} s",
        began.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, n.to_string()).unwrap();
    store
}

fn field(name: &str, test: FieldTest) -> Vec<FieldFilter> {
    vec![FieldFilter {
        field: name.into(),
        test,
    }]
}

/// Part 2: the field queries over `n` stored orders, `rounds` runs each, as a table.
fn queries(n: usize, rounds: usize) {
    let kept = std::env::var_os("WAYSTATION_BENCH_STORE_DIR");
    let scratch = common::scratch_dir("fields-query");
    let dir = kept.as_ref().map_or(scratch.path(), |d| Path::new(d));
    std::fs::create_dir_all(dir).unwrap();
    let store = populated(dir, n);
    println!(
        "\n2. Field queries over {n} orders ({:.0} MiB on disk), a page of 50, {rounds} runs each; load average {}\n",
        common::mib(common::disk_usage(dir)),
        common::loadavg()
    );
    println!("| query | p50 | p99 | max | items |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, make) in query_cases(n) {
        time_query(&store, label, &*make, rounds);
    }
}

/// Makes the query of run `r` of a case: each run asks for other values.
type Make = Box<dyn Fn(usize) -> InstanceQuery>;

/// The timed queries over `n` orders: a label for the table and how to make each run's.
fn query_cases(n: usize) -> Vec<(&'static str, Make)> {
    let base = InstanceQuery {
        workflow: Some("orders".into()),
        limit: 50,
        ..InstanceQuery::default()
    };
    let now = Utc::now();
    vec![
        ("field.tier=platinum (1 % of orders)", {
            let base = base.clone();
            Box::new(move |_| InstanceQuery {
                fields: field(
                    "tier",
                    FieldTest::Equals(FieldValue::Keyword("platinum".into())),
                ),
                ..base.clone()
            })
        }),
        ("field.amount.gte=x&field.amount.lt=x+100", {
            let base = base.clone();
            Box::new(move |r| {
                let x = ((r * 4099) % 99_900) as f64;
                InstanceQuery {
                    fields: field(
                        "amount",
                        half_open(FieldValue::Number(x), FieldValue::Number(x + 100.0)),
                    ),
                    ..base.clone()
                }
            })
        }),
        ("field.customer=<word prefix> (1 in 8)", {
            let base = base.clone();
            Box::new(move |r| {
                let word = CUSTOMERS[r % 8].split(' ').next().unwrap()[..3].to_lowercase();
                InstanceQuery {
                    fields: field("customer", FieldTest::WordPrefixes(vec![word])),
                    ..base.clone()
                }
            })
        }),
        ("key=<order number>", {
            let base = base.clone();
            Box::new(move |r| InstanceQuery {
                key: Some(format!("2024-{:08}", (r * 7907) % n)),
                ..base.clone()
            })
        }),
        ("field.promised_at in 1 h, sort=field.promised_at", {
            Box::new(move |r| {
                let from = now + TimeDelta::minutes(((r * 131) % 90_000) as i64);
                InstanceQuery {
                    fields: field(
                        "promised_at",
                        half_open(
                            FieldValue::Timestamp(from),
                            FieldValue::Timestamp(from + TimeDelta::hours(1)),
                        ),
                    ),
                    sort: Some(SortBy::Field {
                        field: "promised_at".into(),
                        kind: FieldType::Timestamp,
                    }),
                    ..base.clone()
                }
            })
        }),
    ]
}

/// The range `from <= value < to`.
fn half_open(from: FieldValue, to: FieldValue) -> FieldTest {
    FieldTest::Range {
        lower: Some(Bound {
            value: from,
            inclusive: true,
        }),
        upper: Some(Bound {
            value: to,
            inclusive: false,
        }),
    }
}

/// Runs `rounds` queries made by `make` and prints their row: p50, p99 and max time, and
/// the mean number of items a page held.
fn time_query(
    store: &BenchStore,
    label: &str,
    make: &dyn Fn(usize) -> InstanceQuery,
    rounds: usize,
) {
    let mut times = Vec::with_capacity(rounds);
    let mut items = 0;
    for r in 0..rounds {
        let q = make(r);
        let began = Instant::now();
        let page = store.query(&q).unwrap();
        times.push(began.elapsed().as_micros() as u64);
        items += page.items.len();
    }
    times.sort_unstable();
    println!(
        "| `{label}` | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} |",
        common::ms(common::percentile(&times, 50.0)),
        common::ms(common::percentile(&times, 99.0)),
        common::ms(*times.last().unwrap()),
        items as f64 / rounds as f64
    );
}

fn main() {
    println!("{}", common::machine());
    cost_per_command(common::env_usize("WAYSTATION_BENCH_COMMANDS", 20_000));
    queries(
        common::env_usize("WAYSTATION_BENCH_INSTANCES", 1_000_000),
        common::env_usize("WAYSTATION_BENCH_QUERIES", 200),
    );
}
