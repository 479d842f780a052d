//! Every playbook of DOMAIN.md run to its end over HTTP against the real binary, with the
//! real example plugins (C, Python, JavaScript) uploaded through the API and run by
//! wasmtime: timeouts that fire, a rejection, a refused event, a restart mid-scenario.

use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};
use waystation_tests::{sample, EXAMPLE_PLUGINS};

/// A server with the example plugins and the reference workflows uploaded, an operator,
/// and one approver per role (quorum `all` means distinct people).
struct Desk {
    server: Server,
    ops: Client,
    approvers: RefCell<HashMap<String, Client>>,
}

impl Desk {
    /// A server with `plugins` and then `workflows` uploaded.
    fn open(plugins: &[&str], workflows: &[&str]) -> Desk {
        let server = Server::start();
        let developer = server.token("dev", &["developer"]);
        for name in plugins {
            let (_, world) = EXAMPLE_PLUGINS.iter().find(|(n, _)| n == name).unwrap();
            let added = developer.upload_plugin(name);
            assert_eq!(added["world"], world.to_string(), "{name}: {added}");
        }
        let admin = server.admin();
        for id in workflows {
            admin.upload_workflow(id);
        }
        let ops = server.token("olga", &["operator"]);
        Desk {
            server,
            ops,
            approvers: RefCell::default(),
        }
    }

    fn start(&self, workflow: &str, input: Value) -> String {
        let (status, body) = self.ops.post(
            &format!("/v1/workflows/{workflow}/instances"),
            &json!({ "input": input }),
        );
        assert_eq!(status, 201, "{workflow}: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn instance(&self, id: &str) -> Value {
        let (status, body) = self.ops.get(&format!("/v1/instances/{id}"));
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Answers the investigation ticket the emergency `id` waits for: the reply goes to its
    /// child instance (the `investigation` workflow); returns the emergency's stage once
    /// it took the investigation's end.
    fn reply_to_investigation(&self, id: &str) -> String {
        let emergency = self.instance(id);
        assert_eq!(emergency["stage"], "investigate", "{emergency}");
        let child = emergency["children"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(self.instance(&child)["parent"]["instance"], id);
        assert_eq!(self.event(&child, "replied", json!({})), "answered");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stage = self.stage(id);
            if stage != "investigate" {
                return stage;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never took the investigation's end"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stage(&self, id: &str) -> String {
        self.instance(id)["stage"].as_str().unwrap().to_owned()
    }

    /// Sends event `name`; asserts it is taken and returns the stage it led to.
    fn event(&self, id: &str, name: &str, data: Value) -> String {
        let (status, body) = self.ops.post(
            &format!("/v1/instances/{id}/events"),
            &json!({"type": name, "data": data}),
        );
        assert_eq!(status, 200, "event {name} on {id}: {body}");
        body["stage"].as_str().unwrap().to_owned()
    }

    /// Decides the open task of `role` on instance `id`; returns the stage it led to.
    fn decide(&self, id: &str, role: &str, decision: &str) -> String {
        let mut approvers = self.approvers.borrow_mut();
        let approver = approvers.entry(role.to_owned()).or_insert_with(|| {
            self.server
                .token(&format!("{role}-lead"), &[&format!("approver:{role}")])
        });
        let (_, inbox) = approver.get("/v1/approvals?limit=500");
        let item = inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["instance_id"] == id && t["role"] == role)
            .unwrap_or_else(|| panic!("no open {role} task on {id} in {inbox}"));
        // The inbox shows which workflow the task is from and when its stage is due.
        let instance = self.instance(id);
        assert_eq!(
            (&item["workflow"], &item["deadline"]),
            (&instance["workflow"], &instance["sla"]["deadline"]),
            "{item}"
        );
        let task = item["id"].as_str().unwrap().to_owned();
        let (status, body) = approver.post(
            &format!("/v1/approvals/{task}"),
            &json!({"decision": decision, "comment": format!("{decision}d by the {role}")}),
        );
        assert_eq!(status, 200, "{decision} {task}: {body}");
        body["stage"].as_str().unwrap().to_owned()
    }

    fn wait_for_stage(&self, id: &str, stage: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.stage(id) == stage {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{id} never reached {stage}: {}", self.instance(id));
    }

    fn history(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .ops
            .get(&format!("/v1/instances/{id}/history?limit=1000"));
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    /// The history entries of plugin calls that returned output (with logs and duration).
    fn plugin_calls(&self, id: &str) -> Vec<Value> {
        self.history(id)
            .into_iter()
            .filter(|h| h["type"] == "plugin_returned")
            .collect()
    }
}

/// One server with every example plugin and reference workflow (compiling the Python and
/// JavaScript components takes seconds, so they are uploaded once), each playbook in turn.
#[test]
fn every_playbook_runs_to_its_end_over_http_with_the_real_plugins() {
    let desk = Desk::open(
        &EXAMPLE_PLUGINS.map(|(name, _)| name),
        &[
            "order-quick-response",
            "delay-early-warning",
            // The investigation first: the emergency calls it as a sub-workflow.
            "investigation",
            "delay-emergency-response",
            "dispute-handling",
        ],
    );
    a_vip_order_is_scored_high_by_the_python_plugin_and_runs_to_delivery(&desk);
    a_rejected_temporary_fix_goes_back_to_the_customer_and_the_second_is_approved(&desk);
    a_class_a_customer_near_a_holiday_skips_the_operations_manager(&desk);
    a_chinese_quality_complaint_is_classified_by_the_javascript_plugin_and_refunded(&desk);
    an_unshipped_order_48_hours_after_payment_reminds_customer_service(&desk);
}

fn rfc3339(offset: TimeDelta) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn assert_completed(desk: &Desk, id: &str, outcome: &str) {
    let instance = desk.instance(id);
    assert_eq!(
        (instance["status"].as_str(), instance["outcome"].as_str()),
        (Some("completed"), Some(outcome)),
        "{instance}"
    );
}

fn a_vip_order_is_scored_high_by_the_python_plugin_and_runs_to_delivery(desk: &Desk) {
    let mut order = sample("order-quick-response", "vip-high");
    order["promised_at"] = json!(rfc3339(TimeDelta::days(10)));
    let id = desk.start("order-quick-response", order);
    assert_eq!(desk.stage(&id), "confirm");
    let instance = desk.instance(&id);
    assert_eq!(instance["vars"]["priority_level"], "high", "{instance}");
    let calls = desk.plugin_calls(&id);
    assert_eq!(calls.len(), 1, "one call to order-priority: {calls:?}");
    assert!(
        calls[0].to_string().contains("order-priority: high"),
        "the plugin's log line is in the history: {}",
        calls[0]
    );

    let (status, refused) = desk.ops.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "delivered"}),
    );
    assert_eq!(status, 409, "confirm does not take 'delivered': {refused}");
    assert_eq!(
        desk.stage(&id),
        "confirm",
        "a refused event changes nothing"
    );

    assert_eq!(desk.event(&id, "confirmed", json!({})), "plan");
    assert_eq!(desk.event(&id, "planned", json!({})), "plan_confirmation");
    assert_eq!(
        desk.decide(&id, "production", "approve"),
        "plan_confirmation"
    );
    assert_eq!(
        desk.decide(&id, "procurement", "approve"),
        "plan_confirmation"
    );
    assert_eq!(desk.decide(&id, "logistics", "approve"), "tracking");
    assert_eq!(desk.event(&id, "delivered", json!({})), "acceptance");
    assert_eq!(desk.event(&id, "passed", json!({})), "survey");
    assert_eq!(desk.event(&id, "rated", json!({"score": 5})), "delivered");
    assert_completed(desk, &id, "delivered");
}

#[test]
fn a_late_order_starts_the_emergency_plan_36_hours_before_the_promise_even_across_a_restart() {
    let mut desk = Desk::open(
        &["order-health-score", "tiered-notifier"],
        &["delay-early-warning"],
    );
    let mut order = sample("delay-early-warning", "late-regular");
    // Promised 36 hours and 4 seconds from now: the checkpoint comes due in 4 seconds.
    order["promised_at"] = json!(rfc3339(TimeDelta::hours(36) + TimeDelta::seconds(4)));
    let id = desk.start("delay-early-warning", order);
    assert_eq!(desk.stage(&id), "monitor");
    let scored = desk.plugin_calls(&id);
    assert_eq!(scored.len(), 1, "the C plugin scored the order at intake");

    desk.server.kill9();
    desk.server.restart();

    desk.wait_for_stage(&id, "replan");
    let instance = desk.instance(&id);
    assert!(
        instance["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("emergency-plan")),
        "{instance}"
    );
    assert_eq!(instance["vars"]["late"], true, "{instance}");
    let history = desk.history(&id);
    assert!(
        history.iter().any(|h| h["type"] == "transitioned"
            && h["from"] == "monitor"
            && h["cause"] == "timeout"),
        "the checkpoint timer fired after the restart"
    );
    assert!(
        history.iter().any(|h| h["type"] == "message_queued"),
        "the tiered notifier's messages went to the outbox"
    );

    assert_eq!(desk.decide(&id, "production-planner", "approve"), "replan");
    assert_eq!(desk.decide(&id, "logistics", "approve"), "delivery");
    assert_eq!(desk.event(&id, "delivered", json!({})), "delivered");
    assert_completed(&desk, &id, "delivered");
}

fn a_rejected_temporary_fix_goes_back_to_the_customer_and_the_second_is_approved(desk: &Desk) {
    let id = desk.start(
        "delay-emergency-response",
        sample("delay-emergency-response", "strategic-small-order"),
    );
    assert_eq!(desk.stage(&id), "investigate");
    assert_eq!(
        desk.reply_to_investigation(&id),
        "manager_approval",
        "30,000 with a 3-day delay goes to the department manager"
    );
    assert_eq!(
        desk.decide(&id, "department-manager", "reject"),
        "manager_approval",
        "rejected: the customer is told again and a new fix comes back for approval"
    );
    let notices = desk
        .history(&id)
        .iter()
        .filter(|h| h["type"] == "message_queued")
        .count();
    assert!(
        notices >= 2,
        "the customer was informed before each fix: {notices}"
    );
    assert_eq!(
        desk.decide(&id, "department-manager", "approve"),
        "apply_fix"
    );
    assert_eq!(desk.event(&id, "fix_applied", json!({})), "post_mortem");
    let (status, _) = desk.ops.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "archived", "data": {"root_cause": "QC"}}),
    );
    assert_eq!(status, 409, "no archive without feedback and a new rule");
    assert_eq!(
        desk.event(
            &id,
            "archived",
            json!({"root_cause": "mould wear", "customer_feedback": "satisfied", "new_rule": "QC sample every 500"})
        ),
        "closed"
    );
    assert_completed(desk, &id, "resolved");
}

fn a_class_a_customer_near_a_holiday_skips_the_operations_manager(desk: &Desk) {
    let id = desk.start(
        "delay-emergency-response",
        sample("delay-emergency-response", "class-a-before-holiday"),
    );
    assert_eq!(desk.reply_to_investigation(&id), "fix_approval");
    assert_eq!(
        desk.decide(&id, "fulfilment-supervisor", "approve"),
        "apply_fix"
    );
    let instance = desk.instance(&id);
    assert!(
        instance["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("special-approval")),
        "{instance}"
    );
}

fn a_chinese_quality_complaint_is_classified_by_the_javascript_plugin_and_refunded(desk: &Desk) {
    let id = desk.start("dispute-handling", sample("dispute-handling", "quality-zh"));
    let instance = desk.instance(&id);
    assert_eq!(instance["vars"]["category"], "quality", "{instance}");
    assert_eq!(instance["stage"], "investigate");
    assert_eq!(
        desk.event(&id, "findings", json!({"responsible": "supplier"})),
        "communicate"
    );
    assert_eq!(
        desk.event(&id, "remedy_agreed", json!({"remedy": "refund"})),
        "approve_payout"
    );
    assert_eq!(
        desk.decide(&id, "after-sales-lead", "approve"),
        "approve_payout",
        "2,399 needs finance too"
    );
    assert_eq!(desk.decide(&id, "finance", "approve"), "remedy_payout");
    assert_eq!(desk.event(&id, "refunded", json!({})), "settled");
    assert_completed(desk, &id, "resolved");
}

fn an_unshipped_order_48_hours_after_payment_reminds_customer_service(desk: &Desk) {
    let mut dispute = sample("dispute-handling", "unshipped-en");
    // Paid 48 hours less 3 seconds ago: the warehouse's window closes in 3 seconds.
    dispute["paid_at"] = json!(rfc3339(TimeDelta::seconds(3) - TimeDelta::hours(48)));
    let id = desk.start("dispute-handling", dispute);
    assert_eq!(desk.stage(&id), "watch_shipment");
    desk.wait_for_stage(&id, "investigate");
    let history = desk.history(&id);
    assert!(
        history.iter().any(|h| h["type"] == "message_queued"),
        "customer service was reminded"
    );
}

/// The WAT scorer of the host's own tests with the body of `score` replaced: a plugin
/// that spins forever.
fn spinning_scorer() -> Vec<u8> {
    let wat = std::fs::read_to_string(
        waystation_tests::root().join("engine/wasm/tests/fixtures/scorer.wat"),
    )
    .unwrap();
    let start = wat.find(";; <score>").unwrap();
    let end = wat.find(";; </score>").unwrap();
    let body = "(loop $spin (br $spin)) (unreachable)";
    wat::parse_str(format!("{}{body}\n{}", &wat[..start], &wat[end..])).unwrap()
}

#[test]
fn a_priority_plugin_that_spins_forever_is_stopped_and_the_order_falls_back_to_high() {
    let desk = Desk::open(&[], &[]);
    // Token names are unique: the desk's own developer is "dev".
    let developer = desk.server.token("dev-spinner", &["developer"]);
    let (status, added) = developer.send(
        "PUT",
        "/v1/plugins/order-priority",
        "application/wasm",
        spinning_scorer(),
        &[],
    );
    assert_eq!(status, 201, "{added}");
    desk.server.admin().upload_workflow("order-quick-response");

    for n in 1..=2 {
        // Two orders: each has its own order number (one running instance per number).
        let mut order = sample("order-quick-response", "vip-high");
        order["order_no"] = json!(format!("202405-90{n}"));
        let id = desk.start("order-quick-response", order);
        let instance = desk.instance(&id);
        assert_eq!(
            (
                instance["stage"].as_str(),
                instance["vars"]["priority_level"].as_str()
            ),
            (Some("confirm"), Some("high")),
            "{instance}"
        );
        assert!(
            instance["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("priority-fallback")),
            "{instance}"
        );
        let failure = desk
            .history(&id)
            .into_iter()
            .find(|h| h["type"] == "plugin_failed")
            .expect("the failed call is in the history");
        assert_eq!(failure["kind"], "timeout", "{failure}");
    }
    assert_eq!(
        desk.server.client(None).get("/readyz").0,
        200,
        "still serving"
    );
}
