//! Sub-workflows: the delay emergency opens a cross-department investigation as a child
//! instance of its own, waits for its end, and goes on by its outcome. The test plays the
//! driver: it starts the child the parent asks for and feeds the child's end back. All on a
//! fixed clock.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::validate::calls::check_calls;
use waystation_core::{
    ChildStart, Effect, HistoryEvent, Input, InstanceState, Rejection, Status, Workflow,
};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn compile(definition: &Value) -> Workflow {
    Workflow::from_value(definition, None).unwrap_or_else(|e| panic!("compiles: {e:?}"))
}

/// The reusable investigation: quality investigates within 4 hours and resolves or
/// rejects (the cause cannot be found).
fn investigation() -> Value {
    json!({
        "id": "investigation", "title": "Cross-department investigation", "start": "investigate",
        "input_schema": {"type": "object", "required": ["order_no", "reason"],
                         "properties": {"order_no": {"type": "string"}, "reason": {"type": "string"}}},
        "stages": {
            "investigate": {"kind": "wait", "owner": "quality", "deadline": "PT4H",
                "on": {"resolved": {"to": "resolved"}, "rejected": {"to": "rejected"}}},
            "resolved": {"kind": "end", "outcome": "resolved"},
            "rejected": {"kind": "end", "outcome": "rejected"}
        }
    })
}

/// The delay emergency: after the customer is told, it investigates as a sub-workflow
/// (1 day at most), then recovers the order or writes it off. `extra` is merged into the
/// sub-workflow stage.
fn emergency(extra: Value) -> Value {
    let mut investigate = json!({
        "kind": "subworkflow", "owner": "operations", "workflow": "investigation",
        "deadline": "P1D",
        "input": {"order_no": "input.order_no", "reason": "'delay of ' + string(input.days_late) + ' days'"},
        "result": "investigation",
        "on_outcome": {"resolved": {"to": "recover"}, "rejected": {"to": "write_off"}},
        "timeout": {"to": "escalated"}
    });
    for (k, v) in extra.as_object().unwrap() {
        investigate[k] = v.clone();
    }
    let routed_errors = investigate.get("on_error").is_some();
    let mut d = json!({
        "id": "delay-emergency-response", "title": "Delay emergency", "start": "inform",
        "stages": {
            "inform": {"kind": "task", "transitions": [{"to": "investigate"}]},
            "investigate": investigate,
            "recover": {"kind": "wait", "on": {"recovered": {"to": "done"}}},
            "write_off": {"kind": "end", "outcome": "written_off"},
            "escalated": {"kind": "end", "outcome": "escalated"},
            "done": {"kind": "end", "outcome": "recovered"}
        }
    });
    if routed_errors {
        d["stages"]["investigation_failed"] =
            json!({"kind": "end", "outcome": "investigation_failed"});
    }
    d
}

fn started(sim: &Simulation<'_, FakePlugins>) -> Vec<ChildStart> {
    sim.child_effects()
        .iter()
        .filter_map(|e| match e {
            Effect::StartChild(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn cancelled(sim: &Simulation<'_, FakePlugins>) -> Vec<String> {
    sim.child_effects()
        .iter()
        .filter_map(|e| match e {
            Effect::CancelChild { child, .. } => Some(child.clone()),
            _ => None,
        })
        .collect()
}

/// Starts the child the parent asked for, as a driver does, on the child's workflow.
fn start_child(wf: &Workflow, spec: &ChildStart, now: DateTime<Utc>) -> InstanceState {
    let step = waystation_core::start(wf, spec.id.clone(), spec.input.clone(), now)
        .unwrap_or_else(|r| panic!("the child starts: {r}"));
    let mut state = step.state;
    state.parent = Some(spec.parent.clone());
    state
}

fn event(wf: &Workflow, child: InstanceState, name: &str, now: DateTime<Utc>) -> InstanceState {
    let input = Input::Event {
        name: name.to_owned(),
        data: json!({"finding": format!("{name} by quality")}),
        stage: None,
    };
    waystation_core::apply(wf, child, input, now).unwrap().state
}

/// The end of `child` as the driver hands it to the parent.
fn end_of(child: &InstanceState) -> Input {
    Input::ChildEnded {
        child: child.id.clone(),
        status: child.status,
        outcome: child.outcome.clone(),
        reason: child.failure.clone(),
        output: Value::Object(child.vars.clone()),
    }
}

fn child_ends(sim: &Simulation<'_, FakePlugins>, id: &str) -> usize {
    sim.history(id)
        .iter()
        .filter(|e| matches!(e.event, HistoryEvent::ChildEnded { .. }))
        .count()
}

#[test]
fn a_resolved_investigation_lets_the_emergency_recover_the_order_with_the_findings() {
    let parent_wf = compile(&emergency(json!({})));
    let child_wf = compile(&investigation());
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1001", "days_late": 3}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "investigate");

    let asked = started(&sim);
    assert_eq!(asked.len(), 1, "one investigation is opened");
    let spec = &asked[0];
    assert!(spec.id.starts_with(&format!("{id}.w")), "{}", spec.id);
    assert_eq!(spec.workflow, "investigation");
    assert_eq!(
        spec.input,
        json!({"order_no": "SO-1001", "reason": "delay of 3 days"})
    );
    assert_eq!(spec.parent.instance, id);
    assert_eq!(spec.parent.stage, "investigate");
    assert_eq!(spec.parent.depth, 1);
    let waiting = sim
        .state(&id)
        .child
        .clone()
        .expect("the stage waits for it");
    assert_eq!(waiting.id, spec.id);
    assert_eq!(sim.state(&id).children, vec![waiting]);

    let child = start_child(&child_wf, spec, t0());
    let mut child = event(&child_wf, child, "resolved", t0() + TimeDelta::hours(2));
    child
        .vars
        .insert("root_cause".into(), json!("late raw material"));
    assert_eq!(child.status, Status::Completed);

    sim.advance(TimeDelta::hours(2));
    sim.apply(&id, end_of(&child)).unwrap();
    let parent = sim.state(&id);
    assert_eq!(parent.stage, "recover");
    assert_eq!(parent.child, None);
    assert_eq!(
        parent.vars["investigation"]["output"]["root_cause"],
        json!("late raw material"),
        "the child's output is visible to the parent"
    );
    assert_eq!(parent.vars["investigation"]["outcome"], json!("resolved"));
    assert!(sim.history(&id).iter().any(|e| matches!(
        &e.event,
        HistoryEvent::Transitioned { from, to, cause: waystation_core::Cause::ChildEnded }
            if from == "investigate" && to == "recover"
    )));
    assert_eq!(child_ends(&sim, &id), 1);
}

#[test]
fn the_same_child_end_delivered_twice_changes_nothing_the_second_time() {
    let parent_wf = compile(&emergency(json!({})));
    let child_wf = compile(&investigation());
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1002", "days_late": 1}))
        .unwrap();
    let child = start_child(&child_wf, &started(&sim)[0], t0());
    let child = event(&child_wf, child, "resolved", t0());
    sim.apply(&id, end_of(&child)).unwrap();
    let after_first = sim.state(&id).clone();

    let again = sim.apply(&id, end_of(&child));
    assert_eq!(again, Err(Rejection::UnexpectedChildEnd(child.id.clone())));
    assert_eq!(sim.state(&id), &after_first);
    assert_eq!(child_ends(&sim, &id), 1);
}

#[test]
fn a_rejected_investigation_writes_the_order_off() {
    let parent_wf = compile(&emergency(json!({})));
    let child_wf = compile(&investigation());
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1003", "days_late": 9}))
        .unwrap();
    let child = start_child(&child_wf, &started(&sim)[0], t0());
    let child = event(&child_wf, child, "rejected", t0());
    sim.apply(&id, end_of(&child)).unwrap();
    let parent = sim.state(&id);
    assert_eq!(parent.status, Status::Completed);
    assert_eq!(parent.outcome.as_deref(), Some("written_off"));
}

#[test]
fn a_failed_investigation_takes_the_stages_on_error_with_the_reason() {
    let parent_wf = compile(&emergency(
        json!({"on_error": {"to": "investigation_failed"}}),
    ));
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1004", "days_late": 2}))
        .unwrap();
    let child = started(&sim)[0].id.clone();
    sim.apply(
        &id,
        Input::ChildEnded {
            child: child.clone(),
            status: Status::Failed,
            outcome: None,
            reason: Some("plugin 'order-priority' failed".into()),
            output: Value::Null,
        },
    )
    .unwrap();
    let parent = sim.state(&id);
    assert_eq!(parent.outcome.as_deref(), Some("investigation_failed"));
    assert_eq!(parent.vars["error"]["child"], json!(child));
    assert_eq!(parent.vars["error"]["status"], json!("failed"));
}

#[test]
fn a_failed_investigation_without_on_error_fails_the_emergency_and_a_retry_opens_a_new_one() {
    let parent_wf = compile(&emergency(json!({})));
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1005", "days_late": 2}))
        .unwrap();
    let first = started(&sim)[0].id.clone();
    sim.apply(
        &id,
        Input::ChildEnded {
            child: first.clone(),
            status: Status::Cancelled,
            outcome: None,
            reason: Some("cancelled by an operator".into()),
            output: Value::Null,
        },
    )
    .unwrap();
    let parent = sim.state(&id);
    assert_eq!(parent.status, Status::Failed);
    let failure = parent.failure.clone().unwrap();
    assert!(
        failure.contains(&first) && failure.contains("cancelled"),
        "{failure}"
    );

    sim.retry(&id, "operator").unwrap();
    let asked = started(&sim);
    assert_eq!(asked.len(), 2, "the retry opens a new investigation");
    assert_ne!(asked[1].id, first, "each attempt has its own child id");
    assert_eq!(sim.state(&id).child.as_ref().unwrap().id, asked[1].id);
}

#[test]
fn an_outcome_the_stage_does_not_route_is_an_error_of_the_stage() {
    let parent_wf = compile(&emergency(
        json!({"on_error": {"to": "investigation_failed"}}),
    ));
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1006", "days_late": 2}))
        .unwrap();
    let child = started(&sim)[0].id.clone();
    sim.apply(
        &id,
        Input::ChildEnded {
            child,
            status: Status::Completed,
            outcome: Some("inconclusive".into()),
            reason: None,
            output: json!({}),
        },
    )
    .unwrap();
    assert_eq!(
        sim.state(&id).outcome.as_deref(),
        Some("investigation_failed")
    );
    let error = &sim.state(&id).vars["error"];
    assert_eq!(error["status"], "completed", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("outcome 'inconclusive', which on_outcome does not route"),
        "{error}"
    );
}

#[test]
fn cancelling_the_emergency_cancels_its_investigation_and_a_late_end_is_refused() {
    let parent_wf = compile(&emergency(json!({})));
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1007", "days_late": 2}))
        .unwrap();
    let child = started(&sim)[0].id.clone();
    sim.cancel(&id, "operator").unwrap();
    assert_eq!(cancelled(&sim), vec![child.clone()]);
    assert!(sim.history(&id).iter().any(|e| matches!(
        &e.event,
        HistoryEvent::ChildCancelled { child: c, stage } if *c == child && stage == "investigate"
    )));
    let late = sim.apply(
        &id,
        Input::ChildEnded {
            child: child.clone(),
            status: Status::Cancelled,
            outcome: None,
            reason: None,
            output: Value::Null,
        },
    );
    assert_eq!(late, Err(Rejection::UnexpectedChildEnd(child)));
}

#[test]
fn an_investigation_over_its_day_is_cancelled_and_the_emergency_escalates() {
    let parent_wf = compile(&emergency(json!({})));
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    let id = sim
        .start(json!({"order_no": "SO-1008", "days_late": 2}))
        .unwrap();
    let child = started(&sim)[0].id.clone();
    sim.advance(TimeDelta::days(1) + TimeDelta::minutes(1));
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("escalated"));
    assert_eq!(cancelled(&sim), vec![child]);
}

#[test]
fn the_child_id_is_the_same_when_a_step_is_computed_again_from_the_same_state() {
    let parent_wf = compile(&emergency(json!({})));
    let input = json!({"order_no": "SO-1009", "days_late": 2});
    let a = waystation_core::start(&parent_wf, "i-1".into(), input.clone(), t0()).unwrap();
    let b = waystation_core::start(&parent_wf, "i-1".into(), input, t0()).unwrap();
    let id = |s: &waystation_core::Step| {
        s.effects
            .iter()
            .find_map(|e| match e {
                Effect::StartChild(c) => Some(c.id.clone()),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(id(&a), id(&b));
}

#[test]
fn an_input_mapping_that_cannot_be_evaluated_fails_the_emergency_at_the_stage() {
    let parent_wf = compile(&emergency(json!({})));
    let mut sim = Simulation::new(&parent_wf, FakePlugins::new(), t0());
    // No days_late: the reason cannot be built.
    let id = sim.start(json!({"order_no": "SO-1010"})).unwrap();
    let parent = sim.state(&id);
    assert_eq!(parent.status, Status::Failed);
    assert!(parent.failure.as_ref().unwrap().contains("input 'reason'"));
    assert!(started(&sim).is_empty());
}

#[test]
fn a_branch_cancelled_by_its_join_cancels_the_investigation_it_waited_for() {
    let wf = compile(&json!({
        "id": "parallel-parent", "title": "P", "start": "both",
        "stages": {
            "both": {"kind": "parallel", "join": {"rule": "any"},
                "branches": [{"name": "inv", "start": "inv"}, {"name": "quick", "start": "quick"}],
                "transitions": [{"to": "done"}]},
            "inv": {"kind": "subworkflow", "workflow": "investigation",
                "input": {"order_no": "'SO-1'", "reason": "'x'"},
                "on_outcome": {"resolved": {"to": "inv_done"}}},
            "inv_done": {"kind": "end", "outcome": "ok"},
            "quick": {"kind": "wait", "on": {"fixed": {"to": "quick_done"}}},
            "quick_done": {"kind": "end", "outcome": "ok"},
            "done": {"kind": "end", "outcome": "done"}
        }
    }));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(json!({})).unwrap();
    let child = started(&sim)[0].id.clone();
    assert_eq!(sim.state(&id).waiting_children()[0].id, child);
    sim.event(&id, "fixed", json!({})).unwrap();
    assert_eq!(sim.state(&id).status, Status::Completed);
    assert_eq!(cancelled(&sim), vec![child]);
}

// --- validation -----------------------------------------------------------------------

fn errors_of(definition: &Value) -> Vec<(String, String)> {
    match Workflow::from_value(definition, None) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.pointer, e.message)).collect(),
    }
}

#[test]
fn an_outcome_leading_to_no_stage_is_refused_at_its_pointer() {
    let errors = errors_of(&emergency(
        json!({"on_outcome": {"resolved": {"to": "recovr"}}}),
    ));
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "/stages/investigate/on_outcome/resolved/to" && m.contains("recovr")),
        "{errors:?}"
    );
}

#[test]
fn a_subworkflow_stage_without_a_workflow_or_outcomes_is_refused_by_the_schema() {
    let mut d = emergency(json!({}));
    d["stages"]["investigate"]
        .as_object_mut()
        .unwrap()
        .remove("workflow");
    d["stages"]["investigate"]["on_outcome"] = json!({});
    let errors = errors_of(&d);
    assert!(
        errors.iter().any(|(p, _)| p == "/stages/investigate"),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(p, _)| p == "/stages/investigate/on_outcome"),
        "{errors:?}"
    );
}

type Known = HashMap<String, Arc<Workflow>>;

fn lookup(known: &Known) -> impl Fn(&str, Option<u32>) -> Option<Arc<Workflow>> + '_ {
    move |id, _| known.get(id).cloned()
}

#[test]
fn calling_a_workflow_that_does_not_exist_is_refused_at_upload() {
    let parent = compile(&emergency(json!({})));
    let errors = check_calls(&parent, &lookup(&Known::new()));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].pointer, "/stages/investigate/workflow");
    assert!(errors[0].message.contains("no workflow 'investigation'"));
}

#[test]
fn each_call_problem_says_its_kind_whatever_the_names_in_its_message() {
    use waystation_core::validate::calls::{call_problems, CallKind};
    // A called workflow whose id holds "input": still a missing workflow, not an input problem.
    let mut d = emergency(json!({}));
    d["stages"]["investigate"]["workflow"] = json!("input-review");
    let parent = compile(&d);
    let kinds: Vec<CallKind> = call_problems(&parent, &lookup(&Known::new()))
        .into_iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(kinds, [CallKind::Missing]);
    let parent = compile(&emergency(
        json!({"input": {"order_no": "input.order_no", "urgency": "'high'"}}),
    ));
    let mut child = investigation();
    child["input_schema"]["additionalProperties"] = json!(false);
    let known = Known::from([("investigation".to_owned(), Arc::new(compile(&child)))]);
    let problems = call_problems(&parent, &lookup(&known));
    assert!(!problems.is_empty());
    assert!(
        problems.iter().all(|p| p.kind == CallKind::Input),
        "{problems:?}"
    );
}

#[test]
fn a_mapping_that_leaves_out_a_required_input_is_refused_at_upload() {
    let parent = compile(&emergency(
        json!({"input": {"order_no": "input.order_no", "urgency": "'high'"}}),
    ));
    let mut child = investigation();
    child["input_schema"]["additionalProperties"] = json!(false);
    let known = Known::from([("investigation".to_owned(), Arc::new(compile(&child)))]);
    let errors = check_calls(&parent, &lookup(&known));
    let found: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.message.as_str()))
        .collect();
    assert!(
        found.iter().any(
            |(p, m)| *p == "/stages/investigate/input" && m.contains("requires input 'reason'")
        ),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(p, m)| *p == "/stages/investigate/input/urgency"
                && m.contains("takes no input 'urgency'")),
        "{found:?}"
    );
}

#[test]
fn a_mapping_that_gives_what_the_child_requires_passes() {
    let parent = compile(&emergency(json!({})));
    let known = Known::from([(
        "investigation".to_owned(),
        Arc::new(compile(&investigation())),
    )]);
    assert_eq!(check_calls(&parent, &lookup(&known)), vec![]);
}

/// Workflow `id` calling `calls` (or nobody).
fn caller(id: &str, calls: Option<&str>) -> Value {
    let mut stages = serde_json::Map::new();
    match calls {
        Some(c) => {
            stages.insert(
                "call".into(),
                json!({"kind": "subworkflow", "workflow": c, "on_outcome": {"done": {"to": "done"}}}),
            );
        }
        None => {
            stages.insert(
                "call".into(),
                json!({"kind": "wait", "on": {"go": {"to": "done"}}}),
            );
        }
    }
    stages.insert("done".into(), json!({"kind": "end", "outcome": "done"}));
    json!({"id": id, "title": id, "start": "call", "stages": stages})
}

#[test]
fn a_cycle_of_calls_is_refused_at_upload_with_the_chain() {
    // b is stored calling a; a is uploaded calling b.
    let known = Known::from([("b".to_owned(), Arc::new(compile(&caller("b", Some("a")))))]);
    let a = compile(&caller("a", Some("b")));
    let errors = check_calls(&a, &lookup(&known));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].pointer, "/stages/call/workflow");
    assert!(
        errors[0].message.contains("a -> b -> a"),
        "{}",
        errors[0].message
    );

    let selfish = compile(&caller("a", Some("a")));
    let errors = check_calls(&selfish, &lookup(&Known::new()));
    assert!(errors[0].message.contains("calls itself"), "{errors:?}");
}

#[test]
fn calls_nested_deeper_than_the_limit_are_refused_at_upload() {
    use waystation_core::definition::MAX_SUBWORKFLOW_DEPTH;
    // w1 -> w2 -> ... -> w(limit+1), each stored; w0 uploaded calling w1 is one too deep.
    let mut known = Known::new();
    let last = MAX_SUBWORKFLOW_DEPTH + 1;
    for i in 1..=last {
        let next = (i < last).then(|| format!("w{}", i + 1));
        known.insert(
            format!("w{i}"),
            Arc::new(compile(&caller(&format!("w{i}"), next.as_deref()))),
        );
    }
    let top = compile(&caller("w0", Some("w1")));
    let errors = check_calls(&top, &lookup(&known));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("deeper than the limit"),
        "{}",
        errors[0].message
    );
    // One level less is within the limit.
    let within = compile(&caller("w1", Some("w2")));
    known.remove("w1");
    assert_eq!(check_calls(&within, &lookup(&known)), vec![]);
}
