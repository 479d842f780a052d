//! What well-behaved calls return: JSON in the core's shapes, logs, and fresh instances.

use crate::support::{self, bodies, by_name};
use serde_json::json;
use waystation_core::{FailureKind, PluginInvoker, World};
use waystation_wasm::LogLevel;

#[test]
fn a_scorer_call_returns_score_reasons_and_labels_and_its_log_lines() {
    let (_dir, host) = support::host();
    let info = host.add("order-priority", &support::scorer()).unwrap();
    let input = json!({"order": {"id": 7}});
    let report = host.invoke_with_logs(&by_name("order-priority"), World::Scorer, &input);
    let text = input.to_string();
    assert_eq!(
        report.result.unwrap(),
        json!({
            "score": text.len() as f64,
            "reasons": ["input received"],
            "labels": {"priority": "high"}
        })
    );
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].level, LogLevel::Info);
    assert_eq!(report.logs[0].message, text);
    assert_eq!(report.plugin, Some(info));
    assert!(report.duration.as_millis() < 5_000);
}

#[test]
fn a_notifier_call_returns_messages_with_every_field() {
    let (_dir, host) = support::host();
    host.add("tiered-notifier", &support::notifier()).unwrap();
    let input = json!({"tier": "gold"});
    let output = host
        .invoke(&by_name("tiered-notifier"), World::Notifier, &input)
        .unwrap();
    assert_eq!(
        output,
        json!({"messages": [{
            "channel": "email",
            "recipient": "ops@example.com",
            "subject": "Order update",
            "body": input.to_string(),
            "metadata": {"source": "wat"}
        }]})
    );
}

#[test]
fn a_plugins_own_error_is_reported_as_a_plugin_error() {
    let (_dir, host) = support::host();
    host.add("refuser", &support::scorer_doing(bodies::REFUSE))
        .unwrap();
    let failure = host
        .invoke(&by_name("refuser"), World::Scorer, &json!({}))
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::PluginError);
    assert_eq!(failure.message, "cannot score this document");
}

#[test]
fn a_score_that_is_not_a_number_is_bad_output() {
    let (_dir, host) = support::host();
    host.add("nan", &support::scorer_doing(bodies::NAN_SCORE))
        .unwrap();
    let failure = host
        .invoke(&by_name("nan"), World::Scorer, &json!({}))
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::BadOutput);
}

#[test]
fn an_unknown_plugin_or_the_wrong_world_is_not_found() {
    let (_dir, host) = support::host();
    host.add("order-priority", &support::scorer()).unwrap();
    let missing = host
        .invoke(&by_name("missing"), World::Scorer, &json!({}))
        .unwrap_err();
    assert_eq!(missing.kind, FailureKind::NotFound);
    let wrong = host
        .invoke(&by_name("order-priority"), World::Notifier, &json!({}))
        .unwrap_err();
    assert_eq!(wrong.kind, FailureKind::NotFound);
    assert!(wrong.message.contains("scorer"), "{}", wrong.message);
}

#[test]
fn a_pinned_reference_runs_exactly_that_version() {
    let (_dir, host) = support::host();
    let v1 = host.add("order-priority", &support::scorer()).unwrap();
    host.add("order-priority", &support::scorer_doing(bodies::REFUSE))
        .unwrap();
    let newest = host.invoke(&by_name("order-priority"), World::Scorer, &json!({}));
    assert!(newest.is_err());
    let pinned = host.invoke(&v1.pinned(), World::Scorer, &json!({}));
    assert!(pinned.is_ok());
}

#[test]
fn every_call_gets_a_fresh_instance() {
    // The scorer's bump allocator would hand out a new address for the input each time if
    // memory carried over; the score (input length) and log line must be identical.
    let (_dir, host) = support::host();
    host.add("order-priority", &support::scorer()).unwrap();
    let first = host.invoke_with_logs(&by_name("order-priority"), World::Scorer, &json!([1]));
    for _ in 0..20 {
        let again = host.invoke_with_logs(&by_name("order-priority"), World::Scorer, &json!([1]));
        assert_eq!(again.result, first.result);
        assert_eq!(again.logs, first.logs);
    }
}

#[test]
fn the_sandbox_checks_and_runs_a_component_without_a_registry() {
    let sandbox = support::sandbox();
    let bytes = support::notifier();
    let inspection = sandbox.inspect(&bytes).unwrap();
    assert_eq!(inspection.world, World::Notifier);
    assert_eq!(inspection.digest, waystation_wasm::digest(&bytes));
    assert!(inspection.exports.iter().any(|e| e == "render: func"));
    assert!(inspection.imports.iter().any(|i| i == "log: func"));
    let plugin = sandbox.load(&bytes).unwrap();
    let report = sandbox.call(&plugin, &json!("hi"), &sandbox.config().default_limits);
    assert_eq!(report.result.unwrap()["messages"][0]["body"], "\"hi\"");
    assert_eq!(report.logs[0].message, "rendering");
    assert_eq!(report.logs[0].level, LogLevel::Debug);
    assert!(matches!(
        sandbox.load(b"nope"),
        Err(waystation_wasm::AddError::NotWasm)
    ));
}
