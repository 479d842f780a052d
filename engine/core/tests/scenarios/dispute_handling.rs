//! Playbook 4, dispute handling: accept, classify by the customer's words, investigate,
//! communicate, remedy, record, within 12 hours; and an order unshipped 48 hours after
//! payment reminds customer service.

use chrono::TimeDelta;
use serde_json::{json, Value};
use waystation_core::definition::StageKind;
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{
    Cause, FailureKind, HistoryEvent, PluginFailure, PluginInvoker, Rejection, SlaState, Status,
};
use waystation_fixtures::{at, load_workflow, sample};

const WORKFLOW: &str = "dispute-handling";

/// Keywords per dispute type, in Chinese and English, as the customer-service team lists them.
const KEYWORDS: [(&str, &[&str]); 5] = [
    (
        "wrong-information",
        &[
            "wrong address",
            "wrong information",
            "wrong size",
            "incorrect",
            "信息错误",
            "地址错",
            "描述不符",
        ],
    ),
    (
        "shipping-delay",
        &[
            "not shipped",
            "hasn't shipped",
            "has not shipped",
            "where is",
            "delayed",
            "late",
            "未发货",
            "没发货",
            "物流",
            "延迟",
        ],
    ),
    (
        "quality",
        &[
            "quality", "broken", "defect", "scratch", "damaged", "faulty", "质量", "破损", "划痕",
            "坏了", "闪屏",
        ],
    ),
    (
        "price",
        &[
            "price",
            "overcharged",
            "cheaper",
            "difference",
            "价格",
            "差价",
            "降价",
        ],
    ),
    (
        "after-sales",
        &[
            "after-sales",
            "no reply",
            "nobody answers",
            "support",
            "售后",
            "客服",
            "没人回复",
        ],
    ),
];

/// The dispute classifier: the type whose keywords the message hits most (the first on a
/// tie), with a confidence of 40 per keyword up to 100; no label at all when nothing matches.
fn dispute_classifier(input: &Value) -> Result<Value, PluginFailure> {
    let message = input["input"]["message"]
        .as_str()
        .ok_or_else(|| PluginFailure {
            kind: FailureKind::PluginError,
            message: "no message to classify".to_owned(),
        })?
        .to_lowercase();
    let mut best: Option<(&str, Vec<&str>)> = None;
    for (category, words) in KEYWORDS {
        let hits: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| message.contains(w))
            .collect();
        if !hits.is_empty() && best.as_ref().is_none_or(|(_, b)| hits.len() > b.len()) {
            best = Some((category, hits));
        }
    }
    Ok(match best {
        Some((category, hits)) => json!({
            "score": (hits.len() * 40).min(100),
            "reasons": hits.iter().map(|h| format!("matched '{h}'")).collect::<Vec<_>>(),
            "labels": {"category": category},
        }),
        None => json!({"score": 0, "reasons": ["no keyword matched"], "labels": {}}),
    })
}

/// The notifier's internal reminder to customer service.
fn tiered_notifier(input: &Value) -> Result<Value, PluginFailure> {
    if input["template"] != "unshipped-48h" {
        return Err(PluginFailure {
            kind: FailureKind::PluginError,
            message: format!("unknown template {}", input["template"]),
        });
    }
    let order = input["order_id"].as_str().unwrap_or("?");
    Ok(json!({"messages": [{
        "channel": "chat",
        "recipient": input["recipient"],
        "subject": format!("Order {order} not shipped 48 hours after payment"),
        "body": format!("Paid at {}, still not shipped. Dispute ticket {}: chase the warehouse and call the customer.",
            input["paid_at"].as_str().unwrap_or("?"), input["ticket"].as_str().unwrap_or("?")),
        "metadata": {"kind": "reminder", "audience": input["audience"]},
    }]}))
}

fn plugins() -> FakePlugins {
    FakePlugins::new()
        .scorer("dispute-classifier", dispute_classifier)
        .notifier("tiered-notifier", tiered_notifier)
}

fn sample_with(name: &str, changes: &Value) -> Value {
    let mut input = sample(WORKFLOW, name);
    for (key, value) in changes.as_object().expect("changes are an object") {
        input[key] = value.clone();
    }
    input
}

fn transitions<P: PluginInvoker>(
    sim: &Simulation<'_, P>,
    id: &str,
) -> Vec<(String, String, Cause)> {
    sim.history(id)
        .iter()
        .filter_map(|h| match &h.event {
            HistoryEvent::Transitioned { from, to, cause } => {
                Some((from.clone(), to.clone(), cause.clone()))
            }
            _ => None,
        })
        .collect()
}

fn moved(from: &str, to: &str, cause: Cause) -> (String, String, Cause) {
    (from.to_owned(), to.to_owned(), cause)
}

#[test]
fn a_dispute_is_accepted_with_a_ticket_assigned_and_a_12_hour_target() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-03T01:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "quality-zh")).unwrap();
    let state = sim.state(&id);
    assert_eq!(
        state.vars["ticket"],
        json!({
            "number": "DSP-202405-003",
            "order_id": "202405-003",
            "customer": "王芳",
            "channel": "app",
            "assigned_to": "zhao.lei",
            "opened_at": "2024-05-03T01:00:00Z",
        })
    );
    assert_eq!(state.vars["resolve_by"], "2024-05-03T13:00:00Z");

    let unassigned = sim.start(sample(WORKFLOW, "unshipped-en")).unwrap();
    assert_eq!(
        sim.state(&unassigned).vars["ticket"]["assigned_to"],
        "customer-service",
        "no named agent: the queue owns it"
    );
}

#[test]
fn a_chinese_quality_complaint_is_classified_as_quality() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-03T01:00:00Z"));
    let input = sample(WORKFLOW, "quality-zh");
    assert!(input["message"]
        .as_str()
        .unwrap()
        .starts_with("收到的商品有质量问题"));
    let id = sim.start(input).unwrap();

    let state = sim.state(&id);
    assert_eq!(state.vars["category"], "quality");
    assert_eq!(
        state.vars["classification"]["labels"]["category"],
        "quality"
    );
    assert!(state.vars["classification"]["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("matched '质量'")));
    assert_eq!(state.stage, "investigate");
    let calls = sim.plugins().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "dispute-classifier");
    assert_eq!(calls[0].1["input"]["order_id"], "202405-003");
    assert!(sim.history(&id).iter().any(|h| matches!(
        &h.event,
        HistoryEvent::PluginReturned { output, .. } if output["labels"]["category"] == "quality"
    )));
}

#[test]
fn each_kind_of_dispute_is_classified_by_its_keywords_in_either_language() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-08T09:00:00Z"));
    let cases = [
        (
            "The invoice shows the wrong address and the wrong size.",
            "wrong-information",
        ),
        ("订单信息错误，收货地址错了", "wrong-information"),
        ("My parcel is delayed, where is it?", "shipping-delay"),
        ("The screen arrived broken and scratched.", "quality"),
        ("价格比昨天贵了，要求退差价", "price"),
        ("Your PRICE went down the day after I paid.", "price"),
        ("售后客服三天没人回复", "after-sales"),
    ];
    for (message, category) in cases {
        let id = sim
            .start(sample_with(
                "price-difference",
                &json!({"message": message}),
            ))
            .unwrap();
        let state = sim.state(&id);
        assert_eq!(state.vars["category"], category, "{message}");
        assert_eq!(state.stage, "investigate", "{message}");
    }
}

#[test]
fn a_message_the_classifier_cannot_place_goes_to_a_person() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-08T09:00:00Z"));
    let id = sim
        .start(sample_with(
            "price-difference",
            &json!({"message": "请尽快联系我 / please call me back"}),
        ))
        .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.vars["category"], "unknown");
    assert_eq!(state.stage, "classify_by_hand");
    assert_eq!(state.status, Status::Running);
}

#[test]
fn a_failing_classifier_takes_on_error_and_a_person_classifies_the_dispute() {
    let wf = load_workflow(WORKFLOW);
    let broken = FakePlugins::new().scorer("dispute-classifier", |_| {
        Err(PluginFailure {
            kind: FailureKind::Trap,
            message: "wasm trap: unreachable".to_owned(),
        })
    });
    let mut sim = Simulation::new(&wf, broken, at("2024-05-03T01:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "quality-zh")).unwrap();

    let state = sim.state(&id);
    assert_eq!(state.status, Status::Running);
    assert_eq!(state.stage, "classify_by_hand");
    assert_eq!(
        state.vars["error"],
        json!({"plugin": "dispute-classifier", "kind": "trap", "message": "wasm trap: unreachable"})
    );
    assert!(!state.vars.contains_key("category"));
    assert!(transitions(&sim, &id).contains(&moved("classify", "classify_by_hand", Cause::Error)));
    assert_eq!(
        state.sla.deadline,
        Some(at("2024-05-03T13:00:00Z")),
        "the 12-hour target still runs"
    );

    let err = sim
        .event(&id, "classified", json!({"category": "spam"}))
        .unwrap_err();
    assert!(matches!(err, Rejection::NoBranchMatched { .. }), "{err}");
    sim.event(
        &id,
        "classified",
        json!({"category": "quality", "by": "zhao.lei"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "investigate");
}

#[test]
fn an_order_unshipped_48_hours_after_payment_reminds_customer_service() {
    let wf = load_workflow(WORKFLOW);
    // Paid at 10:00 on 1 May; the customer complains 22 hours later.
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-02T08:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "unshipped-en")).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.vars["category"], "shipping-delay");
    assert_eq!(state.stage, "watch_shipment");
    assert_eq!(state.sla.deadline, Some(at("2024-05-03T10:00:00Z")));

    sim.advance_to(at("2024-05-02T22:00:00Z"));
    assert_eq!(
        sim.state(&id).sla.state,
        SlaState::AtRisk,
        "36 h after payment"
    );
    assert!(sim.outbox().is_empty());

    sim.advance_to(at("2024-05-03T10:00:00Z"));
    let reminders = sim.outbox();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].recipient, "customer-service");
    assert_eq!(
        reminders[0].subject,
        "Order 202405-008 not shipped 48 hours after payment"
    );
    assert!(reminders[0].body.contains("DSP-202405-008"));
    assert_eq!(reminders[0].metadata["audience"], "customer-service");
    let path = transitions(&sim, &id);
    assert!(path.contains(&moved(
        "watch_shipment",
        "remind_customer_service",
        Cause::Timeout
    )));
    assert!(path.contains(&moved(
        "remind_customer_service",
        "investigate",
        Cause::Transition
    )));
    assert!(sim.history(&id).iter().any(|h| h.at == at("2024-05-03T10:00:00Z")
        && matches!(&h.event, HistoryEvent::MessageQueued { recipient, .. } if recipient == "customer-service")));
    assert_eq!(sim.state(&id).stage, "investigate");
}

#[test]
fn an_order_shipped_47_hours_after_payment_reminds_nobody() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-02T08:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "unshipped-en")).unwrap();
    sim.advance_to(at("2024-05-03T09:00:00Z"));
    sim.event(
        &id,
        "shipped",
        json!({"carrier": "SF Express", "tracking": "SF1234567890"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "investigate");

    sim.advance_to(at("2024-05-03T12:00:00Z"));
    assert!(sim.outbox().is_empty(), "{:?}", sim.outbox());
    assert!(!transitions(&sim, &id)
        .iter()
        .any(|(_, to, _)| to == "remind_customer_service"));
}

#[test]
fn a_shipping_complaint_about_an_order_already_shipped_is_investigated_at_once() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-02T08:00:00Z"));
    let id = sim
        .start(sample_with(
            "unshipped-en",
            &json!({"shipped_at": "2024-05-02T06:00:00Z"}),
        ))
        .unwrap();
    assert_eq!(sim.state(&id).vars["category"], "shipping-delay");
    assert_eq!(sim.state(&id).stage, "investigate");
}

#[test]
fn a_dispute_not_settled_in_12_hours_turns_yellow_at_9_and_red_at_12() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-03T01:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "quality-zh")).unwrap();
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(at("2024-05-03T13:00:00Z"))
    );
    sim.advance(TimeDelta::hours(8));
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);

    sim.event(
        &id,
        "findings",
        json!({"responsible": "supplier", "batch": "B-0424"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "communicate");
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(at("2024-05-03T13:00:00Z")),
        "the target counts from acceptance, not from each step"
    );
    sim.advance(TimeDelta::hours(1));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.advance(TimeDelta::hours(3));
    let state = sim.state(&id);
    assert_eq!(state.sla.state, SlaState::Breached);
    assert_eq!(
        state.stage, "communicate",
        "red on the board until it moves"
    );
}

#[test]
fn a_refund_on_a_larger_order_is_approved_by_after_sales_and_finance_and_recorded_within_target() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-08T09:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "price-difference")).unwrap();
    assert_eq!(sim.state(&id).vars["category"], "price");
    sim.advance(TimeDelta::hours(1));
    sim.event(
        &id,
        "findings",
        json!({"responsible": "pricing", "note": "promotion started the next day"}),
    )
    .unwrap();
    sim.advance(TimeDelta::hours(1));
    sim.event(
        &id,
        "remedy_agreed",
        json!({"remedy": "refund", "amount": 1200}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "approve_payout");

    let lead = sim.task_for_role(&id, "after-sales-lead").unwrap();
    sim.decide(
        &lead.id,
        "maria.costa",
        &["after-sales-lead"],
        true,
        "price protection applies",
    )
    .unwrap();
    let finance = sim
        .task_for_role(&id, "finance")
        .expect("15,800 needs finance too");
    sim.decide(&finance.id, "zhou.qi", &["finance"], true, "ok")
        .unwrap();
    assert_eq!(sim.state(&id).stage, "remedy_payout");
    sim.advance(TimeDelta::hours(2));
    sim.event(
        &id,
        "refunded",
        json!({"amount": 1200, "reference": "RF-88231"}),
    )
    .unwrap();

    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.outcome.as_deref(), Some("resolved"));
    assert_eq!(state.vars["closed_at"], "2024-05-08T13:00:00Z");
    assert_eq!(state.vars["time_to_settle"], "PT4H");
    assert_eq!(state.vars["within_target"], true);
}

#[test]
fn a_small_payout_needs_only_the_after_sales_lead() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-08T09:00:00Z"));
    let id = sim
        .start(sample_with(
            "unshipped-en",
            &json!({"shipped_at": "2024-05-02T06:00:00Z"}),
        ))
        .unwrap();
    sim.event(&id, "findings", json!({"responsible": "carrier"}))
        .unwrap();
    sim.event(
        &id,
        "remedy_agreed",
        json!({"remedy": "compensation", "amount": 50}),
    )
    .unwrap();
    let lead = sim.task_for_role(&id, "after-sales-lead").unwrap();
    sim.decide(
        &lead.id,
        "maria.costa",
        &["after-sales-lead"],
        true,
        "voucher",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "remedy_payout");
    assert!(sim.history(&id).iter().any(|h| matches!(
        &h.event,
        HistoryEvent::LevelSkipped { level, .. } if level == "finance"
    )));
}

#[test]
fn a_rejected_payout_goes_back_to_the_customer() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-08T09:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "price-difference")).unwrap();
    sim.event(&id, "findings", json!({"responsible": "customer"}))
        .unwrap();
    sim.event(
        &id,
        "remedy_agreed",
        json!({"remedy": "refund", "amount": 1200}),
    )
    .unwrap();
    let lead = sim.task_for_role(&id, "after-sales-lead").unwrap();
    sim.decide(
        &lead.id,
        "maria.costa",
        &["after-sales-lead"],
        false,
        "bought before the promotion was announced",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "communicate");
    assert!(transitions(&sim, &id).contains(&moved(
        "approve_payout",
        "communicate",
        Cause::Rejected
    )));
    sim.event(
        &id,
        "explained",
        json!({"note": "customer accepted a coupon for the next order"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("resolved"));
}

#[test]
fn a_reshipment_needs_no_approval_and_a_refund_cannot_skip_it() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at("2024-05-03T01:00:00Z"));
    let id = sim.start(sample(WORKFLOW, "quality-zh")).unwrap();
    sim.event(&id, "findings", json!({"responsible": "supplier"}))
        .unwrap();
    for unclear in [
        json!({"remedy": "free gift"}),
        json!({"note": "customer is happy"}),
    ] {
        let before = sim.state(&id).clone();
        let err = sim.event(&id, "remedy_agreed", unclear).unwrap_err();
        assert!(matches!(err, Rejection::NoBranchMatched { .. }), "{err}");
        assert_eq!(
            sim.state(&id),
            &before,
            "a remedy nobody can carry out changes nothing"
        );
    }
    sim.event(&id, "remedy_agreed", json!({"remedy": "reship"}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "remedy_goods");
    assert!(sim.tasks(&id).is_empty());
    let err = sim
        .event(&id, "refunded", json!({"amount": 2399}))
        .unwrap_err();
    assert!(matches!(err, Rejection::EventNotAccepted { .. }), "{err}");
    sim.event(&id, "reshipped", json!({"tracking": "YT9988776655"}))
        .unwrap();
    assert_eq!(sim.state(&id).status, Status::Completed);
}

#[test]
fn every_step_has_a_named_owner() {
    let wf = load_workflow(WORKFLOW);
    let unowned: Vec<&str> = wf
        .definition
        .stages
        .iter()
        .filter(|(_, s)| !matches!(s.kind, StageKind::End { .. }) && s.owner.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(unowned.is_empty(), "stages without an owner: {unowned:?}");
}
