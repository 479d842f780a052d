//! Who did what beyond instance commands, over HTTP against the real binary: the engine
//! giving an escalation to the order's supervisor, and the uploader of every definition and
//! plugin version.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};

/// Confirm within a second; a missed confirmation escalates to the supervisor the order
/// names, who is told.
fn escalating_orders() -> Value {
    json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "start": "confirm",
        "stages": {
            "confirm": {
                "kind": "wait", "owner": "order-specialist", "deadline": "PT1S",
                "on": {"confirmed": {"to": "done"}},
                "timeout": {"to": "escalated"}
            },
            "escalated": {
                "kind": "wait", "owner": "supervisor",
                "actions": [{"assign": "has(input.supervisor) ? input.supervisor : null"}],
                "on": {"confirmed": {"to": "done"}}
            },
            "done": {"kind": "end", "outcome": "confirmed"}
        }
    })
}

/// A server with the escalating order desk uploaded, and the ERP's operator token.
fn order_desk() -> (Server, Client) {
    let server = Server::start();
    let (s, body) = server
        .admin()
        .put("/v1/workflows/orders", &escalating_orders());
    assert_eq!(s, 201, "{body}");
    let erp = server.token("erp", &["operator"]);
    (server, erp)
}

/// Starts an order with `input`; its instance id.
fn start(erp: &Client, input: Value) -> String {
    let (s, started) = erp.post("/v1/workflows/orders/instances", &json!({"input": input}));
    assert_eq!(s, 201, "{started}");
    started["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_missed_confirmation_lands_in_the_named_supervisors_work_assigned_by_the_engine() {
    let (server, erp) = order_desk();
    let li = server.token("li.na", &["operator", "approver:supervisor"]);
    let id = start(
        &erp,
        json!({"order_no": "202405-001", "supervisor": "li.na"}),
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let inst = loop {
        let (_, inst) = erp.get(&format!("/v1/instances/{id}"));
        if inst["assignee"]["user"] == json!("li.na") {
            break inst;
        }
        assert!(Instant::now() < deadline, "never escalated: {inst}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (&inst["stage"], &inst["assignee"]["by"]),
        (&json!("escalated"), &json!("engine"))
    );
    let (_, mine) = li.get("/v1/work");
    assert_eq!(mine["items"][0]["id"], json!(id), "{mine}");

    let (_, h) = erp.get(&format!("/v1/instances/{id}/history"));
    let items = h["items"].as_array().unwrap();
    let assigned = items
        .iter()
        .find(|e| e["type"] == json!("assigned"))
        .expect("the assignment is in the history");
    assert_eq!(
        (&assigned["assignee"], &assigned["by"], &assigned["actor"]),
        (&json!("li.na"), &json!("engine"), &Value::Null),
        "the engine, not a token, assigned it: {assigned}"
    );
    assert!(
        items.iter().any(|e| e["type"] == json!("message_queued")
            && e["channel"] == json!("assignment")
            && e["recipient"] == json!("li.na")),
        "the supervisor is told: {h}"
    );
}

#[test]
fn every_definition_and_plugin_version_names_the_token_that_uploaded_it() {
    let server = Server::start();
    let ana = server.token("admin-ana", &["admin"]);
    let bo = server.token("admin-bo", &["admin"]);
    let dev = server.token("dev-chen", &["developer"]);

    let mut v1 = escalating_orders();
    let (s, _) = ana.put("/v1/workflows/orders", &v1);
    assert_eq!(s, 201);
    let (s, _) = bo.put("/v1/workflows/orders", &v1);
    assert_eq!(s, 200, "an unchanged upload is no new version");
    v1["title"] = json!("Orders, second edition");
    let (s, _) = bo.put("/v1/workflows/orders", &v1);
    assert_eq!(s, 201);
    let (_, first) = bo.get("/v1/workflows/orders/versions/1");
    assert_eq!(first["uploaded_by"], server.actor("admin-ana"), "{first}");
    let (_, newest) = ana.get("/v1/workflows/orders");
    assert_eq!(
        (&newest["version"], &newest["uploaded_by"]["name"]),
        (&json!(2), &json!("admin-bo"))
    );

    dev.upload_plugin("order-priority");
    let (s, plugin) = dev.get("/v1/plugins/order-priority");
    assert_eq!(s, 200, "{plugin}");
    assert_eq!(
        plugin["newest"]["uploaded_by"],
        server.actor("dev-chen"),
        "{plugin}"
    );
}

#[test]
fn an_order_specialist_reads_and_confirms_the_order_they_claimed_but_not_anothers() {
    let (server, erp) = order_desk();
    let ana = server.token("ana", &["approver:order-specialist"]);
    let (mine, other) = (
        start(&erp, json!({"order_no": "202406-001"})),
        start(&erp, json!({"order_no": "202406-002"})),
    );

    let (s, p) = ana.get(&format!("/v1/instances/{mine}"));
    assert_eq!(s, 403, "not hers yet: {p}");
    let (s, p) = ana.post(&format!("/v1/instances/{mine}/claim"), &json!({}));
    assert_eq!(s, 200, "{p}");

    let (s, inst) = ana.get(&format!("/v1/instances/{mine}"));
    assert_eq!(
        (s, &inst["assignee"]["user"]),
        (200, &json!("ana")),
        "{inst}"
    );
    let (s, h) = ana.get(&format!("/v1/instances/{mine}/history"));
    assert_eq!(s, 200, "{h}");
    let (s, done) = ana.post(
        &format!("/v1/instances/{mine}/events"),
        &json!({"type": "confirmed"}),
    );
    assert_eq!((s, &done["status"]), (200, &json!("completed")), "{done}");
    let (_, h) = erp.get(&format!("/v1/instances/{mine}/history"));
    let confirmed = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == json!("event_received"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(confirmed["actor"]["name"], json!("ana"), "{h}");

    for path in [
        format!("/v1/instances/{other}"),
        format!("/v1/instances/{other}/history"),
    ] {
        let (s, p) = ana.get(&path);
        assert_eq!(s, 403, "{path}: {p}");
    }
    let (s, p) = ana.post(
        &format!("/v1/instances/{other}/events"),
        &json!({"type": "confirmed"}),
    );
    assert_eq!(s, 403, "{p}");
    let (s, p) = ana.get(&format!("/v1/instances/{mine}"));
    assert_eq!(s, 403, "the work ended, and with it her access: {p}");
}

#[test]
fn an_escalation_the_engine_gave_to_a_name_without_a_token_can_be_claimed_by_a_supervisor() {
    let (server, erp) = order_desk();
    let wu = server.token("wu.supervisor", &["approver:supervisor"]);
    let id = start(
        &erp,
        json!({"order_no": "202405-009", "supervisor": "left.the.company"}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while erp.get(&format!("/v1/instances/{id}")).1["assignee"]["user"] != json!("left.the.company")
    {
        assert!(Instant::now() < deadline, "never escalated");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, p) = wu.post(&format!("/v1/instances/{id}/claim"), &json!({}));
    assert_eq!(
        s, 200,
        "nobody real holds it, so a supervisor may take it: {p}"
    );
    let (_, inst) = erp.get(&format!("/v1/instances/{id}"));
    assert_eq!(inst["assignee"]["user"], json!("wu.supervisor"));

    let other = server.token("ma.supervisor", &["approver:supervisor"]);
    let (s, p) = other.post(&format!("/v1/instances/{id}/claim"), &json!({}));
    assert_eq!(s, 409, "a real holder keeps it: {p}");
}
