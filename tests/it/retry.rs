//! Retrying a failed instance over HTTP (`POST /v1/instances/{id}/retry`): an order
//! checked before its goods were ready fails; once they are, an operator retries it, the
//! history names them, and the order runs on from the failed check on the same version.

use serde_json::{json, Value};
use std::time::Duration;
use waystation_tests::server::{Client, Server};

/// Check the order (it fails before `ready_after`), then wait for the customer's reply.
fn orders() -> Value {
    json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "start": "check",
        "stages": {
            "check": {
                "kind": "task",
                "actions": [{"set": {"checks": "has(vars.checks) ? vars.checks + 1 : 1"}}],
                "transitions": [{"when": "now >= timestamp(input.ready_after)", "to": "wait_reply"}]
            },
            "wait_reply": {"kind": "wait", "on": {"replied": {"to": "done"}}},
            "done": {"kind": "end", "outcome": "answered"}
        }
    })
}

fn desk() -> (Server, Client) {
    let server = Server::start();
    let (s, body) = server.admin().put("/v1/workflows/orders", &orders());
    assert_eq!(s, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    (server, ops)
}

/// Waits until orders started with `in_ms` are ready.
fn until_ready(in_ms: u64) {
    std::thread::sleep(Duration::from_millis(in_ms + 100));
}

/// Starts order `no`, ready `in_ms` from now: failed at once.
fn failed_order(ops: &Client, no: &str, in_ms: i64) -> String {
    assert!(in_ms >= 100, "checked before it is ready");
    let ready = chrono::Utc::now() + chrono::TimeDelta::milliseconds(in_ms);
    let (s, body) = ops.post(
        "/v1/workflows/orders/instances",
        &json!({"input": {"order_no": no, "ready_after": ready.to_rfc3339()}}),
    );
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn history(ops: &Client, id: &str) -> Vec<Value> {
    let (s, body) = ops.get(&format!("/v1/instances/{id}/history"));
    assert_eq!(s, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[test]
fn an_operator_retries_an_order_checked_too_early_and_the_history_names_them() {
    let (server, ops) = desk();
    let id = failed_order(&ops, "ORD-1", 300);
    std::thread::sleep(Duration::from_millis(400));
    let (s, body) = ops.post(&format!("/v1/instances/{id}/retry"), &json!({}));
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["stage"], &body["version"]),
        (&json!("running"), &json!("wait_reply"), &json!(1))
    );
    let entries = history(&ops, &id);
    let retried = entries
        .iter()
        .find(|e| e["type"] == "retried")
        .expect("a retried entry");
    assert_eq!(retried["by"], "olga");
    assert_eq!(retried["actor"], server.actor("olga"));
    assert_eq!(retried["stage"], "check");
    assert!(retried["failure"]
        .as_str()
        .unwrap()
        .contains("no transition of task stage 'check' holds"));
    let (_, inst) = ops.get(&format!("/v1/instances/{id}"));
    assert_eq!(
        inst["vars"]["checks"], 1,
        "the check's action ran once: the retry only settles again"
    );
    assert!(inst.get("failure").is_none_or(Value::is_null), "{inst}");
}

#[test]
fn retrying_an_order_that_is_not_failed_is_409_and_writes_nothing() {
    let (_server, ops) = desk();
    let id = failed_order(&ops, "ORD-2", 300);
    until_ready(300);
    // Ready now: the retry succeeds once, a second retry finds it running.
    let (s, _) = ops.post(&format!("/v1/instances/{id}/retry"), &json!({}));
    assert_eq!(s, 200);
    let before = history(&ops, &id).len();
    let (s, body) = ops.post(&format!("/v1/instances/{id}/retry"), &json!({}));
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["type"], "https://waystation.dev/problems/not-failed");
    assert!(
        body["detail"].as_str().unwrap().contains("running"),
        "{body}"
    );
    assert_eq!(history(&ops, &id).len(), before);
    let (s, _) = ops.post("/v1/instances/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", &json!({}));
    assert_eq!(s, 404);
    // A body the retry does not use still meets the size limit (1 MiB), answered as a
    // problem.
    let (s, body) = ops.send(
        "POST",
        &format!("/v1/instances/{id}/retry"),
        "application/json",
        vec![b' '; 1024 * 1024 + 16],
        &[],
    );
    assert_eq!(s, 413, "{body}");
    assert_eq!(body["type"], "https://waystation.dev/problems/too-large");
    assert_eq!(history(&ops, &id).len(), before);
}

#[test]
fn a_retry_sent_twice_with_one_idempotency_key_applies_once() {
    let (_server, ops) = desk();
    let id = failed_order(&ops, "ORD-3", 300);
    until_ready(300);
    let path = format!("/v1/instances/{id}/retry");
    let (s1, a) = ops.post_once(&path, &json!({}), "retry-ORD-3");
    let (s2, b) = ops.post_once(&path, &json!({}), "retry-ORD-3");
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    assert_eq!(a, b, "the repeat answers what the first did");
    let retries = history(&ops, &id)
        .iter()
        .filter(|e| e["type"] == "retried")
        .count();
    assert_eq!(retries, 1);
}

#[test]
fn a_failed_order_whose_number_another_order_took_cannot_be_retried() {
    let (_server, ops) = desk();
    let failed = failed_order(&ops, "ORD-4", 300);
    until_ready(300);
    // The failed order freed its number: a new order takes it.
    let ready = chrono::Utc::now().to_rfc3339();
    let (s, body) = ops.post(
        "/v1/workflows/orders/instances",
        &json!({"input": {"order_no": "ORD-4", "ready_after": ready}}),
    );
    assert_eq!(s, 201, "{body}");
    let taker = body["id"].clone();
    let (s, body) = ops.post(&format!("/v1/instances/{failed}/retry"), &json!({}));
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["type"], "https://waystation.dev/problems/key-in-use");
    assert_eq!(
        body["instance"], taker,
        "the refusal names the order that holds the number"
    );
    let (_, inst) = ops.get(&format!("/v1/instances/{failed}"));
    assert_eq!(inst["status"], "failed", "nothing changed");
}

#[test]
fn an_approver_may_not_retry() {
    let (server, ops) = desk();
    let id = failed_order(&ops, "ORD-5", 300);
    let rui = server.token("rui", &["approver:reviewer"]);
    let (s, body) = rui.post(&format!("/v1/instances/{id}/retry"), &json!({}));
    assert_eq!(s, 403, "{body}");
}
