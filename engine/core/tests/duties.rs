//! Separation of duties in approvals: one person decides at most one level of an instance,
//! unless the definition relaxes the rule for a stage.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{Rejection, Status, Workflow};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A reviewer level, then a manager level in a second approval stage, as in
/// `approval-flow`; `manager_duties` is the manager stage's `separation_of_duties`.
fn two_levels(manager_duties: Option<Value>) -> Workflow {
    let mut manager = json!({
        "kind": "approval",
        "levels": [{"name": "manager", "approvers": [{"role": "manager"}]}],
        "on_approve": {"to": "approved"},
        "on_reject": {"to": "rejected"}
    });
    if let Some(d) = manager_duties {
        manager["separation_of_duties"] = d;
    }
    let definition = json!({
        "id": "spend",
        "title": "Spend request",
        "start": "review",
        "stages": {
            "review": {
                "kind": "approval",
                "levels": [{"name": "reviewer", "approvers": [{"role": "reviewer"}]}],
                "on_approve": {"to": "manager"},
                "on_reject": {"to": "rejected"}
            },
            "manager": manager,
            "approved": {"kind": "end", "outcome": "approved"},
            "rejected": {"kind": "end", "outcome": "rejected"}
        }
    });
    Workflow::from_value(&definition, None).expect("the two-level definition compiles")
}

#[test]
fn one_person_holding_both_approver_roles_cannot_approve_both_levels_alone() {
    let wf = two_levels(None);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({"amount": 50000})).unwrap();
    let both = ["reviewer", "manager"];
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.decide(&review.id, "lin", &both, true, "fine").unwrap();
    let manager = sim.task_for_role(&id, "manager").unwrap();
    let refused = sim
        .decide(&manager.id, "lin", &both, true, "me again")
        .unwrap_err();
    assert!(
        matches!(&refused, Rejection::SeparationOfDuties { decider, .. } if decider == "lin"),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "separation-of-duties");
    assert_eq!(
        sim.state(&id).stage,
        "manager",
        "the refusal changed nothing"
    );
    sim.decide(&manager.id, "mei", &["manager"], true, "ok")
        .unwrap();
    assert_eq!(sim.state(&id).status, Status::Completed);
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("approved"));
    let deciders: Vec<(&str, &str)> = sim
        .state(&id)
        .deciders
        .iter()
        .map(|(who, level)| (who.as_str(), level.as_str()))
        .collect();
    assert_eq!(
        deciders,
        [("lin", "review/reviewer"), ("mei", "manager/manager")]
    );
}

#[test]
fn a_rejection_at_one_level_also_counts_as_deciding_a_level() {
    // Rejected at review, the request is gone; what matters is that a decider is recorded
    // whatever the decision.
    let wf = two_levels(None);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.decide(&review.id, "lin", &["reviewer"], false, "no")
        .unwrap();
    assert_eq!(sim.state(&id).deciders["lin"], "review/reviewer");
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("rejected"));
}

#[test]
fn a_stage_that_relaxes_the_rule_lets_one_person_decide_again() {
    let wf = two_levels(Some(json!({"one_level_per_person": false})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    let both = ["reviewer", "manager"];
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.decide(&review.id, "lin", &both, true, "fine").unwrap();
    let manager = sim.task_for_role(&id, "manager").unwrap();
    sim.decide(&manager.id, "lin", &both, true, "small team")
        .unwrap();
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("approved"));
}

#[test]
fn the_person_who_started_an_instance_cannot_approve_it() {
    let wf = two_levels(None);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    // The driver records the starter from the caller's token; the simulation has none.
    sim.instance_mut(&id).started_by = Some("omar".to_owned());
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    let refused = sim
        .decide(&review.id, "omar", &["reviewer"], true, "my own")
        .unwrap_err();
    assert!(
        matches!(&refused, Rejection::SeparationOfDuties { decider, rule, .. }
            if decider == "omar" && rule.contains("started")),
        "{refused:?}"
    );
    sim.decide(&review.id, "rui", &["reviewer"], true, "ok")
        .unwrap();
    assert_eq!(sim.state(&id).stage, "manager");
}

#[test]
fn a_stage_may_let_the_starter_decide() {
    let definition = json!({
        "id": "self-service",
        "title": "Self service",
        "start": "review",
        "stages": {
            "review": {
                "kind": "approval",
                "separation_of_duties": {"starter_excluded": false},
                "levels": [{"approvers": [{"role": "reviewer"}]}],
                "on_approve": {"to": "done"},
                "on_reject": {"to": "done"}
            },
            "done": {"kind": "end", "outcome": "resolved"}
        }
    });
    let wf = Workflow::from_value(&definition, None).unwrap();
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.instance_mut(&id).started_by = Some("omar".to_owned());
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.decide(&review.id, "omar", &["reviewer"], true, "allowed here")
        .unwrap();
    assert_eq!(sim.state(&id).status, Status::Completed);
}

#[test]
fn a_misspelt_separation_rule_is_refused_at_its_pointer() {
    let definition = json!({
        "id": "typo",
        "title": "Typo",
        "start": "review",
        "stages": {
            "review": {
                "kind": "approval",
                "separation_of_duties": {"one_level_per_persons": false},
                "levels": [{"approvers": [{"role": "reviewer"}]}],
                "on_approve": {"to": "done"},
                "on_reject": {"to": "done"}
            },
            "done": {"kind": "end", "outcome": "resolved"}
        }
    });
    let errors = Workflow::from_value(&definition, None).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.pointer.starts_with("/stages/review/separation_of_duties")),
        "{errors:?}"
    );
}
