#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Core `apply` speed: one transition, and whole `approval-flow` lifecycles in memory.
//! Run: `cargo bench -p waystation-core --bench apply`.

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use waystation_core::{apply, start, Decider, Input, InstanceState, Workflow};

fn approval_flow() -> Workflow {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../workflows/approval-flow.json"
    ))
    .unwrap();
    Workflow::from_text(&text, None).unwrap()
}

/// Two wait stages that hand an instance back and forth: the smallest real transition.
fn ping_pong() -> Workflow {
    let text = r#"{"id": "ping-pong", "title": "Ping pong", "start": "ping", "stages": {
        "ping": {"kind": "wait", "on": {"hit": {"to": "pong"}, "stop": {"to": "done"}}},
        "pong": {"kind": "wait", "on": {"hit": {"to": "ping"}, "stop": {"to": "done"}}},
        "done": {"kind": "end", "outcome": "done"}}}"#;
    Workflow::from_text(text, None).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn decide(state: &InstanceState, role: &str) -> Input {
    Input::Decision {
        task_id: state.open_tasks()[0].id.clone(),
        decider: Decider {
            id: "bench".into(),
            roles: vec![role.into()],
        },
        approve: true,
        comment: None,
    }
}

fn lifecycle(wf: &Workflow, n: u64) {
    let amount = if n.is_multiple_of(2) { 5_000 } else { 50_000 };
    let input = json!({"request_id": format!("REQ-{n}"), "amount": amount});
    let step = start(wf, format!("i{n}"), input, now()).unwrap();
    let review = decide(&step.state, "reviewer");
    let mut step = apply(wf, step.state, review, now()).unwrap();
    if step.state.stage == "manager" {
        let manager = decide(&step.state, "manager");
        step = apply(wf, step.state, manager, now()).unwrap();
    }
    assert_eq!(step.state.outcome.as_deref(), Some("approved"));
    black_box(step);
}

fn benches(c: &mut Criterion) {
    let pp = ping_pong();
    let waiting = start(&pp, "pp".into(), json!({}), now()).unwrap().state;
    let hit = Input::Event {
        name: "hit".into(),
        data: serde_json::Value::Null,
        stage: None,
    };
    let mut g = c.benchmark_group("transition");
    g.throughput(Throughput::Elements(1));
    g.bench_function("event moves a wait stage to the next", |b| {
        b.iter_batched(
            || (waiting.clone(), hit.clone()),
            |(state, input)| black_box(apply(&pp, state, input, now()).unwrap()),
            BatchSize::SmallInput,
        )
    });
    let af = approval_flow();
    let in_review = start(
        &af,
        "r".into(),
        json!({"request_id": "REQ-1", "amount": 5000}),
        now(),
    )
    .unwrap()
    .state;
    let approve = decide(&in_review, "reviewer");
    g.bench_function("reviewer approval ends a small request", |b| {
        b.iter_batched(
            || (in_review.clone(), approve.clone()),
            |(state, input)| black_box(apply(&af, state, input, now()).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("lifecycle");
    g.throughput(Throughput::Elements(2));
    g.bench_function(
        "approval-flow start to end, amounts 5,000 and 50,000",
        |b| {
            let mut n = 0u64;
            b.iter(|| {
                lifecycle(&af, n);
                lifecycle(&af, n + 1);
                n += 2;
            })
        },
    );
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
