//! The OpenAPI document against the real server's answers: each answer a route documents a
//! schema for is checked against that schema, taken from the document the same server
//! serves. The schemas of the typed answers are closed (`additionalProperties: false`), so
//! a field added to a response struct and not to the document fails here, and so does a
//! documented field the struct no longer sends.
//!
//! The server is driven so that every route of the `ANSWERS` table answers once with
//! realistic data (optional members present where the workflows allow: branches, timers,
//! tasks, assignees, parents and children, dead letters, customer pages), and a route
//! answering JSON without a row in that table fails the route-table test below.

use jsonschema::Validator;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use waystation_server::api::openapi::{answer_schema, ANSWERS};
use waystation_server::api::routes;
use waystation_tests::server::{Answer, Client, Server};
use waystation_tests::{root, sample};

/// Routes with a 2xx answer that is not JSON, so they have no `ANSWERS` row. Routes
/// answering 204 (no body) need none either and are not listed.
const NOT_JSON: &[(&str, &str, &str)] = &[
    ("GET", "/metrics", "Prometheus text"),
    (
        "GET",
        "/v1/openapi.json",
        "the document itself, whose schema is OpenAPI 3.1's",
    ),
    ("GET", "/v1/workflows/{id}/graph", "Mermaid text/plain"),
    ("GET", "/v1/stream", "server-sent events"),
    ("GET", "/v1/workflows/{id}/stream", "server-sent events"),
    ("GET", "/v1/instances/{id}/stream", "server-sent events"),
];

#[test]
fn every_route_answering_json_documents_its_answer_schema() {
    let table: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(r, _)| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let document = waystation_server::api::openapi_document();
    for (route, _) in routes() {
        let method = route.method.as_str();
        let exempt = NOT_JSON
            .iter()
            .any(|(m, p, _)| *m == method && *p == route.path);
        if route.ok == 204 || exempt {
            assert!(
                answer_schema(method, route.path).is_none(),
                "{method} {}: no JSON answer, yet it names a schema",
                route.path
            );
            continue;
        }
        assert!(
            answer_schema(method, route.path).is_some(),
            "{method} {} answers JSON but has no row in openapi::ANSWERS (add its closed schema and a row, and check it in this file)",
            route.path
        );
    }
    for (method, path, schema) in ANSWERS {
        assert!(
            table.contains(&((*method).to_owned(), (*path).to_owned())),
            "ANSWERS names {method} {path}, which is not in the route table"
        );
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "ANSWERS names {schema} for {method} {path}, which the document lacks"
        );
    }
    for (method, path, _) in NOT_JSON {
        assert!(
            table.contains(&((*method).to_owned(), (*path).to_owned())),
            "NOT_JSON names {method} {path}, which is not in the route table"
        );
    }
}

/// Validators for the document's component schemas, `$ref`s resolved inside the document,
/// and the routes checked so far.
struct Contract {
    document: Value,
    checked: RefCell<BTreeSet<(String, String)>>,
}

impl Contract {
    fn fetch(client: &Client) -> Contract {
        let (status, document) = client.get("/v1/openapi.json");
        assert_eq!(status, 200, "{document}");
        Contract {
            document,
            checked: RefCell::new(BTreeSet::new()),
        }
    }

    fn validator(&self, schema: &str) -> Validator {
        // The schema as a reference into a root that carries the components, so that the
        // `#/components/schemas/...` references inside it resolve.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{schema}"),
            "components": self.document["components"],
        });
        jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the document's schema {schema} does not compile: {e}"))
    }

    /// Checks `answer` of `method path` (the route's template) against its documented
    /// schema; panics naming the route, the schema and every mismatch.
    fn check(&self, method: &str, route: &str, (status, answer): &Answer) {
        assert!(
            (200..300).contains(status),
            "{method} {route}: {status} {answer}"
        );
        let schema = answer_schema(method, route)
            .unwrap_or_else(|| panic!("{method} {route} documents no answer schema"));
        let documented = &self.document["paths"][route][method.to_ascii_lowercase()]["responses"];
        assert!(
            documented.as_object().is_some_and(|r| r
                .values()
                .any(|r| r["content"]["application/json"]["schema"]["$ref"]
                    == format!("#/components/schemas/{schema}"))),
            "{method} {route}: the document does not name {schema}: {documented}"
        );
        let errors: Vec<String> = self
            .validator(schema)
            .iter_errors(answer)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {route} answered outside {schema}:\n{}\nanswer: {answer}",
            errors.join("\n")
        );
        self.checked
            .borrow_mut()
            .insert((method.to_owned(), route.to_owned()));
    }

    /// [`Contract::check`], then the answer's body.
    fn ok(&self, method: &str, route: &str, answer: Answer) -> Value {
        self.check(method, route, &answer);
        answer.1
    }

    /// Checks an error answer against the document's `Problem`, expecting `status`.
    fn problem(&self, status: u16, (got, answer): &Answer) {
        assert_eq!(*got, status, "{answer}");
        assert_eq!(answer["status"], status, "{answer}");
        let errors: Vec<String> = self
            .validator("Problem")
            .iter_errors(answer)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "a {status} answered outside Problem:\n{}\nanswer: {answer}",
            errors.join("\n")
        );
    }

    /// Panics naming every `ANSWERS` row no answer was checked against.
    fn assert_every_row_checked(&self) {
        let checked = self.checked.borrow();
        let missed: Vec<String> = ANSWERS
            .iter()
            .filter(|(m, p, _)| !checked.contains(&((*m).to_owned(), (*p).to_owned())))
            .map(|(m, p, s)| format!("{m} {p} ({s})"))
            .collect();
        assert!(
            missed.is_empty(),
            "no real answer was checked for: {}",
            missed.join(", ")
        );
    }
}

/// The server with its people.
struct Desk {
    server: Server,
    admin: Client,
    ops: Client,
    dev: Client,
}

#[test]
fn every_typed_answer_matches_its_schema_in_the_servers_own_openapi_document() {
    let server = Server::start();
    let admin = server.admin();
    let contract = Contract::fetch(&admin);
    let desk = Desk {
        ops: server.token("ops", &["operator"]),
        dev: server.token("dev", &["developer"]),
        admin,
        server,
    };
    operations_and_definitions(&contract, &desk);
    plugins(&contract, &desk);
    approvals_and_work(&contract, &desk);
    notices_children_and_progress(&contract, &desk);
    branches_timers_and_figures(&contract, &desk);
    retry(&contract, &desk);
    tokens_and_schedules(&contract, &desk);
    problems(&contract, &desk);
    contract.assert_every_row_checked();
}

/// Health, readiness, and a definition validated, uploaded (new, then unchanged) and read.
fn operations_and_definitions(c: &Contract, d: &Desk) {
    c.check("GET", "/healthz", &d.admin.get("/healthz"));
    let until = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let answer = d.admin.get("/readyz");
        if answer.0 == 200 || Instant::now() > until {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    c.check("GET", "/readyz", &ready);

    let definition: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("workflows/approval-flow.json")).unwrap(),
    )
    .unwrap();
    c.check(
        "POST",
        "/v1/workflows/validate",
        &d.dev.post("/v1/workflows/validate", &definition),
    );
    for expected in [201, 200] {
        let stored = d.admin.put("/v1/workflows/approval-flow", &definition);
        assert_eq!(stored.0, expected, "{}", stored.1);
        c.check("PUT", "/v1/workflows/{id}", &stored);
    }
    c.check("GET", "/v1/workflows", &d.ops.get("/v1/workflows"));
    let newest = c.ok(
        "GET",
        "/v1/workflows/{id}",
        d.ops.get("/v1/workflows/approval-flow"),
    );
    assert!(newest["uploaded_by"].is_object(), "{newest}");
    c.check(
        "GET",
        "/v1/workflows/{id}/versions/{version}",
        &d.ops.get("/v1/workflows/approval-flow/versions/1"),
    );
}

/// Plugins: an upload (new, then the same bytes again), the list, one plugin, dry runs.
fn plugins(c: &Contract, d: &Desk) {
    let upload = |client: &Client| {
        client.send(
            "PUT",
            "/v1/plugins/order-priority",
            "application/wasm",
            waystation_tests::example_plugin("order-priority"),
            &[],
        )
    };
    let first = upload(&d.dev);
    assert_eq!(first.0, 201, "{}", first.1);
    c.check("PUT", "/v1/plugins/{name}", &first);
    c.check("PUT", "/v1/plugins/{name}", &upload(&d.dev));
    c.check("GET", "/v1/plugins", &d.dev.get("/v1/plugins"));
    c.check(
        "GET",
        "/v1/plugins/{name}",
        &d.dev.get("/v1/plugins/order-priority"),
    );
    let order = sample("order-quick-response", "vip-high");
    let ran = d.dev.post(
        "/v1/plugins/order-priority/invoke",
        &json!({ "input": order }),
    );
    c.check("POST", "/v1/plugins/{name}/invoke", &ran);
    let failed = d.dev.post(
        "/v1/plugins/order-priority/invoke",
        &json!({"input": "not an order"}),
    );
    assert_eq!(failed.1["outcome"], "failed", "{}", failed.1);
    c.check("POST", "/v1/plugins/{name}/invoke", &failed);
}

/// The two-level approval: the inbox, a claim, my work, a release, an assignment, a
/// decision by business key, one by task id, a cancellation by key; then the decided
/// request's history, post-mortem and export.
fn approvals_and_work(c: &Contract, d: &Desk) {
    let reviewer = d.server.token("rita", &["approver:reviewer"]);
    let start = |name: &str| {
        c.ok(
            "POST",
            "/v1/workflows/{id}/instances",
            d.ops.post(
                "/v1/workflows/approval-flow/instances",
                &json!({"input": sample("approval-flow", name)}),
            ),
        )
    };
    let small = start("small");
    let (id, key) = (str_of(&small, "id"), str_of(&small, "key"));
    c.check(
        "GET",
        "/v1/workflows/{id}/keys/{key}",
        &d.ops
            .get(&format!("/v1/workflows/approval-flow/keys/{key}")),
    );
    let inbox = c.ok("GET", "/v1/approvals", reviewer.get("/v1/approvals"));
    assert!(inbox["items"][0]["fields"].is_object(), "{inbox}");
    let at = |what: &str| format!("/v1/instances/{id}/{what}");
    c.check(
        "POST",
        "/v1/instances/{id}/claim",
        &reviewer.post(&at("claim"), &json!({})),
    );
    let mine = c.ok("GET", "/v1/work", reviewer.get("/v1/work"));
    assert_eq!(mine["items"][0]["assignee"], "rita", "{mine}");
    let detail = c.ok(
        "GET",
        "/v1/instances/{id}",
        d.ops.get(&format!("/v1/instances/{id}")),
    );
    assert!(detail["assignee"].is_object(), "{detail}");
    c.check(
        "POST",
        "/v1/instances/{id}/release",
        &reviewer.post(&at("release"), &json!({})),
    );
    c.check(
        "POST",
        "/v1/instances/{id}/assign",
        &d.ops.post(&at("assign"), &json!({"to": "rita"})),
    );
    let decided = c.ok(
        "POST",
        "/v1/workflows/{id}/keys/{key}/decisions",
        reviewer.post(
            &format!("/v1/workflows/approval-flow/keys/{key}/decisions"),
            &json!({"decision": "approve", "comment": "within budget"}),
        ),
    );
    assert_eq!(decided["status"], "completed", "{decided}");
    c.check(
        "GET",
        "/v1/instances/{id}/history",
        &d.ops.get(&at("history")),
    );
    c.check(
        "GET",
        "/v1/instances/{id}/postmortem",
        &d.ops.get(&at("postmortem")),
    );
    c.check(
        "GET",
        "/v1/instances/{id}/export",
        &d.ops.get(&at("export")),
    );

    decided_by_task_and_withdrawn(c, d, &reviewer);
}

/// A request over 10,000: the reviewer's task decided by its id, then the request withdrawn
/// by its business key.
fn decided_by_task_and_withdrawn(c: &Contract, d: &Desk, reviewer: &Client) {
    let large = c.ok(
        "POST",
        "/v1/workflows/{id}/instances",
        d.ops.post(
            "/v1/workflows/approval-flow/instances",
            &json!({"input": sample("approval-flow", "large")}),
        ),
    );
    let (large_id, large_key) = (str_of(&large, "id"), str_of(&large, "key"));
    let (_, inbox) = reviewer.get("/v1/approvals");
    let task = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["instance_id"] == large_id.as_str())
        .unwrap_or_else(|| panic!("no task for {large_id}: {inbox}"));
    c.check(
        "POST",
        "/v1/approvals/{task_id}",
        &reviewer.post(
            &format!("/v1/approvals/{}", str_of(task, "id")),
            &json!({"decision": "approve"}),
        ),
    );
    c.check(
        "POST",
        "/v1/workflows/{id}/keys/{key}/cancel",
        &d.ops.post(
            &format!("/v1/workflows/approval-flow/keys/{large_key}/cancel"),
            &json!({"reason": "withdrawn by the requester"}),
        ),
    );
    c.check("GET", "/v1/instances", &d.ops.get("/v1/instances"));
}

/// A delay emergency: its investigation runs as a child instance (parent and children on
/// the instance views), the reply reaches the child by business key, the notices it
/// sends die for want of a channel (a dead letter to retry), and the customer's progress
/// link shows the key and a field.
fn notices_children_and_progress(c: &Contract, d: &Desk) {
    d.dev.upload_plugin("tiered-notifier");
    d.admin.upload_workflow("investigation");
    let mut emergency: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("workflows/delay-emergency-response.json")).unwrap(),
    )
    .unwrap();
    emergency["progress"] = json!({"title": "Your order", "key": true, "fields": ["amount"]});
    let (status, body) = d
        .admin
        .put("/v1/workflows/delay-emergency-response", &emergency);
    assert_eq!(status, 201, "{body}");
    let started = d.ops.post(
        "/v1/workflows/delay-emergency-response/instances",
        &json!({"input": sample("delay-emergency-response", "strategic-small-order")}),
    );
    let id = str_of(&c.ok("POST", "/v1/workflows/{id}/instances", started), "id");
    let parent = c.ok(
        "GET",
        "/v1/instances/{id}",
        d.ops.get(&format!("/v1/instances/{id}")),
    );
    let child = str_of(&parent["children"][0], "id");
    let child = c.ok(
        "GET",
        "/v1/instances/{id}",
        d.ops.get(&format!("/v1/instances/{child}")),
    );
    assert!(child["parent"].is_object(), "{child}");
    c.check(
        "POST",
        "/v1/workflows/{id}/keys/{key}/events",
        &d.ops.post(
            &format!(
                "/v1/workflows/investigation/keys/{}/events",
                str_of(&child, "key")
            ),
            &json!({"type": "replied", "data": {}}),
        ),
    );
    let dead = eventually("a dead letter", || {
        let (_, page) = d.ops.get("/v1/outbox?status=dead");
        page["items"][0]["id"].as_str().map(str::to_owned)
    });
    c.check("GET", "/v1/outbox", &d.ops.get("/v1/outbox"));
    c.check(
        "POST",
        "/v1/outbox/{id}/retry",
        &d.ops.post(&format!("/v1/outbox/{dead}/retry"), &json!({})),
    );
    let link = c.ok(
        "GET",
        "/v1/instances/{id}/progress-link",
        d.ops.get(&format!("/v1/instances/{id}/progress-link")),
    );
    let token = str_of(&link, "url").rsplit('/').next().unwrap().to_owned();
    let page = c.ok(
        "GET",
        "/progress/{link}",
        d.server.client(None).get(&format!("/progress/{token}")),
    );
    assert!(
        page["key"].is_string() && page["fields"].is_array(),
        "{page}"
    );
    c.check(
        "DELETE",
        "/v1/instances/{id}/progress-link",
        &d.ops.delete(&format!("/v1/instances/{id}/progress-link")),
    );
}

/// An order in its parallel confirmation (branches, their tasks and deadline timers), the
/// instance list showing the branches, and the counts and report of its workflow grouped
/// by a keyword field.
fn branches_timers_and_figures(c: &Contract, d: &Desk) {
    d.admin.upload_workflow("order-quick-response");
    let mut order = sample("order-quick-response", "vip-high");
    order["promised_at"] = json!((chrono::Utc::now() + chrono::TimeDelta::days(10)).to_rfc3339());
    let started = d.ops.post(
        "/v1/workflows/order-quick-response/instances",
        &json!({"input": order}),
    );
    let id = str_of(&c.ok("POST", "/v1/workflows/{id}/instances", started), "id");
    for event in ["confirmed", "planned"] {
        c.check(
            "POST",
            "/v1/instances/{id}/events",
            &d.ops.post(
                &format!("/v1/instances/{id}/events"),
                &json!({"type": event, "data": {"by": "contract test"}}),
            ),
        );
    }
    let detail = c.ok(
        "GET",
        "/v1/instances/{id}",
        d.ops.get(&format!("/v1/instances/{id}")),
    );
    for list in ["branches", "timers", "approvals"] {
        assert!(
            detail[list].as_array().is_some_and(|a| !a.is_empty()),
            "{list}: {detail}"
        );
    }
    let page = c.ok(
        "GET",
        "/v1/instances",
        d.ops
            .get("/v1/instances?workflow=order-quick-response&limit=1"),
    );
    assert!(page["items"][0]["branches"].is_array(), "{page}");
    c.check(
        "GET",
        "/v1/stats/{workflow}",
        &d.ops.get("/v1/stats/order-quick-response"),
    );
    let month = chrono::Utc::now().format("%Y-%m");
    let report = c.ok(
        "GET",
        "/v1/reports/{workflow}",
        d.ops.get(&format!(
            "/v1/reports/order-quick-response?from={month}&by=field.tier"
        )),
    );
    assert!(report["rows"][0]["group"].is_string(), "{report}");
}

/// An order checked before its goods were ready fails; retried once they are, it waits
/// for the customer's reply, and is cancelled.
fn retry(c: &Contract, d: &Desk) {
    let orders = json!({
        "id": "orders", "title": "Orders", "key": "input.order_no", "start": "check",
        "stages": {
            "check": {"kind": "task",
                "transitions": [{"when": "now >= timestamp(input.ready_after)", "to": "wait_reply"}]},
            "wait_reply": {"kind": "wait", "on": {"replied": {"to": "done"}}},
            "done": {"kind": "end", "outcome": "answered"}
        }
    });
    let (status, body) = d.admin.put("/v1/workflows/orders", &orders);
    assert_eq!(status, 201, "{body}");
    let ready = chrono::Utc::now() + chrono::TimeDelta::milliseconds(300);
    let (status, failed) = d.ops.post(
        "/v1/workflows/orders/instances",
        &json!({"input": {"order_no": "A-1", "ready_after": ready.to_rfc3339()}}),
    );
    assert_eq!(
        (status, &failed["status"]),
        (201, &json!("failed")),
        "{failed}"
    );
    std::thread::sleep(Duration::from_millis(400));
    let id = str_of(&failed, "id");
    c.check(
        "POST",
        "/v1/instances/{id}/retry",
        &d.ops.post(&format!("/v1/instances/{id}/retry"), &json!({})),
    );
    c.check(
        "POST",
        "/v1/instances/{id}/cancel",
        &d.ops.post(
            &format!("/v1/instances/{id}/cancel"),
            &json!({"reason": "the customer ordered elsewhere"}),
        ),
    );
}

/// A token made (also under an Idempotency-Key, then replayed) and listed; a schedule set,
/// listed, read, paused and resumed.
fn tokens_and_schedules(c: &Contract, d: &Desk) {
    let created = d.admin.post(
        "/v1/tokens",
        &json!({"name": "auditor", "roles": ["operator", "approver:reviewer"]}),
    );
    assert_eq!(created.0, 201, "{}", created.1);
    c.check("POST", "/v1/tokens", &created);
    // A replay under the same Idempotency-Key answers the stored first answer: same shape.
    let once = json!({"name": "night-shift", "roles": ["operator"]});
    for _ in 0..2 {
        c.check(
            "POST",
            "/v1/tokens",
            &d.admin.post_once("/v1/tokens", &once, "token-night-shift"),
        );
    }
    c.check("GET", "/v1/tokens", &d.admin.get("/v1/tokens"));

    let schedule = json!({"cron": "0 7 * * Thu", "zone": "Asia/Shanghai", "workflow": "approval-flow",
        "input_expr": "{'request_id': 'weekly-' + string(now), 'amount': 1}", "catch_up": "last"});
    c.check(
        "PUT",
        "/v1/schedules/{id}",
        &d.admin.put("/v1/schedules/weekly", &schedule),
    );
    c.check("GET", "/v1/schedules", &d.ops.get("/v1/schedules"));
    let one = c.ok(
        "GET",
        "/v1/schedules/{id}",
        d.ops.get("/v1/schedules/weekly"),
    );
    assert!(one["next_run"].is_string(), "{one}");
    for (what, route) in [
        ("pause", "/v1/schedules/{id}/pause"),
        ("resume", "/v1/schedules/{id}/resume"),
    ] {
        c.check(
            "POST",
            route,
            &d.admin
                .post(&format!("/v1/schedules/weekly/{what}"), &json!({})),
        );
    }
}

/// The string member `name` of `value`.
fn str_of(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name} in {value}"))
        .to_owned()
}

/// What `probe` finds within 30 s; panics naming `what` otherwise.
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < until, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Error answers, each a `Problem`: without a token, an unknown instance, malformed JSON
/// (line and column), an invalid definition (pointers), a business key in use (the
/// instance holding it).
fn problems(c: &Contract, d: &Desk) {
    c.problem(401, &d.server.client(None).get("/v1/instances"));
    c.problem(404, &d.ops.get("/v1/instances/no-such-instance"));
    let malformed = d.ops.send(
        "POST",
        "/v1/workflows/approval-flow/instances",
        "application/json",
        b"{\"input\": {".to_vec(),
        &[],
    );
    c.problem(400, &malformed);
    let invalid = d.dev.post(
        "/v1/workflows/validate",
        &json!({"id": "broken", "start": "nowhere", "stages": {}}),
    );
    c.problem(422, &invalid);
    assert!(
        invalid.1["errors"][0]["pointer"].is_string(),
        "{}",
        invalid.1
    );
    let input = json!({"input": {"request_id": "REQ-twice", "amount": 1}});
    let path = "/v1/workflows/approval-flow/instances";
    assert_eq!(d.ops.post(path, &input).0, 201);
    let twice = d.ops.post(path, &input);
    c.problem(409, &twice);
    assert!(twice.1["instance"].is_string(), "{}", twice.1);
}
