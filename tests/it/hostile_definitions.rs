//! Hostile definitions and data over real HTTP against the real binary (issue 12): what
//! used to abort the server, stall it or be taken with a second meaning is answered, and
//! `/healthz` answers afterwards.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use waystation_tests::server::{Client, Server};

/// An `application/problem+json` answer.
#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    status: u16,
    #[serde(default)]
    errors: Vec<ProblemField>,
}

/// One located problem.
#[derive(Debug, Deserialize)]
struct ProblemField {
    pointer: Option<String>,
    message: String,
}

/// What `GET /v1/instances/{id}` and the start answer say about an instance.
#[derive(Debug, Deserialize)]
struct Instance {
    id: String,
    status: String,
    #[serde(default)]
    failure: Option<String>,
    #[serde(default)]
    vars: Map<String, Value>,
}

/// `POST /v1/workflows/{id}/instances`.
#[derive(Serialize)]
struct Start<T: Serialize> {
    input: T,
}

/// `POST /v1/instances/{id}/events`.
#[derive(Serialize)]
struct Event<T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: T,
}

#[derive(Serialize)]
struct Amount<T: Serialize> {
    amount: T,
}

#[derive(Serialize)]
struct Promise<'a> {
    promised_at: &'a str,
}

#[derive(Serialize)]
struct Due<'a> {
    due: &'a str,
}

fn problem(status: u16, body: Value) -> Problem {
    let p: Problem = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("not a problem ({e}): {status} {body}"));
    assert_eq!(p.status, status, "{body}");
    p
}

fn instance(body: Value) -> Instance {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not an instance ({e}): {body}"))
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a request body serialises")
}

fn assert_healthy(client: &Client) {
    let (status, body) = client.get("/healthz");
    assert_eq!(status, 200, "{body}");
}

/// A one-stage workflow whose task sets `var` to `expression`.
fn setting(id: &str, expression: &str) -> Value {
    let text = format!(
        r#"{{"id": "{id}", "title": "Sets a variable", "start": "work",
          "stages": {{
            "work": {{"kind": "task", "actions": [{{"set": {{"result": {expr}}}}}],
                      "transitions": [{{"to": "rest"}}]}},
            "rest": {{"kind": "wait", "on": {{"done": {{"to": "end"}}}}}},
            "end": {{"kind": "end", "outcome": "done"}}}}}}"#,
        expr = serde_json::to_string(expression).expect("a string serialises")
    );
    serde_json::from_str(&text).expect("the definition is JSON")
}

#[test]
fn expressions_that_aborted_the_server_are_refused_by_validate_and_upload() {
    let server = Server::start();
    let admin = server.admin();
    let sum = vec!["'a'"; 1500].join("+");
    let chain = format!("input{}", ".a".repeat(33_000));
    for (name, expression, says) in [
        ("sum", sum.as_str(), "5999 bytes, at most 4096"),
        ("chain", chain.as_str(), "bytes, at most 4096"),
    ] {
        let definition = setting("hostile", expression);
        for (status, body) in [
            admin.post("/v1/workflows/validate", &definition),
            admin.put("/v1/workflows/hostile", &definition),
        ] {
            let p = problem(422, body);
            assert_eq!(p.errors.len(), 1, "{name}: {p:?}");
            assert_eq!(
                p.errors[0].pointer.as_deref(),
                Some("/stages/work/actions/0/set/result"),
                "{name}"
            );
            assert!(p.errors[0].message.contains(says), "{name}: {p:?}");
            assert_eq!(status, 422);
        }
        assert_healthy(&admin);
    }
}

#[test]
fn an_expression_that_would_allocate_without_bound_fails_its_instance_with_the_reason() {
    let mut server = Server::start();
    let admin = server.admin();
    let ops = server.token("ops", &["operator"]);
    let chain = format!("'a'{}", ".replace('a', 'aa')".repeat(27));
    let (status, body) = admin.put("/v1/workflows/doubling", &setting("doubling", &chain));
    assert_eq!(status, 201, "{body}");
    let (status, body) = ops.post(
        "/v1/workflows/doubling/instances",
        &to_json(&Start { input: Map::new() }),
    );
    assert_eq!(status, 201, "{body}");
    let started = instance(body);
    assert_eq!(started.status, "failed");
    let reason = started.failure.expect("a failed instance says why");
    assert!(
        reason.contains("evaluation budget") && reason.contains("16 MiB"),
        "{reason}"
    );
    assert_healthy(&admin);
    server.terminate();
    server.restart();
    let admin = server.admin();
    let ops = server.token("ops-after-restart", &["operator"]);
    assert_healthy(&admin);
    let (status, body) = ops.get(&format!("/v1/instances/{}", started.id));
    assert_eq!(status, 200, "{body}");
    assert_eq!(instance(body).status, "failed");
}

#[test]
fn durations_that_panicked_at_start_are_refused_by_validate() {
    let server = Server::start();
    let admin = server.admin();
    for bad in [
        "P1653439W",
        "PT999999999999S",
        "PT1H1H",
        "PT30M1H",
        "PT.5S",
        "PT5.S",
    ] {
        let text = format!(
            r#"{{"id": "hold", "title": "Hold", "start": "hold",
              "stages": {{"hold": {{"kind": "wait", "deadline": "{bad}", "on": {{"done": {{"to": "end"}}}}}},
                          "end": {{"kind": "end", "outcome": "done"}}}}}}"#
        );
        let (_, body) = admin.post(
            "/v1/workflows/validate",
            &serde_json::from_str(&text).expect("JSON"),
        );
        let p = problem(422, body);
        assert_eq!(
            p.errors[0].pointer.as_deref(),
            Some("/stages/hold/deadline"),
            "{bad}: {p:?}"
        );
    }
    assert_healthy(&admin);
}

#[test]
fn a_deadline_past_year_9999_fails_the_start_with_a_reason_and_the_server_answers() {
    let mut server = Server::start();
    let admin = server.admin();
    let ops = server.token("ops", &["operator"]);
    let text = r#"{"id": "far", "title": "Far away", "start": "hold",
      "stages": {"hold": {"kind": "wait", "deadline": "input.due + duration('P36500D')",
                          "on": {"done": {"to": "end"}}},
                 "end": {"kind": "end", "outcome": "done"}}}"#;
    let (status, body) = admin.put(
        "/v1/workflows/far",
        &serde_json::from_str(text).expect("JSON"),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = ops.post(
        "/v1/workflows/far/instances",
        &to_json(&Start {
            input: Due {
                due: "9990-01-01T00:00:00Z",
            },
        }),
    );
    assert_eq!(status, 201, "{body}");
    let started = instance(body);
    assert_eq!(started.status, "failed");
    assert!(
        started
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("deadline of stage 'hold'")),
        "{started:?}"
    );
    assert_healthy(&admin);
    server.terminate();
    server.restart();
    assert_healthy(&server.admin());
}

#[test]
fn a_date_time_that_is_not_a_date_is_refused_at_start_with_its_pointer() {
    let server = Server::start();
    let admin = server.admin();
    let ops = server.token("ops", &["operator"]);
    let text = r#"{"id": "promise", "title": "Promise", "start": "hold",
      "input_schema": {"type": "object", "required": ["promised_at"],
                       "properties": {"promised_at": {"type": "string", "format": "date-time"}}},
      "stages": {"hold": {"kind": "wait", "deadline": "input.promised_at", "on": {"done": {"to": "end"}}},
                 "end": {"kind": "end", "outcome": "done"}}}"#;
    let (status, body) = admin.put(
        "/v1/workflows/promise",
        &serde_json::from_str(text).expect("JSON"),
    );
    assert_eq!(status, 201, "{body}");
    for bad in ["2024-02-30T12:00:00Z", "tomorrow"] {
        let (_, body) = ops.post(
            "/v1/workflows/promise/instances",
            &to_json(&Start {
                input: Promise { promised_at: bad },
            }),
        );
        let p = problem(422, body);
        assert_eq!(
            p.errors[0].pointer.as_deref(),
            Some("/input/promised_at"),
            "{bad}"
        );
        assert!(p.errors[0].message.contains("date-time"), "{p:?}");
    }
    let (status, body) = ops.post(
        "/v1/workflows/promise/instances",
        &to_json(&Start {
            input: Promise {
                promised_at: "2099-02-28T12:00:00+08:00",
            },
        }),
    );
    assert_eq!(status, 201, "{body}");
    assert_healthy(&admin);
}

// Kept whole: one workflow told in order: 5000 and 5000.0 give one result, 5001 its own, then a number too big to keep refused at start and in a command.
#[test]
fn one_json_number_has_one_meaning_and_a_number_that_would_change_is_refused() {
    let server = Server::start();
    let admin = server.admin();
    let ops = server.token("ops", &["operator"]);
    let (status, body) = admin.put(
        "/v1/workflows/fees",
        &setting(
            "fees",
            "[input.amount * 0.02, input.amount / 2, input.amount + 1]",
        ),
    );
    assert_eq!(status, 201, "{body}");
    let fees = |amount: Value| {
        let (status, body) = ops.post(
            "/v1/workflows/fees/instances",
            &to_json(&Start {
                input: Amount { amount },
            }),
        );
        assert_eq!(status, 201, "{body}");
        let started = instance(body);
        let (status, body) = ops.get(&format!("/v1/instances/{}", started.id));
        assert_eq!(status, 200, "{body}");
        let running = instance(body);
        assert_eq!(running.status, "running", "{running:?}");
        running.vars["result"].clone()
    };
    let whole = fees(Value::from(5000));
    let written_with_a_point = fees(Value::from(5000.0));
    assert_eq!(whole, written_with_a_point);
    assert_eq!(
        whole,
        serde_json::from_str::<Value>("[100, 2500, 5001]").expect("JSON")
    );
    let odd = fees(Value::from(5001));
    assert_eq!(odd[1], Value::from(2500.5));
    assert_eq!(odd[2], Value::from(5002));

    // Sent as written, not through a double on the client side.
    let (_, body) = ops.send(
        "POST",
        "/v1/workflows/fees/instances",
        "application/json",
        br#"{"input": {"amount": 12345678901234567890123}}"#.to_vec(),
        &[],
    );
    let p = problem(422, body);
    assert_eq!(
        p.errors[0].pointer.as_deref(),
        Some("/input/amount"),
        "{p:?}"
    );

    let (status, body) = ops.post(
        "/v1/workflows/fees/instances",
        &to_json(&Start {
            input: Amount { amount: 1 },
        }),
    );
    assert_eq!(status, 201, "{body}");
    let id = instance(body).id;
    let (_, body) = ops.send(
        "POST",
        &format!("/v1/instances/{id}/events"),
        "application/json",
        br#"{"type": "done", "data": {"amount": 12345678901234567890123}}"#.to_vec(),
        &[],
    );
    let p = problem(422, body);
    assert_eq!(
        p.errors[0].pointer.as_deref(),
        Some("/data/amount"),
        "{p:?}"
    );
    assert!(p.kind.ends_with("/invalid"), "{p:?}");
    let (status, body) = ops.post(
        &format!("/v1/instances/{id}/events"),
        &to_json(&Event {
            kind: "done",
            data: Amount { amount: 7 },
        }),
    );
    assert_eq!(status, 200, "{body}");
    assert_healthy(&admin);
}
