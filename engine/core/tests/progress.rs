//! What a customer's progress link shows: by default the step titles and where the order
//! stands; what the definition's `progress` marks (the order number, the promised date);
//! never variables, input, owners or history.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use waystation_core::definition::progress::customer_view;
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::Workflow;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn orders(progress: Option<Value>) -> Workflow {
    let mut definition = json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "fields": {
            "promised": {"type": "keyword", "value": "input.promised", "title": "Promised delivery"},
            "margin": {"type": "number", "value": "input.margin", "title": "Margin"}
        },
        "start": "received",
        "stages": {
            "received": {"kind": "task", "title": "Order received",
                "actions": [{"set": {"risk_note": "'customer disputed twice'"}}],
                "transitions": [{"to": "packing"}]},
            "packing": {"kind": "wait", "title": "Packing", "owner": "warehouse",
                "on": {"packed": {"to": "fraud_check"}}},
            "fraud_check": {"kind": "wait", "title": "Fraud check",
                "on": {"cleared": {"to": "shipped"}}},
            "shipped": {"kind": "end", "title": "Shipped", "outcome": "shipped"}
        }
    });
    if let Some(p) = progress {
        definition["progress"] = p;
    }
    Workflow::from_value(&definition, None).expect("the orders definition compiles")
}

fn input() -> Value {
    json!({"order_no": "ORD-7", "promised": "2024-05-10", "margin": 31.5, "email": "li@example.com"})
}

#[test]
fn by_default_the_customer_sees_the_step_titles_and_where_the_order_stands_only() {
    let wf = orders(None);
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(input()).unwrap();
    let view = customer_view(&wf.definition, sim.state(&id));
    let text = serde_json::to_string(&view).unwrap();
    assert_eq!(view.status, "in_progress");
    assert_eq!(view.step.as_deref(), Some("Packing"));
    let steps: Vec<(&str, &str)> = view
        .steps
        .iter()
        .map(|s| (s.title.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("Order received", "done"),
            ("Packing", "current"),
            ("Fraud check", "upcoming")
        ]
    );
    for private in [
        "ORD-7",
        "2024-05-10",
        "31.5",
        "li@example.com",
        "disputed",
        "warehouse",
        &id,
    ] {
        assert!(!text.contains(private), "{private} is not shown: {text}");
    }
}

#[test]
fn the_definition_marks_the_order_number_the_promised_date_and_the_steps_listed() {
    let wf = orders(Some(json!({
        "title": "Your order", "key": true, "fields": ["promised"],
        "stages": ["received", "packing", "shipped"]
    })));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), t0());
    let id = sim.start(input()).unwrap();
    sim.event(&id, "packed", json!({})).unwrap();
    let view = customer_view(&wf.definition, sim.state(&id));
    assert_eq!(view.title, "Your order");
    assert_eq!(view.key.as_deref(), Some("ORD-7"));
    assert_eq!(view.fields.len(), 1, "the margin is not marked");
    assert_eq!(
        (view.fields[0].title.as_str(), &view.fields[0].value),
        ("Promised delivery", &json!("2024-05-10"))
    );
    assert_eq!(view.step, None, "the fraud check is never named");
    assert_eq!(view.status, "in_progress");
    sim.event(&id, "cleared", json!({})).unwrap();
    let view = customer_view(&wf.definition, sim.state(&id));
    assert_eq!(view.status, "completed");
    assert!(view.steps.iter().all(|s| s.state == "done"));
}

#[test]
fn a_progress_naming_an_unknown_field_or_stage_is_refused_at_its_pointer() {
    let definition = json!({
        "id": "orders", "title": "Orders", "start": "a",
        "progress": {"fields": ["nope"], "stages": ["a", "zz"]},
        "stages": {"a": {"kind": "wait", "on": {"go": {"to": "b"}}}, "b": {"kind": "end", "outcome": "x"}}
    });
    let errors = Workflow::from_value(&definition, None).unwrap_err();
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert!(pointers.contains(&"/progress/fields/0"), "{errors:?}");
    assert!(pointers.contains(&"/progress/stages/1"), "{errors:?}");
}
