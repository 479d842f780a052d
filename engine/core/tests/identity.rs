//! Business keys, fields, SLA truth and named owners, driven through the pure core with a
//! hand-moved clock.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{FieldValue, HistoryEvent, Input, Rejection, SlaState, Workflow};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An order: a wait stage `todo` with a one-hour deadline (at risk after half an hour) and
/// a harmless `ping` self-loop, an explicit `reset` self-loop that restarts the deadline,
/// `begin` into `in_progress`, and an approval.
fn orders() -> Workflow {
    let definition = json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "fields": {
            "customer": {"type": "text", "value": "input.customer", "show": true},
            "tier": {"type": "keyword", "value": "input.tier", "show": true},
            "amount": {"type": "number", "value": "input.amount", "show": true, "approval": true},
            "promised_at": {"type": "timestamp", "value": "input.promised_at"},
            "gold": {"type": "boolean", "value": "input.tier == 'gold'"},
            "note": {"type": "text", "value": "vars.note"}
        },
        "start": "todo",
        "stages": {
            "todo": {
                "kind": "wait", "owner": "clerk", "deadline": "PT1H", "at_risk": "PT30M",
                "on": {
                    "ping": {"to": "todo"},
                    "reset": {"to": "todo", "restart_deadline": true},
                    "begin": {"to": "in_progress"},
                    "note": {"to": "noted"}
                }
            },
            "noted": {"kind": "task", "actions": [{"set": {"note": "event.data.note"}}], "transitions": [{"to": "todo"}]},
            "in_progress": {"kind": "wait", "owner": "clerk", "on": {"done": {"to": "done"}}},
            "done": {"kind": "end", "outcome": "resolved"}
        }
    });
    Workflow::from_value(&definition, None).expect("the orders definition compiles")
}

fn order(no: &str) -> Value {
    json!({"order_no": no, "customer": "ACME Corp. Shenzhen", "tier": "gold", "amount": 50000,
           "promised_at": "2024-05-10T12:00:00+02:00"})
}

#[test]
fn a_start_computes_the_key_and_every_typed_field_from_the_input() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.key.as_deref(), Some("202405-001"));
    assert_eq!(
        s.fields["customer"],
        FieldValue::Text("ACME Corp. Shenzhen".into())
    );
    assert_eq!(s.fields["tier"], FieldValue::Keyword("gold".into()));
    assert_eq!(s.fields["amount"], FieldValue::Number(50000.0));
    assert_eq!(
        s.fields["promised_at"].to_json(),
        json!("2024-05-10T10:00:00Z")
    );
    assert_eq!(s.fields["gold"], FieldValue::Boolean(true));
    assert!(
        !s.fields.contains_key("note"),
        "a field over a variable not set yet is empty"
    );
}

#[test]
fn fields_over_variables_follow_them_after_every_command() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    sim.event(&id, "note", json!({"note": "call before noon"}))
        .unwrap();
    assert_eq!(
        sim.state(&id).fields["note"],
        FieldValue::Text("call before noon".into())
    );
}

#[test]
fn a_start_without_a_usable_key_is_refused_with_the_reason() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let err = sim.start(json!({"customer": "x"})).unwrap_err();
    assert!(matches!(&err, Rejection::KeyUnfit { .. }), "{err:?}");
    let err = sim.start(order(&"9".repeat(201))).unwrap_err();
    assert!(err.to_string().contains("at most 200 bytes"), "{err}");
}

#[test]
fn a_hostile_field_value_refuses_the_start_and_an_event_that_would_set_it_changes_nothing() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let mut big = order("202405-002");
    big["customer"] = json!("x".repeat(3000));
    let err = sim.start(big).unwrap_err();
    assert!(
        matches!(&err, Rejection::FieldUnfit { field, .. } if field == "customer"),
        "{err:?}"
    );
    let id = sim.start(order("202405-003")).unwrap();
    let before = sim.state(&id).clone();
    let err = sim
        .event(&id, "note", json!({"note": "y".repeat(1 << 20)}))
        .unwrap_err();
    assert!(
        matches!(&err, Rejection::FieldUnfit { field, message } if field == "note" && message.contains("at most 2048 bytes")),
        "{err:?}"
    );
    assert_eq!(sim.state(&id), &before, "a refused event changes nothing");
}

#[test]
fn a_harmless_self_loop_event_keeps_the_stage_deadline_and_its_timers() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    let deadline = sim.state(&id).sla.deadline;
    let timers = sim.armed_timers();
    sim.advance(TimeDelta::minutes(40));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.event(&id, "ping", json!({})).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.stage, "todo");
    assert_eq!(s.sla.deadline, deadline, "ping must not push the SLA back");
    assert_eq!(
        s.sla.state,
        SlaState::AtRisk,
        "still at risk after the ping"
    );
    assert_eq!(s.stage_entered_at, t0());
    assert_eq!(
        sim.armed_timers(),
        timers[1..],
        "the deadline timer is still armed"
    );
    sim.advance(TimeDelta::minutes(25));
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
}

#[test]
fn a_self_loop_marked_restart_deadline_starts_the_deadline_again() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    sim.advance(TimeDelta::minutes(40));
    sim.event(&id, "reset", json!({})).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.sla.deadline, Some(t0() + TimeDelta::minutes(100)));
    assert_eq!(s.sla.state, SlaState::OnTime);
}

#[test]
fn a_breach_is_kept_with_when_and_by_how_much_after_the_stage_is_left() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    sim.advance(TimeDelta::minutes(90));
    sim.event(&id, "begin", json!({})).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.stage, "in_progress");
    assert_eq!(
        s.sla.state,
        SlaState::OnTime,
        "the new stage has no deadline"
    );
    let [record] = s.sla_record.as_slice() else {
        panic!("one stage visit went wrong: {:?}", s.sla_record)
    };
    assert_eq!(record.stage, "todo");
    assert_eq!(record.at_risk_at, Some(t0() + TimeDelta::minutes(30)));
    assert_eq!(record.breached_at, Some(t0() + TimeDelta::minutes(60)));
    assert_eq!(record.left_at, Some(t0() + TimeDelta::minutes(90)));
    assert_eq!(record.overdue_seconds, Some(30 * 60));
}

#[test]
fn only_people_and_outside_events_count_as_acting_and_work_counts_in_the_stage_it_led_into() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    assert_eq!(sim.state(&id).acted_at, Some(t0()));
    assert_eq!(
        sim.state(&id).worked_at,
        None,
        "started, but no work done yet"
    );
    sim.advance(TimeDelta::minutes(40));
    let s = sim.state(&id);
    assert!(s.updated_at > t0(), "the SLA change updated the instance");
    assert_eq!(
        s.acted_at,
        Some(t0()),
        "but nobody acted: engine bookkeeping is no update"
    );
    sim.event(&id, "begin", json!({})).unwrap();
    let s = sim.state(&id);
    assert_eq!(
        s.worked_at,
        Some(s.stage_entered_at),
        "the event that led into in_progress is work there"
    );
}

#[test]
fn an_assignment_names_the_person_records_who_assigned_and_queues_a_notice() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    let assign = |to: Option<&str>, by: &str| Input::Assign {
        stage: None,
        assignee: to.map(str::to_owned),
        by: by.to_owned(),
    };
    sim.apply(&id, assign(Some("mei"), "lead-li")).unwrap();
    sim.apply(&id, assign(Some("tao"), "lead-li")).unwrap();
    let a = sim.state(&id).assignee.clone().expect("assigned");
    assert_eq!(
        (a.user.as_str(), a.by.as_str(), a.stage.as_str()),
        ("tao", "lead-li", "todo")
    );
    let reassigned = sim
        .history(&id)
        .iter()
        .filter_map(|e| match &e.event {
            HistoryEvent::Assigned {
                assignee,
                previous,
                by,
                ..
            } => Some((assignee.clone(), previous.clone(), by.clone())),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(
        reassigned,
        [
            (Some("mei".into()), None, "lead-li".into()),
            (Some("tao".into()), Some("mei".into()), "lead-li".into())
        ]
    );
    let notices: Vec<_> = sim
        .outbox()
        .iter()
        .map(|m| (m.channel.as_str(), m.recipient.as_str()))
        .collect();
    assert_eq!(notices, [("assignment", "mei"), ("assignment", "tao")]);
    sim.event(&id, "begin", json!({})).unwrap();
    assert_eq!(
        sim.state(&id).assignee,
        None,
        "the next stage's work is nobody's yet"
    );
}

#[test]
fn a_deadline_fired_hours_late_after_downtime_records_the_risk_and_breach_when_they_were_due() {
    let wf = orders();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(order("202405-001")).unwrap();
    let state = sim.state(&id).clone();
    let deadline = state
        .timers
        .iter()
        .find(|t| t.purpose == waystation_core::TimerPurpose::Deadline)
        .expect("the stage's deadline is armed")
        .id
        .clone();
    // The server was down from before the at-risk time until three hours later; the
    // scheduler then handed the engine the deadline first.
    let restarted = t0() + TimeDelta::hours(3);
    let step = waystation_core::drive::apply_until_quiet(
        &wf,
        state,
        Input::TimerFired { timer_id: deadline },
        restarted,
        &FakePlugins::new(),
    )
    .unwrap();
    let s = &step.state;
    assert_eq!(s.sla.state, SlaState::Breached);
    assert!(
        s.timers.is_empty(),
        "the at-risk timer is spent: {:?}",
        s.timers
    );
    let [record] = s.sla_record.as_slice() else {
        panic!("one stage visit: {:?}", s.sla_record)
    };
    assert_eq!(record.at_risk_at, Some(t0() + TimeDelta::minutes(30)));
    assert_eq!(record.breached_at, Some(t0() + TimeDelta::minutes(60)));
    let changes: Vec<SlaState> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            waystation_core::Effect::History(h) => match &h.event {
                HistoryEvent::SlaChanged { sla, .. } => Some(*sla),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(changes, [SlaState::AtRisk, SlaState::Breached]);
}
