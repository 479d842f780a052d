//! The dashboard's live streams over the real binary: a board hears that an order breached
//! within a second of the commit, an instance page hears only its instance, the cap on
//! streams answers 503, a plain GET is refused rather than left hanging, and a stream ends
//! when the server shuts down, to be opened again after the restart.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};
use waystation_tests::sse::{SseEvent, SseStream};

/// Orders answered within `reply_within` seconds (default an hour).
fn orders() -> Value {
    json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "start": "wait_reply",
        "stages": {
            "wait_reply": {
                "kind": "wait",
                "deadline": "has(input.reply_within) ? now + duration(string(input.reply_within) + 's') : now + duration('3600s')",
                "on": {"replied": {"to": "done"}}
            },
            "done": {"kind": "end", "outcome": "answered"}
        }
    })
}

fn desk(env: &[(&str, &str)]) -> (Server, Client) {
    let server = Server::start_with(env);
    let (s, body) = server.admin().put("/v1/workflows/orders", &orders());
    assert_eq!(s, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    (server, ops)
}

fn start(ops: &Client, input: Value) -> String {
    let (s, body) = ops.post("/v1/workflows/orders/instances", &json!({"input": input}));
    assert_eq!(s, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn open(server: &Server, ops: &Client, path: &str) -> SseStream {
    let mut stream = SseStream::open(&server.addr, path, ops.token(), "text/event-stream");
    if stream.status != 200 {
        let status = stream.status;
        panic!("{path}: {status} {}", stream.body());
    }
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let ready = stream.next(Duration::from_secs(5)).expect("a ready event");
    assert_eq!(ready.name, "ready");
    stream
}

/// The next `change` event for which `want` holds, within `wait`.
fn change_where(
    stream: &mut SseStream,
    wait: Duration,
    want: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let until = Instant::now() + wait;
    while let Some(SseEvent { name, data }) =
        stream.next(until.saturating_duration_since(Instant::now()))
    {
        if name == "change" && want(&data) {
            return Some(data);
        }
    }
    None
}

#[test]
fn the_board_hears_that_an_order_breached_within_a_second_of_the_deadline() {
    let (server, ops) = desk(&[]);
    let mut board = open(&server, &ops, "/v1/workflows/orders/stream");
    let started = Instant::now();
    let id = start(&ops, json!({"order_no": "ORD-1", "reply_within": 1}));
    let first = change_where(&mut board, Duration::from_secs(2), |c| c["instance"] == id)
        .expect("the start is a change");
    assert_eq!(
        (
            &first["stage"],
            &first["status"],
            &first["sla"],
            &first["kind"]
        ),
        (
            &json!("wait_reply"),
            &json!("running"),
            &json!("on_time"),
            &json!("state")
        )
    );
    let red = change_where(&mut board, Duration::from_secs(10), |c| {
        c["instance"] == id && c["sla"] == "breached"
    })
    .expect("the breach is a change");
    let (s, inst) = ops.get(&format!("/v1/instances/{id}"));
    assert_eq!(s, 200);
    assert_eq!(
        inst["sla"]["state"], "breached",
        "the stream tells what the API reads"
    );
    let late = started.elapsed().saturating_sub(Duration::from_secs(1));
    assert!(
        late < Duration::from_secs(2),
        "heard {late:?} after the deadline (the scheduler fires due timers at once)"
    );
    assert_eq!(red["workflow"], "orders");
}

#[test]
fn an_instance_page_hears_only_its_own_instance() {
    let (server, ops) = desk(&[]);
    let mine = start(&ops, json!({"order_no": "ORD-1"}));
    let other = start(&ops, json!({"order_no": "ORD-2"}));
    let mut page = open(&server, &ops, &format!("/v1/instances/{mine}/stream"));
    for id in [&other, &mine] {
        let (s, body) = ops.post(
            &format!("/v1/instances/{id}/events"),
            &json!({"type": "replied"}),
        );
        assert_eq!(s, 200, "{body}");
    }
    let heard = change_where(&mut page, Duration::from_secs(3), |_| true).expect("a change");
    assert_eq!(
        heard["instance"],
        json!(mine),
        "the other order's reply is not heard"
    );
    assert_eq!(heard["status"], "completed");
}

#[test]
fn a_stream_needs_accept_event_stream_and_an_unknown_target_is_404() {
    let (_server, ops) = desk(&[]);
    let (s, body) = ops.get("/v1/workflows/orders/stream");
    assert_eq!(s, 406, "a plain GET is refused, never left hanging: {body}");
    assert_eq!(
        body["type"],
        json!("https://waystation.dev/problems/not-acceptable")
    );
    let (s, _, _) = ops.get_text(
        "/v1/instances/01ARZ3NDEKTSV4RRFFQ69G5FAV/stream",
        &[("accept", "text/event-stream")],
    );
    assert_eq!(s, 404);
    let (s, _, _) = ops.get_text(
        "/v1/workflows/nope/stream",
        &[("accept", "text/event-stream")],
    );
    assert_eq!(s, 404);
}

#[test]
fn streams_past_the_cap_are_refused_with_503_until_one_closes() {
    let (server, ops) = desk(&[("WAYSTATION_LIVE_MAX_STREAMS", "1")]);
    let first = open(&server, &ops, "/v1/stream");
    let mut refused = SseStream::open(&server.addr, "/v1/stream", ops.token(), "text/event-stream");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("30"));
    let body = refused.body();
    assert!(body.contains("too-many-streams"), "{body}");
    assert!(body.contains("max_streams"), "{body}");
    drop(first);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let again = SseStream::open(&server.addr, "/v1/stream", ops.token(), "text/event-stream");
        if again.status == 200 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the closed stream's place was never given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stream_ends_when_the_server_stops_and_opens_again_after_the_restart() {
    let (mut server, ops) = desk(&[]);
    let mut stream = open(&server, &ops, "/v1/stream");
    let stopping = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "an open stream does not hold the shutdown ({:?})",
        stopping.elapsed()
    );
    assert!(stream.ended_within(Duration::from_secs(2)));
    server.restart();
    let mut again = open(&server, &ops, "/v1/stream");
    let id = start(&ops, json!({"order_no": "ORD-9"}));
    assert!(change_where(&mut again, Duration::from_secs(3), |c| c["instance"] == id).is_some());
}

#[test]
fn an_instance_page_hears_that_an_admin_revoked_the_customers_progress_link() {
    let (server, ops) = desk(&[]);
    let id = start(&ops, json!({"order_no": "ORD-1"}));
    let mut page = open(&server, &ops, &format!("/v1/instances/{id}/stream"));
    let (s, body) = server
        .admin()
        .delete(&format!("/v1/instances/{id}/progress-link"));
    assert_eq!(s, 200, "an admin may revoke what an admin may read: {body}");
    let heard = change_where(&mut page, Duration::from_secs(3), |c| c["instance"] == id)
        .expect("the revocation is a change the page hears");
    assert_eq!(heard["status"], "running");
}
