//! The engine names an owner: an `assign` action gives an escalation stage's work to the
//! person the order names, recorded as assigned by `engine` and notified like any
//! assignment, without counting as anybody's work.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{HistoryEvent, Status, Workflow};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An order to confirm within an hour; a missed confirmation escalates to the supervisor
/// the order names, if it names one.
fn orders(assign: &str) -> Workflow {
    let definition = json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "start": "confirm",
        "stages": {
            "confirm": {
                "kind": "wait", "owner": "order-specialist", "deadline": "PT1H",
                "on": {"confirmed": {"to": "done"}},
                "timeout": {"to": "escalated"}
            },
            "escalated": {
                "kind": "wait", "owner": "supervisor",
                "actions": [{"tag": "response-sla-breached"}, {"assign": assign}],
                "on": {"confirmed": {"to": "done"}}
            },
            "done": {"kind": "end", "outcome": "confirmed"}
        }
    });
    Workflow::from_value(&definition, None).expect("the orders definition compiles")
}

fn order(supervisor: Option<&str>) -> Value {
    let mut o = json!({"order_no": "202405-001"});
    if let Some(s) = supervisor {
        o["supervisor"] = json!(s);
    }
    o
}

const BY_SUPERVISOR: &str = "has(input.supervisor) ? input.supervisor : null";

#[test]
fn a_missed_confirmation_gives_the_escalation_to_the_orders_supervisor_and_tells_them() {
    let wf = orders(BY_SUPERVISOR);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order(Some("li.na"))).unwrap();
    assert_eq!(sim.state(&id).assignee, None, "confirming is nobody's yet");
    sim.advance(TimeDelta::minutes(61));

    let s = sim.state(&id);
    assert_eq!(s.stage, "escalated");
    let a = s
        .assignee
        .clone()
        .expect("the engine assigned the escalation");
    assert_eq!(
        (a.user.as_str(), a.by.as_str(), a.stage.as_str()),
        ("li.na", "engine", "escalated")
    );
    assert_eq!(
        s.acted_at,
        Some(t0()),
        "the engine's assignment is bookkeeping: nobody acted since the start"
    );
    assert!(sim.history(&id).iter().any(|e| matches!(
        &e.event,
        HistoryEvent::Assigned { assignee: Some(u), by, previous: None, .. }
            if u == "li.na" && by == "engine"
    )));
    let notices: Vec<_> = sim
        .outbox()
        .iter()
        .map(|m| (m.channel.as_str(), m.recipient.as_str()))
        .collect();
    assert_eq!(notices, [("assignment", "li.na")]);
}

#[test]
fn an_order_without_a_supervisor_leaves_the_escalation_for_a_supervisor_to_claim() {
    let wf = orders(BY_SUPERVISOR);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order(None)).unwrap();
    sim.advance(TimeDelta::minutes(61));
    let s = sim.state(&id);
    assert_eq!((s.stage.as_str(), s.status), ("escalated", Status::Running));
    assert_eq!(s.assignee, None);
    assert!(sim.outbox().is_empty(), "nobody to tell");
}

#[test]
fn a_blank_supervisor_names_nobody_and_the_escalation_waits_unassigned() {
    let wf = orders(BY_SUPERVISOR);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order(Some("   "))).unwrap();
    sim.advance(TimeDelta::minutes(61));
    let s = sim.state(&id);
    assert_eq!((s.stage.as_str(), s.status), ("escalated", Status::Running));
    assert_eq!(s.assignee, None);
}

#[test]
fn an_assign_that_names_nobody_sensible_fails_the_instance_with_the_reason() {
    for (expr, shown) in [("42", "the int 42"), ("'x'.repeat(201)", "string")] {
        let wf = orders(&expr.replace("'x'.repeat(201)", &format!("'{}'", "x".repeat(201))));
        let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
        let id = sim.start(order(None)).unwrap();
        sim.advance(TimeDelta::minutes(61));
        let s = sim.state(&id);
        assert_eq!(s.status, Status::Failed, "{expr}");
        let failure = s.failure.clone().unwrap_or_default();
        assert!(
            failure.contains("assign must give a person's token name") && failure.contains(shown),
            "{expr}: {failure}"
        );
        assert_eq!(s.assignee, None, "{expr}");
    }
}
