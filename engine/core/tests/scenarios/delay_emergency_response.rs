//! Playbook 3, delay emergency response: locate the stage, a 4-hour investigation ticket,
//! the customer told by tier, a temporary fix under special approval with the emergency
//! approval rules, and a post-mortem within 24 hours.

use chrono::TimeDelta;
use serde_json::{json, Value};
use waystation_core::definition::{Approver, StageKind};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{
    Cause, ChildStart, Effect, FailureKind, HistoryEvent, Input, PluginFailure, Rejection,
    SlaState, Status, Workflow,
};
use waystation_fixtures::{at, load_workflow, sample};

const WORKFLOW: &str = "delay-emergency-response";
/// When the delay is reported and the response starts.
const OPENED: &str = "2024-05-06T09:00:00Z";

/// One rendered message, as a notifier returns it.
fn message(channel: &str, recipient: &Value, subject: String, body: String, kind: &str) -> Value {
    json!({
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "metadata": {"kind": kind},
    })
}

/// The tiered notifier as playbook 3 describes it: strategic customers get a supervisor's
/// call, an email and a compensation offer; regular customers a personal call and a written
/// notice; new customers a standard email with a progress link. It never names a new date.
/// It also renders the internal "investigation overdue" escalation.
fn tiered_notifier(input: &Value) -> Result<Value, PluginFailure> {
    let order = input["order_id"].as_str().unwrap_or("?");
    let messages = match input["template"].as_str() {
        Some("delay-notice") => delay_notice(input, order)?,
        Some("investigation-overdue") => vec![message(
            "email",
            &json!("department-manager"),
            format!("Investigation ticket for order {order} unanswered after 4 hours"),
            format!("Ticket {} needs a reply now.", input["ticket"]["number"]),
            "escalation",
        )],
        other => {
            return Err(PluginFailure {
                kind: FailureKind::PluginError,
                message: format!("unknown template {other:?}"),
            })
        }
    };
    Ok(json!({ "messages": messages }))
}

/// The `delay-notice` messages of order `order` for the customer's tier.
fn delay_notice(input: &Value, order: &str) -> Result<Vec<Value>, PluginFailure> {
    let customer = &input["customer"];
    let name = customer["name"].as_str().unwrap_or("customer");
    let phone = &customer["contact"];
    let email = &customer["email"];
    let delay = &input["delay_days"];
    let ticket = input["ticket"].as_str().unwrap_or("?");
    let update = if input["notice_number"].as_i64().unwrap_or(1) > 1 {
        "Update: "
    } else {
        ""
    };
    let link = format!("https://track.example.com/orders/{order}");
    Ok(match input["tier"].as_str() {
        Some("strategic") => vec![
            message(
                "phone",
                phone,
                format!("{update}Supervisor call: order {order} is delayed"),
                format!("Call {name}: a delay of {delay} days on order {order} (ticket {ticket}); explain the recovery plan, promise no date before it is confirmed."),
                "supervisor-call",
            ),
            message(
                "email",
                email,
                format!("{update}Your order {order} is delayed"),
                format!("Dear {name}, order {order} will arrive about {delay} days late. We will confirm the new date as soon as it is certain. Progress: {link}"),
                "email",
            ),
            message(
                "email",
                email,
                format!("{update}Order {order}: our compensation offer"),
                format!("Dear {name}, for the inconvenience we offer a credit on order {order}."),
                "compensation-offer",
            ),
        ],
        Some("regular") => vec![
            message(
                "phone",
                phone,
                format!("{update}Personal call: order {order} is delayed"),
                format!("Call {name} about the {delay}-day delay on order {order}."),
                "personal-call",
            ),
            message(
                "email",
                email,
                format!("{update}Written notice: order {order} is delayed"),
                format!("Dear {name}, this confirms in writing that order {order} is delayed by about {delay} days. Progress: {link}"),
                "written-notice",
            ),
        ],
        Some("new") => vec![message(
            "email",
            email,
            format!("{update}Your order {order} is delayed"),
            format!("Hello {name}, your order {order} is delayed. Follow its progress at {link}"),
            "standard-email",
        )],
        other => {
            return Err(PluginFailure {
                kind: FailureKind::PluginError,
                message: format!("no message for customer tier {other:?}"),
            })
        }
    })
}

fn plugins() -> FakePlugins {
    FakePlugins::new().notifier("tiered-notifier", tiered_notifier)
}

/// A sample with some fields changed.
fn sample_with(name: &str, changes: &Value) -> Value {
    let mut input = sample(WORKFLOW, name);
    for (key, value) in changes.as_object().expect("changes are an object") {
        match (input.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(fields)) => {
                existing.extend(fields.clone());
            }
            _ => {
                input[key] = value.clone();
            }
        }
    }
    input
}

/// `(from, to, cause)` of every transition so far.
fn transitions<P: waystation_core::PluginInvoker>(
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

/// Level names whose tasks were opened, in order.
fn levels_opened<P: waystation_core::PluginInvoker>(
    sim: &Simulation<'_, P>,
    id: &str,
) -> Vec<String> {
    sim.history(id)
        .iter()
        .filter_map(|h| match &h.event {
            HistoryEvent::ApprovalOpened { level, .. } => Some(level.clone()),
            _ => None,
        })
        .collect()
}

fn moved(from: &str, to: &str, cause: Cause) -> (String, String, Cause) {
    (from.to_owned(), to.to_owned(), cause)
}

/// The investigation the emergency `id` opened (its child, asked for by the stage).
fn investigation_of<P: waystation_core::PluginInvoker>(
    sim: &Simulation<'_, P>,
    id: &str,
) -> ChildStart {
    sim.child_effects()
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::StartChild(c) if c.parent.instance == id => Some(c.clone()),
            _ => None,
        })
        .expect("the emergency opened an investigation")
}

/// The investigation ticket is answered (its child instance resolved, as the driver hands
/// it over): the customer is told and the fix is routed.
fn reply<P: waystation_core::PluginInvoker>(sim: &mut Simulation<'_, P>, id: &str) {
    let child = investigation_of(sim, id);
    sim.apply(
        id,
        Input::ChildEnded {
            child: child.id,
            status: Status::Completed,
            outcome: Some("resolved".into()),
            reason: None,
            output: json!({"finding": "QC rework needs 3 more days"}),
        },
    )
    .unwrap();
}

/// The investigation of emergency `id`, run on its own workflow from the input the
/// emergency gave it, in a simulation of its own from `OPENED`.
fn run_investigation(input: Value) -> (Workflow, Value) {
    (load_workflow("investigation"), input)
}

#[test]
fn the_blocked_stage_is_located_and_an_investigation_ticket_opens_with_a_4_hour_reply_deadline() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "investigate");
    assert_eq!(state.vars["blocked_at"], "production");
    assert_eq!(
        state.vars["last_touched_by"],
        "zhang.min (production planning)"
    );
    assert_eq!(
        state.vars["ticket"],
        json!({
            "number": "INV-202405-001",
            "order_id": "202405-001",
            "customer": "Huaxin Electronics",
            "problem": "Injection-moulded housings failed QC; the batch is being reworked",
            "initiator": "li.wei",
            "blocked_at": "production",
            "reply_by": "2024-05-06T13:00:00Z",
        })
    );
    // Yellow when the reply is overdue (4 h); red when the customer is told anyway (6 h).
    assert_eq!(state.sla.deadline, Some(at("2024-05-06T15:00:00Z")));
    assert_eq!(state.sla.at_risk_at, Some(at("2024-05-06T13:00:00Z")));
    // The ticket is an investigation of its own, started with it.
    let child = investigation_of(&sim, &id);
    assert_eq!(child.workflow, "investigation");
    assert_eq!(child.input["ticket"], state.vars["ticket"]);
    assert_eq!(child.input["supervisor"], "zhao.min");
    assert_eq!(
        state.child.as_ref().map(|c| c.id.as_str()),
        Some(child.id.as_str())
    );

    let unpaid = sim
        .start(sample(WORKFLOW, "date-changed-three-times"))
        .unwrap();
    assert_eq!(sim.state(&unpaid).vars["blocked_at"], "prepayment");
    assert_eq!(
        sim.state(&unpaid).vars["last_touched_by"],
        "nobody recorded"
    );
}

// Kept whole: one scenario told in order: the ticket hour by hour along its escalation ladder.
#[test]
fn an_investigation_ticket_escalates_in_place_to_the_supervisor_after_1_hour_and_the_department_manager_after_4(
) {
    let wf = load_workflow(WORKFLOW);
    let mut emergency = Simulation::new(&wf, plugins(), at(OPENED));
    let parent = emergency
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    // The ticket escalates in its own instance, the investigation.
    let (child_wf, input) = run_investigation(investigation_of(&emergency, &parent).input);
    let mut sim = Simulation::new(&child_wf, plugins(), at(OPENED));
    let id = sim.start(input).unwrap();

    sim.advance(TimeDelta::hours(1));
    let state = sim.state(&id);
    assert_eq!(state.stage, "investigate");
    assert!(
        state.tags.contains("supervisor-alerted"),
        "{:?}",
        state.tags
    );
    let owner = state
        .assignee
        .clone()
        .expect("the ticket is the supervisor's now");
    assert_eq!(
        (owner.user.as_str(), owner.by.as_str(), owner.stage.as_str()),
        ("zhao.min", "engine", "investigate")
    );
    let told: Vec<_> = sim
        .outbox()
        .iter()
        .map(|m| (m.channel.as_str(), m.recipient.as_str()))
        .collect();
    assert_eq!(
        told,
        [("assignment", "zhao.min")],
        "only the supervisor is told"
    );

    sim.advance(TimeDelta::hours(3));
    let state = sim.state(&id);
    assert_eq!(
        state.stage, "investigate",
        "the ticket keeps waiting for the reply"
    );
    assert_eq!(
        state.sla.state,
        SlaState::AtRisk,
        "yellow once the reply is overdue"
    );
    assert!(
        state.tags.contains("investigation-overdue"),
        "{:?}",
        state.tags
    );
    let steps: Vec<u32> = sim
        .history(&id)
        .iter()
        .filter_map(|h| match &h.event {
            HistoryEvent::Escalated { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [0, 1], "each step once");
    let escalation: Vec<_> = sim
        .outbox()
        .iter()
        .filter(|m| m.channel != "assignment")
        .collect();
    assert_eq!(escalation.len(), 1, "{escalation:?}");
    assert_eq!(escalation[0].recipient, "department-manager");
    assert!(
        escalation[0].body.contains("INV-202405-001"),
        "{}",
        escalation[0].body
    );
    assert!(
        sim.plugins()
            .calls()
            .iter()
            .all(|(_, input)| input["template"] != "delay-notice"),
        "the customer has not been told yet"
    );

    // The department manager gets the answer: the investigation resolves, and the
    // emergency, handed its end, tells the customer next.
    sim.event(
        &id,
        "replied",
        json!({"by": "production", "finding": "QC rework needs 3 more days"}),
    )
    .unwrap();
    let child = sim.state(&id);
    assert_eq!(
        (child.status, child.outcome.as_deref()),
        (Status::Completed, Some("resolved"))
    );
    emergency.advance(TimeDelta::hours(4));
    reply(&mut emergency, &parent);
    assert!(transitions(&emergency, &parent).contains(&moved(
        "investigate",
        "communicate",
        Cause::ChildEnded
    )));
}

#[test]
fn an_investigation_answered_within_4_hours_does_not_reach_the_department_manager() {
    let wf = load_workflow(WORKFLOW);
    let mut emergency = Simulation::new(&wf, plugins(), at(OPENED));
    let parent = emergency
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    let (child_wf, input) = run_investigation(investigation_of(&emergency, &parent).input);
    let mut sim = Simulation::new(&child_wf, plugins(), at(OPENED));
    let id = sim.start(input).unwrap();
    sim.advance(TimeDelta::minutes(3 * 60 + 50));
    sim.event(&id, "replied", json!({"by": "production"}))
        .unwrap();
    sim.advance(TimeDelta::hours(1));
    let state = sim.state(&id);
    assert!(state.tags.contains("supervisor-alerted"));
    assert!(!state.tags.contains("investigation-overdue"));
    assert!(!sim.history(&id).iter().any(|h| matches!(
        &h.event,
        HistoryEvent::SlaChanged { stage, sla: SlaState::Breached } if stage == "investigate"
    )));
    assert!(!sim
        .outbox()
        .iter()
        .any(|m| m.recipient == "department-manager"));
}

#[test]
fn an_investigation_the_department_manager_cannot_get_answered_in_2_more_hours_still_tells_the_customer(
) {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    let child = investigation_of(&sim, &id).id;
    sim.advance(TimeDelta::hours(6));
    assert!(transitions(&sim, &id).contains(&moved("investigate", "communicate", Cause::Timeout)));
    assert!(
        sim.child_effects()
            .iter()
            .any(|e| matches!(e, Effect::CancelChild { child: c, .. } if *c == child)),
        "the ticket still open is cancelled"
    );
    assert!(sim.history(&id).iter().any(|h| h.at == at("2024-05-06T15:00:00Z")
        && matches!(&h.event, HistoryEvent::SlaChanged { stage, sla: SlaState::Breached } if stage == "investigate")));
    assert_eq!(sim.state(&id).stage, "manager_approval");
    assert!(sim
        .outbox()
        .iter()
        .any(|m| m.recipient == "purchasing@huaxin.example.com"));
}

#[test]
fn a_strategic_customer_gets_a_supervisor_call_an_email_and_a_compensation_offer() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    reply(&mut sim, &id);

    let notice = sim
        .plugins()
        .calls()
        .into_iter()
        .find(|(name, input)| name == "tiered-notifier" && input["template"] == "delay-notice")
        .expect("the customer notice was rendered");
    assert_eq!(notice.1["tier"], "strategic");
    assert_eq!(notice.1["ticket"], "INV-202405-001");

    let sent: Vec<(&str, &str, &Value)> = sim
        .outbox()
        .iter()
        .map(|m| {
            (
                m.channel.as_str(),
                m.recipient.as_str(),
                &m.metadata["kind"],
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("phone", "+86 21 5555 0101", &json!("supervisor-call")),
            ("email", "purchasing@huaxin.example.com", &json!("email")),
            (
                "email",
                "purchasing@huaxin.example.com",
                &json!("compensation-offer")
            ),
        ]
    );
    assert!(sim.outbox().iter().all(|m| m.instance_id == id));
    assert!(
        sim.outbox().iter().all(|m| !m.body.contains("2024-05-")),
        "no new date is promised before it is confirmed"
    );
    let queued = sim
        .history(&id)
        .iter()
        .filter(|h| matches!(h.event, HistoryEvent::MessageQueued { .. }))
        .count();
    assert_eq!(queued, 3, "each message is in the audit trail");
}

#[test]
fn regular_customers_get_a_call_and_a_written_notice_and_new_customers_a_standard_email() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let regular = sim
        .start(sample(WORKFLOW, "class-a-before-holiday"))
        .unwrap();
    reply(&mut sim, &regular);
    let kinds = |sim: &Simulation<'_, FakePlugins>, id: &str| -> Vec<String> {
        sim.outbox()
            .iter()
            .filter(|m| m.instance_id == id)
            .map(|m| format!("{}:{}", m.channel, m.metadata["kind"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(
        kinds(&sim, &regular),
        ["phone:personal-call", "email:written-notice"]
    );

    let new = sim
        .start(sample(WORKFLOW, "date-changed-three-times"))
        .unwrap();
    reply(&mut sim, &new);
    assert_eq!(kinds(&sim, &new), ["email:standard-email"]);
    let email = sim.outbox().iter().find(|m| m.instance_id == new).unwrap();
    assert_eq!(email.recipient, "hello@greenleaf.example.com");
    assert!(
        email
            .body
            .contains("https://track.example.com/orders/202405-027"),
        "{}",
        email.body
    );
}

#[test]
fn a_failing_notifier_leaves_the_customer_notice_to_a_person_and_the_response_goes_on() {
    let wf = load_workflow(WORKFLOW);
    let broken = FakePlugins::new().notifier("tiered-notifier", |_| {
        Err(PluginFailure {
            kind: FailureKind::Timeout,
            message: "fuel exhausted".to_owned(),
        })
    });
    let mut sim = Simulation::new(&wf, broken, at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    reply(&mut sim, &id);
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Running);
    assert_eq!(state.stage, "inform_by_hand");
    assert_eq!(state.vars["error"]["plugin"], "tiered-notifier");
    assert_eq!(state.vars["error"]["kind"], "timeout");
    assert!(sim.outbox().is_empty());

    sim.event(
        &id,
        "customer_informed",
        json!({"by": "supervisor", "call_minutes": 12}),
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "manager_approval");
}

#[test]
fn amount_30000_with_a_3_day_delay_escalates_to_the_department_manager_automatically() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let input = sample(WORKFLOW, "strategic-small-order");
    assert_eq!(
        (&input["amount"], &input["delay_days"]),
        (&json!(30000), &json!(3))
    );
    let id = sim.start(input).unwrap();
    reply(&mut sim, &id);

    let state = sim.state(&id);
    assert_eq!(state.stage, "manager_approval");
    assert!(transitions(&sim, &id).contains(&moved(
        "temporary_fix",
        "manager_approval",
        Cause::Transition
    )));
    let tasks = sim.tasks(&id);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        tasks[0].approver,
        Approver::Role("department-manager".to_owned())
    );
    assert!(
        !sim.history(&id)
            .iter()
            .any(|h| matches!(h.event, HistoryEvent::Decided { .. })),
        "nobody had to escalate it by hand"
    );

    sim.decide(
        &tasks[0].id,
        "gao.yan",
        &["department-manager"],
        true,
        "ship 60% from Wuxi safety stock now",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "apply_fix");
    assert!(sim.tasks(&id).is_empty());
}

#[test]
fn larger_orders_and_delays_of_2_days_or_less_take_the_normal_approval_chain() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    for (amount, delay) in [(50000, 3), (80000, 5), (30000, 2)] {
        let id = sim
            .start(sample_with(
                "strategic-small-order",
                &json!({"amount": amount, "delay_days": delay}),
            ))
            .unwrap();
        reply(&mut sim, &id);
        assert_eq!(
            sim.state(&id).stage,
            "fix_approval",
            "amount {amount}, delay {delay} days"
        );
        assert!(sim.task_for_role(&id, "department-manager").is_none());
        assert!(sim.task_for_role(&id, "fulfilment-supervisor").is_some());
    }
}

#[test]
fn the_normal_chain_escalates_to_the_department_manager_when_it_takes_over_2_hours() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample_with(
            "strategic-small-order",
            &json!({"amount": 80000}),
        ))
        .unwrap();
    reply(&mut sim, &id);
    assert_eq!(sim.state(&id).stage, "fix_approval");
    sim.advance(TimeDelta::minutes(90));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.advance(TimeDelta::minutes(30));
    assert_eq!(sim.state(&id).stage, "manager_approval");
    assert!(transitions(&sim, &id).contains(&moved(
        "fix_approval",
        "manager_approval",
        Cause::Timeout
    )));
    assert!(sim.task_for_role(&id, "fulfilment-supervisor").is_none());
    assert!(sim.task_for_role(&id, "department-manager").is_some());
}

#[test]
fn a_class_a_customer_with_a_holiday_near_skips_one_approval_level() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "class-a-before-holiday"))
        .unwrap();
    reply(&mut sim, &id);
    assert_eq!(sim.state(&id).stage, "fix_approval");
    let supervisor = sim.task_for_role(&id, "fulfilment-supervisor").unwrap();
    sim.decide(
        &supervisor.id,
        "he.jun",
        &["fulfilment-supervisor"],
        true,
        "partial delivery from Kunshan",
    )
    .unwrap();

    assert_eq!(
        sim.state(&id).stage,
        "apply_fix",
        "approved after one level"
    );
    assert_eq!(levels_opened(&sim, &id), ["supervisor"]);
    let skipped: Vec<_> = sim
        .history(&id)
        .iter()
        .filter_map(|h| match &h.event {
            HistoryEvent::LevelSkipped { level, because } => {
                Some((level.as_str(), because.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].0, "operations-manager");
    assert!(skipped[0].1.contains("holiday_near"), "{}", skipped[0].1);
}

#[test]
fn without_a_holiday_near_or_without_class_a_no_level_is_skipped() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    for changes in [
        json!({"holiday_near": false}),
        json!({"customer": {"class": "B"}}),
    ] {
        let id = sim
            .start(sample_with("class-a-before-holiday", &changes))
            .unwrap();
        reply(&mut sim, &id);
        let supervisor = sim.task_for_role(&id, "fulfilment-supervisor").unwrap();
        sim.decide(
            &supervisor.id,
            "he.jun",
            &["fulfilment-supervisor"],
            true,
            "ok",
        )
        .unwrap();
        assert_eq!(sim.state(&id).stage, "fix_approval", "{changes}");
        let manager = sim
            .task_for_role(&id, "operations-manager")
            .expect("the operations manager must decide too");
        assert!(!sim
            .history(&id)
            .iter()
            .any(|h| matches!(h.event, HistoryEvent::LevelSkipped { .. })));
        sim.decide(&manager.id, "sun.li", &["operations-manager"], true, "ok")
            .unwrap();
        assert_eq!(sim.state(&id).stage, "apply_fix");
        assert_eq!(
            levels_opened(&sim, &id),
            ["supervisor", "operations-manager"]
        );
    }
}

#[test]
fn a_delivery_date_changed_by_hand_3_times_in_a_row_forces_a_risk_review() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "date-changed-three-times"))
        .unwrap();
    reply(&mut sim, &id);
    assert_eq!(sim.state(&id).stage, "risk_review");
    assert!(sim.task_for_role(&id, "fulfilment-supervisor").is_none());
    let review = sim.task_for_role(&id, "risk-manager").unwrap();
    sim.decide(
        &review.id,
        "qian.yu",
        &["risk-manager"],
        true,
        "spec frozen with the customer",
    )
    .unwrap();
    assert_eq!(
        sim.state(&id).stage,
        "fix_approval",
        "then the normal chain"
    );

    // Small, long delay and three date changes: the review first, then the emergency lane.
    let both = sim
        .start(sample_with(
            "date-changed-three-times",
            &json!({"delay_days": 4}),
        ))
        .unwrap();
    reply(&mut sim, &both);
    assert_eq!(sim.state(&both).stage, "risk_review");
    let review = sim.task_for_role(&both, "risk-manager").unwrap();
    sim.decide(&review.id, "qian.yu", &["risk-manager"], true, "ok")
        .unwrap();
    assert_eq!(sim.state(&both).stage, "manager_approval");

    // Two changes are not enough for a forced review.
    let two = sim
        .start(sample_with(
            "date-changed-three-times",
            &json!({"date_changes": 2}),
        ))
        .unwrap();
    reply(&mut sim, &two);
    assert_eq!(sim.state(&two).stage, "fix_approval");
}

#[test]
fn a_rejected_temporary_fix_goes_back_to_customer_communication() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    reply(&mut sim, &id);
    assert_eq!(sim.outbox().len(), 3, "first notice");
    let first = sim.task_for_role(&id, "department-manager").unwrap();
    sim.decide(
        &first.id,
        "gao.yan",
        &["department-manager"],
        false,
        "Wuxi stock is reserved for another customer",
    )
    .unwrap();

    assert!(transitions(&sim, &id).contains(&moved(
        "manager_approval",
        "communicate",
        Cause::Rejected
    )));
    let notices: Vec<Value> = sim
        .plugins()
        .calls()
        .into_iter()
        .filter(|(_, input)| input["template"] == "delay-notice")
        .map(|(_, input)| input["notice_number"].clone())
        .collect();
    assert_eq!(
        notices,
        [json!(1), json!(2)],
        "the customer hears of the change"
    );
    assert_eq!(sim.outbox().len(), 6);
    assert!(sim.outbox()[3..]
        .iter()
        .all(|m| m.subject.starts_with("Update: ")));

    // A new fix is proposed and approved afresh.
    assert_eq!(sim.state(&id).stage, "manager_approval");
    let second = sim.task_for_role(&id, "department-manager").unwrap();
    assert_ne!(second.id, first.id);
    sim.decide(
        &second.id,
        "gao.yan",
        &["department-manager"],
        true,
        "partial delivery instead",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "apply_fix");
}

#[test]
fn the_temporary_fix_runs_under_the_special_approval_tag() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "class-a-before-holiday"))
        .unwrap();
    assert!(sim.state(&id).tags.is_empty(), "nothing special yet");
    reply(&mut sim, &id);
    assert!(sim.state(&id).tags.contains("special-approval"));
    let tagged: Vec<_> = sim
        .history(&id)
        .iter()
        .filter(|h| matches!(&h.event, HistoryEvent::Tagged { tag } if tag == "special-approval"))
        .collect();
    assert_eq!(tagged.len(), 1);

    // Rejected and re-routed, it is still tagged once; it stays tagged to the end for audit.
    let task = sim.task_for_role(&id, "fulfilment-supervisor").unwrap();
    sim.decide(&task.id, "he.jun", &["fulfilment-supervisor"], false, "no")
        .unwrap();
    let task = sim.task_for_role(&id, "fulfilment-supervisor").unwrap();
    sim.decide(&task.id, "he.jun", &["fulfilment-supervisor"], true, "yes")
        .unwrap();
    sim.event(&id, "fix_applied", json!({"fix": "partial delivery"}))
        .unwrap();
    sim.event(
        &id,
        "archived",
        json!({"root_cause": "single carrier", "customer_feedback": "satisfied", "new_rule": "book two carriers before holidays"}),
    )
    .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert!(state.tags.contains("special-approval"));
    assert_eq!(
        sim.history(&id)
            .iter()
            .filter(|h| matches!(h.event, HistoryEvent::Tagged { .. }))
            .count(),
        1
    );
}

#[test]
fn the_post_mortem_is_due_within_24_hours_and_archived_only_with_root_cause_feedback_and_new_rule()
{
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), at(OPENED));
    let id = sim
        .start(sample(WORKFLOW, "strategic-small-order"))
        .unwrap();
    reply(&mut sim, &id);
    let task = sim.task_for_role(&id, "department-manager").unwrap();
    sim.decide(&task.id, "gao.yan", &["department-manager"], true, "ok")
        .unwrap();
    sim.advance(TimeDelta::hours(5));
    sim.event(&id, "fix_applied", json!({"fix": "60% from safety stock"}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "post_mortem");
    let fixed_at = sim.now();
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(fixed_at + TimeDelta::hours(24))
    );

    let err = sim
        .event(&id, "archived", json!({"root_cause": "rework"}))
        .unwrap_err();
    assert!(matches!(err, Rejection::NoBranchMatched { .. }), "{err}");
    assert_eq!(sim.state(&id).stage, "post_mortem");

    sim.advance(TimeDelta::hours(20));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.advance(TimeDelta::hours(4));
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
    assert_eq!(
        sim.state(&id).stage,
        "post_mortem",
        "red until it is archived"
    );

    sim.event(
        &id,
        "archived",
        json!({
            "root_cause": "mould temperature drifted; no alarm on the sensor",
            "five_whys": ["QC failed", "warped parts", "mould too hot", "sensor drift", "no calibration plan"],
            "customer_feedback": "accepted the partial delivery",
            "new_rule": "calibrate mould sensors weekly",
        }),
    )
    .unwrap();
    let state = sim.state(&id);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.outcome.as_deref(), Some("resolved"));
    assert!(sim.tasks(&id).is_empty());
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
