//! Retrying a failed instance: an order whose risk scorer was down fails in its scoring
//! stage; once the scorer is back, an operator's retry scores it on the same version and
//! the order moves on, without the welcome message it already queued going out twice.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use waystation_core::plugin::{FailureKind, PluginFailure};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{HistoryEvent, Rejection, Status, Workflow};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Welcome the customer, score the order's risk, then wait for the desk to confirm
/// within the hour. No `on_error`: a failed scoring fails the order.
fn orders() -> Workflow {
    let definition = json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "start": "score",
        "stages": {
            "score": {
                "kind": "task",
                "actions": [
                    {"notify": "welcome"},
                    {"call": "risk", "result": "risk"}
                ],
                "transitions": [{"to": "confirm"}]
            },
            "confirm": {
                "kind": "wait", "deadline": "PT1H",
                "on": {"confirmed": {"to": "done"}}
            },
            "done": {"kind": "end", "outcome": "confirmed"}
        }
    });
    Workflow::from_value(&definition, None).expect("the orders definition compiles")
}

/// The plugins: a welcome notifier, and a scorer that fails while `down` is set.
fn plugins(down: Arc<AtomicBool>) -> FakePlugins {
    FakePlugins::new()
        .notifier("welcome", |_| {
            Ok(
                json!({"messages": [{"channel": "email", "recipient": "c@example.com",
                "subject": "Thank you", "body": "We have your order."}]}),
            )
        })
        .scorer("risk", move |_| {
            if down.load(Ordering::SeqCst) {
                Err(PluginFailure {
                    kind: FailureKind::Trap,
                    message: "scoring service unavailable".into(),
                })
            } else {
                Ok(json!({"score": 12}))
            }
        })
}

fn events(sim: &Simulation<'_, FakePlugins>, id: &str) -> Vec<HistoryEvent> {
    sim.history(id).iter().map(|h| h.event.clone()).collect()
}

#[test]
fn a_retry_after_the_scorer_is_back_scores_the_order_once_and_moves_it_on_without_a_second_welcome()
{
    let wf = orders();
    let down = Arc::new(AtomicBool::new(true));
    let mut sim = Simulation::new(&wf, plugins(down.clone()), t0());
    let id = sim.start(json!({"order_no": "202405-001"})).unwrap();
    assert_eq!(sim.state(&id).status, Status::Failed);
    assert_eq!(sim.state(&id).stage, "score", "the failure keeps its stage");
    assert_eq!(
        sim.outbox().len(),
        1,
        "the welcome went out before the scorer failed"
    );

    let version = sim.state(&id).version;
    down.store(false, Ordering::SeqCst);
    sim.advance(TimeDelta::minutes(10));
    sim.retry(&id, "olga").unwrap();

    let s = sim.state(&id);
    assert_eq!(s.status, Status::Running);
    assert_eq!(s.stage, "confirm");
    assert_eq!(s.failure, None);
    assert_eq!(s.retry_from, None);
    assert_eq!(s.vars["risk"], json!({"score": 12}));
    assert_eq!(s.version, version, "the same version");
    assert_eq!(sim.outbox().len(), 1, "the welcome is not sent again");
    assert_eq!(
        s.sla.deadline,
        Some(t0() + TimeDelta::minutes(70)),
        "the next stage's hour counts from the retry"
    );
    let retried = events(&sim, &id)
        .into_iter()
        .find_map(|e| match e {
            HistoryEvent::Retried {
                by,
                stage,
                failure,
                from_action,
            } => Some((by, stage, failure, from_action)),
            _ => None,
        })
        .expect("a retried entry");
    assert_eq!(retried.0, "olga");
    assert_eq!(retried.1, "score");
    assert!(
        retried.2.contains("scoring service unavailable"),
        "{}",
        retried.2
    );
    assert_eq!(retried.3, 1, "from the scoring call, the second action");
}

#[test]
fn a_retry_that_fails_again_leaves_the_order_failed_and_retryable() {
    let wf = orders();
    let down = Arc::new(AtomicBool::new(true));
    let mut sim = Simulation::new(&wf, plugins(down.clone()), t0());
    let id = sim.start(json!({"order_no": "202405-002"})).unwrap();
    sim.retry(&id, "olga").unwrap();
    assert_eq!(sim.state(&id).status, Status::Failed);
    assert_eq!(
        sim.state(&id).retry_from.as_ref().map(|p| p.action),
        Some(1)
    );
    let failures = events(&sim, &id)
        .iter()
        .filter(|e| matches!(e, HistoryEvent::Failed { .. }))
        .count();
    assert_eq!(failures, 2);
    down.store(false, Ordering::SeqCst);
    sim.retry(&id, "olga").unwrap();
    assert_eq!(sim.state(&id).stage, "confirm");
    assert_eq!(sim.outbox().len(), 1);
}

#[test]
fn an_order_that_failed_for_good_can_be_closed_by_a_cancel_and_then_not_retried() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, plugins(Arc::new(AtomicBool::new(true))), t0());
    let id = sim.start(json!({"order_no": "202405-004"})).unwrap();
    assert_eq!(sim.state(&id).status, Status::Failed);
    sim.cancel(&id, "olga").unwrap();
    let closed = sim.state(&id);
    assert_eq!(closed.status, Status::Cancelled);
    assert_eq!(closed.retry_from, None, "nothing left to retry");
    let events = events(&sim, &id);
    let failed = events
        .iter()
        .position(|e| matches!(e, HistoryEvent::Failed { .. }));
    let cancelled = events
        .iter()
        .position(|e| matches!(e, HistoryEvent::Cancelled { .. }));
    assert!(failed < cancelled && failed.is_some(), "{events:?}");
    assert_eq!(
        sim.retry(&id, "olga").map_err(|r| r.code()),
        Err("not-failed")
    );
    assert_eq!(
        sim.cancel(&id, "olga").map_err(|r| r.code()),
        Err("not-running"),
        "a cancelled order is not cancelled twice"
    );
}

#[test]
fn only_a_failed_instance_can_be_retried() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, plugins(Arc::new(AtomicBool::new(false))), t0());
    let id = sim.start(json!({"order_no": "202405-003"})).unwrap();
    assert_eq!(sim.state(&id).stage, "confirm");
    let before = sim.state(&id).clone();
    assert_eq!(
        sim.retry(&id, "olga"),
        Err(Rejection::NotFailed(Status::Running))
    );
    assert_eq!(sim.state(&id), &before, "a refused retry changes nothing");
    sim.cancel(&id, "olga").unwrap();
    assert_eq!(
        sim.retry(&id, "olga").map_err(|r| r.code()),
        Err("not-failed"),
        "a cancelled order stays cancelled"
    );
}

/// A task stage whose only transition waits for a release date fails when entered too
/// early; a retry after the date settles again without re-running the stage's actions.
#[test]
fn a_stage_with_no_transition_that_holds_settles_again_on_retry_with_the_event_that_led_there() {
    let definition = json!({
        "id": "release",
            "title": "Release",
        "start": "hold",
        "stages": {
            "hold": {"kind": "wait", "on": {"release": {"to": "ship"}}},
            "ship": {
                "kind": "task",
                "actions": [{"set": {"shipped_by": "event.data.by"}}],
                "transitions": [{"when": "now >= timestamp(event.data.after)", "to": "done"}]
            },
            "done": {"kind": "end", "outcome": "shipped"}
        }
    });
    let wf = Workflow::from_value(&definition, None).unwrap();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    let data: Value = json!({"by": "li.na", "after": "2024-05-01T09:00:00Z"});
    sim.event(&id, "release", data).unwrap();
    assert_eq!(sim.state(&id).status, Status::Failed);
    assert_eq!(
        sim.state(&id).retry_from.as_ref().map(|p| p.action),
        Some(1)
    );

    sim.advance(TimeDelta::hours(2));
    sim.retry(&id, "olga").unwrap();
    let s = sim.state(&id);
    assert_eq!(
        (s.status, s.outcome.as_deref()),
        (Status::Completed, Some("shipped"))
    );
    let sets = events(&sim, &id)
        .iter()
        .filter(|e| matches!(e, HistoryEvent::VariablesSet { .. }))
        .count();
    assert_eq!(sets, 1, "the stage's action ran once, before the failure");
}
