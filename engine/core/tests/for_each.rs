//! `for_each` on a parallel stage: one branch per shipment of an order, each with its own
//! stage, owner, deadline, SLA and timers, the shipment visible to its expressions; an
//! empty list joins at once, a list longer than the limit fails the step. Fixed clock.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::definition::MAX_FOR_EACH_BRANCHES;
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

/// Each shipment's carrier confirms its pickup within 1 hour (at risk after 45 minutes);
/// late, its id joins the list `vars.late` and the logistics lead has 4 more hours.
fn definition(join: Value) -> Value {
    json!({
        "id": "ship-order", "title": "Ship an order", "start": "confirm",
        "stages": {
            "confirm": {
                "kind": "parallel",
                "actions": [{"set": {"late": "[]"}}],
                "for_each": {
                    "items": "input.shipments",
                    "as": "shipment",
                    "branch": {"name": "shipment", "start": "ship_confirm"}
                },
                "join": join,
                "transitions": [{"to": "done"}]
            },
            "ship_confirm": {
                "kind": "wait", "owner": "carrier", "deadline": "PT1H", "at_risk": "PT15M",
                "actions": [{"set": {"carrier": "vars.shipment.carrier"}}],
                "on": {"confirmed": {"to": "ship_done"}},
                "timeout": {"to": "ship_late"}
            },
            "ship_late": {
                "kind": "wait", "owner": "logistics-lead", "deadline": "PT4H",
                "actions": [{"set": {"late": "vars.late + [vars.shipment.id]"}}],
                "on": {"confirmed": {"to": "ship_done"}},
                "timeout": {"to": "ship_lost"}
            },
            "ship_done": {"kind": "end", "outcome": "confirmed"},
            "ship_lost": {"kind": "end", "outcome": "lost"},
            "done": {"kind": "end", "outcome": "shipped"}
        }
    })
}

fn compile(definition: &Value) -> Workflow {
    Workflow::from_value(definition, None).unwrap_or_else(|e| panic!("compiles: {e:?}"))
}

fn shipments(n: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("s{i}"), "carrier": format!("carrier-{i}")}))
        .collect();
    json!({ "shipments": list })
}

fn branches(sim: &Simulation<'_, FakePlugins>, id: &str) -> Vec<(String, BranchStatus)> {
    sim.state(id)
        .branches
        .iter()
        .map(|b| (b.name.clone(), b.status))
        .collect()
}

// Kept whole: one scenario told in order: three branches with their own deadlines, one late and escalated, the others done.
#[test]
fn three_shipments_run_side_by_side_and_a_late_one_escalates_while_the_others_finish() {
    let wf = compile(&definition(json!({"rule": "all"})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(3)).unwrap();

    let s = sim.state(&id);
    assert_eq!(
        branches(&sim, &id),
        [
            ("shipment[0]".to_owned(), BranchStatus::Running),
            ("shipment[1]".to_owned(), BranchStatus::Running),
            ("shipment[2]".to_owned(), BranchStatus::Running),
        ]
    );
    // Each shipment's branch has its own deadline and at-risk timer.
    assert_eq!(sim.armed_timers().len(), 6);
    for b in &s.branches {
        assert_eq!(b.frame.stage, "ship_confirm");
        assert_eq!(b.frame.sla.deadline, Some(t0() + minutes(60)), "{}", b.name);
    }
    // The element is not an instance variable outside its branch.
    assert!(!s.vars.contains_key("shipment"));
    assert_eq!(
        s.vars["carrier"], "carrier-2",
        "the last branch's entry action ran last"
    );

    // The stage alone is ambiguous: three branches are in it.
    match sim.event_at(&id, "ship_confirm", "confirmed", json!({})) {
        Err(Rejection::AmbiguousEvent { stages, .. }) => assert_eq!(
            stages,
            [
                "shipment[0]/ship_confirm",
                "shipment[1]/ship_confirm",
                "shipment[2]/ship_confirm"
            ]
        ),
        other => panic!("expected an ambiguous event, got {other:?}"),
    }
    match sim.event(&id, "confirmed", json!({})) {
        Err(Rejection::AmbiguousEvent { stages, .. }) => assert_eq!(stages.len(), 3),
        other => panic!("expected an ambiguous event, got {other:?}"),
    }

    sim.advance(minutes(20));
    sim.event_at(&id, "shipment[0]/ship_confirm", "confirmed", json!({}))
        .unwrap();
    sim.advance(minutes(30)); // 50 minutes: the two still open are at risk
    assert_eq!(sim.state(&id).worst_sla().state, SlaState::AtRisk);
    sim.event_at(&id, "shipment[2]/ship_confirm", "confirmed", json!({}))
        .unwrap();

    sim.advance(minutes(10)); // 1 hour: shipment 1 breaches and escalates
    let s = sim.state(&id);
    assert_eq!(s.stage, "confirm");
    assert_eq!(s.current_stages(), ["confirm", "ship_late"]);
    assert_eq!(s.vars["late"], json!(["s1"]));
    assert_eq!(s.worst_sla().deadline, Some(t0() + minutes(300)));
    assert_eq!(
        branches(&sim, &id),
        [
            ("shipment[0]".to_owned(), BranchStatus::Ended),
            ("shipment[1]".to_owned(), BranchStatus::Running),
            ("shipment[2]".to_owned(), BranchStatus::Ended),
        ]
    );
    // One stage in one branch now: its name alone addresses it.
    sim.event_at(&id, "ship_late", "confirmed", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.outcome.as_deref(), Some("shipped"));
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
        json!({"shipment[0]": "confirmed", "shipment[1]": "confirmed", "shipment[2]": "confirmed"})
    );
    assert!(!sim.state(&id).vars.contains_key("shipment"));
}

#[test]
fn a_branch_sees_its_own_shipment_and_index() {
    let mut def = definition(json!({"rule": "all"}));
    def["stages"]["ship_confirm"]["actions"] = json!([{"set": {
        "late": "vars.late + [vars.shipment.carrier + ' at ' + string(vars.shipment_index)]"
    }}]);
    let wf = compile(&def);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(2)).unwrap();
    assert_eq!(
        sim.state(&id).vars["late"],
        json!(["carrier-0 at 0", "carrier-1 at 1"])
    );
}

#[test]
fn an_order_without_shipments_joins_at_once() {
    for rule in [
        json!({"rule": "all"}),
        json!({"rule": "any"}),
        json!({"rule": "at_least", "count": 2}),
    ] {
        let wf = compile(&definition(rule.clone()));
        let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
        let id = sim.start(shipments(0)).unwrap();
        let s = sim.state(&id);
        assert_eq!(s.status, Status::Completed, "{rule}");
        assert_eq!(s.outcome.as_deref(), Some("shipped"));
        assert!(sim.history(&id).iter().any(|e| matches!(
            &e.event,
            HistoryEvent::Joined { outcomes, .. } if outcomes.is_empty()
        )));
        assert!(sim.armed_timers().is_empty());
    }
}

#[test]
fn more_shipments_than_the_limit_fail_the_step_with_the_reason() {
    let wf = compile(&definition(json!({"rule": "all"})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(MAX_FOR_EACH_BRANCHES + 1)).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Failed);
    let reason = s.failure.as_deref().unwrap();
    assert!(
        reason.contains("65 elements") && reason.contains("64 branches"),
        "{reason}"
    );
    assert!(s.branches.is_empty());
    assert!(sim.armed_timers().is_empty());

    // Exactly the limit runs.
    let id = sim.start(shipments(MAX_FOR_EACH_BRANCHES)).unwrap();
    assert_eq!(sim.state(&id).branches.len(), MAX_FOR_EACH_BRANCHES);
}

#[test]
fn a_list_that_is_not_a_list_fails_the_step_naming_what_it_gave() {
    let wf = compile(&definition(json!({"rule": "all"})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({"shipments": "s1,s2"})).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Failed);
    let reason = s.failure.as_deref().unwrap();
    assert!(
        reason.contains("input.shipments") && reason.contains("a string, not a list"),
        "{reason}"
    );
}

#[test]
fn with_join_any_the_first_confirmed_shipment_moves_on_and_the_others_are_cancelled() {
    let wf = compile(&definition(json!({"rule": "any"})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(3)).unwrap();
    sim.advance(minutes(5));
    sim.event_at(&id, "shipment[1]/ship_confirm", "confirmed", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Completed);
    let cancelled: Vec<String> = sim
        .history(&id)
        .iter()
        .filter_map(|e| match &e.event {
            HistoryEvent::BranchCancelled { branch, .. } => Some(branch.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, ["shipment[0]", "shipment[2]"]);
    assert!(sim.armed_timers().is_empty());
}

#[test]
fn a_join_when_sees_the_element_of_the_branch_that_ended() {
    let mut def = definition(json!({"rule": "any", "when": "event.data.item.id == 's2'"}));
    def["stages"]["confirm"]["on_error"] = json!({"to": "done"});
    let wf = compile(&def);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(3)).unwrap();
    sim.event_at(&id, "shipment[0]/ship_confirm", "confirmed", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "confirm", "s0 does not count");
    sim.event_at(&id, "shipment[2]/ship_confirm", "confirmed", json!({}))
        .unwrap();
    assert_eq!(sim.state(&id).status, Status::Completed);
}

#[test]
fn a_branch_that_is_not_current_is_named_in_the_refusal() {
    let wf = compile(&definition(json!({"rule": "all"})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(2)).unwrap();
    match sim.event_at(&id, "shipment[7]/ship_confirm", "confirmed", json!({})) {
        Err(Rejection::StageNotCurrent { stage, current }) => {
            assert_eq!(stage, "shipment[7]/ship_confirm");
            assert_eq!(
                current,
                [
                    "confirm",
                    "shipment[0]/ship_confirm",
                    "shipment[1]/ship_confirm"
                ]
            );
        }
        other => panic!("expected stage-not-current, got {other:?}"),
    }
}

fn errors_of(def: &Value) -> Vec<(String, String)> {
    match Workflow::from_value(def, None) {
        Ok(_) => panic!("should not compile"),
        Err(errors) => errors
            .into_iter()
            .map(|e| (e.pointer.clone(), e.message.clone()))
            .collect(),
    }
}

#[test]
fn a_for_each_is_checked_with_pointers() {
    let mut def = definition(json!({"rule": "all"}));
    def["stages"]["confirm"]["for_each"]["items"] = json!("input.shipments +");
    let errors = errors_of(&def);
    assert!(
        errors
            .iter()
            .any(|(p, _)| p == "/stages/confirm/for_each/items"),
        "{errors:?}"
    );

    let mut def = definition(json!({"rule": "all"}));
    def["stages"]["confirm"]["for_each"]["branch"]["start"] = json!("ship_confirmm");
    let errors = errors_of(&def);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "/stages/confirm/for_each/branch/start"
                && m.contains("no stage named 'ship_confirmm'")),
        "{errors:?}"
    );

    let mut def = definition(json!({"rule": "all"}));
    def["stages"]["confirm"]["branches"] = json!([{"name": "a", "start": "ship_confirm"}]);
    let errors = errors_of(&def);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "/stages/confirm/for_each" && m.contains("not both")),
        "{errors:?}"
    );

    let mut def = definition(json!({"rule": "all"}));
    def["stages"]["confirm"]
        .as_object_mut()
        .unwrap()
        .remove("for_each");
    let errors = errors_of(&def);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "/stages/confirm"
                && m.contains("`branches` (one or more) or `for_each`")),
        "{errors:?}"
    );

    // A branch that leaves its parallel stage is caught for for_each as for branches.
    let mut def = definition(json!({"rule": "all"}));
    def["stages"]["ship_confirm"]["on"]["confirmed"] = json!({"to": "done"});
    let errors = errors_of(&def);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "/stages/ship_confirm/on/confirmed/to"
                && m.contains("branch 'shipment' of parallel stage 'confirm'")),
        "{errors:?}"
    );
}

#[test]
fn a_join_count_larger_than_the_list_is_known_only_when_entered_and_takes_on_error() {
    let mut def = definition(json!({"rule": "at_least", "count": 5}));
    // Accepted: the list's length is not known before the stage is entered.
    compile(&def);
    def["stages"]["confirm"]["on_error"] = json!({"to": "too_few"});
    def["stages"]["too_few"] = json!({"kind": "end", "outcome": "too_few"});
    let wf = compile(&def);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    // Two shipments can never make five: the stage takes its on_error as soon as it forks.
    let id = sim.start(shipments(2)).unwrap();
    let s = sim.state(&id);
    assert_eq!(s.outcome.as_deref(), Some("too_few"), "{:?}", s.failure);
    assert_eq!(s.vars["error"]["kind"], "join_unsatisfied");
    assert_eq!(s.vars["error"]["needed"], 5);
}

#[test]
fn each_shipment_s_work_is_given_to_its_own_person_by_its_branch() {
    let wf = compile(&definition(json!({"rule": "all"})));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(2)).unwrap();
    let give = |stage: &str, to: &str| waystation_core::Input::Assign {
        assignee: Some(to.to_owned()),
        by: "lead".to_owned(),
        stage: Some(stage.to_owned()),
    };
    match sim.apply(&id, give("ship_confirm", "ana")) {
        Err(Rejection::StageRequired { stages }) => assert_eq!(
            stages,
            ["shipment[0]/ship_confirm", "shipment[1]/ship_confirm"]
        ),
        other => panic!("expected stage-required, got {other:?}"),
    }
    sim.apply(&id, give("shipment[1]/ship_confirm", "ana"))
        .unwrap();
    let s = sim.state(&id);
    assert!(s.branches[0].frame.assignee.is_none());
    assert_eq!(s.branches[1].frame.assignee.as_ref().unwrap().user, "ana");
}

/// Each shipment is packed and labelled side by side: a parallel stage `handle` inside
/// every shipment's branch, with branches `pack` (waits for `packed`) and `label` (waits
/// for `labelled`).
fn nested_definition() -> Value {
    json!({
        "id": "ship-order", "title": "Ship an order", "start": "ship",
        "stages": {
            "ship": {
                "kind": "parallel",
                "for_each": {
                    "items": "input.shipments",
                    "as": "shipment",
                    "branch": {"name": "shipment", "start": "handle"}
                },
                "join": {"rule": "all"},
                "transitions": [{"to": "done"}]
            },
            "handle": {
                "kind": "parallel",
                "branches": [
                    {"name": "pack", "start": "pack_box"},
                    {"name": "label", "start": "print_label"}
                ],
                "join": {"rule": "all"},
                "transitions": [{"to": "handled"}]
            },
            "pack_box": {
                "kind": "wait", "owner": "packer", "deadline": "PT1H",
                "on": {"packed": {"to": "packed"}}
            },
            "print_label": {
                "kind": "wait", "owner": "clerk",
                "on": {"labelled": {"to": "labelled"}}
            },
            "packed": {"kind": "end", "outcome": "packed"},
            "labelled": {"kind": "end", "outcome": "labelled"},
            "handled": {"kind": "end", "outcome": "handled"},
            "done": {"kind": "end", "outcome": "shipped"}
        }
    })
}

#[test]
fn a_parallel_stage_inside_each_shipment_is_addressed_with_the_shipment_s_branch() {
    let wf = compile(&nested_definition());
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(2)).unwrap();
    let addresses = [
        "ship",
        "shipment[0]/handle",
        "shipment[0]/pack/pack_box",
        "shipment[0]/label/print_label",
        "shipment[1]/handle",
        "shipment[1]/pack/pack_box",
        "shipment[1]/label/print_label",
    ];
    assert_eq!(sim.state(&id).current_addresses(), addresses);

    // The inner branch's name alone fits both shipments: the refusal lists both.
    match sim.event_at(&id, "pack/pack_box", "packed", json!({})) {
        Err(Rejection::AmbiguousEvent { stages, .. }) => assert_eq!(
            stages,
            ["shipment[0]/pack/pack_box", "shipment[1]/pack/pack_box"]
        ),
        other => panic!("expected ambiguous, got {other:?}"),
    }
    // A branch that is not there, or skipping the inner branch, is not current.
    for wrong in [
        "shipment[2]/pack/pack_box",
        "shipment[1]/label/pack_box",
        "shipment[1]/handle/pack/pack_box",
    ] {
        match sim.event_at(&id, wrong, "packed", json!({})) {
            Err(Rejection::StageNotCurrent { stage, current }) => {
                assert_eq!(stage, wrong);
                assert_eq!(current, addresses);
            }
            other => panic!("{wrong}: expected stage-not-current, got {other:?}"),
        }
    }

    sim.advance(minutes(10));
    sim.event_at(&id, "shipment[1]/pack/pack_box", "packed", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(
        s.current_addresses(),
        [
            "ship",
            "shipment[0]/handle",
            "pack_box",
            "shipment[0]/label/print_label",
            "shipment[1]/handle",
            "shipment[1]/label/print_label",
        ],
        "shipment 1 is packed; shipment 0's box is the only one left, so its name alone fits"
    );
    assert_eq!(s.branches[1].frame.branches[0].status, BranchStatus::Ended);
    assert_eq!(
        s.branches[0].frame.branches[0].status,
        BranchStatus::Running
    );

    // Once unique, the bare stage name and the inner branch's name address it too.
    sim.event_at(&id, "pack_box", "packed", json!({})).unwrap();
    sim.event_at(&id, "shipment[0]/label/print_label", "labelled", json!({}))
        .unwrap();
    assert_eq!(branches(&sim, &id)[0].1, BranchStatus::Ended);
    assert_eq!(branches(&sim, &id)[1].1, BranchStatus::Running);
    assert_eq!(sim.state(&id).status, Status::Running);
    sim.event_at(&id, "label/print_label", "labelled", json!({}))
        .unwrap();
    let s = sim.state(&id);
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.stage, "done");
}

#[test]
fn each_shipment_s_packing_is_given_to_its_own_person_by_its_full_address() {
    let wf = compile(&nested_definition());
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(shipments(2)).unwrap();
    let give = |stage: &str, to: &str| waystation_core::Input::Assign {
        assignee: Some(to.to_owned()),
        by: "lead".to_owned(),
        stage: Some(stage.to_owned()),
    };
    match sim.apply(&id, give("pack/pack_box", "ana")) {
        Err(Rejection::StageRequired { stages }) => assert_eq!(
            stages,
            ["shipment[0]/pack/pack_box", "shipment[1]/pack/pack_box"]
        ),
        other => panic!("expected stage-required, got {other:?}"),
    }
    sim.apply(&id, give("shipment[1]/pack/pack_box", "ana"))
        .unwrap();
    let s = sim.state(&id);
    assert!(s.branches[0].frame.branches[0].frame.assignee.is_none());
    assert_eq!(
        s.branches[1].frame.branches[0]
            .frame
            .assignee
            .as_ref()
            .unwrap()
            .user,
        "ana"
    );
    assert_eq!(s.frame_at(&[1, 0]).unwrap().assignee.unwrap().user, "ana");
}
