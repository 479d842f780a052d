//! Engine semantics every playbook leans on, each shown on a small workflow.

use chrono::TimeDelta;
use serde_json::json;
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{HistoryEvent, Input, Rejection, SlaState, Status, Workflow};
use waystation_fixtures::at;

fn workflow(text: &str) -> Workflow {
    Workflow::from_text(text, None).unwrap_or_else(|e| panic!("{e:?}"))
}

const ESCALATION: &str = r#"{"id": "escalation", "title": "Escalation", "start": "confirm", "stages": {
  "confirm": {"kind": "wait", "owner": "agent",
              "actions": [{"set": {"due": "now + duration('1h')"}}],
              "deadline": "vars.due", "at_risk": "PT15M",
              "on": {"confirmed": {"to": "done"},
                     "late": {"when": "event.data.reason.size() > 0", "to": "explained"}},
              "timeout": {"to": "supervisor"}},
  "supervisor": {"kind": "wait", "owner": "supervisor", "deadline": "vars.due + duration('30m')", "at_risk": "PT1H",
                 "on": {"explained": {"to": "explained"}}},
  "explained": {"kind": "task", "actions": [{"set": {"reason": "event.data.reason"}}],
                "transitions": [{"to": "done"}]},
  "done": {"kind": "end", "outcome": "resolved"}}}"#;

#[test]
fn a_reason_sent_with_an_event_is_kept_by_the_next_stages_actions() {
    let wf = workflow(ESCALATION);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    sim.event(&id, "late", json!({"reason": "carrier strike"}))
        .unwrap();
    assert_eq!(sim.state(&id).status, Status::Completed);
    assert_eq!(sim.state(&id).vars["reason"], json!("carrier strike"));
}

#[test]
fn an_event_whose_data_does_not_fit_the_stages_conditions_is_refused_and_changes_nothing() {
    let wf = workflow(ESCALATION);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    let before = sim.state(&id).clone();
    let err = sim
        .event(&id, "late", json!({"note": "no reason field"}))
        .unwrap_err();
    assert!(matches!(err, Rejection::EventDataUnfit { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot evaluate event 'late'"),
        "{err}"
    );
    assert_eq!(sim.state(&id), &before);
}

#[test]
fn a_deadline_may_use_a_variable_the_stages_own_actions_set() {
    let wf = workflow(ESCALATION);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(at("2024-05-01T10:00:00Z"))
    );
    sim.advance(TimeDelta::minutes(44));
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);
    sim.advance(TimeDelta::minutes(1));
    assert_eq!(
        sim.state(&id).sla.state,
        SlaState::AtRisk,
        "yellow 15 minutes before the deadline"
    );
    sim.advance(TimeDelta::minutes(15));
    assert_eq!(
        sim.state(&id).stage,
        "supervisor",
        "escalated at the deadline"
    );
}

#[test]
fn a_stage_entered_inside_its_at_risk_window_is_at_risk_at_once() {
    let wf = workflow(ESCALATION);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    sim.advance(TimeDelta::hours(1));
    assert_eq!(sim.state(&id).stage, "supervisor");
    assert_eq!(
        sim.state(&id).sla.state,
        SlaState::AtRisk,
        "due 30 minutes after entry, with a 1-hour warning"
    );
}

#[test]
fn a_timer_for_a_stage_already_left_changes_nothing_and_says_so_in_the_history() {
    let wf = workflow(ESCALATION);
    let start =
        waystation_core::start(&wf, "i".into(), json!({}), at("2024-05-01T09:00:00Z")).unwrap();
    let timer = start.state.timers[0].id.clone();
    let left = waystation_core::apply(
        &wf,
        start.state,
        Input::Event {
            name: "confirmed".into(),
            data: json!({}),
            stage: None,
        },
        at("2024-05-01T09:10:00Z"),
    )
    .unwrap();
    let late = waystation_core::apply(
        &wf,
        left.state.clone(),
        Input::TimerFired { timer_id: timer },
        at("2024-05-01T10:00:00Z"),
    )
    .unwrap();
    assert_eq!(late.state.stage, left.state.stage);
    assert_eq!(late.state.status, left.state.status);
    assert!(
        matches!(&late.effects[..], [waystation_core::Effect::History(h)]
        if matches!(&h.event, HistoryEvent::TimerIgnored { reason, .. } if reason.contains("already completed")))
    );
}
