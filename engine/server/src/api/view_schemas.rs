//! The OpenAPI schemas of the instance views in `views` (list items, the detail, the
//! approvals inbox, history pages, counts) and of the core types they carry (SLA, timers,
//! tasks, assignments), each closed like the struct it describes.

use super::schema::{
    array, closed, component, component_or_null, count, described, sla_state, status, text,
    text_or_null, time, time_or_null, timer_purpose,
};
use serde_json::{json, Value};

/// The members of `views::Identity`, flattened into the views that carry it.
fn identity() -> Value {
    json!({
        "key": described("The business key, when the definition declares one.", text_or_null()),
        "fields": component("Fields"),
        "shown": described("Fields shown on cards.", array(text())),
        "for_approval": described("Fields shown on approval tasks.", array(text())),
        "titles": {"type": "object", "additionalProperties": {"type": "string"},
            "description": "Field titles by name, for the fields that declare one."},
    })
}

/// `always` with the members of `views::Identity` after its own.
fn with_identity(mut always: Value) -> Value {
    if let (Value::Object(always), Value::Object(identity)) = (&mut always, identity()) {
        always.extend(identity);
    }
    always
}

/// The schemas of the instance views.
pub fn schemas() -> Value {
    let mut all = json!({
        "Fields": {"type": "object", "description": "Field values by name, in the definition's order: strings (keyword, text, timestamp in RFC 3339), numbers, booleans. An empty field is absent.",
            "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "InstanceItem": closed(with_identity(json!({
                "id": text(), "workflow": text(), "version": count(), "stage": text(), "status": status(),
                "sla": described("The current stage's; in a parallel stage, the worst branch's.", sla_state()),
                "deadline": time_or_null(), "tags": array(text()), "outcome": text_or_null(),
                "started_at": time(), "updated_at": time(),
                "assignee": described("Who owns the current stage's work.", text_or_null()),
                "breached_ever": described("Breached some stage's deadline at any point.", json!({"type": "boolean"}))})),
            json!({"branches": described("In a parallel stage: each branch's stage and SLA; `sla` and `deadline` are then the worst branch's.",
                array(component("Branch")))})),
        "Branch": super::branch_view::schema(),
        "InstancePage": closed(json!({"items": array(component("InstanceItem")), "next_cursor": text_or_null()}), json!({})),
        "InstanceDetail": instance_detail(),
        "ApprovalItem": closed(with_identity(json!({
                "id": text(), "instance_id": text(), "workflow": text(), "version": count(),
                "stage": text(), "level": text(),
                "role": described("The approver role the task is for.", text_or_null()),
                "user": described("The named user the task is for.", text_or_null()),
                "opened_at": time(), "sla": sla_state(), "deadline": time_or_null()})), json!({})),
        "ApprovalPage": closed(json!({"items": array(component("ApprovalItem"))}), json!({})),
        "HistoryPage": closed(with_identity(json!({"id": text(), "workflow": text(),
                "items": array(component("HistoryItem")),
                "next_from": {"type": ["integer", "null"], "description": "The `from` of the next page; null on the last."}})),
            json!({})),
        "DeclaredField": closed(json!({"name": text(),
            "type": {"enum": ["keyword", "text", "number", "timestamp", "boolean"]},
            "title": text_or_null(), "show": {"type": "boolean"}, "approval": {"type": "boolean"}}), json!({})),
        "Stats": closed(json!({
            "by_stage": described("Instances per current stage (any status).", json!({"type": "object", "additionalProperties": count()})),
            "by_sla": described("Running instances per SLA state.", json!({"type": "object", "additionalProperties": count()})),
            "key": described("The business key's expression, if declared.", text_or_null()),
            "fields": array(component("DeclaredField"))}), json!({})),
    });
    if let (Value::Object(all), Value::Object(core)) = (&mut all, core_types()) {
        all.extend(core);
    }
    all
}

/// `GET /v1/instances/{id}` (`views::InstanceDetail`).
fn instance_detail() -> Value {
    closed(
        with_identity(json!({
            "id": text(), "workflow": text(), "version": count(),
            "stage": text(), "stage_title": text_or_null(),
            "owner": described("The role that owns the current stage.", text_or_null()),
            "status": status(), "outcome": text_or_null(), "failure": text_or_null(),
            "sla": component("Sla"),
            "input": described("The start payload.", json!({})),
            "vars": {"type": "object"},
            "approvals": described("Open approval tasks.", array(component("ApprovalTask"))),
            "timers": described("Armed timers.", array(component("Timer"))),
            "tags": array(text()),
            "started_at": time(), "stage_entered_at": time(), "updated_at": time(),
            "acted_at": described("When a person or outside system last acted on it.", time_or_null()),
            "assignee": component_or_null("Assignment"),
            "sla_record": described("Stage visits that went at risk or breached, kept after the stage was left.",
                array(component("StageSla"))),
        })),
        json!({
            "branches": described("In a parallel stage: each branch's stage, owner and SLA.", array(component("Branch"))),
            "parent": component("ParentLink"),
            "children": described("The child instances its sub-workflow stages started, oldest first.",
                array(component("ChildInstance"))),
        }),
    )
}

/// The core's types as instance views show them.
fn core_types() -> Value {
    json!({
        "Sla": described("The current stage's SLA; in a parallel stage, the worst of its own and its branches'.",
            closed(json!({"state": sla_state()}), json!({"deadline": time(), "at_risk_at": time()}))),
        "Timer": closed(json!({"id": text(), "due": time(), "purpose": timer_purpose(), "stage": text()}),
            json!({"step": described("The escalation step or reminder, from 0.", count()),
                "round": described("The reminder's round, from 1.", count())})),
        "Approver": {"oneOf": [closed(json!({"role": text()}), json!({})), closed(json!({"user": text()}), json!({}))]},
        "ApprovalTask": closed(json!({"id": text(), "instance_id": text(), "stage": text(), "level": text(),
            "approver": component("Approver"), "opened_at": time()}), json!({})),
        "Assignment": closed(json!({"user": text(), "by": described("Who assigned them (themselves when they claimed it).", text()),
            "at": time(), "stage": text()}), json!({})),
        "StageSla": closed(json!({"stage": text(), "entered_at": time()}),
            json!({"deadline": time(), "at_risk_at": time(), "breached_at": time(),
                "left_at": described("Absent while the instance is still there.", time()),
                "overdue_seconds": {"type": "integer", "description": "By how much the stage overran its deadline, once left after breaching."}})),
    })
}
