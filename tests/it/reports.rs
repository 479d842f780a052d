//! Issue 15 over real HTTP: figures per period from the real binary, JSON and CSV, time
//! zone and period boundaries, grouping, bad parameters, the rebuild command, and rollups
//! that neither lose nor double a contribution across restarts and SIGKILLs.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::sim::FakePlugins;
use waystation_core::{Input, InstanceState, Workflow};
use waystation_store::{Commit, DefinitionStore, FjallStore, Store};
use waystation_tests::server::{Client, Server};
use waystation_tests::{at, waystation_bin};

/// Disputes: triage (4 h deadline) by an agent, settle and record by a lead.
pub(crate) const DISPUTES: &str = r#"{"id": "disputes", "title": "Disputes", "start": "triage",
  "fields": {
    "category": {"type": "keyword", "value": "input.category"},
    "satisfaction": {"type": "number", "value": "vars.satisfaction"}},
  "stages": {
    "triage": {"kind": "wait", "owner": "agent", "deadline": "PT4H", "on": {"take": {"to": "settle"}}},
    "settle": {"kind": "wait", "owner": "lead", "on": {"settled": {"to": "record"}}},
    "record": {"kind": "task", "owner": "lead", "actions": [{"set": {"satisfaction": "event.data.score"}}],
               "transitions": [{"to": "done"}]},
    "done": {"kind": "end", "outcome": "settled"}}}"#;

/// Writes disputes into the store of data directory `data` on a fixed clock, through the
/// store's own commit (the one the server's commands use), then closes it:
/// - A: delivery, 2026-10-10 08:00 UTC, taken after 2 h, settled 10 h later (score 4);
/// - B: quality, 2026-10-20 08:00, taken after 1 h, settled 5 h later (score 2);
/// - C: delivery, 2026-10-31 20:00 (November 1st, 04:00 in Shanghai), taken after 1 h, running;
/// - D: "price, refund", 2026-11-03 08:00, cancelled after 3 h in triage.
// Kept whole: the four disputes of the doc above, written in the order they happen on the clock.
fn seed(data: &std::path::Path) {
    let store = FjallStore::open(&data.join("store")).unwrap();
    let definition: Value = serde_json::from_str(DISPUTES).unwrap();
    store
        .put_definition("disputes", &definition, at("2026-10-01T00:00:00Z"), None)
        .unwrap();
    let mut wf = Workflow::from_text(DISPUTES, None).unwrap();
    wf.version = 1;
    let plugins = FakePlugins::new();
    let commit = |before: Option<&InstanceState>, step: &waystation_core::Step| {
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
    let event = |name: &str, data: Value| Input::Event {
        name: name.into(),
        data,
        stage: None,
    };
    type Script<'a> = (&'a str, &'a str, &'a str, Vec<(f64, Input)>);
    let script: Vec<Script> = vec![
        (
            "A",
            "delivery",
            "2026-10-10T08:00:00Z",
            vec![
                (2.0, event("take", Value::Null)),
                (12.0, event("settled", json!({"score": 4}))),
            ],
        ),
        (
            "B",
            "quality",
            "2026-10-20T08:00:00Z",
            vec![
                (1.0, event("take", Value::Null)),
                (6.0, event("settled", json!({"score": 2}))),
            ],
        ),
        (
            "C",
            "delivery",
            "2026-10-31T20:00:00Z",
            vec![(1.0, event("take", Value::Null))],
        ),
        (
            "D",
            "price, refund",
            "2026-11-03T08:00:00Z",
            vec![(
                3.0,
                Input::Cancel {
                    by: "lead-li".into(),
                    reason: None,
                },
            )],
        ),
    ];
    for (id, category, start, steps) in script {
        let t0 = at(start);
        let mut step = start_until_quiet(
            &wf,
            format!("seed-{id}"),
            json!({"category": category}),
            t0,
            &plugins,
        )
        .unwrap();
        commit(None, &step);
        for (h, input) in steps {
            let now = t0 + chrono::TimeDelta::minutes((h * 60.0) as i64);
            let before = step.state.clone();
            step = apply_until_quiet(&wf, before.clone(), input, now, &plugins).unwrap();
            commit(Some(&before), &step);
        }
    }
    store.flush().unwrap();
}

fn rows(report: &Value) -> &Vec<Value> {
    report["rows"].as_array().expect("rows")
}

fn row<'a>(report: &'a Value, period: &str, group: Option<&str>) -> &'a Value {
    rows(report)
        .iter()
        .find(|r| r["period"] == period && r["group"].as_str() == group)
        .unwrap_or_else(|| panic!("no row {period} {group:?} in {report}"))
}

fn stage<'a>(row: &'a Value, name: &str) -> &'a Value {
    row["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

const MONTHS: &str = "/v1/reports/disputes?from=2026-10&to=2026-11&period=month";

fn seeded_server() -> (Server, tempdir::Dir) {
    let dir = tempdir::Dir::new("reports");
    seed(&dir.0);
    let server = Server::start_in(&dir.0, &[]);
    (server, dir)
}

mod tempdir {
    /// A data directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("waystation-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn a_dispute_started_on_october_31st_at_20_utc_counts_in_novembers_figures_in_shanghai() {
    let (server, _dir) = seeded_server();
    let ops = server.token("ops-zhao", &["operator"]);
    let (status, shanghai) = ops.get(&format!("{MONTHS}&tz=Asia/Shanghai"));
    assert_eq!(status, 200, "{shanghai}");
    assert_eq!(shanghai["tz"], "Asia/Shanghai");
    assert_eq!(shanghai["percentile_relative_error"], 0.01);
    let oct = row(&shanghai, "2026-10", None);
    assert_eq!(oct["start"], "2026-09-30T16:00:00Z");
    assert_eq!(
        (oct["started"].as_i64(), oct["running"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(oct["ended"], json!({"completed": 2}));
    assert_eq!(oct["outcomes"], json!({"settled": 2}));
    // A took 12 h from start to end, B 6 h.
    assert_eq!(oct["cycle"]["count"], 2);
    assert_eq!(oct["cycle"]["mean"], 9.0 * 3600.0);
    assert_eq!(oct["cycle"]["max"], 12.0 * 3600.0);
    assert_eq!(
        oct["numbers"]["satisfaction"],
        json!({"count": 2, "mean": 3.0, "min": 2.0, "max": 4.0})
    );
    let triage = stage(oct, "triage");
    assert_eq!(
        (
            triage["entered"].as_i64(),
            triage["response"]["count"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(triage["response"]["mean"], 1.5 * 3600.0);
    assert_eq!(stage(oct, "settle")["time"]["mean"], 7.5 * 3600.0);

    let nov = row(&shanghai, "2026-11", None);
    assert_eq!(
        (nov["started"].as_i64(), nov["running"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(nov["ended"], json!({"cancelled": 1}));
    assert_eq!(nov["cycle"]["max"], 3.0 * 3600.0);
    // C was taken at 21:00 UTC on the 31st: November's response in Shanghai.
    assert_eq!(stage(nov, "triage")["response"]["count"], 1);
    assert_eq!(stage(nov, "triage")["left"], 2);

    // In UTC the same dispute is October's.
    let (_, utc) = ops.get(&format!("{MONTHS}&tz=UTC"));
    assert_eq!(row(&utc, "2026-10", None)["started"], 3);
    assert_eq!(row(&utc, "2026-11", None)["started"], 1);
    // A day in Shanghai: C is the only start of November 1st.
    let (_, day) = ops.get("/v1/reports/disputes?from=2026-11-01&period=day&tz=Asia/Shanghai");
    assert_eq!(rows(&day).len(), 1);
    assert_eq!(row(&day, "2026-11-01", None)["started"], 1);
}

#[test]
fn figures_grouped_by_a_keyword_field_and_by_owner_role() {
    let (server, _dir) = seeded_server();
    let admin = server.admin();
    let (status, by) = admin.get(&format!("{MONTHS}&tz=Asia/Shanghai&by=field.category"));
    assert_eq!(status, 200, "{by}");
    assert_eq!(rows(&by).len(), 6, "three categories times two months");
    assert_eq!(row(&by, "2026-10", Some("delivery"))["started"], 1);
    assert_eq!(row(&by, "2026-11", Some("delivery"))["running"], 1);
    assert_eq!(
        row(&by, "2026-10", Some("quality"))["numbers"]["satisfaction"]["mean"],
        2.0
    );
    assert_eq!(
        row(&by, "2026-11", Some("price, refund"))["ended"],
        json!({"cancelled": 1})
    );
    assert_eq!(row(&by, "2026-11", Some("quality"))["started"], 0);

    let (_, roles) = admin.get(&format!("{MONTHS}&tz=Asia/Shanghai&by=role"));
    let oct = row(&roles, "2026-10", None);
    let names: Vec<&str> = oct["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agent", "lead", "(none)"]);
    // The lead's stages: settle and record entered twice each in October.
    assert_eq!(stage(oct, "lead")["entered"], 4);
}

#[test]
fn the_csv_answer_has_one_quoted_figure_per_line() {
    let (server, _dir) = seeded_server();
    let ops = server.token("ops-qian", &["operator"]);
    let path = format!("{MONTHS}&tz=Asia/Shanghai&by=field.category");
    let (status, kind, body) = ops.get_text(&path, &[("Accept", "text/csv")]);
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("period,start,end,group,stage,figure,value")
    );
    let all: Vec<&str> = body.lines().collect();
    // A group value with a comma is quoted (RFC 4180).
    assert!(all.contains(&"2026-11,2026-10-31T16:00:00+00:00,2026-11-30T16:00:00+00:00,\"price, refund\",,ended.cancelled,1"), "{body}");
    assert!(all.contains(&"2026-10,2026-09-30T16:00:00+00:00,2026-10-31T16:00:00+00:00,quality,,number.satisfaction.mean,2"), "{body}");
    assert!(all.contains(&"2026-10,2026-09-30T16:00:00+00:00,2026-10-31T16:00:00+00:00,delivery,triage,response.mean,7200"), "{body}");
    // The same figures as the JSON answer: one started line per row.
    let started = all.iter().filter(|l| l.contains(",,started,")).count();
    assert_eq!(started, 6);
    // CSV refused with q=0 is not CSV.
    let (status, kind, body) = ops.get_text(&path, &[("Accept", "text/csv;q=0, application/json")]);
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("application/json"), "{kind}");
}

#[test]
fn bad_report_parameters_are_400s_naming_the_parameter() {
    let (server, _dir) = seeded_server();
    let ops = server.token("ops-sun", &["operator"]);
    for (query, parameter) in [
        ("from=2026-10&tz=Mars/Olympus", "tz"),
        ("from=2026-10&period=year", "period"),
        ("to=2026-11", "from"),
        ("from=October", "from"),
        ("from=2026-11&to=2026-10", "to"),
        ("from=2000-01-01&to=2026-01-01&period=day", "to"),
        ("from=2026-10&by=field.satisfaction", "by"),
        ("from=2026-10&by=owner", "by"),
        ("from=2026-10&colour=red", "colour"),
        // Years outside 0001-9999 (chrono alone reads signed and five-digit years, and
        // the week around the first of them left the calendar: a 500).
        ("from=-262143-01-01&period=week", "from"),
        ("from=10000-01", "from"),
        ("from=0000-01&tz=America/New_York", "from"),
        ("from=2026-10&to=%2B2026-11", "to"),
    ] {
        let (status, body) = ops.get(&format!("/v1/reports/disputes?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["parameter"], parameter, "{query}: {body}");
    }
    let (status, _) = ops.get("/v1/reports/nothing-here?from=2026-10");
    assert_eq!(status, 404);
    // Its counts too: an unknown workflow is a 404 everywhere, not an empty answer.
    let (status, body) = ops.get("/v1/stats/nothing-here");
    assert_eq!(status, 404, "{body}");
    let approver = server.token("approver-li", &["approver:lead"]);
    let (status, _) = approver.get("/v1/reports/disputes?from=2026-10");
    assert_eq!(status, 403);
}

#[test]
fn a_rebuild_after_an_upgrade_gives_the_same_figures_and_never_doubles_them() {
    let (mut server, dir) = seeded_server();
    let admin = server.admin();
    let path = format!("{MONTHS}&tz=Asia/Shanghai&by=field.category");
    let (_, kept) = admin.get(&path);
    server.terminate();
    for _ in 0..2 {
        let out = Command::new(waystation_bin())
            .args(["reports", "rebuild", "--data"])
            .arg(&dir.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("4 instances read"), "{said}");
    }
    server.restart();
    let (_, rebuilt) = server.admin().get(&path);
    assert_eq!(rebuilt, kept);
    let missing = Command::new(waystation_bin())
        .args(["reports", "rebuild", "--data", "/nonexistent/waystation"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds no store"));
}

/// The keys of the store in `data` under `part` (its files read as they are: no layout
/// upgrade on this open).
fn keys_under(data: &std::path::Path, part: &[u8]) -> usize {
    use waystation_store::Kv;
    let kv = waystation_store::FjallKv::open(&data.join("store")).unwrap();
    let mut n = 0;
    kv.scan(
        &waystation_store::keys::prefix(&[part]),
        None,
        &mut |_, _| {
            n += 1;
            true
        },
    )
    .unwrap();
    n
}

/// Rewrites the report bucket values of the store in `data` as the cells an earlier
/// release kept, one key per figure (`ru/{workflow}/{dim}/{bucket}/{value}/{figure}`).
fn back_to_a_key_per_figure(data: &std::path::Path) {
    use waystation_store::keys::{part, prefix};
    use waystation_store::{Kv, Mutation, ReportBucket};
    let kv = waystation_store::FjallKv::open(&data.join("store")).unwrap();
    let buckets = prefix(&[part::ROLLUP_BUCKET]);
    let mut batch = Vec::new();
    kv.scan(&buckets, None, &mut |k, v| {
        let bucket = ReportBucket::decode(v).unwrap();
        for figure in bucket.figures() {
            let (name, cell) = figure.unwrap();
            let mut old = prefix(&[part::ROLLUP]);
            old.extend_from_slice(&k[buckets.len()..]);
            old.push(0);
            old.extend_from_slice(name.as_bytes());
            batch.push(Mutation::Put(old, cell.encode()));
        }
        batch.push(Mutation::Delete(k.to_vec()));
        true
    })
    .unwrap();
    kv.apply(batch).unwrap();
    kv.flush().unwrap();
}

#[test]
fn a_data_directory_keeping_a_key_per_figure_answers_the_same_figures_once_served() {
    let (mut server, dir) = seeded_server();
    let admin = server.admin();
    let paths = [
        format!("{MONTHS}&tz=Asia/Shanghai"),
        format!("{MONTHS}&tz=Asia/Shanghai&by=field.category"),
        format!("{MONTHS}&by=role"),
        "/v1/reports/disputes?from=2026-10-01&to=2026-11-05&period=day".to_owned(),
    ];
    let before: Vec<Value> = paths.iter().map(|p| admin.get(p).1).collect();
    assert_eq!(row(&before[0], "2026-10", None)["started"], 2);
    server.terminate();
    back_to_a_key_per_figure(&dir.0);
    assert!(keys_under(&dir.0, waystation_store::keys::part::ROLLUP) > 20);
    assert_eq!(
        keys_under(&dir.0, waystation_store::keys::part::ROLLUP_BUCKET),
        0
    );

    server.restart();
    let admin = server.admin();
    let after: Vec<Value> = paths.iter().map(|p| admin.get(p).1).collect();
    assert_eq!(after, before);
    server.terminate();
    assert_eq!(
        keys_under(&dir.0, waystation_store::keys::part::ROLLUP),
        0,
        "the server rewrote every cell when it opened the store"
    );
}

#[test]
fn a_report_cell_of_the_earlier_layout_that_does_not_decode_stops_the_start_naming_it() {
    use waystation_store::keys::{key, part};
    use waystation_store::{Kv, Mutation};
    let dir = tempdir::Dir::new("bad-cell");
    seed(&dir.0);
    let bad = key(&[
        part::ROLLUP,
        b"disputes",
        b"",
        b"000001978000",
        b"",
        b"started",
    ]);
    {
        let kv = waystation_store::FjallKv::open(&dir.0.join("store")).unwrap();
        kv.apply(vec![Mutation::Put(bad, b"not a cell".to_vec())])
            .unwrap();
        kv.flush().unwrap();
    }
    let stderr = waystation_tests::serve_refused(
        &dir.0,
        &[("WAYSTATION_BOOTSTRAP_TOKEN", "ws_bad_cell_admin")],
    );
    // What was being done, where, and what was wrong with which key.
    assert!(
        stderr.contains("cannot upgrade the layout of the store in"),
        "{stderr}"
    );
    assert!(
        stderr.contains("report bucket ru/disputes//000001978000//started"),
        "{stderr}"
    );
}

const TICKETS: &str = r#"{"id": "tickets", "title": "Tickets", "start": "open",
  "stages": {
    "open": {"kind": "wait", "owner": "agent", "on": {"work": {"to": "working"}}},
    "working": {"kind": "wait", "owner": "agent", "on": {"done": {"to": "closed"}}},
    "closed": {"kind": "end", "outcome": "closed"}}}"#;

/// Starts tickets and moves them on from a few threads until told to stop.
fn load(client: Client, stop: Arc<AtomicBool>, worker: u32) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (status, body) = client.post(
            "/v1/workflows/tickets/instances",
            &json!({"input": {"n": n, "w": worker}}),
        );
        if status != 201 {
            continue;
        }
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        for event in ["work", "done"].iter().take(n % 3) {
            let _ = client.post(
                &format!("/v1/instances/{id}/events"),
                &json!({"type": event}),
            );
        }
    }
}

/// Every ticket's status, from the instance list.
fn statuses(client: &Client) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = client.get(&format!(
            "/v1/instances?workflow=tickets&limit=1000{cursor}"
        ));
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            *out.entry(item["status"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The figures of every month around today, added up.
fn totals(client: &Client) -> (i64, i64, i64, i64, i64) {
    let now = chrono::Utc::now();
    let from = (now - chrono::TimeDelta::days(40)).format("%Y-%m");
    let to = (now + chrono::TimeDelta::days(40)).format("%Y-%m");
    let (status, report) = client.get(&format!("/v1/reports/tickets?from={from}&to={to}"));
    assert_eq!(status, 200, "{report}");
    let mut t = (0, 0, 0, 0, 0);
    for r in rows(&report) {
        t.0 += r["started"].as_i64().unwrap();
        t.1 += r["running"].as_i64().unwrap();
        t.2 += r["ended"]["completed"].as_i64().unwrap_or(0);
        t.3 += stage(r, "open")["entered"].as_i64().unwrap();
        t.4 += stage(r, "working")["left"].as_i64().unwrap();
    }
    t
}

#[test]
fn rollups_survive_sigkill_mid_run_and_restarts_without_double_counting() {
    let mut server = Server::start();
    let admin = server.admin();
    let (status, body) = admin.put(
        "/v1/workflows/tickets",
        &serde_json::from_str(TICKETS).unwrap(),
    );
    assert!(status == 200 || status == 201, "{body}");
    let ops = server.token("ops-load", &["operator"]);
    let token = ops.token().unwrap().to_owned();
    for round in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let (c, s) = (server.client(Some(&token)), stop.clone());
                std::thread::spawn(move || load(c, s, w))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        server.restart();
    }
    // A clean restart too.
    server.terminate();
    server.restart();
    let admin = server.admin();
    let by_status = statuses(&admin);
    let instances: i64 = by_status.values().sum();
    assert!(instances > 10, "the load started tickets ({instances})");
    let completed = by_status.get("completed").copied().unwrap_or(0);
    let running = by_status.get("running").copied().unwrap_or(0);
    // Every stored ticket counted once: started, in its first stage, and by how it stands.
    assert_eq!(
        totals(&admin),
        (instances, running, completed, instances, completed)
    );
}
