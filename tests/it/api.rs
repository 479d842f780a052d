//! The HTTP API of the real binary: who may call what, errors, and scenarios over HTTP.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_server::api::{routes, Access, Body};
use waystation_tests::server::{Client, Server};

fn fill(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

fn call(client: &Client, method: &waystation_server::api::Method, path: &str, body: Body) -> u16 {
    match (method.as_str(), body) {
        ("GET", _) => client.get(path).0,
        ("DELETE", _) => client.delete(path).0,
        (m, Body::Wasm) => client.send(m, path, "application/wasm", Vec::new(), &[]).0,
        (m, _) => {
            client
                .send(m, path, "application/json", b"{}".to_vec(), &[])
                .0
        }
    }
}

#[test]
fn every_endpoint_answers_401_without_a_token_and_403_to_the_wrong_role() {
    let server = Server::start();
    let roles = ["admin", "developer", "operator", "approver:reviewer"];
    let clients: Vec<(&str, Client)> = roles
        .iter()
        .map(|r| (*r, server.token(&format!("as-{r}"), &[r])))
        .collect();
    let anonymous = server.client(None);
    let bogus = server.client(Some("ws_not_a_real_token"));
    let mut checked = 0;
    for (route, _) in routes() {
        let path = fill(route.path);
        if route.access == Access::Public {
            // A public route about a thing (a progress link) may say the placeholder
            // names none, with one of its documented answers; never 401 or 403.
            let status = call(&anonymous, &route.method, &path, route.body);
            let documented = route.path.contains('{') && route.errors.contains(&status);
            assert!(
                status == route.ok || documented,
                "{} {}: {status}",
                route.method,
                route.path
            );
            continue;
        }
        assert_eq!(
            call(&anonymous, &route.method, &path, route.body),
            401,
            "{} {} without a token",
            route.method,
            route.path
        );
        assert_eq!(
            call(&bogus, &route.method, &path, route.body),
            401,
            "{} {} with an unknown token",
            route.method,
            route.path
        );
        for (role, client) in &clients {
            let caller = waystation_server::auth::Caller {
                token_id: String::new(),
                name: String::new(),
                roles: vec![(*role).to_owned()],
            };
            let status = call(client, &route.method, &path, route.body);
            if route.access.allows(&caller) {
                assert!(
                    status != 401 && status != 403,
                    "{} {} as {role}: {status}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(status, 403, "{} {} as {role}", route.method, route.path);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 60,
        "every protected route against every role ({checked} checks)"
    );
}

/// The query parameters each route declares (and the document lists) are exactly those its
/// handler accepts: a handler refuses an unknown parameter with a 400 naming the ones it
/// reads, so a handler that reads parameters its route does not declare, or declares
/// parameters its handler no longer reads, fails here.
#[test]
fn every_route_declares_exactly_the_query_parameters_its_handler_reads() {
    let server = Server::start();
    // One token holding every role, so each route's own access check lets the call in.
    let all = server.token(
        "every-role",
        &["admin", "developer", "operator", "approver:reviewer"],
    );
    let mut reading = 0;
    for (route, _) in routes()
        .into_iter()
        .filter(|(r, _)| r.method.as_str() == "GET")
    {
        let path = format!("{}?zz_not_a_parameter=1", fill(route.path));
        let (status, answer) = all.get(&path);
        let refused = status == 400
            && answer["detail"]
                .as_str()
                .is_some_and(|d| d.contains("unknown parameter 'zz_not_a_parameter'"));
        let declared: Vec<&str> = route.query.iter().map(|q| q.name).collect();
        if declared.is_empty() {
            assert!(
                !refused,
                "GET {} reads parameters it does not declare: {answer}",
                route.path
            );
            continue;
        }
        assert!(
            refused,
            "GET {} declares {declared:?} but takes any: {status} {answer}",
            route.path
        );
        let listed = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert_eq!(
            listed,
            format!("parameters are {}", declared.join(", ")),
            "GET {}",
            route.path
        );
        reading += 1;
    }
    assert_eq!(reading, 6, "the routes that read query parameters");
}

#[test]
fn the_openapi_document_lists_every_route() {
    let server = Server::start();
    let (status, doc) = server.client(None).get("/v1/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for (route, _) in routes() {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is missing from the OpenAPI document",
            route.method,
            route.path
        );
        assert!(
            op["responses"][route.ok.to_string()].is_object(),
            "{} {}",
            route.method,
            route.path
        );
        let documented: Vec<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let read: Vec<&str> = route.query.iter().map(|q| q.name).collect();
        assert_eq!(documented, read, "{} {}", route.method, route.path);
    }
    let filters = &doc["paths"]["/v1/instances"]["get"]["parameters"];
    let sla = filters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sla")
        .unwrap();
    // One state or several, comma-separated (`sla=at_risk,breached`).
    assert_eq!(
        (&sla["schema"]["items"]["enum"], &sla["explode"]),
        (&json!(["on_time", "at_risk", "breached"]), &json!(false))
    );
}

#[test]
fn a_query_parameter_the_route_does_not_read_is_refused_by_name() {
    let server = Server::start();
    let ops = operator(&server);
    let reviewer = server.token("rui", &["approver:reviewer"]);
    for (caller, path) in [
        (&ops, "/v1/instances?stauts=running"),
        (
            &ops,
            "/v1/instances/01ARZ3NDEKTSV4RRFFQ69G5FAV/history?form=3",
        ),
        (&ops, "/v1/outbox?state=dead"),
        (&reviewer, "/v1/approvals?limt=5"),
    ] {
        let (s, p) = caller.get(path);
        let unknown = path.split('?').nth(1).unwrap().split('=').next().unwrap();
        assert_eq!(
            (s, p["errors"][0]["parameter"].as_str()),
            (400, Some(unknown)),
            "{path}: {p}"
        );
    }
}

fn operator(server: &Server) -> Client {
    server.token("ops", &["operator"])
}

#[test]
fn bad_requests_get_problem_details_with_a_fitting_status_and_change_nothing() {
    let server = Server::start_with(&[("WAYSTATION_JSON_BODY_BYTES", "4096")]);
    let admin = server.admin();
    admin.upload_workflow("approval-flow");
    let ops = operator(&server);

    let (s, p) = ops.send(
        "POST",
        "/v1/workflows/approval-flow/instances",
        "application/json",
        b"{\"input\": {\"amount\": }".to_vec(),
        &[],
    );
    assert_eq!(s, 400, "{p}");
    assert_eq!(p["errors"][0]["line"], 1);
    assert!(p["errors"][0]["column"].as_u64().unwrap() > 20, "{p}");

    let (s, _) = ops.send(
        "POST",
        "/v1/workflows/approval-flow/instances",
        "text/plain",
        b"{}".to_vec(),
        &[],
    );
    assert_eq!(s, 415);

    // A body of the wrong JSON kind is named in JSON's words, not the server's types.
    for (body, kind) in [
        (json!([]), "an array"),
        (json!("go"), "a string"),
        (json!(null), "null"),
    ] {
        let (s, p) = ops.post("/v1/workflows/approval-flow/instances", &body);
        assert_eq!(s, 422, "{p}");
        let message = p["errors"][0]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("the body must be a JSON object ({{...}}), not {kind}")
        );
        assert_eq!(p["errors"][0]["pointer"], "", "{p}");
    }

    let big = json!({"input": {"request_id": "x".repeat(5000), "amount": 1}});
    let (s, p) = ops.post("/v1/workflows/approval-flow/instances", &big);
    assert_eq!(s, 413, "{p}");

    let (s, p) = ops.post(
        "/v1/workflows/approval-flow/instances",
        &json!({"input": {"request_id": "R", "amount": -5}}),
    );
    assert_eq!(s, 422);
    assert_eq!(p["errors"][0]["pointer"], "/input/amount", "{p}");
    assert_eq!(p["type"], "https://waystation.dev/problems/invalid");

    let (s, p) = ops.post(
        "/v1/workflows/approval-flow/instances",
        &json!({"inputs": {}}),
    );
    assert_eq!(s, 422, "{p}");

    let (s, _) = ops.post("/v1/workflows/nope/instances", &json!({"input": {}}));
    assert_eq!(s, 404);
    let (s, _) = ops.get("/v1/instances/nope");
    assert_eq!(s, 404);
    let (s, p) = ops.get("/v1/nowhere");
    assert_eq!((s, p["status"].as_u64()), (404, Some(404)));

    let (s, p) = ops.get("/v1/instances?workflow=approval-flow");
    assert_eq!(s, 200);
    assert_eq!(
        p["items"].as_array().unwrap().len(),
        0,
        "no refused request left anything behind"
    );

    let (s, p) = admin.put("/v1/workflows/broken", &json!({"id": "broken", "title": "B", "start": "a", "stages": {"a": {"kind": "task", "transitions": [{"to": "b"}]}}}));
    assert_eq!(s, 422);
    let pointers: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/stages/a/transitions/0/to"), "{p}");
    let (s, _) = admin.put(
        "/v1/workflows/other-id",
        &serde_json::from_str::<Value>(
            &std::fs::read_to_string(waystation_tests::root().join("workflows/approval-flow.json"))
                .unwrap(),
        )
        .unwrap(),
    );
    assert_eq!(s, 422, "the URL and the body must name the same workflow");
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

// Kept whole: one scenario told in order: the README's quick start, step by step.
#[test]
fn the_quick_start_runs_an_approval_to_its_end_over_http() {
    let server = Server::start();
    let admin = server.admin();
    let (s, v) = admin.put(
        "/v1/workflows/approval-flow",
        &serde_json::from_str(
            &std::fs::read_to_string(waystation_tests::root().join("workflows/approval-flow.json"))
                .unwrap(),
        )
        .unwrap(),
    );
    assert_eq!((s, v["version"].as_u64()), (201, Some(1)));
    let ops = operator(&server);
    let reviewer = server.token("rui", &["approver:reviewer"]);
    let manager = server.token("mei", &["approver:manager"]);

    let (s, started) = ops.post_once(
        "/v1/workflows/approval-flow/instances",
        &json!({"input": {"request_id": "REQ-7", "amount": 25000}}),
        "start-REQ-7",
    );
    assert_eq!(s, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let (s, again) = ops.post_once(
        "/v1/workflows/approval-flow/instances",
        &json!({"input": {"request_id": "REQ-7", "amount": 25000}}),
        "start-REQ-7",
    );
    assert_eq!(
        (s, &again["id"]),
        (201, &started["id"]),
        "the same key starts nothing new"
    );

    let (_, inbox) = reviewer.get("/v1/approvals");
    let task = inbox["items"][0].clone();
    assert_eq!(
        (task["instance_id"].as_str(), task["role"].as_str()),
        (Some(id.as_str()), Some("reviewer"))
    );
    // What the reviewer needs to choose what to decide first, without opening the instance.
    assert_eq!(
        (
            task["workflow"].as_str(),
            task["version"].as_u64(),
            task["sla"].as_str()
        ),
        (Some("approval-flow"), Some(1), Some("on_time")),
        "{task}"
    );
    assert_eq!(
        manager.get("/v1/approvals").1["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let (s, p) = manager.post(
        &format!("/v1/approvals/{}", task["id"].as_str().unwrap()),
        &json!({"decision": "approve"}),
    );
    assert_eq!(s, 403, "a manager cannot decide the reviewer's task: {p}");
    let (s, after) = reviewer.post(
        &format!("/v1/approvals/{}", task["id"].as_str().unwrap()),
        &json!({"decision": "approve", "comment": "looks right"}),
    );
    assert_eq!(
        (s, after["stage"].as_str()),
        (200, Some("manager")),
        "{after}"
    );
    let (s, p) = reviewer.post(
        &format!("/v1/approvals/{}", task["id"].as_str().unwrap()),
        &json!({"decision": "approve"}),
    );
    assert_eq!(s, 409, "a decision on a closed task: {p}");

    let (_, inbox) = manager.get("/v1/approvals");
    let task = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (s, done) = manager.post(
        &format!("/v1/approvals/{task}"),
        &json!({"decision": "approve"}),
    );
    assert_eq!((s, done["outcome"].as_str()), (200, Some("approved")));

    let (_, history) = ops.get(&format!("/v1/instances/{id}/history"));
    let deciders: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["type"] == "decided")
        .map(|h| h["decider"].as_str().unwrap())
        .collect();
    assert_eq!(
        deciders,
        ["rui", "mei"],
        "deciders' identities are in the history"
    );

    let (s, p) = ops.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "shipped"}),
    );
    assert_eq!(s, 409, "{p}");
}

const CONFIRM: &str = r#"{"id": "confirm-fast", "title": "Confirm within a second", "start": "confirm",
  "stages": {
    "confirm": {"kind": "wait", "owner": "agent", "deadline": "PT1S",
                "on": {"confirmed": {"to": "done"}}, "timeout": {"to": "escalated"}},
    "escalated": {"kind": "wait", "owner": "supervisor", "on": {"confirmed": {"to": "done"}}},
    "done": {"kind": "end", "outcome": "resolved"}}}"#;

#[test]
fn an_unconfirmed_order_escalates_when_its_deadline_fires_over_http() {
    let server = Server::start();
    server.admin().put(
        "/v1/workflows/confirm-fast",
        &serde_json::from_str(CONFIRM).unwrap(),
    );
    let ops = operator(&server);
    let (_, a) = ops.post(
        "/v1/workflows/confirm-fast/instances",
        &json!({"input": {}}),
    );
    let (_, b) = ops.post(
        "/v1/workflows/confirm-fast/instances",
        &json!({"input": {}}),
    );
    let (s, _) = ops.post(
        &format!("/v1/instances/{}/events", b["id"].as_str().unwrap()),
        &json!({"type": "confirmed"}),
    );
    assert_eq!(s, 200);
    let a = a["id"].as_str().unwrap().to_owned();
    wait_for("the escalation", Duration::from_secs(10), || {
        ops.get(&format!("/v1/instances/{a}")).1["stage"] == "escalated"
    });
    let (_, breached) = ops.get("/v1/instances?workflow=confirm-fast&stage=escalated");
    assert_eq!(
        breached["items"].as_array().unwrap().len(),
        1,
        "the confirmed one did not escalate"
    );
    let (_, metrics) = server.client(None).get("/metrics");
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("waystation_timer_lag_seconds_count 1"),
        "one timer fired"
    );
}

#[test]
fn a_restart_in_the_middle_of_an_approval_resumes_where_it_stood() {
    let mut server = Server::start();
    server.admin().upload_workflow("approval-flow");
    let ops = operator(&server);
    let reviewer = server.token("rui", &["approver:reviewer"]);
    let manager = server.token("mei", &["approver:manager"]);
    let (_, started) = ops.post(
        "/v1/workflows/approval-flow/instances",
        &json!({"input": {"request_id": "R", "amount": 50000}}),
    );
    let id = started["id"].as_str().unwrap().to_owned();
    let task = reviewer.get("/v1/approvals").1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        reviewer
            .post(
                &format!("/v1/approvals/{task}"),
                &json!({"decision": "approve"})
            )
            .0,
        200
    );

    assert!(server.terminate().success(), "SIGTERM drains and exits 0");
    server.restart();
    let task = manager.get("/v1/approvals").1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.kill9();
    server.restart();
    let (s, done) = manager.post(
        &format!("/v1/approvals/{task}"),
        &json!({"decision": "reject", "comment": "no budget"}),
    );
    assert_eq!(
        (s, done["outcome"].as_str()),
        (200, Some("rejected")),
        "{done}"
    );
    assert_eq!(
        ops.get(&format!("/v1/instances/{id}")).1["status"],
        "completed"
    );
}

#[test]
fn a_revoked_token_is_refused_at_once() {
    let server = Server::start();
    let (_, created) = server.admin().post(
        "/v1/tokens",
        &json!({"name": "temp", "roles": ["operator"]}),
    );
    let temp = server.client(Some(created["token"].as_str().unwrap()));
    assert_eq!(temp.get("/v1/instances").0, 200);
    assert_eq!(
        server
            .admin()
            .delete(&format!("/v1/tokens/{}", created["id"].as_str().unwrap()))
            .0,
        204
    );
    assert_eq!(temp.get("/v1/instances").0, 401);
    let (s, p) = server
        .admin()
        .post("/v1/tokens", &json!({"name": "x", "roles": ["root"]}));
    assert_eq!(
        (s, p["errors"][0]["pointer"].as_str()),
        (422, Some("/roles/0"))
    );
}

// Kept whole: one scenario told in order: a developer's session with the plugin API.
#[test]
fn a_developer_uploads_lists_and_dry_runs_a_plugin_and_bad_uploads_say_why() {
    let server = Server::start();
    let dev = server.token("dev", &["developer"]);
    let wasm = waystation_tests::example_plugin("order-health-score");

    let (s, added) = dev.send(
        "PUT",
        "/v1/plugins/order-health-score",
        "application/wasm",
        wasm.clone(),
        &[],
    );
    assert_eq!(
        (s, added["version"].as_u64(), added["world"].as_str()),
        (201, Some(1), Some("scorer")),
        "{added}"
    );
    assert_eq!(added["digest"].as_str().unwrap().len(), 64);
    let (s, again) = dev.send(
        "PUT",
        "/v1/plugins/order-health-score",
        "application/wasm",
        wasm,
        &[],
    );
    assert_eq!(
        (s, &again["version"]),
        (200, &added["version"]),
        "the same bytes are no new version"
    );

    let (s, refused) = dev.send(
        "PUT",
        "/v1/plugins/not-a-plugin",
        "application/wasm",
        b"hello".to_vec(),
        &[],
    );
    assert_eq!(s, 422, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("not_wasm"),
        "{refused}"
    );
    let (s, refused) = dev.send(
        "PUT",
        "/v1/plugins/empty",
        "application/wasm",
        Vec::new(),
        &[],
    );
    assert_eq!(s, 422, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("empty"),
        "{refused}"
    );
    let (s, _) = dev.send(
        "PUT",
        "/v1/plugins/x",
        "application/json",
        b"{}".to_vec(),
        &[],
    );
    assert_eq!(s, 415, "a plugin is application/wasm");

    let (s, list) = dev.get("/v1/plugins");
    assert_eq!(s, 200, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["order-health-score"],
        "refused uploads left nothing behind"
    );
    let (s, one) = dev.get("/v1/plugins/order-health-score");
    assert_eq!(
        (s, one["versions"].as_array().unwrap().len()),
        (200, 1),
        "{one}"
    );
    assert_eq!(dev.get("/v1/plugins/unknown").0, 404);

    let (s, run) = dev.post(
        "/v1/plugins/order-health-score/invoke",
        &json!({"input": {"input": waystation_tests::sample("delay-early-warning", "late-regular"), "now": "2024-05-08T10:00:00Z"}}),
    );
    assert_eq!((s, run["outcome"].as_str()), (200, Some("ok")), "{run}");
    assert!(run["output"]["score"].as_f64().unwrap() >= 0.0, "{run}");
    assert!(!run["logs"].as_array().unwrap().is_empty(), "{run}");
    let (s, run) = dev.post(
        "/v1/plugins/order-health-score/invoke",
        &json!({"input": "not an order"}),
    );
    assert_eq!(
        (s, run["outcome"].as_str(), run["error"]["kind"].as_str()),
        (200, Some("failed"), Some("plugin_error")),
        "{run}"
    );

    let (s, p) = server.admin().put(
        "/v1/workflows/uses-missing",
        &json!({"id": "uses-missing", "title": "Scores with a plugin nobody uploaded", "start": "score",
                "stages": {"score": {"kind": "task", "actions": [{"call": "no-such-scorer", "result": "s"}], "transitions": [{"to": "done"}]},
                           "done": {"kind": "end", "outcome": "done"}}}),
    );
    assert_eq!(s, 422, "{p}");
    assert!(
        p.to_string().contains("no-such-scorer"),
        "definition validation names the missing plugin: {p}"
    );
}
