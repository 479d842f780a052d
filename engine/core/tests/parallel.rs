//! Parallel stages: departments confirm a plan side by side, each with its own owner,
//! deadline and SLA; the join decides when the plan moves on, and the branches still
//! running then are cancelled with their timers and tasks. All on a fixed clock.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{BranchStatus, HistoryEvent, Rejection, SlaState, Status, Workflow};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn minutes(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

const DEPARTMENTS: [&str; 3] = ["production", "procurement", "logistics"];

/// One department's branch: confirm (or decline) within 1 hour, at risk after 45 minutes;
/// late, the supervisor takes it over for 4 more hours.
fn department(stages: &mut serde_json::Map<String, Value>, dept: &str) {
    stages.insert(
        format!("{dept}_confirm"),
        json!({
            "kind": "wait", "owner": dept, "deadline": "PT1H", "at_risk": "PT15M",
            "on": {
                "confirmed": {"to": format!("{dept}_done")},
                "declined": {"to": format!("{dept}_declined")}
            },
            "timeout": {"to": format!("{dept}_escalated")}
        }),
    );
    stages.insert(
        format!("{dept}_escalated"),
        json!({
            "kind": "wait", "owner": "supervisor", "deadline": "PT4H",
            "actions": [{"tag": format!("{dept}-late")}],
            "on": {"confirmed": {"to": format!("{dept}_done")}},
            "timeout": {"to": format!("{dept}_declined")}
        }),
    );
    stages.insert(
        format!("{dept}_done"),
        json!({"kind": "end", "outcome": "confirmed"}),
    );
    stages.insert(
        format!("{dept}_declined"),
        json!({"kind": "end", "outcome": "declined"}),
    );
}

/// The plan confirmation, with `join` as the parallel stage's join and `extra` merged
/// into the parallel stage.
fn definition(join: Value, extra: Value) -> Value {
    let mut stages = serde_json::Map::new();
    let mut confirm = json!({
        "kind": "parallel",
        "owner": "planner",
        "branches": DEPARTMENTS.iter().map(|d| json!({"name": d, "start": format!("{d}_confirm")})).collect::<Vec<_>>(),
        "join": join,
        "transitions": [{"to": "ship"}]
    });
    for (k, v) in extra.as_object().unwrap() {
        confirm[k] = v.clone();
    }
    stages.insert(
        "plan".into(),
        json!({"kind": "task", "transitions": [{"to": "confirm"}]}),
    );
    stages.insert("confirm".into(), confirm);
    for d in DEPARTMENTS {
        department(&mut stages, d);
    }
    stages.insert(
        "ship".into(),
        json!({"kind": "wait", "deadline": "PT8H", "on": {"shipped": {"to": "shipped"}}}),
    );
    stages.insert(
        "shipped".into(),
        json!({"kind": "end", "outcome": "shipped"}),
    );
    if extra.to_string().contains("replan") {
        stages.insert("replan".into(), json!({"kind": "end", "outcome": "replan"}));
    }
    json!({"id": "plan-confirmation", "title": "Plan confirmation", "start": "plan", "stages": stages})
}

fn compile(definition: &Value) -> Workflow {
    Workflow::from_value(definition, None).unwrap_or_else(|e| panic!("compiles: {e:?}"))
}

fn count(sim: &Simulation<'_, FakePlugins>, id: &str, f: impl Fn(&HistoryEvent) -> bool) -> usize {
    sim.history(id).iter().filter(|e| f(&e.event)).count()
}

fn branch_status(sim: &Simulation<'_, FakePlugins>, id: &str) -> Vec<(String, BranchStatus)> {
    sim.state(id)
        .branches
        .iter()
        .map(|b| (b.name.clone(), b.status))
        .collect()
}

#[test]
fn three_departments_confirm_side_by_side_and_the_plan_moves_on_when_all_have() {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();

    let s = sim.state(&id);
    assert_eq!(s.stage, "confirm");
    assert_eq!(
        s.current_stages(),
        [
            "confirm",
            "production_confirm",
            "procurement_confirm",
            "logistics_confirm"
        ]
    );
    // Each department has its own deadline and at-risk timer.
    assert_eq!(sim.armed_timers().len(), 6);
    for b in &s.branches {
        assert_eq!(b.frame.sla.deadline, Some(t0() + minutes(60)), "{}", b.name);
    }

    sim.advance(minutes(10));
    sim.event_at(&id, "production_confirm", "confirmed", json!({}))
        .unwrap();
    sim.event_at(&id, "logistics_confirm", "confirmed", json!({}))
        .unwrap();
    assert_eq!(
        sim.state(&id).stage,
        "confirm",
        "procurement has not confirmed"
    );
    assert_eq!(
        sim.state(&id).current_stages(),
        ["confirm", "procurement_confirm"]
    );
    assert_eq!(
        sim.armed_timers().len(),
        2,
        "only procurement's timers are left"
    );

    sim.event_at(&id, "procurement_confirm", "confirmed", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(s.stage, "ship");
    assert!(s.branches.is_empty());
    assert_eq!(
        count(&sim, &id, |e| matches!(
            e,
            HistoryEvent::BranchEnded { counted: true, .. }
        )),
        3
    );
    let joined = sim
        .history(&id)
        .iter()
        .find_map(|e| match &e.event {
            HistoryEvent::Joined { outcomes, .. } => Some(outcomes.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        Value::Object(joined),
        json!({"production": "confirmed", "procurement": "confirmed", "logistics": "confirmed"})
    );
    assert_eq!(sim.armed_timers().len(), 1, "ship's deadline only");
}

#[test]
fn a_department_that_has_not_confirmed_within_one_hour_escalates_to_the_supervisor_while_the_others_finish(
) {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();

    sim.advance(minutes(20));
    sim.event_at(&id, "production_confirm", "confirmed", json!({}))
        .unwrap();
    sim.advance(minutes(30)); // 50 minutes: the two still open are at risk
    assert_eq!(sim.state(&id).worst_sla().state, SlaState::AtRisk);
    sim.event_at(&id, "logistics_confirm", "confirmed", json!({}))
        .unwrap();

    sim.advance(minutes(10)); // 1 hour: procurement breaches and escalates
    let s = sim.state(&id);
    assert_eq!(s.stage, "confirm");
    assert_eq!(s.current_stages(), ["confirm", "procurement_escalated"]);
    assert!(s.tags.contains("procurement-late"));
    assert!(
        s.sla_record
            .iter()
            .any(|r| r.stage == "procurement_confirm" && r.breached()),
        "the breach is on procurement's record"
    );
    assert!(
        !s.sla_record
            .iter()
            .any(|r| r.stage != "procurement_confirm" && r.breached()),
        "nobody else breached"
    );
    assert_eq!(
        branch_status(&sim, &id),
        [
            ("production".to_owned(), BranchStatus::Ended),
            ("procurement".to_owned(), BranchStatus::Running),
            ("logistics".to_owned(), BranchStatus::Ended)
        ]
    );

    // Now only one stage takes `confirmed`: the event needs no stage name.
    sim.advance(minutes(30));
    sim.event(&id, "confirmed", json!({})).unwrap();
    assert_eq!(sim.state(&id).stage, "ship");
}

#[test]
fn the_instance_sla_is_the_worst_of_its_branches() {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    assert_eq!(sim.state(&id).worst_sla().state, SlaState::OnTime);
    assert_eq!(
        sim.state(&id).worst_sla().deadline,
        Some(t0() + minutes(60))
    );
    sim.advance(minutes(60));
    // All three breached and escalated to the supervisor: a fresh 4 hours each, on time.
    let s = sim.state(&id);
    assert_eq!(s.current_stages().len(), 4);
    assert_eq!(s.worst_sla().state, SlaState::OnTime);
    sim.advance(minutes(4 * 60 - 30));
    assert_eq!(
        sim.state(&id).worst_sla().state,
        SlaState::OnTime,
        "no at_risk there"
    );
    sim.event_at(&id, "production_escalated", "confirmed", json!({}))
        .unwrap();
    sim.advance(minutes(30));
    // The two left declined at the supervisor's deadline: all ended, join all satisfied.
    assert_eq!(sim.state(&id).stage, "ship");
}

#[test]
fn with_join_any_the_first_confirmation_moves_on_and_the_others_are_cancelled_with_their_timers() {
    let wf = compile(&definition(json!({"rule": "any"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.advance(minutes(5));
    sim.event_at(&id, "logistics_confirm", "confirmed", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(s.stage, "ship");
    let cancelled: Vec<(String, String)> = sim
        .history(&id)
        .iter()
        .filter_map(|e| match &e.event {
            HistoryEvent::BranchCancelled {
                branch, in_stage, ..
            } => Some((branch.clone(), in_stage.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        cancelled,
        [
            ("production".to_owned(), "production_confirm".to_owned()),
            ("procurement".to_owned(), "procurement_confirm".to_owned())
        ]
    );
    // Each entry reads back as stored: the cancelled branch's stage is not a second `at`
    // beside the entry's time (a store refused the duplicate member, and the history with it).
    for entry in sim.history(&id) {
        let text = serde_json::to_string(&entry).unwrap();
        let back: waystation_core::HistoryEntry = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{text} does not read back: {e}"));
        assert_eq!(&back, entry);
    }
    assert_eq!(sim.armed_timers().len(), 1, "only ship's deadline is armed");
    sim.advance(minutes(120));
    assert_eq!(
        count(&sim, &id, |e| matches!(e, HistoryEvent::SlaChanged { .. })),
        0,
        "cancelled branches never go at risk"
    );
}

#[test]
fn with_at_least_two_confirmed_one_decline_does_not_count_and_the_plan_moves_on_at_the_second_confirmation(
) {
    let join = json!({"rule": "at_least", "count": 2, "when": "event.data.outcome == 'confirmed'"});
    let wf = compile(&definition(join, json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.event_at(&id, "production_confirm", "declined", json!({}))
        .unwrap();
    sim.event_at(&id, "procurement_confirm", "confirmed", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "confirm");
    assert_eq!(
        count(&sim, &id, |e| matches!(
            e,
            HistoryEvent::BranchEnded { counted: false, .. }
        )),
        1
    );
    sim.event_at(&id, "logistics_confirm", "confirmed", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "ship");
}

#[test]
fn a_join_that_can_no_longer_be_satisfied_takes_on_error_or_fails_the_instance() {
    let join = json!({"rule": "at_least", "count": 2, "when": "event.data.outcome == 'confirmed'"});
    // With on_error: re-plan.
    let wf = compile(&definition(
        join.clone(),
        json!({"on_error": {"to": "replan"}}),
    ));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.event_at(&id, "production_confirm", "declined", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "confirm", "two may still confirm");
    sim.event_at(&id, "logistics_confirm", "declined", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(
        (s.status, s.outcome.as_deref()),
        (Status::Completed, Some("replan"))
    );
    assert_eq!(s.vars["error"]["kind"], "join_unsatisfied");
    assert!(sim.armed_timers().is_empty(), "procurement was cancelled");

    // Without: the instance fails, saying why.
    let wf = compile(&definition(join, json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.event_at(&id, "production_confirm", "declined", json!({}))
        .unwrap();
    sim.event_at(&id, "logistics_confirm", "declined", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Failed);
    assert!(
        s.failure
            .as_deref()
            .unwrap()
            .contains("can no longer be satisfied"),
        "{:?}",
        s.failure
    );
    assert!(sim.armed_timers().is_empty());
}

#[test]
fn an_event_several_branches_accept_must_name_its_stage() {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    match sim.event(&id, "confirmed", json!({})) {
        Err(Rejection::AmbiguousEvent { stages, .. }) => assert_eq!(
            stages,
            [
                "production_confirm",
                "procurement_confirm",
                "logistics_confirm"
            ]
        ),
        other => panic!("{other:?}"),
    }
    match sim.event_at(&id, "production_escalated", "confirmed", json!({})) {
        Err(Rejection::StageNotCurrent { stage, current }) => {
            assert_eq!(stage, "production_escalated");
            assert_eq!(current.len(), 4);
        }
        other => panic!("{other:?}"),
    }
    match sim.event(&id, "shipped", json!({})) {
        Err(Rejection::EventNotAccepted { accepted, .. }) => {
            assert_eq!(accepted, ["confirmed", "declined"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.history(&id).len(), sim.state(&id).history_len as usize);
    assert_eq!(
        sim.state(&id).current_stages().len(),
        4,
        "refusals change nothing"
    );
}

#[test]
fn cancelling_the_instance_cancels_every_branch_with_its_timers() {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.event_at(&id, "production_confirm", "confirmed", json!({}))
        .unwrap();
    sim.cancel(&id, "ops").unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Cancelled);
    assert_eq!(s.stage, "confirm");
    assert!(sim.armed_timers().is_empty());
    assert_eq!(
        count(&sim, &id, |e| matches!(
            e,
            HistoryEvent::BranchCancelled { .. }
        )),
        2
    );
}

#[test]
fn the_parallel_stages_own_deadline_cancels_the_branches_still_running() {
    let extra = json!({"deadline": "PT2H", "timeout": {"to": "replan"}});
    let wf = compile(&definition(json!({"rule": "all"}), extra));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    sim.event_at(&id, "production_confirm", "confirmed", json!({}))
        .unwrap();
    sim.advance(minutes(120));
    let s = sim.state(&id);
    assert_eq!(s.outcome.as_deref(), Some("replan"));
    assert!(sim.armed_timers().is_empty());
    assert!(s
        .sla_record
        .iter()
        .any(|r| r.stage == "confirm" && r.breached()));
}

/// Procurement confirms with two suppliers side by side: a parallel stage in a branch.
#[test]
fn a_branch_may_hold_a_parallel_stage_of_its_own() {
    let mut d = definition(json!({"rule": "all"}), json!({}));
    let stages = d["stages"].as_object_mut().unwrap();
    stages.remove("procurement_escalated");
    stages.remove("procurement_declined");
    stages.insert(
        "procurement_confirm".into(),
        json!({
            "kind": "parallel",
            "branches": [{"name": "steel", "start": "steel_ask"}, {"name": "paint", "start": "paint_ask"}],
            "transitions": [{"to": "procurement_done"}]
        }),
    );
    for s in ["steel", "paint"] {
        stages.insert(
            format!("{s}_ask"),
            json!({"kind": "wait", "deadline": "PT30M", "on": {"confirmed": {"to": format!("{s}_ok")}}}),
        );
        stages.insert(
            format!("{s}_ok"),
            json!({"kind": "end", "outcome": "confirmed"}),
        );
    }
    let wf = compile(&d);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&id).current_stages(),
        [
            "confirm",
            "production_confirm",
            "procurement_confirm",
            "steel_ask",
            "paint_ask",
            "logistics_confirm"
        ]
    );
    // A stage in the inner branch is addressed by its name, its branch's, or every
    // enclosing branch's; a branch skipped or misplaced is refused.
    assert!(matches!(
        sim.event_at(&id, "steel/procurement/steel_ask", "confirmed", json!({})),
        Err(Rejection::StageNotCurrent { .. })
    ));
    sim.event_at(&id, "procurement/steel/steel_ask", "confirmed", json!({}))
        .unwrap();
    sim.event_at(&id, "production_confirm", "confirmed", json!({}))
        .unwrap();
    sim.event_at(&id, "logistics_confirm", "confirmed", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "confirm", "paint is still open");
    sim.advance(minutes(30));
    // paint breached: no timeout, stays red; the worst SLA says so.
    assert_eq!(sim.state(&id).worst_sla().state, SlaState::Breached);
    sim.event_at(&id, "paint/paint_ask", "confirmed", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "ship");
    assert_eq!(
        count(&sim, &id, |e| matches!(e, HistoryEvent::Joined { .. })),
        2
    );
    // Cancel cascades through nesting too.
    let id = sim.start(json!({})).unwrap();
    sim.cancel(&id, "ops").unwrap();
    assert_eq!(
        count(&sim, &id, |e| matches!(
            e,
            HistoryEvent::BranchCancelled { .. }
        )),
        5
    );
    assert_eq!(
        sim.armed_timers().len(),
        1,
        "the first instance's ship deadline only"
    );
}

#[test]
fn an_approval_in_a_branch_is_decided_by_its_task_id() {
    let mut d = definition(json!({"rule": "all"}), json!({}));
    d["stages"]["logistics_confirm"] = json!({
        "kind": "approval",
        "deadline": "PT1H",
        "levels": [{"approvers": [{"role": "logistics"}]}],
        "on_approve": {"to": "logistics_done"},
        "on_reject": {"to": "logistics_declined"},
        "timeout": {"to": "logistics_escalated"}
    });
    let wf = compile(&d);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({"requested_by": "ana"})).unwrap();
    let task = sim
        .task_for_role(&id, "logistics")
        .expect("the branch opened its task");
    assert_eq!(task.stage, "logistics_confirm");
    assert_eq!(sim.state(&id).all_open_tasks().len(), 1);
    sim.decide(&task.id, "lea", &["logistics"], true, "trucks booked")
        .unwrap();
    assert!(sim.tasks(&id).is_empty());
    assert_eq!(
        branch_status(&sim, &id)[2],
        ("logistics".to_owned(), BranchStatus::Ended)
    );
}

/// A scorer in each branch: branches start one after another, each resuming after its
/// plugin result, and all three calls are made in one command.
#[test]
fn branches_that_call_plugins_on_entry_start_one_after_another() {
    let mut d = definition(json!({"rule": "all"}), json!({}));
    for dept in DEPARTMENTS {
        d["stages"][format!("{dept}_confirm")]["actions"] = json!([{"call": "load", "input": format!("{{'dept': '{dept}'}}"), "result": format!("{dept}_load")}]);
    }
    let plugins =
        FakePlugins::new().scorer("load", |i| Ok(json!({"dept": i["dept"], "load": 0.5})));
    let wf = Workflow::from_value(&d, Some(&plugins)).unwrap();
    let mut sim = Simulation::new(&wf, plugins, t0());
    let id = sim.start(json!({})).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.current_stages().len(), 4);
    for dept in DEPARTMENTS {
        assert_eq!(s.vars[&format!("{dept}_load")]["dept"], dept);
    }
    assert_eq!(sim.plugins().calls().len(), 3);
}

fn problems(definition: &Value) -> Vec<(String, String)> {
    match Workflow::from_value(definition, None) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.pointer, e.message)).collect(),
    }
}

fn has(problems: &[(String, String)], pointer: &str, words: &str) -> bool {
    problems
        .iter()
        .any(|(p, m)| p == pointer && m.contains(words))
}

#[test]
fn a_branch_that_leaves_its_parallel_stage_is_refused_at_the_transition() {
    let mut d = definition(json!({"rule": "all"}), json!({}));
    d["stages"]["logistics_escalated"]["on"]["confirmed"] = json!({"to": "ship"});
    let p = problems(&d);
    assert!(
        has(
            &p,
            "/stages/logistics_escalated/on/confirmed/to",
            "belongs to the main flow"
        ),
        "{p:?}"
    );
    // Entering a branch's stage from outside it is the same mistake.
    let mut d = definition(json!({"rule": "all"}), json!({}));
    d["stages"]["plan"]["transitions"] =
        json!([{"to": "production_confirm", "when": "false"}, {"to": "confirm"}]);
    let p = problems(&d);
    assert!(
        has(
            &p,
            "/stages/plan/transitions/0/to",
            "belongs to branch 'production' of parallel stage 'confirm'"
        ),
        "{p:?}"
    );
}

#[test]
fn unknown_branch_starts_duplicate_names_and_joins_that_can_never_be_satisfied_are_refused() {
    let mut d = definition(json!({"rule": "at_least", "count": 4}), json!({}));
    d["stages"]["confirm"]["branches"][1]["start"] = json!("procurment_confirm");
    d["stages"]["confirm"]["branches"][2]["name"] = json!("production");
    let p = problems(&d);
    assert!(
        has(
            &p,
            "/stages/confirm/branches/1/start",
            "did you mean 'procurement_confirm'"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "/stages/confirm/branches/2/name", "must be unique"),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "/stages/confirm/join/count",
            "needs 4 branches to end, but the stage has 3"
        ),
        "{p:?}"
    );

    let p = problems(&definition(json!({"rule": "at_least"}), json!({})));
    assert!(has(&p, "/stages/confirm/join", "needs `count`"), "{p:?}");
    let p = problems(&definition(json!({"rule": "any", "count": 2}), json!({})));
    assert!(
        has(
            &p,
            "/stages/confirm/join/count",
            "only to the rule `at_least`"
        ),
        "{p:?}"
    );
}

#[test]
fn a_join_all_over_a_branch_without_an_end_stage_of_its_own_is_refused() {
    let mut d = definition(json!({"rule": "all"}), json!({}));
    let stages = d["stages"].as_object_mut().unwrap();
    // Logistics loops between two stages and never ends.
    stages.insert(
        "logistics_confirm".into(),
        json!({"kind": "wait", "on": {"ping": {"to": "logistics_wait"}}}),
    );
    stages.insert(
        "logistics_wait".into(),
        json!({"kind": "wait", "on": {"ping": {"to": "logistics_confirm"}}}),
    );
    for s in [
        "logistics_escalated",
        "logistics_done",
        "logistics_declined",
    ] {
        stages.remove(s);
    }
    let p = problems(&d);
    assert!(
        has(
            &p,
            "/stages/confirm/join",
            "needs 3 branch(es) to end, but only 2 can; branch 'logistics' has no end stage"
        ),
        "{p:?}"
    );
    // The same branches under `any` are fine: one end is enough.
    d["stages"]["confirm"]["join"] = json!({"rule": "any"});
    let p = problems(&d);
    assert!(
        !p.iter().any(|(ptr, _)| ptr.starts_with("/stages/confirm")),
        "{p:?}"
    );
}

#[test]
fn the_schema_refuses_unknown_members_of_a_parallel_stage_with_their_pointer() {
    let mut d = definition(json!({"rule": "all"}), json!({}));
    d["stages"]["confirm"]["branches"][0]["owner"] = json!("production");
    d["stages"]["confirm"]["join"]["rule"] = json!("most");
    let p = problems(&d);
    assert!(
        has(
            &p,
            "/stages/confirm/branches/0/owner",
            "not a field of a parallel stage's branch; its fields are name, start, title"
        ),
        "{p:?}"
    );
    assert!(
        p.iter().any(|(ptr, _)| ptr == "/stages/confirm/join/rule"),
        "{p:?}"
    );
}

#[test]
fn the_graph_draws_the_fork_and_the_join() {
    let wf = compile(&definition(
        json!({"rule": "at_least", "count": 2}),
        json!({}),
    ));
    let m = waystation_core::graph::mermaid(&wf.definition);
    assert!(m.contains("s_confirm[["), "{m}");
    assert!(
        m.contains("s_confirm -->|\"fork production\"| s_production_confirm"),
        "{m}"
    );
    assert!(
        m.contains("s_confirm -->|\"joined (at least 2)\"| s_ship"),
        "{m}"
    );
}

fn give(stage: Option<&str>, to: Option<&str>, by: &str) -> waystation_core::Input {
    waystation_core::Input::Assign {
        assignee: to.map(str::to_owned),
        by: by.to_owned(),
        stage: stage.map(str::to_owned),
    }
}

#[test]
fn each_department_s_branch_has_its_own_assignee() {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();

    sim.apply(&id, give(Some("production_confirm"), Some("li"), "lead"))
        .unwrap();
    sim.apply(&id, give(Some("logistics_confirm"), Some("kasia"), "lead"))
        .unwrap();
    let s = sim.state(&id);
    let holder = |stage: &str| {
        s.branches
            .iter()
            .find(|b| b.frame.stage == stage)
            .and_then(|b| b.frame.assignee.as_ref())
            .map(|a| a.user.clone())
    };
    assert_eq!(holder("production_confirm").as_deref(), Some("li"));
    assert_eq!(holder("logistics_confirm").as_deref(), Some("kasia"));
    assert_eq!(holder("procurement_confirm"), None);
    assert!(
        s.assignee.is_none(),
        "the parallel stage's own work is nobody's"
    );
    let mut all: Vec<&str> = s.all_assignees().iter().map(|a| a.user.as_str()).collect();
    all.sort_unstable();
    assert_eq!(all, ["kasia", "li"]);
    assert!(sim.history(&id).iter().any(|e| matches!(
        &e.event,
        HistoryEvent::Assigned { stage, assignee: Some(a), .. } if stage == "logistics_confirm" && a == "kasia"
    )));

    // The planner's own stage is addressed by its name.
    sim.apply(&id, give(Some("confirm"), Some("pia"), "lead"))
        .unwrap();
    assert_eq!(sim.state(&id).assignee.as_ref().unwrap().user, "pia");

    // Releasing one branch's work leaves the others'.
    sim.apply(&id, give(Some("production_confirm"), None, "li"))
        .unwrap();
    let mut all: Vec<String> = sim
        .state(&id)
        .all_assignees()
        .iter()
        .map(|a| a.user.clone())
        .collect();
    all.sort_unstable();
    assert_eq!(all, ["kasia", "pia"]);
}

#[test]
fn work_given_without_a_stage_while_departments_run_side_by_side_is_refused_naming_them() {
    let wf = compile(&definition(json!({"rule": "all"}), json!({})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    match sim.apply(&id, give(None, Some("li"), "lead")) {
        Err(Rejection::StageRequired { stages }) => assert_eq!(
            stages,
            [
                "confirm",
                "production_confirm",
                "procurement_confirm",
                "logistics_confirm"
            ]
        ),
        other => panic!("expected stage-required, got {other:?}"),
    }
    match sim.apply(&id, give(Some("ship"), Some("li"), "lead")) {
        Err(Rejection::StageNotCurrent { stage, .. }) => assert_eq!(stage, "ship"),
        other => panic!("expected stage-not-current, got {other:?}"),
    }
    assert!(sim.state(&id).all_assignees().is_empty(), "nothing changed");

    // Once the plan moved on there is one current stage again: no name needed.
    for d in DEPARTMENTS {
        sim.event_at(&id, &format!("{d}_confirm"), "confirmed", json!({}))
            .unwrap();
    }
    assert_eq!(sim.state(&id).stage, "ship");
    sim.apply(&id, give(None, Some("li"), "lead")).unwrap();
    assert_eq!(sim.state(&id).assignee.as_ref().unwrap().user, "li");
}
