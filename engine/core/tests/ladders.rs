//! Escalation ladders and reminders: timers that act in place. The stage keeps waiting;
//! each step fires once, reminders repeat at most `times` and stop when the stage is left.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{HistoryEvent, Status, Workflow};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

/// A notifier that writes one mail to the address in its input's `to`.
fn mailer() -> FakePlugins {
    FakePlugins::new().notifier("mail", |input| {
        let to = input["to"].as_str().unwrap_or("nobody").to_owned();
        Ok(json!({"messages": [{"channel": "email", "recipient": to, "subject": "Ticket waiting", "body": "still open"}]}))
    })
}

/// The investigation ticket: waits 8 hours for the warehouse's reply; after 1 hour the
/// supervisor hears of it, after 4 hours the department manager, and the customer service
/// agent is reminded every 2 hours, at most 3 times.
fn investigation(extra: Value) -> Workflow {
    let mut wait = json!({
        "kind": "wait",
        "owner": "warehouse",
        "deadline": "PT8H",
        "escalation": [
            {"after": "PT1H", "actions": [{"notify": "mail", "input": "{'to': 'supervisor@example.com'}"}]},
            {"after": "PT4H", "actions": [
                {"notify": "mail", "input": "{'to': 'manager@example.com'}"},
                {"tag": "escalated"},
                {"set": {"escalation_level": "2"}}
            ]}
        ],
        "reminders": [{"every": "PT2H", "times": 3, "actions": [{"notify": "mail", "input": "{'to': 'agent@example.com'}"}]}],
        "on": {"replied": {"to": "closed"}, "comment": {"to": "waiting"}},
        "timeout": {"to": "closed"}
    });
    // A member set to null is taken out.
    if let (Some(w), Some(e)) = (wait.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                w.remove(k);
            } else {
                w.insert(k.clone(), v.clone());
            }
        }
    }
    let definition = json!({
        "id": "investigation",
        "title": "Investigation ticket",
        "start": "waiting",
        "stages": {
            "waiting": wait,
            "closed": {"kind": "end", "outcome": "closed"}
        }
    });
    Workflow::from_value(&definition, Some(&mailer())).expect("the ticket compiles")
}

fn recipients(sim: &Simulation<'_, FakePlugins>) -> Vec<String> {
    sim.outbox().iter().map(|m| m.recipient.clone()).collect()
}

fn count(sim: &Simulation<'_, FakePlugins>, id: &str, f: impl Fn(&HistoryEvent) -> bool) -> usize {
    sim.history(id).iter().filter(|e| f(&e.event)).count()
}

#[test]
fn an_unanswered_ticket_tells_the_supervisor_after_one_hour_and_the_manager_after_four_while_it_keeps_waiting(
) {
    let wf = investigation(json!({}));
    let mut sim = Simulation::new(&wf, mailer(), t0());
    let id = sim.start(json!({"ticket": "T-1"})).unwrap();

    sim.advance(TimeDelta::minutes(59));
    assert!(recipients(&sim).is_empty(), "nothing before the first hour");

    sim.advance(TimeDelta::minutes(1));
    assert_eq!(recipients(&sim), ["supervisor@example.com"]);
    assert_eq!(
        sim.state(&id).stage,
        "waiting",
        "escalation does not leave the stage"
    );

    sim.advance(hours(3));
    assert_eq!(
        recipients(&sim),
        [
            "supervisor@example.com",
            "agent@example.com", // 2 h reminder
            "manager@example.com",
            "agent@example.com", // 4 h reminder
        ]
    );
    let s = sim.state(&id);
    assert_eq!(s.stage, "waiting");
    assert_eq!(s.status, Status::Running);
    assert!(s.tags.contains("escalated"));
    assert_eq!(s.vars["escalation_level"], json!(2));

    let steps: Vec<(u32, DateTime<Utc>)> = sim
        .history(&id)
        .iter()
        .filter_map(|e| match &e.event {
            HistoryEvent::Escalated { step, due, .. } => Some((*step, *due)),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [(0, t0() + hours(1)), (1, t0() + hours(4))]);

    // The reply ends the wait: nothing fires any more.
    sim.event(&id, "replied", json!({})).unwrap();
    sim.advance(hours(48));
    assert_eq!(recipients(&sim).len(), 4);
    assert!(sim.armed_timers().is_empty());
}

#[test]
fn the_agent_is_reminded_every_two_hours_at_most_three_times() {
    let wf = investigation(json!({"deadline": "P2D", "escalation": []}));
    let mut sim = Simulation::new(&wf, mailer(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.advance(hours(24));
    assert_eq!(recipients(&sim), ["agent@example.com"; 3]);
    let rounds: Vec<(u32, u32)> = sim
        .history(&id)
        .iter()
        .filter_map(|e| match &e.event {
            HistoryEvent::Reminded { round, times, .. } => Some((*round, *times)),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, [(1, 3), (2, 3), (3, 3)]);
    assert_eq!(sim.state(&id).stage, "waiting");
}

#[test]
fn reminders_stop_when_the_reply_arrives_between_two_rounds() {
    let wf = investigation(json!({"escalation": []}));
    let mut sim = Simulation::new(&wf, mailer(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.advance(hours(3));
    sim.event(&id, "replied", json!({})).unwrap();
    sim.advance(hours(10));
    assert_eq!(recipients(&sim), ["agent@example.com"]);
}

#[test]
fn a_comment_that_loops_back_after_every_step_fired_does_not_escalate_again() {
    // No deadline: once both steps fired, the stage has no timer left at all.
    let wf = investigation(json!({"deadline": null, "timeout": null, "reminders": []}));
    let mut sim = Simulation::new(&wf, mailer(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.advance(hours(5));
    assert_eq!(
        count(&sim, &id, |e| matches!(e, HistoryEvent::Escalated { .. })),
        2
    );
    sim.event(&id, "comment", json!({"text": "still looking"}))
        .unwrap();
    sim.advance(hours(5));
    assert_eq!(
        count(&sim, &id, |e| matches!(e, HistoryEvent::Escalated { .. })),
        2,
        "the self-loop keeps the visit's ladder, fired or not"
    );
}

#[test]
fn a_step_counted_back_from_the_deadline_fires_thirty_minutes_before_it() {
    let wf = investigation(json!({
        "reminders": [],
        "escalation": [{"before_deadline": "PT30M", "actions": [{"tag": "last-call"}]}]
    }));
    let mut sim = Simulation::new(&wf, mailer(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.advance(TimeDelta::minutes(7 * 60 + 29));
    assert!(!sim.state(&id).tags.contains("last-call"));
    sim.advance(TimeDelta::minutes(1));
    assert!(sim.state(&id).tags.contains("last-call"));
    assert_eq!(sim.state(&id).stage, "waiting");
}

#[test]
fn a_failing_escalation_notice_takes_the_stage_error_branch_like_an_entry_notice() {
    let failing = FakePlugins::new().notifier("mail", |_| {
        Err(waystation_core::PluginFailure {
            kind: waystation_core::FailureKind::Trap,
            message: "smtp down".into(),
        })
    });
    let wf = investigation(json!({"reminders": [], "on_error": {"to": "closed"}}));
    let mut sim = Simulation::new(&wf, failing, t0());
    let id = sim.start(json!({})).unwrap();
    sim.advance(hours(1));
    let s = sim.state(&id);
    assert_eq!(s.stage, "closed");
    assert_eq!(s.vars["error"]["message"], json!("smtp down"));
}

fn errors_of(stage_extra: Value) -> Vec<(String, String)> {
    let mut stage = json!({"kind": "wait", "on": {"go": {"to": "done"}}});
    if let (Some(w), Some(e)) = (stage.as_object_mut(), stage_extra.as_object()) {
        w.extend(e.clone());
    }
    let definition = json!({
        "id": "t", "title": "t", "start": "w",
        "stages": {"w": stage, "done": {"kind": "end", "outcome": "done"}}
    });
    Workflow::from_value(&definition, None)
        .expect_err("the definition is refused")
        .into_iter()
        .map(|e| (e.pointer, e.message))
        .collect()
}

#[test]
fn a_ladder_step_at_or_after_the_deadline_is_refused_at_its_after() {
    let errors = errors_of(json!({
        "deadline": "PT4H",
        "timeout": {"to": "done"},
        "escalation": [{"after": "PT1H", "actions": [{"tag": "a"}]}, {"after": "PT4H", "actions": [{"tag": "b"}]}]
    }));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "/stages/w/escalation/1/after");
    assert!(
        errors[0]
            .1
            .contains("at or after the stage's deadline (PT4H)"),
        "{errors:?}"
    );
}

#[test]
fn before_deadline_without_a_deadline_and_a_step_with_both_anchors_are_refused() {
    let errors = errors_of(json!({
        "escalation": [
            {"before_deadline": "PT1H", "actions": [{"tag": "a"}]},
            {"after": "PT1H", "before_deadline": "PT1H", "actions": [{"tag": "b"}]}
        ]
    }));
    let pointers: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/stages/w/escalation/0/before_deadline",
            "/stages/w/escalation/1"
        ],
        "{errors:?}"
    );
}

#[test]
fn an_unknown_calendar_is_refused_at_its_pointer() {
    let errors = errors_of(json!({
        "reminders": [{"every": {"duration": "PT2H", "calendar": "cn-office"}, "times": 2, "actions": [{"tag": "r"}]}]
    }));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "/stages/w/reminders/0/every/calendar");
    assert!(
        errors[0]
            .1
            .contains("no business calendar named 'cn-office'"),
        "{errors:?}"
    );
}

#[test]
fn a_task_stage_cannot_escalate_because_it_never_waits() {
    let definition = json!({
        "id": "t", "title": "t", "start": "a",
        "stages": {
            "a": {"kind": "task", "escalation": [{"after": "PT1H", "actions": [{"tag": "x"}]}], "transitions": [{"to": "done"}]},
            "done": {"kind": "end", "outcome": "done"}
        }
    });
    let errors = Workflow::from_value(&definition, None).unwrap_err();
    assert!(
        errors.iter().any(|e| e.pointer.starts_with("/stages/a")),
        "{errors:?}"
    );
}
