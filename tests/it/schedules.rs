//! Schedules on the real binary over HTTP: every slot starts exactly one instance, also
//! across a SIGKILL; slots missed while the server was down are skipped or caught up once,
//! as configured; pause and resume; bad expressions and zones are refused at their pointer.

use chrono::{DateTime, Duration as Span, SubsecRound, Timelike, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use waystation_tests::server::{Client, Server};

/// A probe workflow: each instance remembers the slot that started it.
fn probe() -> Value {
    json!({
        "id": "sched-probe", "title": "Started by a schedule", "start": "open",
        "stages": {
            "open": {"kind": "wait", "on": {"done": {"to": "done"}}},
            "done": {"kind": "end", "outcome": "done"}
        }
    })
}

fn setup() -> (Server, Client) {
    let server = Server::start();
    let admin = server.admin();
    let (status, body) = admin.put("/v1/workflows/sched-probe", &probe());
    assert_eq!(status, 201, "{body}");
    (server, admin)
}

fn schedule(cron: &str, catch_up: &str) -> Value {
    json!({
        "cron": cron, "zone": "Europe/Berlin", "workflow": "sched-probe",
        "input_expr": "{'slot': now}", "catch_up": catch_up
    })
}

/// The slots of every instance the schedule started, in order; panics on a repeat.
fn slots(admin: &Client) -> Vec<DateTime<Utc>> {
    let (status, page) = admin.get("/v1/instances?workflow=sched-probe&limit=500");
    assert_eq!(status, 200, "{page}");
    let mut out = Vec::new();
    for item in page["items"].as_array().expect("items") {
        let id = item["id"].as_str().unwrap();
        let (_, instance) = admin.get(&format!("/v1/instances/{id}"));
        let slot = instance["input"]["slot"]
            .as_str()
            .expect("a slot")
            .to_owned();
        out.push(
            DateTime::parse_from_rfc3339(&slot)
                .unwrap()
                .with_timezone(&Utc),
        );
    }
    out.sort();
    let distinct: BTreeSet<_> = out.iter().collect();
    assert_eq!(distinct.len(), out.len(), "a slot started twice: {out:?}");
    out
}

fn sleep_until(t: DateTime<Utc>) {
    let left = t - Utc::now();
    if let Ok(d) = left.to_std() {
        std::thread::sleep(d);
    }
}

#[test]
fn a_schedule_every_second_starts_one_instance_per_slot_across_a_sigkill() {
    let (mut server, admin) = setup();
    let (status, body) = admin.put(
        "/v1/schedules/every-second",
        &schedule("* * * * * *", "last"),
    );
    assert_eq!(status, 201, "{body}");
    assert!(body["next_run"].is_string(), "{body}");
    std::thread::sleep(Duration::from_millis(3_300));
    server.kill9();
    server.restart();
    std::thread::sleep(Duration::from_millis(2_500));
    let (status, _) = admin.post("/v1/schedules/every-second/pause", &json!({}));
    assert_eq!(status, 200);
    let got = slots(&admin);
    assert!(got.len() >= 4, "{got:?}");
    for s in &got {
        assert_eq!(s.nanosecond(), 0, "slots fall on whole seconds: {s}");
    }
}

#[test]
fn slots_missed_while_the_server_was_down_are_skipped_by_default() {
    let started = missed_slots("skip");
    assert_eq!(
        started.0,
        Vec::<DateTime<Utc>>::new(),
        "none of the missed slots"
    );
    assert_eq!(
        started.1.len(),
        1,
        "the slot after the restart starts: {:?}",
        started.1
    );
}

#[test]
fn with_catch_up_last_only_the_last_missed_slot_starts_once() {
    let (missed, live) = missed_slots("last");
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(live.len(), 1, "{live:?}");
}

/// Slots S1, S2, S3 fall while the server is down, S5 after its restart. Returns the
/// started slots among S1..S3, and among S5.
fn missed_slots(catch_up: &str) -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    let (mut server, admin) = setup();
    let s1 = Utc::now().trunc_subsecs(0) + Span::seconds(4);
    let down = [s1, s1 + Span::seconds(1), s1 + Span::seconds(2)];
    let s5 = s1 + Span::seconds(8);
    let seconds: Vec<String> = down
        .iter()
        .chain([&s5])
        .map(|t| t.second().to_string())
        .collect();
    let cron = format!("{} * * * * *", seconds.join(","));
    let (status, body) = admin.put("/v1/schedules/missed", &schedule(&cron, catch_up));
    assert_eq!(status, 201, "{body}");
    server.kill9();
    sleep_until(down[2] + Span::milliseconds(1_500));
    server.restart();
    sleep_until(s5 + Span::seconds(2));
    let got = slots(&admin);
    let missed = got.iter().copied().filter(|s| down.contains(s)).collect();
    if catch_up == "last" {
        assert!(got.contains(&down[2]), "the last missed slot: {got:?}");
    }
    let live = got.iter().copied().filter(|s| *s == s5).collect();
    (missed, live)
}

#[test]
fn a_paused_schedule_starts_nothing_and_resuming_does_not_catch_up_the_pause() {
    let (_server, admin) = setup();
    let (status, body) = admin.put(
        "/v1/schedules/paused",
        &json!({
            "cron": "* * * * * *", "zone": "UTC", "workflow": "sched-probe", "paused": true
        }),
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body.get("next_run").is_none(),
        "no next run while paused: {body}"
    );
    std::thread::sleep(Duration::from_millis(2_200));
    let (_, page) = admin.get("/v1/instances?workflow=sched-probe");
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    let resumed_at = Utc::now();
    let (status, body) = admin.post("/v1/schedules/paused/resume", &json!({}));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(2_300));
    let (_, list) = admin.get("/v1/schedules");
    let item = &list["items"][0];
    assert_eq!(item["id"], "paused");
    assert!(item["next_run"].is_string(), "{list}");
    let (_, page) = admin.get("/v1/instances?workflow=sched-probe&limit=100");
    let n = page["items"].as_array().unwrap().len();
    assert!(
        (1..=3).contains(&n),
        "{n} instances after about two seconds resumed at {resumed_at}"
    );
}

#[test]
fn a_bad_cron_a_bad_zone_and_an_unknown_workflow_are_refused_with_their_pointers() {
    let (server, admin) = setup();
    let (status, body) = admin.put(
        "/v1/schedules/broken",
        &json!({
            "cron": "every thursday", "zone": "Europe/Berlinn", "workflow": "nope"
        }),
    );
    assert_eq!(status, 422, "{body}");
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/workflow", "/cron", "/zone"], "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("schedule"),
        "{body}"
    );
    let ops = server.token("ops", &["operator"]);
    let (status, _) = ops.put("/v1/schedules/x", &schedule("* * * * *", "skip"));
    assert_eq!(status, 403, "schedules are for administrators");
    assert_eq!(admin.get("/v1/schedules/nope").0, 404);
}
