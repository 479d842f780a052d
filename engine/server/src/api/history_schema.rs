//! The OpenAPI schema of a history entry as the API lists it (`views::HistoryItem`,
//! `export::ExportedEntry`): its `seq`, `at` and `type`, the members of that type
//! (`waystation_core::HistoryEvent`, one closed schema per variant) and the `actor` of a
//! request.

use super::schema::{array, closed, component, count, described, text, time};
use serde_json::{json, Map, Value};

/// Each `HistoryEvent` variant: its `type`, the members it always has, those it may lack.
///
/// One piece though long: it is a table, one row per variant in the enum's order, so a
/// reader checks it against `HistoryEvent` side by side.
fn variants() -> Vec<(&'static str, Value, Value)> {
    let none = || json!({});
    // A plugin call's measurements (`CallMetrics`, flattened), each absent when unknown.
    let metrics = json!({"input_digest": text(), "duration_us": count(), "fuel": count(),
        "logs": array(text())});
    vec![
        (
            "started",
            json!({"workflow": text(), "version": count(), "input": {}}),
            none(),
        ),
        ("entered", json!({"stage": text()}), none()),
        (
            "transitioned",
            json!({"from": text(), "to": text(), "cause": {"enum":
            ["transition", "event", "approved", "rejected", "timeout", "error", "joined", "child_ended"]}}),
            none(),
        ),
        ("variables_set", json!({"vars": {"type": "object"}}), none()),
        ("tagged", json!({"tag": text()}), none()),
        (
            "plugin_called",
            json!({"call_id": text(), "plugin": text(), "world": {"enum": ["scorer", "notifier"]}}),
            none(),
        ),
        (
            "plugin_returned",
            json!({"call_id": text(), "output": {}}),
            metrics.clone(),
        ),
        (
            "plugin_failed",
            json!({"call_id": text(), "kind": {"enum":
            ["timeout", "out_of_memory", "trap", "bad_output", "plugin_error", "not_found"]}, "message": text()}),
            metrics,
        ),
        (
            "timer_armed",
            json!({"timer_id": text(), "purpose": super::schema::timer_purpose(), "due": time()}),
            none(),
        ),
        (
            "escalated",
            json!({"stage": text(), "step": count(), "due": time()}),
            none(),
        ),
        (
            "reminded",
            json!({"stage": text(), "reminder": count(), "round": count(), "times": count(), "due": time()}),
            none(),
        ),
        (
            "timer_ignored",
            json!({"timer_id": text(), "reason": text()}),
            none(),
        ),
        (
            "sla_changed",
            json!({"stage": text(), "sla": super::schema::sla_state()}),
            none(),
        ),
        (
            "event_received",
            json!({"name": text(), "data": {}}),
            none(),
        ),
        (
            "approval_opened",
            json!({"task_id": text(), "level": text(), "approver": component("Approver")}),
            none(),
        ),
        (
            "level_skipped",
            json!({"level": text(), "because": text()}),
            none(),
        ),
        (
            "decided",
            json!({"task_id": text(), "level": text(), "decider": text(), "decision": {"enum": ["approve", "reject"]}}),
            json!({"comment": text()}),
        ),
        (
            "message_queued",
            json!({"message_id": text(), "channel": text(), "recipient": text()}),
            none(),
        ),
        (
            "delivery_attempted",
            json!({"message_id": text(), "channel": text(), "attempt": count(),
            "outcome": {"enum": ["delivered", "retrying", "dead"]}, "duration_ms": count()}),
            json!({"error": text(), "next_attempt_at": time()}),
        ),
        (
            "delivery_retried",
            json!({"message_id": text(), "by": text()}),
            none(),
        ),
        (
            "assigned",
            json!({"stage": text(), "by": text()}),
            json!({"assignee": text(), "previous": text()}),
        ),
        (
            "branch_started",
            json!({"stage": text(), "branch": text()}),
            none(),
        ),
        (
            "branch_ended",
            json!({"stage": text(), "branch": text(), "outcome": text(), "counted": {"type": "boolean"}}),
            none(),
        ),
        // The variant's own `at` (the branch's stage) is written after the entry's time
        // under the same name, and a JSON reader keeps the last: the stage.
        (
            "branch_cancelled",
            json!({"stage": text(), "branch": text(), "in_stage": described(
            "The branch's stage when it was stopped.", text())}),
            none(),
        ),
        (
            "joined",
            json!({"stage": text(), "outcomes": {"type": "object"}}),
            none(),
        ),
        (
            "child_started",
            json!({"stage": text(), "child": text(), "workflow": text()}),
            none(),
        ),
        (
            "child_ended",
            json!({"stage": text(), "child": text(), "status": super::schema::status()}),
            json!({"outcome": text()}),
        ),
        (
            "child_cancelled",
            json!({"stage": text(), "child": text()}),
            none(),
        ),
        ("completed", json!({"outcome": text()}), none()),
        ("failed", json!({"reason": text()}), none()),
        (
            "cancelled",
            json!({"by": text()}),
            json!({"reason": text()}),
        ),
        (
            "progress_link_revoked",
            json!({"by": text(), "generation": count()}),
            none(),
        ),
        (
            "retried",
            json!({"by": text(), "stage": text(), "failure": text(), "from_action": count()}),
            none(),
        ),
    ]
}

/// `HistoryItem`: one closed schema per entry type, told apart by `type`.
pub fn schemas() -> Value {
    let one_of: Vec<Value> = variants()
        .into_iter()
        .map(|(kind, own, optional)| {
            let mut always = Map::new();
            always.insert("seq".into(), described("Its place in the instance's history, from 0.", count()));
            always.insert("at".into(), described("When it happened.", time()));
            always.insert("type".into(), json!({"const": kind}));
            if let Value::Object(own) = own {
                always.extend(own);
            }
            let mut sometimes = match optional {
                Value::Object(o) => o,
                _ => Map::new(),
            };
            sometimes.insert("actor".into(), described(
                "The token behind the request that caused it; absent for what the engine does on its own.",
                component("Actor")));
            closed(Value::Object(always), Value::Object(sometimes))
        })
        .collect();
    json!({"HistoryItem": {"description": "A history entry: seq, at, type, the type's own members, and the actor of the request that caused it.",
        "oneOf": one_of}})
}
