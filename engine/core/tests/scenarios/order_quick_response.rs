//! Playbook 1, order quick response: abnormal orders go to the order specialist, the
//! priority sets the response SLA (high 1 h, medium 4 h, low 8 h), a missed confirmation
//! escalates to the supervisor who must say why, three departments confirm the plan,
//! tracking takes delay reports, and a failed acceptance goes to after-sales within 2 h.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{
    Cause, FailureKind, HistoryEvent, PluginFailure, Rejection, SlaState, Status,
};
use waystation_fixtures::{at, load_workflow, sample};

const WORKFLOW: &str = "order-quick-response";
/// When the orders of the samples come in.
const INTAKE: &str = "2024-05-06T09:00:00Z";

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

/// The playbook's priority rule, as the `order-priority` scorer implements it: each of
/// customer level, amount and urgency is rated high, medium or low, and the order takes the
/// highest rating. High: VIP, amount >= 100,000, delivery within 3 days. Medium: regular
/// customer, 10,000 to 100,000, 4 to 7 days. Low: new customer, < 10,000, 8 days or more.
fn order_priority(call: &Value) -> Result<Value, PluginFailure> {
    let order = &call["input"];
    let now = at(call["now"].as_str().expect("the engine passes now"));
    let mut reasons = Vec::new();
    let customer = match order["customer"]["level"].as_str() {
        Some("vip") => {
            reasons.push("VIP customer".to_owned());
            2
        }
        Some("regular") => {
            reasons.push("regular customer".to_owned());
            1
        }
        _ => 0,
    };
    let amount = order["amount"].as_f64().unwrap_or(0.0);
    let value = if amount >= 100_000.0 {
        reasons.push(format!("amount {amount} >= 100,000"));
        2
    } else if amount >= 10_000.0 {
        reasons.push(format!("amount {amount} >= 10,000"));
        1
    } else {
        0
    };
    let urgency = match order.get("promised_at").and_then(Value::as_str) {
        None => {
            reasons.push("no promised delivery date".to_owned());
            0
        }
        Some(promised) => {
            let days = (at(promised) - now).num_minutes() as f64 / (24.0 * 60.0);
            if days <= 3.0 {
                reasons.push(format!("delivery in {days:.1} days (3 or fewer)"));
                2
            } else if days <= 7.0 {
                reasons.push(format!("delivery in {days:.1} days (4 to 7)"));
                1
            } else {
                0
            }
        }
    };
    let priority = match customer.max(value).max(urgency) {
        2 => "high",
        1 => "medium",
        _ => "low",
    };
    Ok(json!({
        "score": (customer + value + urgency) * 100 / 6,
        "reasons": reasons,
        "labels": {"priority": priority},
    }))
}

fn plugins() -> FakePlugins {
    FakePlugins::new().scorer("order-priority", order_priority)
}

fn intake() -> DateTime<Utc> {
    at(INTAKE)
}

fn var<'a>(sim: &'a Simulation<'_, FakePlugins>, id: &str, name: &str) -> &'a Value {
    sim.state(id)
        .vars
        .get(name)
        .unwrap_or_else(|| panic!("variable '{name}' is not set"))
}

fn has_tag(sim: &Simulation<'_, FakePlugins>, id: &str, tag: &str) -> bool {
    sim.state(id).tags.contains(tag)
}

/// Confirms in time, plans in time, and has the three departments approve the plan.
fn confirm_plan_and_approve(sim: &mut Simulation<'_, FakePlugins>, id: &str) {
    sim.event(id, "confirmed", json!({})).unwrap();
    sim.event(id, "planned", json!({})).unwrap();
    for (role, who) in [
        ("production", "li.na"),
        ("procurement", "omar"),
        ("logistics", "kasia"),
    ] {
        let task = sim
            .task_for_role(id, role)
            .unwrap_or_else(|| panic!("{role} has a plan to confirm"));
        sim.decide(&task.id, who, &[role], true, "fits").unwrap();
    }
    assert_eq!(sim.state(id).stage, "tracking");
}

#[test]
fn priority_follows_customer_level_amount_and_urgency() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let cases = [
        (sample(WORKFLOW, "vip-high"), "high"),
        (sample(WORKFLOW, "regular-medium"), "medium"),
        (sample(WORKFLOW, "new-low"), "low"),
    ];
    for (order, expected) in cases {
        let id = sim.start(order.clone()).unwrap();
        assert_eq!(
            var(&sim, &id, "priority_level"),
            expected,
            "{}",
            order["order_no"]
        );
    }
    // A new customer is high priority with a large amount, or a delivery within 3 days.
    let mut big = sample(WORKFLOW, "new-low");
    big["amount"] = json!(150_000);
    let id = sim.start(big).unwrap();
    assert_eq!(var(&sim, &id, "priority_level"), "high");
    let mut soon = sample(WORKFLOW, "new-low");
    soon["promised_at"] = json!("2024-05-08T18:00:00Z");
    let id = sim.start(soon).unwrap();
    assert_eq!(var(&sim, &id, "priority_level"), "high");
}

#[test]
fn a_high_priority_order_with_no_confirmation_an_hour_after_intake_escalates_to_the_supervisor() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "vip-high")).unwrap();
    assert_eq!(sim.state(&id).stage, "confirm");
    assert_eq!(var(&sim, &id, "priority_level"), "high");
    assert_eq!(sim.state(&id).sla.deadline, Some(intake() + hours(1)));

    sim.advance(minutes(59));
    let state = sim.state(&id);
    assert_eq!(state.stage, "confirm", "not escalated before the hour");
    assert_ne!(state.sla.state, SlaState::Breached);
    assert!(!has_tag(&sim, &id, "response-sla-breached"));

    sim.advance(minutes(1));
    let state = sim.state(&id);
    assert_eq!(state.stage, "escalated");
    assert_eq!(state.status, Status::Running);
    assert!(has_tag(&sim, &id, "response-sla-breached"));
    assert_eq!(var(&sim, &id, "escalated_at"), "2024-05-06T10:00:00Z");
    let history = sim.history(&id);
    assert!(history.iter().any(|h| h.at == intake() + hours(1)
        && matches!(&h.event, HistoryEvent::SlaChanged { stage, sla: SlaState::Breached } if stage == "confirm")));
    assert!(history.iter().any(|h| matches!(&h.event,
        HistoryEvent::Transitioned { from, to, cause: Cause::Timeout } if from == "confirm" && to == "escalated")));
}

#[test]
fn the_supervisor_cannot_close_an_escalation_without_recording_the_reason() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "vip-high")).unwrap();
    sim.advance(hours(1));
    assert_eq!(sim.state(&id).stage, "escalated");

    let before = sim.state(&id).clone();
    let err = sim.event(&id, "confirmed", json!({})).unwrap_err();
    assert!(matches!(err, Rejection::NoBranchMatched { .. }), "{err}");
    let err = sim
        .event(&id, "confirmed", json!({"reason": ""}))
        .unwrap_err();
    assert!(matches!(err, Rejection::NoBranchMatched { .. }), "{err}");
    assert_eq!(sim.state(&id), &before, "a refused event changes nothing");

    sim.advance(minutes(20));
    let reason = "customer unreachable by phone; confirmed by email at 10:20";
    sim.event(
        &id,
        "confirmed",
        json!({"reason": reason, "by": "mei.supervisor"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "plan");
    let recorded = sim.history(&id).iter().find_map(|h| match &h.event {
        HistoryEvent::EventReceived { name, data } if name == "confirmed" => {
            Some((h.at, data["reason"].clone()))
        }
        _ => None,
    });
    assert_eq!(
        recorded,
        Some((intake() + minutes(80), json!(reason))),
        "the history keeps when and why"
    );
}

#[test]
fn a_medium_priority_order_gets_four_hours_and_a_low_priority_order_eight() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let medium = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    let low = sim.start(sample(WORKFLOW, "new-low")).unwrap();
    assert_eq!(var(&sim, &low, "priority_level"), "low");
    assert_eq!(sim.state(&medium).sla.deadline, Some(intake() + hours(4)));
    assert_eq!(sim.state(&low).sla.deadline, Some(intake() + hours(8)));

    sim.advance(hours(4) - minutes(1));
    assert_eq!(sim.state(&medium).stage, "confirm");
    sim.advance(minutes(1));
    assert_eq!(sim.state(&medium).stage, "escalated");
    assert_eq!(
        sim.state(&low).stage,
        "confirm",
        "a low-priority order has 8 hours"
    );

    sim.advance_to(intake() + hours(8) - minutes(1));
    assert_eq!(sim.state(&low).stage, "confirm");
    assert_eq!(sim.state(&low).sla.state, SlaState::AtRisk);
    sim.advance(minutes(1));
    assert_eq!(sim.state(&low).stage, "escalated");
}

#[test]
fn a_high_priority_order_turns_yellow_fifteen_minutes_before_its_confirmation_deadline() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "vip-high")).unwrap();
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);
    assert_eq!(sim.state(&id).sla.at_risk_at, Some(intake() + minutes(45)));
    sim.advance(minutes(44));
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);
    sim.advance(minutes(1));
    let state = sim.state(&id);
    assert_eq!(state.sla.state, SlaState::AtRisk);
    assert_eq!(state.stage, "confirm");
}

#[test]
fn a_high_priority_order_confirmed_in_time_takes_the_green_channel_and_is_planned_within_two_hours()
{
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "vip-high")).unwrap();
    sim.advance(minutes(40));
    sim.event(&id, "confirmed", json!({"by": "ana"})).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "plan");
    assert_eq!(state.sla.state, SlaState::OnTime);
    assert_eq!(state.sla.deadline, Some(intake() + hours(2)));
    assert_eq!(var(&sim, &id, "channel"), "green");
    assert_eq!(var(&sim, &id, "delivery_due"), "2024-05-16T09:00:00Z");
    assert!(!has_tag(&sim, &id, "response-sla-breached"));

    // Past 2 hours the plan is late: it is accepted only with a reason.
    sim.advance(minutes(80));
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
    assert!(matches!(
        sim.event(&id, "planned", json!({})),
        Err(Rejection::NoBranchMatched { .. })
    ));
    sim.event(
        &id,
        "planned",
        json!({"reason": "waiting for mould availability"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "plan_confirmation");
}

// Kept whole: one scenario told in order: three departments confirm side by side, logistics misses its hour, the supervisor takes over.
#[test]
fn production_procurement_and_logistics_confirm_side_by_side_and_a_late_one_escalates_to_the_supervisor(
) {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    sim.event(&id, "confirmed", json!({})).unwrap();
    sim.advance(hours(1));
    sim.event(&id, "planned", json!({})).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "plan_confirmation");
    assert_eq!(
        state.current_stages(),
        [
            "plan_confirmation",
            "production_confirmation",
            "procurement_confirmation",
            "logistics_confirmation"
        ]
    );
    // Each department has its own hour; the instance is as due as the earliest.
    for b in &state.branches {
        assert_eq!(
            b.frame.sla.deadline,
            Some(intake() + hours(2)),
            "{}",
            b.name
        );
    }
    assert_eq!(state.worst_sla().deadline, Some(intake() + hours(2)));
    assert_eq!(var(&sim, &id, "channel"), "standard");
    let mut roles: Vec<String> = sim
        .tasks(&id)
        .iter()
        .map(|t| t.approver.to_string())
        .collect();
    roles.sort();
    assert_eq!(roles.len(), 3, "{roles:?}");

    let production = sim.task_for_role(&id, "production").unwrap();
    sim.decide(
        &production.id,
        "li.na",
        &["production"],
        true,
        "line 2, 3 days",
    )
    .unwrap();
    let procurement = sim.task_for_role(&id, "procurement").unwrap();
    sim.decide(
        &procurement.id,
        "omar",
        &["procurement"],
        true,
        "belts in stock",
    )
    .unwrap();
    assert_eq!(
        sim.state(&id).stage,
        "plan_confirmation",
        "logistics has not confirmed"
    );
    sim.advance(hours(1));
    // Logistics breached its hour: the supervisor takes it over, the others are done.
    let state = sim.state(&id);
    assert_eq!(
        state.current_stages(),
        ["plan_confirmation", "logistics_late"]
    );
    assert!(has_tag(&sim, &id, "logistics-late"));
    assert!(state
        .sla_record
        .iter()
        .any(|r| r.stage == "logistics_confirmation" && r.breached()));
    assert!(
        sim.task_for_role(&id, "supervisor").is_some()
            && sim.task_for_role(&id, "logistics").is_some(),
        "logistics or the supervisor confirms now"
    );
    let late = sim.task_for_role(&id, "supervisor").unwrap();
    sim.decide(
        &late.id,
        "wang.supervisor",
        &["supervisor"],
        true,
        "carrier booked",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "tracking");
    assert!(sim.tasks(&id).is_empty());
}

#[test]
fn a_rejected_plan_goes_back_to_planning() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    sim.event(&id, "confirmed", json!({})).unwrap();
    sim.event(&id, "planned", json!({})).unwrap();
    let procurement = sim.task_for_role(&id, "procurement").unwrap();
    sim.decide(
        &procurement.id,
        "omar",
        &["procurement"],
        false,
        "belt supplier out until Friday",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "plan");
    assert!(
        sim.tasks(&id).is_empty(),
        "the other departments' tasks are closed"
    );
}

#[test]
fn an_order_without_a_delivery_date_is_abnormal_and_alerts_the_order_specialist() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim
        .start(sample(WORKFLOW, "abnormal-no-delivery-date"))
        .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "abnormal_review");
    assert!(state.tags.contains("abnormal"));
    assert_eq!(
        var(&sim, &id, "abnormal_reasons"),
        &json!(["missing delivery date", "stock conflict without prepayment"])
    );
    let task = sim
        .task_for_role(&id, "order-specialist")
        .expect("the order specialist has the order in the inbox");
    assert_eq!(task.stage, "abnormal_review");
    assert!(
        sim.plugins().calls().is_empty(),
        "no priority before the order is clarified"
    );

    sim.advance(minutes(30));
    sim.decide(
        &task.id,
        "ana",
        &["order-specialist"],
        true,
        "customer agreed on 20 May; deposit requested",
    )
    .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "confirm");
    assert_eq!(var(&sim, &id, "priority_level"), "medium");
    assert_eq!(
        state.sla.deadline,
        Some(intake() + minutes(30) + hours(4)),
        "the response clock starts once the order is clarified"
    );
}

#[test]
fn a_complete_order_is_not_abnormal() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    assert_eq!(var(&sim, &id, "abnormal_reasons"), &json!([]));
    assert_eq!(sim.state(&id).stage, "confirm");
    assert!(sim.tasks(&id).is_empty());
    // Vague custom work is abnormal on its own.
    let mut vague = sample(WORKFLOW, "regular-medium");
    vague["customization"] = json!("vague");
    let id = sim.start(vague).unwrap();
    assert_eq!(sim.state(&id).stage, "abnormal_review");
    assert_eq!(
        var(&sim, &id, "abnormal_reasons"),
        &json!(["vague custom requirements"])
    );
}

#[test]
fn an_abnormal_order_the_specialist_cannot_clarify_is_declined() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim
        .start(sample(WORKFLOW, "abnormal-no-delivery-date"))
        .unwrap();
    let task = sim.task_for_role(&id, "order-specialist").unwrap();
    sim.decide(
        &task.id,
        "ana",
        &["order-specialist"],
        false,
        "no stock and no deposit",
    )
    .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.outcome.as_deref(), Some("rejected"));
}

#[test]
fn when_the_priority_scorer_fails_the_order_is_treated_as_high_priority() {
    let wf = load_workflow(WORKFLOW);
    let broken = FakePlugins::new().scorer("order-priority", |_| {
        Err(PluginFailure {
            kind: FailureKind::Trap,
            message: "unreachable executed".to_owned(),
        })
    });
    let mut sim = Simulation::new(&wf, broken, intake());
    let id = sim.start(sample(WORKFLOW, "new-low")).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Running);
    assert_eq!(state.stage, "confirm");
    assert!(state.tags.contains("priority-fallback"));
    assert_eq!(var(&sim, &id, "priority_level"), "high");
    assert_eq!(var(&sim, &id, "error")["kind"], "trap");
    assert_eq!(var(&sim, &id, "error")["plugin"], "order-priority");
    assert_eq!(state.sla.deadline, Some(intake() + hours(1)));
}

#[test]
fn a_delay_of_a_day_or_more_is_reported_within_30_minutes_and_opens_a_contingency() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    confirm_plan_and_approve(&mut sim, &id);

    // Half a day is recorded, but is not a reportable delay.
    sim.event(
        &id,
        "delay_found",
        json!({"delay_days": 0.5, "cause": "late truck"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "tracking");
    assert!(!has_tag(&sim, &id, "delayed"));

    sim.advance(hours(20));
    sim.event(
        &id,
        "delay_found",
        json!({"delay_days": 2, "cause": "injection mould broke"}),
    )
    .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "delay_report");
    assert!(state.tags.contains("delayed"));
    assert_eq!(state.sla.deadline, Some(sim.now() + minutes(30)));

    sim.advance(minutes(30));
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
    assert!(matches!(
        sim.event(&id, "reported", json!({})),
        Err(Rejection::NoBranchMatched { .. })
    ));
    sim.event(&id, "reported", json!({"reason": "shift handover"}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "contingency");
    assert!(matches!(
        sim.event(&id, "contingency_opened", json!({"option": "pray"})),
        Err(Rejection::NoBranchMatched { .. })
    ));
    sim.event(&id, "contingency_opened", json!({"option": "backup_line"}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "tracking");
}

#[test]
fn a_failed_delivery_acceptance_goes_to_after_sales_within_two_hours() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    confirm_plan_and_approve(&mut sim, &id);
    sim.advance_to(at("2024-05-12T10:00:00Z"));
    sim.event(&id, "delivered", json!({})).unwrap();
    assert_eq!(sim.state(&id).stage, "acceptance");

    sim.advance(hours(3));
    sim.event(&id, "failed", json!({"finding": "4 of 8 belts torn"}))
        .unwrap();
    let failed_at = sim.now();
    let state = sim.state(&id);
    assert_eq!(state.stage, "after_sales");
    assert!(state.tags.contains("acceptance-failed"));
    assert_eq!(state.sla.deadline, Some(failed_at + hours(2)));

    sim.advance(minutes(90));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.event(&id, "contacted", json!({"remedy": "refund"}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "survey");
    assert_eq!(var(&sim, &id, "resolution"), "refunded");

    assert!(matches!(
        sim.event(&id, "rated", json!({"score": 9})),
        Err(Rejection::NoBranchMatched { .. })
    ));
    sim.event(&id, "rated", json!({"score": 3})).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.outcome.as_deref(), Some("refunded"));
}

#[test]
fn after_sales_contact_later_than_two_hours_needs_a_reason_and_a_reship_is_tracked_again() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "vip-high")).unwrap();
    confirm_plan_and_approve(&mut sim, &id);
    sim.event(&id, "delivered", json!({})).unwrap();
    sim.event(&id, "failed", json!({})).unwrap();
    sim.advance(hours(2));
    assert_eq!(sim.state(&id).stage, "after_sales");
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
    assert!(matches!(
        sim.event(&id, "contacted", json!({"remedy": "reship"})),
        Err(Rejection::NoBranchMatched { .. })
    ));
    sim.event(
        &id,
        "contacted",
        json!({"remedy": "reship", "reason": "customer in a meeting until 15:00"}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "tracking");
    sim.event(&id, "delivered", json!({})).unwrap();
    sim.event(&id, "passed", json!({})).unwrap();
    sim.advance(TimeDelta::days(3));
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(
        state.outcome.as_deref(),
        Some("delivered"),
        "no survey answer in 3 days closes the order"
    );
}

#[test]
fn a_partial_delivery_keeps_the_rest_of_the_order_in_tracking() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), intake());
    let id = sim.start(sample(WORKFLOW, "regular-medium")).unwrap();
    confirm_plan_and_approve(&mut sim, &id);
    sim.event(&id, "delivered", json!({})).unwrap();
    sim.event(&id, "partial", json!({"received": 5, "ordered": 8}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "tracking");
}

#[test]
fn an_order_received_on_friday_evening_is_not_breached_on_saturday_morning_its_sla_counts_office_hours(
) {
    let wf = load_workflow(WORKFLOW);
    // Friday 10 May 2024, 17:30 in Berlin (CEST): the order desk works until 20:00.
    let friday = at("2024-05-10T15:30:00Z");
    let mut sim = Simulation::new(&wf, plugins(), friday);
    let id = sim.start(sample(WORKFLOW, "new-low")).unwrap();
    assert_eq!(var(&sim, &id, "priority_level"), "low");
    // 2.5 office hours on Friday, 5.5 from 08:00 on Monday: 13:30 CEST.
    let due = at("2024-05-13T11:30:00Z");
    assert_eq!(sim.state(&id).sla.deadline, Some(due));

    sim.advance_to(at("2024-05-11T07:00:00Z")); // Saturday 09:00
    assert_eq!(sim.state(&id).stage, "confirm");
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);
    sim.advance_to(due - minutes(1));
    assert_eq!(sim.state(&id).stage, "confirm");
    sim.advance(minutes(1));
    assert_eq!(sim.state(&id).stage, "escalated");
}
