//! Parallel branches on the real binary: `order-quick-response` has production,
//! procurement and logistics confirm the plan side by side. Their 1-hour deadlines are
//! shortened to seconds in an uploaded copy, so a late department really escalates while
//! the others finish.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};
use waystation_tests::{root, sample};

/// The reference workflow with each department's confirmation due `seconds` after the
/// plan (at risk one second before).
fn order_quick_response(seconds: u32) -> Value {
    let text = std::fs::read_to_string(root().join("workflows/order-quick-response.json")).unwrap();
    let mut wf: Value = serde_json::from_str(&text).unwrap();
    for dept in ["production", "procurement", "logistics"] {
        let stage = &mut wf["stages"][format!("{dept}_confirmation")];
        assert_eq!(
            stage["deadline"], "PT1H",
            "the reference gives each department 1 hour"
        );
        stage["deadline"] = json!(format!("PT{seconds}S"));
        stage["at_risk"] = json!("PT1S");
    }
    wf
}

fn instance(ops: &Client, id: &str) -> Value {
    let (status, body) = ops.get(&format!("/v1/instances/{id}"));
    assert_eq!(status, 200, "{body}");
    body
}

/// `(branch, status, stage)` of each branch the instance shows.
fn branches(body: &Value) -> Vec<(String, String, String)> {
    body["branches"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                    (s("branch"), s("status"), s("stage"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The open task of `role` on `id`, decided by `approver`; returns the stage after it.
fn approve(approver: &Client, id: &str, role: &str) -> String {
    let (_, inbox) = approver.get("/v1/approvals?limit=500");
    let task = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["instance_id"] == id && t["role"] == role)
        .unwrap_or_else(|| panic!("no {role} task on {id}: {inbox}"))
        .clone();
    let (status, body) = approver.post(
        &format!("/v1/approvals/{}", task["id"].as_str().unwrap()),
        &json!({"decision": "approve", "comment": format!("{role} confirms")}),
    );
    assert_eq!(status, 200, "{body}");
    body["stage"].as_str().unwrap().to_owned()
}

// Kept whole: one scenario told in order, branch by branch, as the playbook tells it.
#[test]
fn a_department_that_has_not_confirmed_in_time_escalates_to_the_supervisor_while_the_others_finish()
{
    let server = Server::start();
    server
        .token("dev", &["developer"])
        .upload_plugin("order-priority");
    let (status, body) = server.admin().put(
        "/v1/workflows/order-quick-response",
        &order_quick_response(3),
    );
    assert_eq!(status, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    let mut order = sample("order-quick-response", "vip-high");
    order["promised_at"] = json!((chrono::Utc::now() + chrono::TimeDelta::days(10)).to_rfc3339());
    let (status, started) = ops.post(
        "/v1/workflows/order-quick-response/instances",
        &json!({"input": order}),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    for event in ["confirmed", "planned"] {
        let (status, body) = ops.post(
            &format!("/v1/instances/{id}/events"),
            &json!({"type": event}),
        );
        assert_eq!(status, 200, "{event}: {body}");
    }

    let body = instance(&ops, &id);
    assert_eq!(body["stage"], "plan_confirmation", "{body}");
    assert_eq!(
        branches(&body),
        [
            (
                "production".into(),
                "running".into(),
                "production_confirmation".into()
            ),
            (
                "procurement".into(),
                "running".into(),
                "procurement_confirmation".into()
            ),
            (
                "logistics".into(),
                "running".into(),
                "logistics_confirmation".into()
            ),
        ]
    );
    assert_eq!(body["branches"][0]["owner"], "production");
    assert!(body["branches"][1]["deadline"].is_string(), "{body}");
    assert_eq!(
        body["approvals"].as_array().unwrap().len(),
        3,
        "one task per department"
    );

    // An event for a stage the instance is not in is refused, naming the current ones.
    let (status, refused) = ops.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "delivered", "stage": "tracking"}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["errors"][0]["pointer"], "/stage", "{refused}");

    let production = server.token("li.production", &["approver:production"]);
    let logistics = server.token("kasia", &["approver:logistics"]);
    assert_eq!(approve(&production, &id, "production"), "plan_confirmation");
    assert_eq!(approve(&logistics, &id, "logistics"), "plan_confirmation");

    // Procurement says nothing: at its deadline it escalates to the supervisor.
    let until = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = instance(&ops, &id);
        if branches(&body)
            .iter()
            .any(|(_, _, stage)| stage == "procurement_late")
        {
            break body;
        }
        assert!(
            Instant::now() < until,
            "procurement never escalated: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        branches(&body),
        [
            (
                "production".into(),
                "ended".into(),
                "production_confirmed".into()
            ),
            (
                "procurement".into(),
                "running".into(),
                "procurement_late".into()
            ),
            (
                "logistics".into(),
                "ended".into(),
                "logistics_confirmed".into()
            ),
        ]
    );
    assert_eq!(body["stage"], "plan_confirmation");
    assert_eq!(
        body["branches"][1]["assignee"], "li.na",
        "the order's supervisor has it"
    );
    assert!(body["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("procurement-late")));
    let breached: Vec<&str> = body["sla_record"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["breached_at"].is_string())
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        breached,
        ["procurement_confirmation"],
        "only procurement was late"
    );

    // The board finds it under the late branch's stage.
    let (_, page) = ops.get("/v1/instances?workflow=order-quick-response&stage=procurement_late");
    assert_eq!(page["items"][0]["id"], json!(id), "{page}");
    assert_eq!(page["items"][0]["branches"].as_array().unwrap().len(), 3);

    let supervisor = server.token("li.na", &["approver:supervisor"]);
    assert_eq!(approve(&supervisor, &id, "supervisor"), "tracking");
    let body = instance(&ops, &id);
    assert!(body.get("branches").is_none(), "{body}");
    let (_, history) = ops.get(&format!("/v1/instances/{id}/history?limit=1000"));
    let types: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "branch_started").count(), 3);
    assert_eq!(types.iter().filter(|t| **t == "branch_ended").count(), 3);
    assert_eq!(types.iter().filter(|t| **t == "joined").count(), 1);
}

/// One branch per shipment (`for_each`): each carrier confirms its pickup within
/// `seconds`; late, the logistics lead has it.
fn ship_order(seconds: u32) -> Value {
    json!({
        "id": "ship-order", "title": "Ship an order", "start": "confirm",
        "stages": {
            "confirm": {
                "kind": "parallel", "title": "Carriers confirm",
                "for_each": {
                    "items": "input.shipments",
                    "as": "shipment",
                    "branch": {"name": "shipment", "start": "ship_confirm", "title": "Shipment"}
                },
                "transitions": [{"to": "shipped"}]
            },
            "ship_confirm": {
                "kind": "wait", "owner": "carrier",
                "deadline": format!("PT{seconds}S"), "at_risk": "PT1S",
                "on": {"confirmed": {"to": "ship_done"}},
                "timeout": {"to": "ship_late"}
            },
            "ship_late": {
                "kind": "wait", "owner": "logistics-lead", "deadline": "PT4H",
                "actions": [{"set": {"late_carrier": "vars.shipment.carrier"}}],
                "on": {"confirmed": {"to": "ship_done"}}
            },
            "ship_done": {"kind": "end", "outcome": "confirmed"},
            "shipped": {"kind": "end", "outcome": "shipped"}
        }
    })
}

fn shipments(n: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("s{i}"), "carrier": format!("carrier-{i}")}))
        .collect();
    json!({ "shipments": list })
}

// Kept whole: one scenario told in order, shipment by shipment.
#[test]
fn each_shipment_gets_its_own_branch_and_a_late_carrier_escalates_while_the_others_confirm() {
    let server = Server::start();
    let (status, body) = server
        .admin()
        .put("/v1/workflows/ship-order", &ship_order(3));
    assert_eq!(status, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    let (status, started) = ops.post(
        "/v1/workflows/ship-order/instances",
        &json!({"input": shipments(3)}),
    );
    // Queries filter by stage name; a branch's address is for commands, and is refused
    // with the name to use rather than silently matching nothing.
    let (queried, refused) =
        ops.get("/v1/instances?workflow=ship-order&stage=shipment%5B2%5D%2Fship_confirm");
    assert_eq!(queried, 400, "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("filter by its stage name, ship_confirm"),
        "{refused}"
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let body = instance(&ops, &id);
    let running = |i: usize| {
        (
            format!("shipment[{i}]"),
            "running".to_owned(),
            "ship_confirm".to_owned(),
        )
    };
    assert_eq!(branches(&body), [running(0), running(1), running(2)]);
    assert_eq!(body["branches"][1]["title"], "Shipment", "{body}");
    assert!(body["branches"][2]["deadline"].is_string(), "{body}");

    // The stage alone names three branches: refused, listing each one's address.
    let events = format!("/v1/instances/{id}/events");
    let (status, refused) = ops.post(
        &events,
        &json!({"type": "confirmed", "stage": "ship_confirm"}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/ambiguous-event"
    );
    assert_eq!(refused["errors"][0]["pointer"], "/stage", "{refused}");
    let hint = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        hint.contains(
            "shipment[0]/ship_confirm, shipment[1]/ship_confirm, shipment[2]/ship_confirm"
        ),
        "{refused}"
    );
    let (status, refused) = ops.post(
        &events,
        &json!({"type": "confirmed", "stage": "shipment[9]/ship_confirm"}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/stage-not-current"
    );
    // An event no current branch takes points at the event's type, listing what they take.
    let (status, refused) = ops.post(&events, &json!({"type": "teleported"}));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/event-not-accepted"
    );
    assert_eq!(refused["errors"][0]["pointer"], "/type", "{refused}");
    let hint = refused["errors"][0]["message"].as_str().unwrap();
    assert!(hint.contains("confirmed"), "{refused}");

    for branch in ["shipment[0]", "shipment[2]"] {
        let (status, body) = ops.post(
            &events,
            &json!({"type": "confirmed", "stage": format!("{branch}/ship_confirm")}),
        );
        assert_eq!(status, 200, "{branch}: {body}");
    }

    // Shipment 1's carrier says nothing: at its deadline it escalates.
    let until = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = instance(&ops, &id);
        if branches(&body)
            .iter()
            .any(|(_, _, stage)| stage == "ship_late")
        {
            break body;
        }
        assert!(Instant::now() < until, "shipment 1 never escalated: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let ended = |i: usize| {
        (
            format!("shipment[{i}]"),
            "ended".to_owned(),
            "ship_done".to_owned(),
        )
    };
    assert_eq!(
        branches(&body),
        [
            ended(0),
            ("shipment[1]".into(), "running".into(), "ship_late".into()),
            ended(2)
        ]
    );
    assert_eq!(body["vars"]["late_carrier"], "carrier-1", "{body}");
    assert!(body["vars"].get("shipment").is_none(), "{body}");

    let (status, body) = ops.post(&events, &json!({"type": "confirmed", "stage": "ship_late"}));
    assert_eq!(status, 200, "{body}");
    let body = instance(&ops, &id);
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["outcome"], "shipped");

    // No shipments: the join is satisfied at once.
    let (status, body) = ops.post(
        "/v1/workflows/ship-order/instances",
        &json!({"input": shipments(0)}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "completed", "{body}");

    // More shipments than one for_each may run: the instance fails, saying why.
    let (status, body) = ops.post(
        "/v1/workflows/ship-order/instances",
        &json!({"input": shipments(65)}),
    );
    assert_eq!(status, 201, "{body}");
    let body = instance(&ops, body["id"].as_str().unwrap());
    assert_eq!(body["status"], "failed", "{body}");
    let failure = body["failure"].as_str().unwrap();
    assert!(
        failure.contains("65 elements") && failure.contains("64"),
        "{body}"
    );
}

/// `ids` of the instances in the caller's "my work".
fn my_work(who: &Client) -> Vec<String> {
    let (status, page) = who.get("/v1/work");
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

// Kept whole: one scenario told in order: claim, assign and release, branch by branch.
#[test]
fn each_shipments_work_is_claimed_assigned_and_released_by_its_branch() {
    let server = Server::start();
    let (status, body) = server
        .admin()
        .put("/v1/workflows/ship-order", &ship_order(3600));
    assert_eq!(status, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    let (status, started) = ops.post(
        "/v1/workflows/ship-order/instances",
        &json!({"input": shipments(2)}),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let ana = server.token("ana", &["approver:carrier"]);
    let ben = server.token("ben", &["approver:carrier"]);
    let claim = format!("/v1/instances/{id}/claim");

    // Two branches run: a claim must say whose work it takes.
    let (status, refused) = ana.post(&claim, &json!({}));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/stage-required"
    );
    assert_eq!(refused["errors"][0]["pointer"], "/stage");
    let hint = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        hint.contains("confirm, shipment[0]/ship_confirm, shipment[1]/ship_confirm"),
        "{refused}"
    );
    // The body is optional: none at all, even with a JSON content type, is the same.
    let (status, refused) = ana.send("POST", &claim, "application/json", Vec::new(), &[]);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/stage-required"
    );
    let (status, refused) = ana.post(&claim, &json!({"stage": "ship_confirm"}));
    assert_eq!(
        status, 409,
        "the stage alone names both branches: {refused}"
    );
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/stage-required"
    );
    let (status, refused) = ana.post(&claim, &json!({"stage": "ship_late"}));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/stage-not-current"
    );

    let (status, body) = ana.post(&claim, &json!({"stage": "shipment[0]/ship_confirm"}));
    assert_eq!(status, 200, "{body}");
    // A supervisor gives the other shipment to ben; ana cannot take it from him.
    let (status, body) = ops.post(
        &format!("/v1/instances/{id}/assign"),
        &json!({"to": "ben", "stage": "shipment[1]/ship_confirm"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, refused) = ana.post(&claim, &json!({"stage": "shipment[1]/ship_confirm"}));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/already-assigned"
    );

    let body = instance(&ops, &id);
    assert_eq!(body["branches"][0]["assignee"], "ana", "{body}");
    assert_eq!(body["branches"][1]["assignee"], "ben", "{body}");
    assert_eq!(my_work(&ana), [id.as_str()]);
    assert_eq!(my_work(&ben), [id.as_str()]);

    // Holding one shipment's work is no licence to act on the other's.
    let (status, refused) = ana.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "confirmed", "stage": "shipment[1]/ship_confirm"}),
    );
    assert_eq!(status, 403, "ana confirmed ben's shipment: {refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/not-your-work"
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("assigned to 'ben'"),
        "{refused}"
    );
    assert_eq!(
        instance(&ops, &id)["branches"][1]["stage"],
        "ship_confirm",
        "ben's shipment did not move"
    );

    // Ana gives hers back; ben's stays his. Ben may not release what is not his.
    let release = format!("/v1/instances/{id}/release");
    let (status, refused) = ben.post(&release, &json!({"stage": "shipment[0]/ship_confirm"}));
    assert_eq!(status, 403, "{refused}");
    let (status, body) = ana.post(&release, &json!({"stage": "shipment[0]/ship_confirm"}));
    assert_eq!(status, 200, "{body}");
    assert!(my_work(&ana).is_empty());
    assert_eq!(my_work(&ben), [id.as_str()]);

    // Once his shipment is confirmed it is no longer his work.
    let (status, body) = ben.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "confirmed", "stage": "shipment[1]/ship_confirm"}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(my_work(&ben).is_empty());
}

/// Each shipment is packed and labelled side by side: a parallel stage inside every
/// shipment's branch.
fn pack_and_label() -> Value {
    json!({
        "id": "pack-order", "title": "Pack an order", "start": "ship",
        "stages": {
            "ship": {
                "kind": "parallel",
                "for_each": {
                    "items": "input.shipments",
                    "as": "shipment",
                    "branch": {"name": "shipment", "start": "handle"}
                },
                "transitions": [{"to": "shipped"}]
            },
            "handle": {
                "kind": "parallel",
                "branches": [
                    {"name": "pack", "start": "pack_box"},
                    {"name": "label", "start": "print_label"}
                ],
                "transitions": [{"to": "handled"}]
            },
            "pack_box": {
                "kind": "wait", "owner": "packer",
                "on": {"packed": {"to": "packed"}}
            },
            "print_label": {
                "kind": "wait", "owner": "clerk",
                "on": {"labelled": {"to": "labelled"}}
            },
            "packed": {"kind": "end", "outcome": "packed"},
            "labelled": {"kind": "end", "outcome": "labelled"},
            "handled": {"kind": "end", "outcome": "handled"},
            "shipped": {"kind": "end", "outcome": "shipped"}
        }
    })
}

#[test]
fn each_shipment_s_packing_and_labelling_are_addressed_through_the_shipment_s_branch() {
    let server = Server::start();
    let (status, body) = server
        .admin()
        .put("/v1/workflows/pack-order", &pack_and_label());
    assert_eq!(status, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    let (status, started) = ops.post(
        "/v1/workflows/pack-order/instances",
        &json!({"input": shipments(2)}),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();

    // The instance tells the inner branches of the two shipments apart.
    let body = instance(&ops, &id);
    let shown: Vec<(String, String)> = body["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let s = |k: &str| b[k].as_str().unwrap_or("-").to_owned();
            (s("path"), s("address"))
        })
        .collect();
    let expected = [
        ("shipment[0]", "shipment[0]/handle"),
        ("shipment[0]/pack", "shipment[0]/pack/pack_box"),
        ("shipment[0]/label", "shipment[0]/label/print_label"),
        ("shipment[1]", "shipment[1]/handle"),
        ("shipment[1]/pack", "shipment[1]/pack/pack_box"),
        ("shipment[1]/label", "shipment[1]/label/print_label"),
    ]
    .map(|(p, a)| (p.to_owned(), a.to_owned()));
    assert_eq!(shown, expected, "{body}");

    // The inner branch alone fits both shipments: refused, listing both.
    let events = format!("/v1/instances/{id}/events");
    let (status, refused) = ops.post(
        &events,
        &json!({"type": "packed", "stage": "pack/pack_box"}),
    );
    assert_eq!(status, 409, "{refused}");
    let hint = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        hint.contains("shipment[0]/pack/pack_box, shipment[1]/pack/pack_box"),
        "{refused}"
    );

    // A packer claims shipment 1's box by its full address.
    let ana = server.token("ana", &["approver:packer"]);
    let (status, body) = ana.post(
        &format!("/v1/instances/{id}/claim"),
        &json!({"stage": "shipment[1]/pack/pack_box"}),
    );
    assert_eq!(status, 200, "{body}");
    let body = instance(&ops, &id);
    assert_eq!(body["branches"][4]["assignee"], "ana", "{body}");
    assert!(body["branches"][1]["assignee"].is_null(), "{body}");

    for (stage, event) in [
        ("shipment[1]/pack/pack_box", "packed"),
        ("shipment[0]/label/print_label", "labelled"),
        ("shipment[1]/label/print_label", "labelled"),
        ("pack_box", "packed"),
    ] {
        let (status, body) = ops.post(&events, &json!({"type": event, "stage": stage}));
        assert_eq!(status, 200, "{stage}: {body}");
    }
    let body = instance(&ops, &id);
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["stage"], "shipped", "{body}");
}
