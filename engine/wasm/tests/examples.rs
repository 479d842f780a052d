//! The four example plugins of `plugins/` (built into `plugins/dist/` by
//! `bash plugins/build-all.sh`) through the real `PluginHost`, on the reference samples of
//! `workflows/*.samples` in the envelope the engine sends, checked against the playbooks of
//! DOMAIN.md: the early-warning radar (C), order priority (Python), dispute types
//! (JavaScript) and tiered delay notices (JavaScript). A plugin that is not built fails its
//! tests with the command that builds it; nothing is skipped.
//!
//! All tests share one sandbox and one registry, kept in Cargo's scratch directory for
//! integration tests (`target/tmp`), so that a plugin is compiled by the first run after
//! it is built and mapped from its cached artifact by later runs, as after a server
//! restart. Each test calls the exact bytes now in `plugins/dist/` by their pinned
//! reference (`name@sha256:...`), whatever else the registry holds.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use waystation_core::{FailureKind, PluginInvoker, PluginRef, World};
use waystation_fixtures::{example_plugin, sample};
use waystation_wasm::{CallError, CallReport, HostConfig, Limits, LogLevel, PluginHost, Sandbox};

// ---- support ------------------------------------------------------------------------------

/// The host every test calls through: the server's configuration, except for a time
/// budget of 10 s instead of 100 ms. These tests check what the plugins answer, not how
/// fast: in a debug build the host's side of a call (instantiation, the lazily built
/// function tables CPython calls through) runs about ten times slower, and on a shared
/// 2-core machine a Python call then sometimes passes 100 ms. Budgets are tested in
/// `tests/plugins/misbehaviour.rs`, speed in `benches/call.rs`.
fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("waystation-wasm-examples");
        let config = HostConfig {
            default_limits: Limits {
                time_budget_ms: 10_000,
                ..Limits::default()
            },
            ..HostConfig::default()
        };
        PluginHost::open(dir, Sandbox::new(config).unwrap()).unwrap()
    })
}

/// The pinned reference to example plugin `name` as built in `plugins/dist/<name>.wasm`,
/// registered on first use. Fails the test, saying how to build it, when the file is
/// missing.
fn plugin(name: &'static str) -> PluginRef {
    static ADDED: Mutex<Option<HashMap<&'static str, PluginRef>>> = Mutex::new(None);
    // Held while adding, so that two tests never compile the same plugin at once.
    let mut added = ADDED.lock().unwrap_or_else(|e| e.into_inner());
    let added = added.get_or_insert_with(HashMap::new);
    if let Some(pinned) = added.get(name) {
        return pinned.clone();
    }
    let bytes = example_plugin(name);
    let info = host()
        .add(name, &bytes)
        .unwrap_or_else(|e| panic!("plugins/dist/{name}.wasm is refused: {e}"));
    added.insert(name, info.pinned());
    info.pinned()
}

/// What the engine sends by default: the start payload, the variables, the instance, now.
fn envelope(workflow: &str, stage: &str, input: Value, vars: Value, now: &str) -> Value {
    json!({
        "input": input,
        "vars": vars,
        "instance": {"id": "i-1", "workflow": workflow, "version": 1, "stage": stage, "tags": []},
        "now": now,
    })
}

/// Calls example plugin `name` with `input`; the report must name the version called.
fn call(name: &'static str, world: World, input: &Value) -> CallReport {
    let pinned = plugin(name);
    let report = host().invoke_with_logs(&pinned, world, input);
    assert_eq!(report.plugin.as_ref().map(|p| p.pinned()), Some(pinned));
    report
}

/// The output of a call that must succeed.
fn output(report: &CallReport) -> &Value {
    match &report.result {
        Ok(v) => v,
        Err(e) => panic!("the call failed: {e}; logs: {:?}", report.logs),
    }
}

/// The plugin's own error message of a call that must fail that way.
fn plugin_error(report: &CallReport) -> &str {
    match &report.result {
        Err(CallError::PluginError { message }) => message,
        other => panic!("expected the plugin's own error, got {other:?}"),
    }
}

fn score(out: &Value) -> f64 {
    out["score"].as_f64().unwrap()
}

fn label<'a>(out: &'a Value, key: &str) -> Option<&'a str> {
    out["labels"].get(key).and_then(Value::as_str)
}

fn reasons(out: &Value) -> Vec<&str> {
    out["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

fn has_reason(out: &Value, needle: &str) -> bool {
    reasons(out).iter().any(|r| r.contains(needle))
}

/// The lines logged at `level`.
fn logged(report: &CallReport, level: LogLevel) -> Vec<&str> {
    report
        .logs
        .iter()
        .filter(|l| l.level == level)
        .map(|l| l.message.as_str())
        .collect()
}

// ---- order-health-score (C): playbook 2, the 36-hour early-warning radar -----------------

mod health {
    use super::*;

    const PLUGIN: &str = "order-health-score";

    fn assess(order: Value, vars: Value, now: &str) -> CallReport {
        let doc = envelope("delay-early-warning", "score", order, vars, now);
        call(PLUGIN, World::Scorer, &doc)
    }

    #[test]
    fn an_order_promised_in_50_hours_that_is_behind_in_production_scores_as_late_with_its_reasons()
    {
        let order = sample("delay-early-warning", "late-regular");
        let report = assess(order, json!({}), "2024-05-08T10:00:00Z");
        let out = output(&report);
        assert_eq!(
            score(out),
            75.0,
            "33 over + 20 out of sync + 10 overloaded + 12 similar"
        );
        assert_eq!(label(out, "late"), Some("true"));
        assert_eq!(label(out, "band"), Some("red"));
        assert_eq!(label(out, "threshold"), Some("70"), "a regular customer");
        assert_eq!(label(out, "customer"), Some("regular"));
        assert_eq!(label(out, "hours_to_promise"), Some("50.0"));
        assert_eq!(label(out, "emergency_at"), Some("2024-05-09T00:00:00Z"));
        assert_eq!(label(out, "unscored"), None, "every factor was given");
        for why in [
            "production is 33% over its standard 72 h (96 h so far)",
            "sales, warehouse and ERP disagree about this order",
            "the people on the order are overloaded (92% utilisation)",
            "12% of similar orders ran into trouble",
            "score 75 >= threshold 70 (normal threshold): expected to be late",
            "start the emergency plan at 2024-05-09T00:00:00Z, 36 hours before the promised delivery",
        ] {
            assert!(has_reason(out, why), "no reason '{why}' in {:?}", reasons(out));
        }
        assert_eq!(
            logged(&report, LogLevel::Info),
            ["order-health-score: 202405-011 scored 75 (red), late=true"]
        );
    }

    #[test]
    fn inside_the_36_hours_before_the_promise_the_emergency_plan_starts_now() {
        let order = sample("delay-early-warning", "late-regular");
        let at_checkpoint = assess(order.clone(), json!({}), "2024-05-09T00:00:00Z");
        assert!(has_reason(
            output(&at_checkpoint),
            "start the emergency plan now (re-plan production, change carrier, tell the customer)"
        ));
        let passed = assess(order, json!({}), "2024-05-10T13:00:00+01:00");
        assert_eq!(label(output(&passed), "hours_to_promise"), Some("0.0"));
        assert!(has_reason(
            output(&passed),
            "the promised delivery has passed: run the emergency response now"
        ));
    }

    #[test]
    fn a_healthy_order_of_a_strategic_customer_is_on_track_under_the_stricter_threshold() {
        let order = sample("delay-early-warning", "healthy-strategic");
        let out = output(&assess(order, json!({}), "2024-05-08T10:00:00Z")).clone();
        assert_eq!(
            score(&out),
            3.0,
            "only the 3% anomaly rate of similar orders"
        );
        assert_eq!(label(&out, "late"), Some("false"));
        assert_eq!(label(&out, "band"), Some("green"));
        assert_eq!(label(&out, "threshold"), Some("50"), "key customers: 50");
        assert!(has_reason(
            &out,
            "score 3 < threshold 50 (stricter threshold for a key customer): on track"
        ));
        assert!(!has_reason(&out, "emergency plan"));
    }

    #[test]
    fn a_score_of_58_is_late_for_an_urgent_order_but_not_for_an_ordinary_one() {
        let urgent = sample("delay-early-warning", "urgent-custom");
        let out = output(&assess(urgent.clone(), json!({}), "2024-05-08T10:00:00Z")).clone();
        assert_eq!(
            score(&out),
            58.0,
            "25 over + 20 out of sync + 8 similar + 5 custom"
        );
        assert_eq!(label(&out, "band"), Some("amber"));
        assert_eq!(label(&out, "urgent"), Some("true"));
        assert_eq!(label(&out, "threshold"), Some("50"));
        assert_eq!(label(&out, "late"), Some("true"));
        assert!(has_reason(&out, "custom work"));

        let mut ordinary = urgent;
        ordinary["urgent"] = json!(false);
        let out = output(&assess(ordinary, json!({}), "2024-05-08T10:00:00Z")).clone();
        assert_eq!(score(&out), 58.0);
        assert_eq!(label(&out, "threshold"), Some("70"));
        assert_eq!(label(&out, "late"), Some("false"));
    }

    #[test]
    fn the_workflows_threshold_decides_and_missing_factors_are_named_not_guessed() {
        let order = json!({"order_no": "202405-099", "systems_in_sync": false});
        let out = output(&assess(
            order,
            json!({"threshold": 20}),
            "2024-05-08T10:00:00Z",
        ))
        .clone();
        assert_eq!(score(&out), 20.0);
        assert_eq!(label(&out, "threshold"), Some("20"));
        assert_eq!(label(&out, "late"), Some("true"));
        assert_eq!(
            label(&out, "unscored"),
            Some("stage_time,owner_workload,similar_anomaly_rate")
        );
        assert!(has_reason(
            &out,
            "not scored, the input lacks: stage_time,owner_workload,similar_anomaly_rate"
        ));
        assert_eq!(label(&out, "emergency_at"), None, "no promised date");
    }

    #[test]
    fn input_that_is_not_an_order_is_the_plugins_own_error_with_a_warning_logged() {
        let report = call(PLUGIN, World::Scorer, &json!(["202405-011", 75]));
        assert_eq!(plugin_error(&report), "input must be a JSON object");
        assert_eq!(
            logged(&report, LogLevel::Warn),
            ["order-health-score: input must be a JSON object"]
        );
    }
}

// ---- order-priority (Python): playbook 1, priority and response SLAs --------------------

mod priority {
    use super::*;

    const PLUGIN: &str = "order-priority";
    /// When the reference orders of order-quick-response arrive.
    const NOW: &str = "2024-05-06T09:00:00Z";

    fn prioritise(order: Value) -> CallReport {
        let doc = envelope("order-quick-response", "prioritise", order, json!({}), NOW);
        call(PLUGIN, World::Scorer, &doc)
    }

    #[test]
    fn a_vip_order_is_high_priority_with_a_1_hour_response_sla_and_the_green_channel() {
        let report = prioritise(sample("order-quick-response", "vip-high"));
        let out = output(&report);
        assert_eq!(label(out, "priority"), Some("high"));
        assert_eq!(label(out, "response_sla"), Some("PT1H"));
        assert_eq!(label(out, "plan_sla"), Some("PT2H"));
        assert_eq!(label(out, "channel"), Some("green"));
        assert_eq!(label(out, "abnormal"), Some("false"));
        assert_eq!(
            label(out, "ratings"),
            Some("customer=high,amount=high,urgency=low")
        );
        assert_eq!(label(out, "delivery_days"), Some("10.0"));
        assert_eq!(score(out), 66.0, "(2 + 2 + 0) * 100 // 6");
        for why in [
            "VIP customer",
            "amount 128,000 >= 100,000",
            "delivery in 10.0 days (8 or more)",
        ] {
            assert!(
                reasons(out).contains(&why),
                "no reason '{why}' in {:?}",
                reasons(out)
            );
        }
        assert_eq!(
            logged(&report, LogLevel::Info),
            ["order-priority: high (score 66, respond within PT1H)"]
        );
    }

    #[test]
    fn a_regular_customers_mid_sized_order_due_in_six_days_is_medium_with_4_hours() {
        let out = output(&prioritise(sample(
            "order-quick-response",
            "regular-medium",
        )))
        .clone();
        assert_eq!(label(&out, "priority"), Some("medium"));
        assert_eq!(label(&out, "response_sla"), Some("PT4H"));
        assert_eq!(label(&out, "plan_sla"), Some("PT8H"));
        assert_eq!(label(&out, "channel"), Some("standard"));
        assert_eq!(label(&out, "delivery_days"), Some("6.3"));
        assert_eq!(score(&out), 50.0);
    }

    #[test]
    fn a_new_customers_small_order_due_in_two_weeks_is_low_with_8_hours() {
        let out = output(&prioritise(sample("order-quick-response", "new-low"))).clone();
        assert_eq!(label(&out, "priority"), Some("low"));
        assert_eq!(label(&out, "response_sla"), Some("PT8H"));
        assert_eq!(label(&out, "plan_sla"), Some("PT16H"));
        assert_eq!(
            label(&out, "ratings"),
            Some("customer=low,amount=low,urgency=low")
        );
        assert_eq!(score(&out), 0.0);
    }

    #[test]
    fn delivery_within_3_days_makes_even_a_new_customers_small_order_high() {
        let mut order = sample("order-quick-response", "new-low");
        order["promised_at"] = json!("2024-05-09T09:00:00Z");
        let out = output(&prioritise(order)).clone();
        assert_eq!(label(&out, "priority"), Some("high"));
        assert_eq!(label(&out, "response_sla"), Some("PT1H"));
        assert!(has_reason(&out, "delivery in 3.0 days (3 or fewer)"));
    }

    #[test]
    fn an_order_without_delivery_date_and_with_a_stock_conflict_unpaid_is_abnormal() {
        let out = output(&prioritise(sample(
            "order-quick-response",
            "abnormal-no-delivery-date",
        )))
        .clone();
        assert_eq!(label(&out, "abnormal"), Some("true"));
        assert_eq!(label(&out, "priority"), Some("medium"), "regular, 21,400");
        assert!(reasons(&out).contains(&"abnormal: missing delivery date"));
        assert!(reasons(&out).contains(&"abnormal: stock conflict without prepayment"));
        assert_eq!(label(&out, "delivery_days"), None);
    }

    #[test]
    fn a_promised_date_that_is_not_a_date_is_the_plugins_own_error_with_a_warning_logged() {
        let mut order = sample("order-quick-response", "vip-high");
        order["promised_at"] = json!("next week");
        let report = prioritise(order);
        assert_eq!(
            plugin_error(&report),
            "'promised_at' is not an RFC 3339 date-time: 'next week'"
        );
        assert_eq!(
            logged(&report, LogLevel::Warn),
            ["order-priority: 'promised_at' is not an RFC 3339 date-time: 'next week'"]
        );
        let failure = host()
            .invoke(&plugin(PLUGIN), World::Scorer, &json!({"amount": "lots"}))
            .unwrap_err();
        assert_eq!(failure.kind, FailureKind::PluginError);
        assert_eq!(failure.message, "'amount' must be a number, not 'lots'");
    }
}

// ---- dispute-classifier (JavaScript): playbook 4, dispute types by keyword --------------

mod disputes {
    use super::*;

    const PLUGIN: &str = "dispute-classifier";

    fn classify(dispute: Value) -> CallReport {
        let doc = envelope(
            "dispute-handling",
            "classify",
            dispute,
            json!({}),
            "2024-05-08T09:00:00Z",
        );
        call(PLUGIN, World::Scorer, &doc)
    }

    fn message(text: &str) -> Value {
        json!({"order_id": "202405-019", "message": text})
    }

    #[test]
    fn a_chinese_complaint_about_a_scratched_flickering_screen_is_classified_as_quality() {
        let report = classify(sample("dispute-handling", "quality-zh"));
        let out = output(&report);
        assert_eq!(label(out, "category"), Some("quality"));
        assert_eq!(label(out, "language"), Some("zh"));
        assert_eq!(label(out, "matched"), Some("质量, 划痕, 闪屏"));
        assert_eq!(label(out, "runner_up"), None);
        assert_eq!(score(out), 100.0, "three keywords, nothing else");
        assert!(reasons(out).contains(&"matched '划痕' (quality)"));
        assert_eq!(
            logged(&report, LogLevel::Info),
            ["dispute-classifier: quality (confidence 100)"]
        );
    }

    #[test]
    fn an_english_order_not_shipped_a_day_after_payment_is_a_shipping_delay() {
        let out = output(&classify(sample("dispute-handling", "unshipped-en"))).clone();
        assert_eq!(label(&out, "category"), Some("shipping-delay"));
        assert_eq!(label(&out, "language"), Some("en"));
        assert_eq!(
            label(&out, "matched"),
            Some("has not shipped, where is"),
            "'not shipped' inside 'has not shipped' counts once"
        );
        assert_eq!(score(&out), 80.0);
    }

    #[test]
    fn a_price_drop_after_payment_is_a_price_dispute() {
        let out = output(&classify(sample("dispute-handling", "price-difference"))).clone();
        assert_eq!(label(&out, "category"), Some("price"));
        assert_eq!(label(&out, "matched"), Some("price, difference"));
    }

    #[test]
    fn a_late_parcel_with_a_broken_screen_is_quality_with_shipping_delay_as_runner_up() {
        let out = output(&classify(message(
            "The parcel is late and the screen is broken and scratched",
        )))
        .clone();
        assert_eq!(label(&out, "category"), Some("quality"));
        assert_eq!(label(&out, "runner_up"), Some("shipping-delay"));
        assert_eq!(score(&out), 53.0, "80 shared 2:1 with the runner-up");
        assert!(has_reason(&out, "also matched 'late' (shipping-delay)"));
    }

    #[test]
    fn a_message_with_no_keyword_is_left_for_a_person_to_classify() {
        let out = output(&classify(message("请尽快联系我 / please call me back"))).clone();
        assert_eq!(score(&out), 0.0);
        assert_eq!(label(&out, "category"), None);
        assert_eq!(label(&out, "language"), Some("mixed"));
        assert_eq!(reasons(&out), ["no keyword matched: classify by hand"]);
    }

    #[test]
    fn a_dispute_without_a_message_is_the_plugins_own_error_with_a_warning_logged() {
        let report = classify(json!({"order_id": "202405-019", "message": ""}));
        let expected = "no message to classify: 'message' must be a non-empty string";
        assert_eq!(plugin_error(&report), expected);
        assert_eq!(
            logged(&report, LogLevel::Warn),
            [format!("dispute-classifier: {expected}")]
        );
    }
}

// ---- tiered-notifier (JavaScript): playbook 3, tell the customer by tier ----------------

mod notices {
    use super::*;

    const PLUGIN: &str = "tiered-notifier";

    fn render(input: &Value) -> CallReport {
        call(PLUGIN, World::Notifier, input)
    }

    fn messages(report: &CallReport) -> Vec<Value> {
        output(report)["messages"].as_array().unwrap().clone()
    }

    fn meta<'a>(m: &'a Value, key: &str) -> Option<&'a str> {
        m["metadata"].get(key).and_then(Value::as_str)
    }

    /// `channel:recipient:kind` of each message.
    fn summary(ms: &[Value]) -> Vec<String> {
        ms.iter()
            .map(|m| {
                format!(
                    "{}:{}:{}",
                    m["channel"].as_str().unwrap(),
                    m["recipient"].as_str().unwrap(),
                    meta(m, "kind").unwrap()
                )
            })
            .collect()
    }

    fn body(m: &Value) -> &str {
        m["body"].as_str().unwrap()
    }

    /// Whether a customer-facing text names a date (a promise the playbook forbids).
    fn names_a_date(text: &str) -> bool {
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        text.contains("2024-") || months.iter().any(|m| text.contains(&format!(" {m} 2024")))
    }

    /// The input delay-emergency-response builds for its `notify` action.
    fn delay_notice(sample_name: &str, notice_number: u32) -> Value {
        let order = sample("delay-emergency-response", sample_name);
        json!({
            "template": "delay-notice",
            "tier": order["customer"]["tier"],
            "customer": order["customer"],
            "order_id": order["order_id"],
            "delay_days": order["delay_days"],
            "ticket": format!("INV-{}", order["order_id"].as_str().unwrap()),
            "notice_number": notice_number,
        })
    }

    #[test]
    fn a_strategic_customer_gets_a_supervisor_call_an_email_and_a_compensation_offer() {
        let report = render(&delay_notice("strategic-small-order", 1));
        let ms = messages(&report);
        assert_eq!(
            summary(&ms),
            [
                "phone:+86 21 5555 0101:supervisor-call",
                "email:purchasing@huaxin.example.com:email",
                "email:purchasing@huaxin.example.com:compensation-offer",
            ]
        );
        assert_eq!(meta(&ms[0], "caller"), Some("supervisor"));
        assert!(body(&ms[0]).contains("ticket INV-202405-001"));
        assert!(body(&ms[1]).contains("about 3 days later than promised"));
        assert!(body(&ms[2]).contains("a credit on this order"));
        assert!(ms.iter().all(|m| meta(m, "tier") == Some("strategic")));
        assert!(
            !ms.iter().any(|m| names_a_date(body(m))),
            "no new date is promised"
        );
        assert_eq!(
            logged(&report, LogLevel::Info),
            ["tiered-notifier: 3 message(s): phone, email, email"]
        );
    }

    #[test]
    fn a_new_customer_gets_a_standard_email_with_a_progress_link_and_no_date() {
        let ms = messages(&render(&delay_notice("date-changed-three-times", 1)));
        assert_eq!(
            summary(&ms),
            ["email:hello@greenleaf.example.com:standard-email"]
        );
        let text = body(&ms[0]);
        assert!(text.contains("https://track.example.com/orders/202405-027"));
        assert!(text.contains("about 1 day later than promised"));
        assert!(text.contains("We will confirm the new date as soon as it is certain."));
        assert!(!names_a_date(text));
    }

    #[test]
    fn a_second_notice_is_marked_as_an_update() {
        let ms = messages(&render(&delay_notice("class-a-before-holiday", 2)));
        assert_eq!(
            summary(&ms),
            [
                "phone:+86 755 5555 0214:personal-call",
                "email:orders@mingda.example.com:written-notice",
            ],
            "a regular customer: personal call and written notice"
        );
        assert!(ms
            .iter()
            .all(|m| m["subject"].as_str().unwrap().starts_with("Update: ")));
        assert!(ms.iter().all(|m| meta(m, "notice_number") == Some("2")));
    }

    #[test]
    fn the_36_hour_early_warning_asks_the_account_manager_to_call_and_writes_to_the_customer() {
        let doc = envelope(
            "delay-early-warning",
            "emergency",
            sample("delay-early-warning", "late-regular"),
            json!({"threshold": 70, "health": {
                "score": 75,
                "reasons": ["production is 33% over its standard 72 h (96 h so far)"],
                "labels": {"late": "true"}
            }}),
            "2024-05-09T00:00:00Z",
        );
        let ms = messages(&render(&doc));
        assert_eq!(
            summary(&ms),
            [
                "task:account-manager:personal-call",
                "email:m.costa@deltapack.example:written-notice",
            ]
        );
        let brief = body(&ms[0]);
        assert!(
            brief.contains("Call Delta Packaging Ltd on +351 21 555 0311 about order 202405-011")
        );
        assert!(brief.contains("Health score 75."));
        assert!(brief.contains("- production is 33% over its standard 72 h"));
        let email = body(&ms[1]);
        assert!(email.starts_with("Dear Maria Costa,"));
        assert!(email.contains("the delivery we promised for 10 May 2024, 12:00 UTC"));
        assert!(email.contains("will confirm a new date as soon as it is certain"));
        assert_eq!(meta(&ms[1], "template"), Some("early-warning"));
    }

    #[test]
    fn an_unanswered_investigation_escalates_to_the_department_manager() {
        let ms = messages(&render(&json!({
            "template": "investigation-overdue",
            "audience": "department-manager",
            "order_id": "202405-001",
            "ticket": {"number": "INV-202405-001", "customer": "Huaxin Electronics",
                       "problem": "Injection-moulded housings failed QC", "initiator": "li.wei",
                       "blocked_at": "production", "reply_by": "2024-05-06T13:00:00Z"}
        })));
        assert_eq!(summary(&ms), ["email:department-manager:escalation"]);
        assert!(body(&ms[0])
            .contains("Ticket INV-202405-001 for order 202405-001 has had no reply for 4 hours"));
        assert!(body(&ms[0]).contains("Problem: Injection-moulded housings failed QC"));
    }

    #[test]
    fn a_paid_order_unshipped_for_48_hours_reminds_customer_service() {
        let ms = messages(&render(&json!({
            "template": "unshipped-48h",
            "audience": "customer-service",
            "recipient": "zhao.lei",
            "order_id": "202405-008",
            "paid_at": "2024-05-01T10:00:00Z",
            "ticket": "DSP-202405-008"
        })));
        assert_eq!(summary(&ms), ["chat:zhao.lei:reminder"]);
        assert_eq!(
            ms[0]["subject"],
            "Order 202405-008 not shipped 48 hours after payment"
        );
        assert!(body(&ms[0]).contains("Paid at 1 May 2024, 10:00 UTC, still not shipped."));
    }

    #[test]
    fn a_notice_without_an_order_number_is_the_plugins_own_error_with_a_warning_logged() {
        let report = render(&json!({"template": "delay-notice", "tier": "new"}));
        let expected = "no order number: give 'order_no' or 'order_id'";
        assert_eq!(plugin_error(&report), expected);
        assert_eq!(
            logged(&report, LogLevel::Warn),
            [format!("tiered-notifier: {expected}")]
        );
        let unknown = render(&json!({"template": "fax", "order_id": "202405-001"}));
        assert!(plugin_error(&unknown).starts_with("unknown template 'fax'"));
    }
}
