//! Playbook 2, the early-warning radar: an order the health score calls late starts its
//! emergency plan 36 hours before the promised delivery, not after it: the customer is told
//! by tier, production re-plans and logistics changes carrier. Key customers and urgent
//! orders get a stricter threshold.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{Cause, FailureKind, HistoryEvent, PluginFailure, SlaState, Status};
use waystation_fixtures::{at, load_workflow, sample};

const WORKFLOW: &str = "delay-early-warning";
/// When the samples are started: their delivery is promised 50 hours later, at
/// 2024-05-10T12:00:00Z, so the 36-hour checkpoint is 14 hours after the start.
const START: &str = "2024-05-08T10:00:00Z";

fn start_time() -> DateTime<Utc> {
    at(START)
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

/// The health score as the `order-health-score` scorer computes it, from 0 (healthy) to
/// 100 (certainly late): stage time over its standard (1 point per percent, at most 40),
/// systems out of sync (20), people overloaded (10 above 85 % utilisation), the anomaly
/// rate of similar orders (1 point per percent, at most 15), custom work (5), peak
/// season (10). Customer importance is not scored: the workflow's threshold carries it.
fn order_health_score(call: &Value) -> Result<Value, PluginFailure> {
    let order = &call["input"];
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut score = 0.0;
    let mut reasons = Vec::new();
    let progress = &order["progress"];
    let (standard, elapsed) = (
        num(&progress["standard_hours"]),
        num(&progress["elapsed_hours"]),
    );
    let over = ((elapsed - standard) / standard * 100.0).max(0.0);
    if over > 0.0 {
        score += over.min(40.0);
        reasons.push(format!(
            "{} is {over:.0}% over its standard {standard} h",
            progress["stage"].as_str().unwrap_or("stage")
        ));
    }
    if order["systems_in_sync"] == json!(false) {
        score += 20.0;
        reasons.push("sales, warehouse and ERP disagree".to_owned());
    }
    if num(&order["owner_workload"]) > 0.85 {
        score += 10.0;
        reasons.push("the people on the order are overloaded".to_owned());
    }
    let anomaly = (num(&order["similar_anomaly_rate"]) * 100.0).min(15.0);
    if anomaly >= 1.0 {
        score += anomaly;
        reasons.push(format!("{anomaly:.0}% of similar orders ran late"));
    }
    if order["order_type"] == "custom" {
        score += 5.0;
        reasons.push("custom work".to_owned());
    }
    if order["season"] == "peak" {
        score += 10.0;
        reasons.push("peak season".to_owned());
    }
    let score = score.round().min(100.0) as i64;
    let band = match score {
        70.. => "red",
        50..70 => "amber",
        _ => "green",
    };
    Ok(json!({"score": score, "reasons": reasons, "labels": {"band": band}}))
}

/// The `tiered-notifier`, rendering the delay warning by customer tier: strategic - the
/// supervisor calls, an email with a compensation offer; regular - the account manager
/// calls, a written notice; new - a standard email with a progress link. It never promises
/// a new date.
fn tiered_notifier(call: &Value) -> Result<Value, PluginFailure> {
    let order = &call["input"];
    let no = order["order_no"].as_str().unwrap_or_default();
    let customer = order["customer"]["name"].as_str().unwrap_or_default();
    let tier = order["customer"]["tier"].as_str().unwrap_or("new");
    let email = order["contact"]["email"].as_str().unwrap_or_default();
    let subject = format!("Your order {no} may arrive later than promised");
    let mut body = format!(
        "Dear {},\n\nyour order {no} is at risk of missing its promised delivery ({}). We are re-planning production and arranging another carrier, and will confirm a new date as soon as it is certain.",
        order["contact"]["name"].as_str().unwrap_or("customer"),
        order["promised_at"].as_str().unwrap_or_default(),
    );
    let metadata = json!({"tier": tier, "order_no": no});
    let call_task = |role: &str| {
        json!({
            "channel": "task",
            "recipient": role,
            "subject": format!("Call {customer} about the delay of order {no}"),
            "body": format!("Health score {}: {}", call["vars"]["health"]["score"], call["vars"]["health"]["reasons"]),
            "metadata": metadata,
        })
    };
    let mut messages = Vec::new();
    match tier {
        "strategic" => {
            messages.push(call_task("supervisor"));
            body.push_str(" As an apology we offer a 5% credit on this order.");
        }
        "regular" => messages.push(call_task("account-manager")),
        _ => body.push_str(&format!(
            " Follow its progress at https://track.example.com/orders/{no}"
        )),
    }
    messages.push(json!({
        "channel": "email", "recipient": email, "subject": subject, "body": body, "metadata": metadata,
    }));
    Ok(json!({ "messages": messages }))
}

fn plugins() -> FakePlugins {
    FakePlugins::new()
        .scorer("order-health-score", order_health_score)
        .notifier("tiered-notifier", tiered_notifier)
}

fn var<'a>(sim: &'a Simulation<'_, FakePlugins>, id: &str, name: &str) -> &'a Value {
    sim.state(id)
        .vars
        .get(name)
        .unwrap_or_else(|| panic!("variable '{name}' is not set"))
}

fn in_emergency(sim: &Simulation<'_, FakePlugins>, id: &str) -> bool {
    sim.state(id).tags.contains("emergency-plan")
}

#[test]
fn an_order_scored_as_late_with_delivery_promised_in_50_hours_starts_the_emergency_plan_at_promised_time_minus_36_hours_and_not_earlier(
) {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let id = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.stage, "monitor");
    assert_eq!(state.sla.deadline, Some(at("2024-05-09T00:00:00Z")));
    assert_eq!(var(&sim, &id, "health")["score"], 75, "scored as late");
    assert_eq!(var(&sim, &id, "threshold"), 70);

    sim.advance(hours(13) + minutes(59));
    let state = sim.state(&id);
    assert_eq!(state.stage, "monitor", "too early at 13h59m");
    assert!(!in_emergency(&sim, &id));
    assert!(sim.outbox().is_empty(), "the customer is not told yet");
    assert!(sim.tasks(&id).is_empty());

    sim.advance(minutes(1));
    let state = sim.state(&id);
    assert_eq!(state.stage, "replan");
    assert_eq!(state.status, Status::Running);
    assert!(in_emergency(&sim, &id));
    assert_eq!(var(&sim, &id, "late"), true);
    assert_eq!(
        var(&sim, &id, "emergency_started_at"),
        "2024-05-09T00:00:00Z"
    );
    assert!(sim.history(&id).iter().any(|h| h.at == at("2024-05-09T00:00:00Z")
        && matches!(&h.event, HistoryEvent::Transitioned { from, to, cause: Cause::Transition } if from == "checkpoint" && to == "emergency")));
    assert!(sim.task_for_role(&id, "production-planner").is_some());
    assert!(sim.task_for_role(&id, "logistics").is_some());
    assert_eq!(state.sla.deadline, Some(at("2024-05-09T04:00:00Z")));
}

#[test]
fn the_emergency_plan_tells_the_customer_through_the_outbox() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let id = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    sim.advance(hours(14));
    let outbox = sim.outbox();
    assert_eq!(outbox.len(), 2, "{outbox:#?}");
    let email = outbox
        .iter()
        .find(|m| m.channel == "email")
        .expect("an email to the customer");
    assert_eq!(email.instance_id, id);
    assert_eq!(email.recipient, "m.costa@deltapack.example");
    assert!(email.subject.contains("202405-011"), "{}", email.subject);
    assert!(email.body.contains("another carrier"));
    assert_eq!(email.metadata["tier"], "regular");
    let call = outbox.iter().find(|m| m.channel == "task").unwrap();
    assert_eq!(
        call.recipient, "account-manager",
        "a regular customer gets a personal call"
    );
    assert!(
        sim.history(&id).iter().any(|h| matches!(&h.event,
        HistoryEvent::MessageQueued { recipient, .. } if recipient == "m.costa@deltapack.example"))
    );
}

#[test]
fn a_key_customer_hears_from_the_supervisor_with_a_compensation_offer() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let mut order = sample(WORKFLOW, "late-regular");
    order["customer"]["tier"] = json!("strategic");
    sim.start(order).unwrap();
    sim.advance(hours(14));
    let recipients: Vec<&str> = sim.outbox().iter().map(|m| m.recipient.as_str()).collect();
    assert_eq!(recipients, ["supervisor", "m.costa@deltapack.example"]);
    assert!(sim.outbox()[1].body.contains("credit"));
}

#[test]
fn an_order_scored_healthy_is_not_put_in_the_emergency_plan() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let id = sim.start(sample(WORKFLOW, "healthy-strategic")).unwrap();
    assert_eq!(var(&sim, &id, "threshold"), 50, "a strategic customer");
    sim.advance(hours(14));
    let state = sim.state(&id);
    assert_eq!(state.stage, "delivery");
    assert_eq!(var(&sim, &id, "late"), false);
    assert!(!in_emergency(&sim, &id));
    assert!(sim.outbox().is_empty());
    assert!(sim.tasks(&id).is_empty());
    assert_eq!(state.sla.deadline, Some(at("2024-05-10T12:00:00Z")));

    sim.advance(hours(30));
    sim.event(&id, "delivered", json!({"pod": "signed by J. Liu"}))
        .unwrap();
    assert_eq!(sim.state(&id).outcome.as_deref(), Some("delivered"));
}

#[test]
fn urgent_orders_and_key_customers_get_a_stricter_threshold() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let urgent = sim.start(sample(WORKFLOW, "urgent-custom")).unwrap();
    let mut order = sample(WORKFLOW, "urgent-custom");
    order["urgent"] = json!(false);
    let ordinary = sim.start(order.clone()).unwrap();
    order["customer"]["tier"] = json!("strategic");
    let key = sim.start(order).unwrap();
    for id in [&urgent, &ordinary, &key] {
        assert_eq!(var(&sim, id, "health")["score"], 58);
    }
    sim.advance(hours(14));
    assert!(
        in_emergency(&sim, &urgent),
        "58 is late for an urgent order"
    );
    assert!(in_emergency(&sim, &key), "58 is late for a key customer");
    assert!(
        !in_emergency(&sim, &ordinary),
        "58 is fine for an ordinary order"
    );
    assert_eq!(sim.state(&ordinary).stage, "delivery");
}

#[test]
fn the_emergency_plan_needs_both_the_new_production_plan_and_the_new_carrier() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let id = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    sim.advance(hours(14));
    let production = sim.task_for_role(&id, "production-planner").unwrap();
    sim.decide(
        &production.id,
        "li.na",
        &["production-planner"],
        true,
        "moved to line 1, done in 20 h",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "replan");
    let logistics = sim.task_for_role(&id, "logistics").unwrap();
    sim.decide(
        &logistics.id,
        "kasia",
        &["logistics"],
        true,
        "switched to express air",
    )
    .unwrap();
    assert_eq!(sim.state(&id).stage, "delivery");
    sim.advance(hours(30));
    sim.event(&id, "delivered", json!({})).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.outcome.as_deref(), Some("delivered"));
    assert!(
        state.tags.contains("emergency-plan"),
        "the record keeps the tag"
    );
}

#[test]
fn an_emergency_plan_nobody_completes_in_four_hours_goes_to_the_supervisor() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let id = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    sim.advance(hours(17));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.advance(hours(1));
    assert_eq!(sim.state(&id).stage, "emergency_escalated");
    assert!(sim.tasks(&id).is_empty());
}

#[test]
fn when_the_scorer_fails_at_the_checkpoint_the_supervisor_decides_or_the_plan_starts_anyway() {
    let wf = load_workflow(WORKFLOW);
    // The scorer works at intake and times out at the checkpoint.
    let plugins = FakePlugins::new()
        .scorer("order-health-score", |call| {
            if call["instance"]["stage"] == "checkpoint" {
                Err(PluginFailure {
                    kind: FailureKind::Timeout,
                    message: "fuel exhausted after 10 ms".to_owned(),
                })
            } else {
                order_health_score(call)
            }
        })
        .notifier("tiered-notifier", tiered_notifier);
    let mut sim = Simulation::new(&wf, plugins, start_time());
    let late = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    let healthy = sim.start(sample(WORKFLOW, "healthy-strategic")).unwrap();
    sim.advance(hours(14));
    for id in [&late, &healthy] {
        let state = sim.state(id);
        assert_eq!(state.stage, "manual_review");
        assert_eq!(state.status, Status::Running);
        assert_eq!(var(&sim, id, "error")["kind"], "timeout");
        assert_eq!(var(&sim, id, "error")["plugin"], "order-health-score");
    }
    sim.event(&healthy, "on_track", json!({"by": "mei"}))
        .unwrap();
    assert_eq!(sim.state(&healthy).stage, "delivery");
    sim.advance(hours(2));
    assert_eq!(
        sim.state(&late).stage,
        "replan",
        "nobody decided: the plan starts"
    );
    assert!(in_emergency(&sim, &late));
    assert!(!in_emergency(&sim, &healthy));
}

#[test]
fn a_failing_score_at_intake_still_watches_the_order() {
    let wf = load_workflow(WORKFLOW);
    let plugins = FakePlugins::new()
        .scorer("order-health-score", |call| {
            if call["instance"]["stage"] == "score" {
                Err(PluginFailure {
                    kind: FailureKind::Trap,
                    message: "index out of bounds".to_owned(),
                })
            } else {
                order_health_score(call)
            }
        })
        .notifier("tiered-notifier", tiered_notifier);
    let mut sim = Simulation::new(&wf, plugins, start_time());
    let id = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    assert_eq!(sim.state(&id).stage, "monitor");
    assert_eq!(var(&sim, &id, "error")["kind"], "trap");
    assert!(sim.history(&id).iter().any(|h| matches!(
        &h.event,
        HistoryEvent::PluginFailed {
            kind: FailureKind::Trap,
            ..
        }
    )));
    sim.advance(hours(14));
    assert_eq!(
        sim.state(&id).stage,
        "replan",
        "the checkpoint scores it again"
    );
}

#[test]
fn if_the_notifier_fails_customer_service_tells_the_customer_by_hand() {
    let wf = load_workflow(WORKFLOW);
    let plugins = FakePlugins::new()
        .scorer("order-health-score", order_health_score)
        .notifier("tiered-notifier", |_| {
            Ok(json!({"messages": [{"channel": "email"}]}))
        });
    let mut sim = Simulation::new(&wf, plugins, start_time());
    let id = sim.start(sample(WORKFLOW, "late-regular")).unwrap();
    sim.advance(hours(14));
    assert_eq!(sim.state(&id).stage, "inform_customer");
    assert_eq!(var(&sim, &id, "error")["kind"], "bad_output");
    assert!(sim.outbox().is_empty(), "nothing half-rendered is sent");
    sim.event(&id, "customer_informed", json!({"by": "phone"}))
        .unwrap();
    assert_eq!(sim.state(&id).stage, "replan");
}

#[test]
fn an_order_promised_sooner_than_36_hours_is_checked_at_once() {
    let wf = load_workflow(WORKFLOW);
    let mut sim = Simulation::new(&wf, plugins(), start_time());
    let mut order = sample(WORKFLOW, "late-regular");
    order["promised_at"] = json!("2024-05-09T12:00:00Z");
    let id = sim.start(order).unwrap();
    sim.advance(TimeDelta::zero());
    assert_eq!(sim.state(&id).stage, "replan");
}
