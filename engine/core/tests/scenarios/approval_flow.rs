//! The benchmark workload: reviewer, then manager above 10,000; a rejection at either level
//! ends the request.

use serde_json::json;
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{HistoryEvent, Rejection, Status};
use waystation_fixtures::{at, load_workflow, sample};

#[test]
fn a_small_request_is_approved_by_the_reviewer_alone() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(sample("approval-flow", "small")).unwrap();
    let task = sim
        .task_for_role(&id, "reviewer")
        .expect("the reviewer has a task");
    sim.decide(&task.id, "rui", &["reviewer"], true, "fine")
        .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.outcome.as_deref(), Some("approved"));
    assert!(
        sim.tasks(&id).is_empty(),
        "no task stays open after the end"
    );
}

#[test]
fn a_large_request_also_needs_the_manager() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(sample("approval-flow", "large")).unwrap();
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.decide(&review.id, "rui", &["reviewer"], true, "ok")
        .unwrap();
    assert_eq!(sim.state(&id).stage, "manager");
    assert!(sim.task_for_role(&id, "reviewer").is_none());
    let manager = sim
        .task_for_role(&id, "manager")
        .expect("the manager has a task");
    sim.decide(&manager.id, "mei", &["manager"], true, "approved")
        .unwrap();
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("approved"));
}

#[test]
fn a_manager_rejection_ends_the_request_rejected_and_records_who_and_why() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(sample("approval-flow", "large")).unwrap();
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.decide(&review.id, "rui", &["reviewer"], true, "ok")
        .unwrap();
    let manager = sim.task_for_role(&id, "manager").unwrap();
    sim.decide(&manager.id, "mei", &["manager"], false, "over budget")
        .unwrap();
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("rejected"));
    let decided = sim.history(&id).iter().find_map(|h| match &h.event {
        HistoryEvent::Decided {
            decider,
            decision,
            comment,
            ..
        } if decision == "reject" => Some((decider.clone(), comment.clone())),
        _ => None,
    });
    assert_eq!(
        decided,
        Some(("mei".to_owned(), Some("over budget".to_owned())))
    );
}

#[test]
fn someone_without_the_role_cannot_decide_and_nothing_changes() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(sample("approval-flow", "large")).unwrap();
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    let before = sim.state(&id).clone();
    let err = sim
        .decide(&review.id, "ops", &["operator"], true, "")
        .unwrap_err();
    assert!(matches!(err, Rejection::NotAnApprover { .. }), "{err}");
    assert_eq!(sim.state(&id), &before);
}

#[test]
fn a_start_payload_without_an_amount_is_refused_with_its_pointer() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let err = sim
        .start(json!({"request_id": "REQ-9", "amount": "lots"}))
        .unwrap_err();
    let Rejection::InvalidInput(errors) = err else {
        panic!("expected invalid input")
    };
    assert_eq!(errors[0].pointer, "/amount");
}

#[test]
fn events_are_refused_in_an_approval_stage_that_lists_none() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(sample("approval-flow", "small")).unwrap();
    let err = sim.event(&id, "shipped", json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stage 'review' does not accept event 'shipped'; it accepts no events"
    );
}

#[test]
fn a_cancelled_request_closes_its_tasks_and_refuses_decisions() {
    let wf = load_workflow("approval-flow");
    let mut sim = Simulation::new(&wf, FakePlugins::new(), at("2024-05-01T09:00:00Z"));
    let id = sim.start(sample("approval-flow", "small")).unwrap();
    let review = sim.task_for_role(&id, "reviewer").unwrap();
    sim.cancel(&id, "ops").unwrap();
    assert_eq!(sim.state(&id).status, Status::Cancelled);
    assert!(sim.tasks(&id).is_empty());
    assert!(matches!(
        sim.decide(&review.id, "rui", &["reviewer"], true, ""),
        Err(Rejection::UnknownTask(_))
    ));
}
