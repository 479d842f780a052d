//! Escalation ladders and reminders on the real binary: every step and every reminder round
//! fires exactly once, although the server is killed (SIGKILL) while they are due.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};

/// A ticket that escalates at 1, 2 and 3 seconds and is reminded every second, four times;
/// every firing also counts itself in `vars.fired` (the state's own record, beside the
/// history's).
fn ticket() -> Value {
    let count = json!({"set": {"fired": "has(vars.fired) ? vars.fired + 1 : 1"}});
    json!({
        "id": "crash-ladder", "title": "Escalates while the server dies", "start": "waiting",
        "stages": {
            "waiting": {
                "kind": "wait", "owner": "warehouse",
                "escalation": [
                    {"after": "PT1S", "actions": [{"tag": "supervisor-told"}, count]},
                    {"after": "PT2S", "actions": [{"tag": "manager-told"}, count]},
                    {"after": "PT3S", "actions": [{"tag": "director-told"}, count]}
                ],
                "reminders": [{"every": "PT1S", "times": 4, "actions": [count]}],
                "on": {"replied": {"to": "closed"}}
            },
            "closed": {"kind": "end", "outcome": "closed"}
        }
    })
}

fn history(ops: &Client, id: &str) -> Vec<Value> {
    let (status, page) = ops.get(&format!("/v1/instances/{id}/history?limit=1000"));
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// (escalation steps fired, reminder rounds fired), each as recorded in the history.
fn firings(items: &[Value]) -> (Vec<u64>, Vec<u64>) {
    let pick = |kind: &str, member: &str| -> Vec<u64> {
        let mut v: Vec<u64> = items
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e[member].as_u64().expect("a number"))
            .collect();
        v.sort_unstable();
        v
    };
    (pick("escalated", "step"), pick("reminded", "round"))
}

#[test]
fn every_escalation_step_and_reminder_fires_exactly_once_across_sigkills() {
    let mut server = Server::start();
    let (status, body) = server.admin().put("/v1/workflows/crash-ladder", &ticket());
    assert_eq!(status, 201, "{body}");
    let ops = server.token("ops", &["operator"]);
    let ids: Vec<String> = (0..12)
        .map(|_| {
            let (status, body) = ops.post(
                "/v1/workflows/crash-ladder/instances",
                &json!({"input": {}}),
            );
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();

    // Die while the steps and rounds are falling due, twice, and come back.
    for pause in [1_300, 1_100] {
        std::thread::sleep(Duration::from_millis(pause));
        server.kill9();
        server.restart();
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        loop {
            let items = history(&ops, id);
            let (steps, rounds) = firings(&items);
            if steps.len() >= 3 && rounds.len() >= 4 || Instant::now() > deadline {
                assert_eq!(steps, [0, 1, 2], "{id}: each step once");
                assert_eq!(rounds, [1, 2, 3, 4], "{id}: each round once");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Nothing fires twice later either.
    }
    std::thread::sleep(Duration::from_millis(1_500));
    for id in &ids {
        let (status, instance) = ops.get(&format!("/v1/instances/{id}"));
        assert_eq!(status, 200, "{instance}");
        assert_eq!(
            instance["stage"], "waiting",
            "escalation never leaves the stage"
        );
        assert_eq!(
            instance["vars"]["fired"], 7,
            "{id}: 3 steps + 4 rounds, each counted once"
        );
        let tags: Vec<&str> = instance["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(tags, ["director-told", "manager-told", "supervisor-told"]);
        let (steps, rounds) = firings(&history(&ops, id));
        assert_eq!((steps.len(), rounds.len()), (3, 4), "{id}");
    }
}

#[test]
fn a_reply_before_the_first_step_cancels_the_ladder_on_the_real_server() {
    let server = Server::start();
    assert_eq!(
        server
            .admin()
            .put("/v1/workflows/crash-ladder", &ticket())
            .0,
        201
    );
    let ops = server.token("ops", &["operator"]);
    let (_, body) = ops.post(
        "/v1/workflows/crash-ladder/instances",
        &json!({"input": {}}),
    );
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = ops.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "replied", "data": {}}),
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(4_500));
    let (steps, rounds) = firings(&history(&ops, &id));
    assert!(
        steps.is_empty() && rounds.is_empty(),
        "{steps:?} {rounds:?}"
    );
}
