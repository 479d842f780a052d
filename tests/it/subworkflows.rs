//! Sub-workflows on the real binary: a delay emergency opens a cross-department
//! investigation as a child instance of its own, waits for its end and goes on by its
//! outcome. The child links to its parent and the parent lists its children; cancelling the
//! parent cancels the child; a SIGKILL between the child's end and the parent's
//! continuation leaves the parent continuing exactly once after the restart.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};

/// The reusable investigation: quality resolves it or rejects it (the cause cannot be
/// found).
fn investigation() -> Value {
    json!({
        "id": "investigation", "title": "Cross-department investigation", "start": "investigate",
        "input_schema": {"type": "object", "required": ["order_no", "problem"],
                         "properties": {"order_no": {"type": "string"}, "problem": {"type": "string"}}},
        "stages": {
            "investigate": {"kind": "wait", "owner": "quality", "deadline": "PT4H",
                "actions": [{"set": {"ticket": "'INV-' + input.order_no"}}],
                "on": {"resolved": {"to": "resolved"}, "rejected": {"to": "rejected"}}},
            "resolved": {"kind": "end", "outcome": "resolved"},
            "rejected": {"kind": "end", "outcome": "rejected"}
        }
    })
}

/// The emergency: investigates as a sub-workflow, then recovers the order (after
/// `recover_actions`) or writes it off.
fn emergency(recover_actions: Value) -> Value {
    let calls = recover_actions.as_array().is_some_and(|a| !a.is_empty());
    let mut d = json!({
        "id": "delay-emergency-lite", "title": "Delay emergency", "start": "investigate",
        "stages": {
            "investigate": {"kind": "subworkflow", "owner": "operations", "workflow": "investigation",
                "input": {"order_no": "input.order_no", "problem": "input.problem"},
                "result": "investigation",
                "on_outcome": {"resolved": {"to": "recover"}, "rejected": {"to": "write_off"}}},
            "recover": {"kind": "wait", "owner": "operations", "actions": recover_actions,
                "on": {"recovered": {"to": "done"}}},
            "recover_by_hand": {"kind": "wait", "owner": "operations",
                "on": {"recovered": {"to": "done"}}},
            "write_off": {"kind": "end", "outcome": "written_off"},
            "done": {"kind": "end", "outcome": "recovered"}
        }
    });
    // A plugin that fails (spins past its budget) hands the recovery to a person.
    if calls {
        d["stages"]["recover"]["on_error"] = json!({"to": "recover_by_hand"});
    } else {
        d["stages"]["recover_by_hand"]["on"] = json!({"recovered": {"to": "done"}});
        d["stages"]["recover"]["on"]["by_hand"] = json!({"to": "recover_by_hand"});
    }
    d
}

struct Desk {
    server: Server,
    ops: Client,
}

impl Desk {
    fn open(env: &[(&str, &str)]) -> Desk {
        let server = Server::start_with(env);
        let ops = server.token("olga", &["operator"]);
        Desk { server, ops }
    }

    fn upload(&self, definition: &Value) {
        let id = definition["id"].as_str().unwrap();
        let (status, body) = self
            .server
            .admin()
            .put(&format!("/v1/workflows/{id}"), definition);
        assert_eq!(status, 201, "{body}");
    }

    fn start(&self, order_no: &str) -> String {
        let (status, body) = self.ops.post(
            "/v1/workflows/delay-emergency-lite/instances",
            &json!({"input": {"order_no": order_no, "problem": "raw material is late"}}),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn instance(&self, id: &str) -> Value {
        let (status, body) = self.ops.get(&format!("/v1/instances/{id}"));
        assert_eq!(status, 200, "{body}");
        body
    }

    fn history(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .ops
            .get(&format!("/v1/instances/{id}/history?limit=1000"));
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    fn event(&self, id: &str, name: &str) -> Value {
        let (status, body) = self.ops.post(
            &format!("/v1/instances/{id}/events"),
            &json!({"type": name, "data": {"root_cause": "supplier capacity"}}),
        );
        assert_eq!(status, 200, "event {name} on {id}: {body}");
        body
    }

    /// Waits until `f` holds for instance `id`, and returns it.
    fn wait_until(&self, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.instance(id);
            if f(&body) {
                return body;
            }
            assert!(Instant::now() < until, "{id} never {what}: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The child the parent `id` started (its only one).
    fn child(&self, id: &str) -> String {
        let parent = self.instance(id);
        let children = parent["children"].as_array().expect("children listed");
        assert_eq!(children.len(), 1, "{parent}");
        children[0]["id"].as_str().unwrap().to_owned()
    }
}

fn count(history: &[Value], kind: &str) -> usize {
    history.iter().filter(|h| h["type"] == kind).count()
}

#[test]
fn an_emergency_opens_an_investigation_that_resolves_and_the_order_is_recovered() {
    let desk = Desk::open(&[]);
    desk.upload(&investigation());
    desk.upload(&emergency(json!([])));
    let id = desk.start("202611-001");

    let parent = desk.instance(&id);
    assert_eq!(parent["stage"], "investigate");
    let child_id = desk.child(&id);
    assert_eq!(parent["children"][0]["workflow"], "investigation");
    assert_eq!(parent["children"][0]["waiting"], true);
    assert_eq!(parent["children"][0]["status"], "running");

    let child = desk.instance(&child_id);
    assert_eq!(child["workflow"], "investigation");
    assert_eq!(child["stage"], "investigate");
    assert_eq!(
        child["parent"],
        json!({"instance": id, "workflow": "delay-emergency-lite", "stage": "investigate", "status": "running"})
    );
    assert_eq!(child["input"]["order_no"], "202611-001");

    desk.event(&child_id, "resolved");
    let parent = desk.wait_until(&id, "went on to recover", |p| p["stage"] == "recover");
    assert_eq!(parent["vars"]["investigation"]["outcome"], "resolved");
    assert_eq!(
        parent["vars"]["investigation"]["output"]["ticket"], "INV-202611-001",
        "the child's output is the parent's to read: {parent}"
    );
    assert_eq!(parent["children"][0]["waiting"], false);
    assert_eq!(parent["children"][0]["status"], "completed");
    assert_eq!(parent["children"][0]["outcome"], "resolved");
    assert_eq!(count(&desk.history(&id), "child_ended"), 1);
}

#[test]
fn a_rejected_investigation_writes_the_order_off() {
    let desk = Desk::open(&[]);
    desk.upload(&investigation());
    desk.upload(&emergency(json!([])));
    let id = desk.start("202611-002");
    let child_id = desk.child(&id);
    desk.event(&child_id, "rejected");
    let parent = desk.wait_until(&id, "ended", |p| p["status"] == "completed");
    assert_eq!(parent["outcome"], "written_off");
}

#[test]
fn cancelling_the_emergency_cancels_its_investigation() {
    let desk = Desk::open(&[]);
    desk.upload(&investigation());
    desk.upload(&emergency(json!([])));
    let id = desk.start("202611-003");
    let child_id = desk.child(&id);
    let (status, body) = desk.ops.post(
        &format!("/v1/instances/{id}/cancel"),
        &json!({"reason": "customer withdrew the order"}),
    );
    assert_eq!(status, 200, "{body}");
    let child = desk.wait_until(&child_id, "was cancelled", |c| c["status"] == "cancelled");
    assert_eq!(child["parent"]["status"], "cancelled");
    let cancelled = desk
        .history(&child_id)
        .into_iter()
        .find(|h| h["type"] == "cancelled")
        .expect("the child's history says why");
    assert!(
        cancelled["reason"].as_str().unwrap().contains(&id),
        "{cancelled}"
    );
    // The parent took no end from the child it cancelled.
    std::thread::sleep(Duration::from_millis(500));
    let history = desk.history(&id);
    assert_eq!(count(&history, "child_ended"), 0);
    assert_eq!(count(&history, "child_cancelled"), 1);
}

#[test]
fn a_definition_calling_a_workflow_that_does_not_exist_or_back_into_itself_is_refused() {
    let desk = Desk::open(&[]);
    let admin = desk.server.admin();
    let (status, body) = admin.put("/v1/workflows/delay-emergency-lite", &emergency(json!([])));
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["pointer"], "/stages/investigate/workflow",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no workflow 'investigation'"),
        "{body}"
    );

    desk.upload(&investigation());
    desk.upload(&emergency(json!([])));
    // The investigation may not call the emergency back.
    let mut calling_back = investigation();
    calling_back["stages"]["investigate"] = json!({"kind": "subworkflow",
        "workflow": "delay-emergency-lite", "input": {"order_no": "input.order_no", "problem": "input.problem"},
        "on_outcome": {"recovered": {"to": "resolved"}, "written_off": {"to": "rejected"}}});
    let (status, body) = admin.put("/v1/workflows/investigation", &calling_back);
    assert_eq!(status, 422, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("investigation -> delay-emergency-lite -> investigation"),
        "{body}"
    );
}

/// The WAT scorer of the host's own tests with the body of `score` replaced: a plugin
/// that spins until the host stops it.
fn spinning_scorer() -> Vec<u8> {
    let wat = std::fs::read_to_string(
        waystation_tests::root().join("engine/wasm/tests/fixtures/scorer.wat"),
    )
    .unwrap();
    let start = wat.find(";; <score>").unwrap();
    let end = wat.find(";; </score>").unwrap();
    let body = "(loop $spin (br $spin)) (unreachable)";
    wat::parse_str(format!("{}{body}\n{}", &wat[..start], &wat[end..])).unwrap()
}

#[test]
fn killed_between_the_childs_end_and_the_parents_continuation_the_parent_continues_exactly_once() {
    // The parent's continuation calls a plugin that spins for its whole budget: the
    // process is killed while that step runs, after the child's end is committed.
    let mut desk = Desk::open(&[("WAYSTATION_PLUGIN_TIME_BUDGET_MS", "4000")]);
    let developer = desk.server.token("dev", &["developer"]);
    let (status, added) = developer.send(
        "PUT",
        "/v1/plugins/slow-check",
        "application/wasm",
        spinning_scorer(),
        &[],
    );
    assert_eq!(status, 201, "{added}");
    desk.upload(&investigation());
    desk.upload(&emergency(
        json!([{"call": "slow-check", "result": "check"}]),
    ));
    let id = desk.start("202611-004");
    let child_id = desk.child(&id);

    desk.event(&child_id, "resolved");
    std::thread::sleep(Duration::from_millis(1500));
    // Between the two: the child ended, the parent has not moved yet.
    assert_eq!(desk.instance(&child_id)["status"], "completed");
    assert_eq!(desk.instance(&id)["stage"], "investigate");
    desk.server.kill9();
    desk.server.restart();

    let parent = desk.wait_until(&id, "continued", |p| p["stage"] == "recover_by_hand");
    assert_eq!(parent["vars"]["investigation"]["outcome"], "resolved");
    std::thread::sleep(Duration::from_millis(500));
    let history = desk.history(&id);
    assert_eq!(count(&history, "child_ended"), 1, "{history:?}");
    assert_eq!(
        history
            .iter()
            .filter(|h| h["type"] == "transitioned" && h["from"] == "investigate")
            .count(),
        1
    );
    assert_eq!(desk.instance(&id)["stage"], "recover_by_hand");
}

#[test]
fn an_investigation_that_cannot_start_is_a_failed_child_and_the_emergency_takes_its_on_error() {
    let desk = Desk::open(&[]);
    desk.upload(&investigation());
    let mut caller = emergency(json!([]));
    caller["stages"]["investigate"]["on_error"] = json!({"to": "recover_by_hand"});
    desk.upload(&caller);
    // A newer investigation needs a severity the emergency does not give: refused, naming
    // the stored caller it would break.
    let mut stricter = investigation();
    stricter["input_schema"]["required"] = json!(["order_no", "problem", "severity"]);
    let (status, body) = desk
        .server
        .admin()
        .put("/v1/workflows/investigation", &stricter);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/input_schema", "{body}");
    let why = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        why.contains("stored workflow 'delay-emergency-lite' calls this one")
            && why.contains("severity"),
        "{body}"
    );
    // A newer investigation whose ends are renamed would send every child's end through
    // the emergency's on_error: refused too, naming the outcome the caller routes.
    let mut renamed = investigation();
    renamed["stages"]["resolved"]["outcome"] = json!("answered");
    let (status, body) = desk
        .server
        .admin()
        .put("/v1/workflows/investigation", &renamed);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/stages", "{body}");
    let why = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        why.contains("stored workflow 'delay-emergency-lite' calls this one")
            && why.contains("/on_outcome/resolved")
            && why.contains("never ends with outcome 'resolved'"),
        "{body}"
    );
    // One whose constraints only the values can break is taken: the emergency's problem
    // texts are shorter than it now asks, so the child's start is refused at run time.
    let mut stricter = investigation();
    stricter["input_schema"]["properties"]["problem"] = json!({"type": "string", "minLength": 500});
    desk.upload(&stricter);

    let id = desk.start("202611-005");
    let parent = desk.instance(&id);
    assert_eq!(parent["stage"], "recover_by_hand", "{parent}");
    assert_eq!(parent["vars"]["error"]["status"], "failed", "{parent}");
    let why = parent["vars"]["error"]["message"].as_str().unwrap();
    assert!(why.contains("could not be started"), "{why}");
    // Nothing half-made: the child that could not start does not exist.
    let child = parent["children"][0]["id"].as_str().unwrap();
    assert_eq!(parent["children"][0]["status"], Value::Null, "{parent}");
    let (status, _) = desk.ops.get(&format!("/v1/instances/{child}"));
    assert_eq!(status, 404);
    assert_eq!(count(&desk.history(&id), "child_ended"), 1);
}

/// `id` calling `callee` (or, without one, waiting for `go`), ending with outcome `done`.
fn link(id: &str, callee: Option<&str>) -> Value {
    let first = match callee {
        Some(callee) => json!({"kind": "subworkflow", "workflow": callee, "input": {},
                               "on_outcome": {"done": {"to": "end"}}}),
        None => json!({"kind": "wait", "on": {"go": {"to": "end"}}}),
    };
    json!({"id": id, "title": id, "start": "first",
           "stages": {"first": first, "end": {"kind": "end", "outcome": "done"}}})
}

#[test]
fn a_new_version_of_a_called_workflow_may_not_make_its_callers_nest_too_deep() {
    let desk = Desk::open(&[]);
    desk.upload(&link("leaf", None));
    desk.upload(&link("d1", None));
    for n in 2..=5 {
        desk.upload(&link(&format!("d{n}"), Some(&format!("d{}", n - 1))));
    }
    // d5 -> d4 -> d3 -> d2 -> d1 is four calls deep, the limit. d1 calling leaf would make
    // d5's calls five deep.
    let (status, body) = desk
        .server
        .admin()
        .put("/v1/workflows/d1", &link("d1", Some("leaf")));
    assert_eq!(status, 422, "{body}");
    let why = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        why.contains("stored workflow 'd5' calls this one") && why.contains("nest 5 deep"),
        "{body}"
    );
    let (_, d1) = desk.server.admin().get("/v1/workflows/d1");
    assert_eq!(d1["version"], 1, "nothing stored: {d1}");
}
