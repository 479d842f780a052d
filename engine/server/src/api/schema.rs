//! Builders for the JSON Schemas of the typed answers in the OpenAPI document, so each one
//! reads as the struct it describes: the members always sent, then those sent only
//! sometimes (the struct's `skip_serializing_if` ones). Every object they build is closed
//! (`additionalProperties: false`), like the structs: the contract test
//! (`tests/it/contract.rs`) checks real answers against the document, so a member added to
//! a struct and not here, or one documented and no longer sent, fails it.

use serde_json::{json, Map, Value};

/// A closed object schema: `always` (an object of member schemas) lists the members every
/// answer has, all `required`; `sometimes` those that may be absent. Members in the order
/// given.
pub fn closed(always: Value, sometimes: Value) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    if let Value::Object(always) = always {
        for (name, schema) in always {
            required.push(Value::String(name.clone()));
            properties.insert(name, schema);
        }
    }
    if let Value::Object(sometimes) = sometimes {
        properties.extend(sometimes);
    }
    json!({"type": "object", "additionalProperties": false, "required": required,
        "properties": properties})
}

/// [`closed`] with a description.
pub fn described(text: &str, mut schema: Value) -> Value {
    schema["description"] = json!(text);
    schema
}

/// A string.
pub fn text() -> Value {
    json!({"type": "string"})
}

/// A string or `null`.
pub fn text_or_null() -> Value {
    json!({"type": ["string", "null"]})
}

/// An RFC 3339 time.
pub fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// An RFC 3339 time or `null`.
pub fn time_or_null() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}

/// A whole number, at least 0.
pub fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

/// A list of `items`.
pub fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// The component schema `name`.
pub fn component(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The component schema `name`, or `null`.
pub fn component_or_null(name: &str) -> Value {
    json!({"oneOf": [{"type": "null"}, component(name)]})
}

/// An instance's lifecycle status (`waystation_core::Status`).
pub fn status() -> Value {
    json!({"enum": ["running", "completed", "failed", "cancelled"]})
}

/// An SLA state (`waystation_core::SlaState`).
pub fn sla_state() -> Value {
    json!({"enum": ["on_time", "at_risk", "breached"]})
}

/// Why a timer exists (`waystation_core::TimerPurpose`).
pub fn timer_purpose() -> Value {
    json!({"enum": ["at_risk", "deadline", "escalation", "reminder"]})
}
