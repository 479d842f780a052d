//! The OpenAPI 3.1 document, generated from the route table: every route is in it because
//! the router is built from the same table.

use super::table::{Access, Body, Route};
use serde_json::{json, Map, Value};

fn schemas() -> Value {
    let workflow: Value = serde_json::from_str(waystation_core::WORKFLOW_SCHEMA)
        .expect("the workflow schema is JSON (waystation-core tests compile against it)");
    let mut all = json!({
        "WorkflowDefinition": workflow,
        "StartInstance": {"type": "object", "required": ["input"], "additionalProperties": false,
            "properties": {"input": {"description": "The start payload, checked against the workflow's input_schema."}}},
        "Event": {"type": "object", "required": ["type"], "additionalProperties": false,
            "properties": {"type": {"type": "string"}, "data": {},
                "stage": {"type": "string", "description": "The current stage the event is for, when several branches' stages accept it; `{branch}/{stage}` in a for_each (shipment[1]/ship_confirm)."}}},
        "PluginInvoke": {"type": "object", "required": ["input"], "additionalProperties": false,
            "properties": {"input": {"description": "The JSON the plugin receives, as given."}}},
        "Assign": {"type": "object", "required": ["to"], "additionalProperties": false,
            "properties": {"to": {"type": "string", "description": "The token name of the person who owns the work from now on."},
                "stage": {"type": "string", "description": "The current stage whose work it is (a branch's stage, addressed as events address it); needed while branches of a parallel stage run, else 409 stage-required."}}},
        "WorkStage": {"type": "object", "additionalProperties": false,
            "properties": {"stage": {"type": "string", "description": "The current stage whose work it is (a branch's stage, addressed as events address it); needed while branches of a parallel stage run, else 409 stage-required."}}},
        "Cancel": {"type": "object", "additionalProperties": false, "properties": {"reason": {"type": "string"}}},
        "Decision": {"type": "object", "required": ["decision"], "additionalProperties": false,
            "properties": {"decision": {"enum": ["approve", "reject"]}, "comment": {"type": "string"}}},
        "Schedule": {"type": "object", "required": ["cron", "zone", "workflow"], "additionalProperties": false,
            "description": "Starts `workflow` at every slot of `cron` read in `zone`, exactly once per slot (idempotency key schedule:{id}:{slot}).",
            "properties": {"cron": {"type": "string", "description": "Five fields (minute hour day month weekday) or six/seven with seconds first and a year last; weekdays by name (Thu, Mon-Fri)."},
                "zone": {"type": "string", "description": "IANA time zone, e.g. Asia/Shanghai."},
                "workflow": {"type": "string"}, "input": {"type": "object"},
                "input_expr": {"type": "string", "description": "CEL building the start payload; `now` is the slot's time. Exclusive with input."},
                "catch_up": {"enum": ["skip", "last"], "default": "skip", "description": "Slots missed while the server was down: start none, or one for the last of them."},
                "paused": {"type": "boolean", "default": false}}},
        "NewToken": {"type": "object", "required": ["name", "roles"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "roles": {"type": "array", "minItems": 1,
                "items": {"type": "string", "pattern": "^(admin|developer|operator|approver:[A-Za-z0-9_-]+)$"}}}},
        "InstanceSummary": {"type": "object", "required": ["id", "workflow", "version", "stage", "status", "sla"],
            "additionalProperties": false, "description": "Where an instance stands after a command (waystation_runtime::InstanceSummary).", "properties": {
            "id": {"type": "string"}, "workflow": {"type": "string"}, "version": {"type": "integer"},
            "stage": {"type": "string"}, "status": {"enum": ["running", "completed", "failed", "cancelled"]},
            "sla": {"enum": ["on_time", "at_risk", "breached"]}, "outcome": {"type": "string"}, "failure": {"type": "string"},
            "key": {"type": "string", "description": "The business key, when the definition declares one."}}},
    });
    for more in [
        problem(),
        answers(),
        super::view_schemas::schemas(),
        super::history_schema::schemas(),
        super::ops::schemas(),
        super::workflows::schemas(),
        super::tokens::schemas(),
        super::schedules::schemas(),
        super::progress::schemas(),
        super::reports::schemas(),
        super::postmortem::schemas(),
        super::export::schemas(),
        super::family_view::schemas(),
    ] {
        if let (Value::Object(all), Value::Object(more)) = (&mut all, more) {
            all.extend(more);
        }
    }
    all
}

/// `error::Problem`, the body of every error answer, closed.
fn problem() -> Value {
    use super::schema::{array, closed, count, described, text};
    json!({
        "Problem": described("RFC 9457 problem details.", closed(
            json!({"type": described("https://waystation.dev/problems/<kind>: stable, one per kind of problem.", text()),
                "title": text(), "status": {"type": "integer"}, "detail": text()}),
            json!({"errors": array(closed(json!({"message": text()}), json!({
                    "pointer": described("JSON pointer into the request body.", text()),
                    "parameter": described("The query or path parameter, for problems outside the body.", text()),
                    "line": count(), "column": count()}))),
                "instance": described("The running instance that holds the business key (409 key-in-use).", text())}))),
    })
}

/// The schemas of the typed answers (`ops::Health`, `workflows::Validation`,
/// `workflows::WorkflowList`, `outbox::OutboxPage`, the `plugins` answers). Closed
/// (`additionalProperties: false`) like the structs: the contract test in
/// `tests/it/contract.rs` checks real answers against them, so a field added to a struct and
/// not here fails it.
fn answers() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let time_or_null = json!({"type": ["string", "null"], "format": "date-time"});
    let text_or_null = json!({"type": ["string", "null"]});
    json!({
        "Health": {"type": "object", "additionalProperties": false, "required": ["status", "version"],
            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}},
        "Validation": {"type": "object", "additionalProperties": false, "required": ["valid", "id", "stages"],
            "properties": {"valid": {"const": true}, "id": {"type": "string"},
                "stages": {"type": "array", "items": {"type": "string"}}}},
        "WorkflowList": {"type": "object", "additionalProperties": false, "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["id", "version", "title"], "properties": {
                    "id": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
                    "title": {"description": "The newest version's title; null without one."}}}}}},
        "OutboxItem": {"type": "object", "additionalProperties": false,
            "required": ["id", "instance_id", "channel", "recipient", "subject", "body", "metadata", "status",
                "attempts", "retries", "last_error", "enqueued_at", "next_attempt_at", "last_attempt_at", "finished_at"],
            "properties": {
                "id": {"type": "string"}, "instance_id": {"type": "string"}, "channel": {"type": "string"},
                "recipient": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"},
                "metadata": {"type": "object"}, "status": {"enum": ["pending", "delivered", "dead"]},
                "attempts": {"type": "integer", "minimum": 0}, "retries": {"type": "integer", "minimum": 0},
                "last_error": text_or_null, "enqueued_at": time,
                "next_attempt_at": time_or_null, "last_attempt_at": time_or_null, "finished_at": time_or_null}},
        "OutboxPage": {"type": "object", "additionalProperties": false, "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/OutboxItem"}},
                "next_cursor": text_or_null}},
        "Actor": {"type": "object", "additionalProperties": false, "required": ["token_id", "name"],
            "properties": {"token_id": {"type": "string"}, "name": {"type": "string"}}},
        "PluginLimits": {"type": "object", "additionalProperties": false,
            "required": ["time_budget_ms", "memory_bytes", "output_bytes"],
            "properties": {"time_budget_ms": {"type": "integer"}, "memory_bytes": {"type": "integer"},
                "output_bytes": {"type": "integer"}}},
        "PluginVersion": plugin_version(None),
        "PluginUpload": plugin_version(Some(("created", json!({"type": "boolean",
            "description": "False when these exact bytes were already registered under the name."})))),
        "PluginList": {"type": "object", "additionalProperties": false, "required": ["items"],
            "properties": {"items": {"type": "array", "items": plugin_version(Some(("versions",
                json!({"type": "integer", "minimum": 1, "description": "How many versions are registered."}))))}}},
        "PluginDetail": {"type": "object", "additionalProperties": false,
            "required": ["name", "world", "newest", "versions", "limits"],
            "properties": {"name": {"type": "string"}, "world": {"enum": ["scorer", "notifier"]},
                "newest": {"$ref": "#/components/schemas/PluginVersion"},
                "versions": {"type": "array", "items": {"$ref": "#/components/schemas/PluginVersion"}},
                "limits": {"$ref": "#/components/schemas/PluginLimits"}}},
        "PluginInvocation": {"type": "object", "additionalProperties": false,
            "required": ["outcome", "output", "error", "logs", "duration_us", "plugin", "limits"],
            "properties": {"outcome": {"enum": ["ok", "failed"]},
                "output": {"description": "The plugin's output; null when it failed."},
                "error": {"oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": false,
                    "required": ["kind", "message"], "properties": {
                        "kind": {"enum": ["timeout", "out_of_memory", "trap", "bad_output", "plugin_error", "not_found"]},
                        "message": {"type": "string"}}}]},
                "logs": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "required": ["level", "message"], "properties": {
                        "level": {"enum": ["trace", "debug", "info", "warn", "error"]}, "message": {"type": "string"}}}},
                "duration_us": {"type": "integer", "description": "Instantiation plus call, in microseconds."},
                "plugin": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/PluginVersion"}]},
                "limits": {"$ref": "#/components/schemas/PluginLimits"}}},
    })
}

/// The schema of each route's success answer, by method and path: one shape per resource,
/// the one its handler's struct serialises. The contract test (`tests/it/contract.rs`) checks
/// a real answer of every row, and that every route answering JSON has a row.
pub const ANSWERS: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "Health"),
    ("GET", "/readyz", "Readiness"),
    ("PUT", "/v1/workflows/{id}", "WorkflowStored"),
    ("POST", "/v1/workflows/validate", "Validation"),
    ("GET", "/v1/workflows", "WorkflowList"),
    ("GET", "/v1/workflows/{id}", "WorkflowVersion"),
    (
        "GET",
        "/v1/workflows/{id}/versions/{version}",
        "WorkflowVersion",
    ),
    ("POST", "/v1/workflows/{id}/instances", "InstanceSummary"),
    ("GET", "/v1/workflows/{id}/keys/{key}", "InstanceDetail"),
    (
        "POST",
        "/v1/workflows/{id}/keys/{key}/events",
        "InstanceSummary",
    ),
    (
        "POST",
        "/v1/workflows/{id}/keys/{key}/cancel",
        "InstanceSummary",
    ),
    (
        "POST",
        "/v1/workflows/{id}/keys/{key}/decisions",
        "InstanceSummary",
    ),
    ("GET", "/v1/instances", "InstancePage"),
    ("GET", "/v1/instances/{id}", "InstanceDetail"),
    ("GET", "/v1/instances/{id}/history", "HistoryPage"),
    ("GET", "/v1/instances/{id}/postmortem", "PostMortem"),
    ("GET", "/v1/instances/{id}/export", "InstanceExport"),
    ("POST", "/v1/instances/{id}/events", "InstanceSummary"),
    ("POST", "/v1/instances/{id}/cancel", "InstanceSummary"),
    ("POST", "/v1/instances/{id}/retry", "InstanceSummary"),
    ("GET", "/v1/instances/{id}/progress-link", "ProgressLink"),
    ("DELETE", "/v1/instances/{id}/progress-link", "ProgressLink"),
    ("GET", "/progress/{link}", "CustomerProgress"),
    ("GET", "/v1/work", "InstancePage"),
    ("POST", "/v1/instances/{id}/claim", "InstanceSummary"),
    ("POST", "/v1/instances/{id}/assign", "InstanceSummary"),
    ("POST", "/v1/instances/{id}/release", "InstanceSummary"),
    ("GET", "/v1/stats/{workflow}", "Stats"),
    ("GET", "/v1/reports/{workflow}", "Report"),
    ("GET", "/v1/approvals", "ApprovalPage"),
    ("POST", "/v1/approvals/{task_id}", "InstanceSummary"),
    ("POST", "/v1/tokens", "TokenCreated"),
    ("GET", "/v1/tokens", "TokenList"),
    ("GET", "/v1/outbox", "OutboxPage"),
    ("POST", "/v1/outbox/{id}/retry", "OutboxItem"),
    ("PUT", "/v1/plugins/{name}", "PluginUpload"),
    ("GET", "/v1/plugins", "PluginList"),
    ("GET", "/v1/plugins/{name}", "PluginDetail"),
    ("POST", "/v1/plugins/{name}/invoke", "PluginInvocation"),
    ("PUT", "/v1/schedules/{id}", "ScheduleView"),
    ("GET", "/v1/schedules", "ScheduleList"),
    ("GET", "/v1/schedules/{id}", "ScheduleView"),
    ("POST", "/v1/schedules/{id}/pause", "ScheduleView"),
    ("POST", "/v1/schedules/{id}/resume", "ScheduleView"),
];

/// `plugins::PluginVersion`, closed; with `extra`, the struct that flattens it beside one
/// more field (`plugins::Uploaded`, `plugins::PluginItem`).
fn plugin_version(extra: Option<(&str, Value)>) -> Value {
    let mut schema = json!({"type": "object", "additionalProperties": false,
        "required": ["name", "version", "world", "digest", "pinned", "size", "added_at", "uploaded_by"],
        "properties": {"name": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
            "world": {"enum": ["scorer", "notifier"]}, "digest": {"type": "string", "description": "Hex SHA-256 of the bytes."},
            "pinned": {"type": "string", "description": "name@sha256:<hex>: exactly this version."},
            "size": {"type": "integer", "description": "Bytes."},
            "added_at": {"type": "integer", "description": "Seconds since the Unix epoch."},
            "uploaded_by": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Actor"}]}}});
    if let Some((name, field)) = extra {
        schema["properties"][name] = field;
        if let Some(required) = schema["required"].as_array_mut() {
            required.push(json!(name));
        }
    }
    schema
}

/// The schema name of the success answer of `method path`, when the document has one.
pub fn answer_schema(method: &str, path: &str) -> Option<&'static str> {
    ANSWERS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, schema)| *schema)
}

/// The document of `routes` (the route table's rows, passed in so that this module need not
/// reach back into the table that names its handler): one operation per route, the schemas
/// they name.
pub fn document(routes: &[Route]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in routes {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Waystation", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Workflow engine API: definitions, plugins, instances, approvals."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

/// The operation object of `route`: summary, parameters, body, answers, who may call.
fn operation(route: &Route) -> Value {
    let mut op = json!({
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": format!("{} {}", route.method, route.path),
    });
    let parameters = parameters(route);
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = request_body(route.body) {
        op["requestBody"] = body;
    }
    if route.access != Access::Public {
        op["security"] = json!([{"bearer": []}]);
        let who = match route.access {
            Access::Roles(r) => r.join(", "),
            Access::RolesOrAssignee(r) => {
                format!("{}, or the instance's current assignee", r.join(", "))
            }
            Access::Approver => "approver:<role>".to_owned(),
            Access::AnyToken => "any token".to_owned(),
            Access::Public => String::new(),
        };
        op["description"] = json!(format!("Roles: {who}."));
    }
    op["responses"] = responses(route);
    op
}

/// The path parameters of `route` (its `{name}` segments), its query parameters, and the
/// `Idempotency-Key` header where it honours one.
fn parameters(route: &Route) -> Vec<Value> {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    for q in route.query {
        let schema = serde_json::from_str::<Value>(q.schema)
            .expect("a query parameter's schema is a JSON literal in the route table");
        let mut param = json!({"name": q.name, "in": "query", "required": false,
            "description": q.description});
        // A list is one parameter with its values separated by commas.
        if schema["type"] == "array" {
            param["style"] = json!("form");
            param["explode"] = json!(false);
        }
        param["schema"] = schema;
        parameters.push(param);
    }
    // Every route that changes something honours the key; the dry runs (validate,
    // invoke) change nothing, so a key would mean nothing there.
    let dry_run = matches!(
        route.path,
        "/v1/workflows/validate" | "/v1/plugins/{name}/invoke"
    );
    if route.method != axum::http::Method::GET
        && route.method != axum::http::Method::DELETE
        && !dry_run
    {
        parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "A repeat with the same key returns the first answer and applies nothing twice.",
            "schema": {"type": "string", "maxLength": 255}}));
    }
    parameters
}

/// The request body object of a route taking `body`; `None` for a route that takes none.
fn request_body(body: Body) -> Option<Value> {
    let json_body = |schema: &str, required: bool| json!({"required": required, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    match body {
        Body::None => None,
        Body::Json(schema) => Some(json_body(schema, true)),
        Body::OptionalJson(schema) => Some(json_body(schema, false)),
        Body::Wasm => Some(
            json!({"required": true, "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}}),
        ),
    }
}

/// The responses object of `route`: its success answer (with its schema from [`ANSWERS`]),
/// the other statuses it can answer, and 401/403 where a token is needed.
fn responses(route: &Route) -> Value {
    let mut responses = Map::new();
    let mut ok = json!({"description": "Success"});
    if let Some(schema) = answer_schema(route.method.as_str(), route.path) {
        ok["content"] = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
    }
    if route.path == "/v1/reports/{workflow}" {
        ok["content"]["text/csv"] = json!({"schema": {"type": "string",
            "description": "period,start,end,group,stage,figure,value: one figure per line"}});
    }
    let mut errors: Vec<u16> = route.errors.to_vec();
    if route.access != Access::Public {
        errors.extend([401, 403]);
    }
    // Another success status (200 for an upload that changed nothing) answers the same shape.
    let other_ok = ok.clone();
    responses.insert(route.ok.to_string(), ok);
    for code in errors {
        let r = if code < 300 {
            other_ok.clone()
        } else {
            json!({"description": "Problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        };
        responses.insert(code.to_string(), r);
    }
    Value::Object(responses)
}

#[cfg(test)]
mod request_tests {
    //! Each request body's documented schema against the struct its handler reads: every
    //! member of the struct is a documented property and the other way round. The structs
    //! are built with every member set, so a member added to a struct must be added here
    //! (or the build fails) and then fails the test until the document has it too.
    use super::schemas;
    use serde::Serialize;
    use serde_json::{json, Value};

    fn members(value: &Value) -> Vec<String> {
        let mut out: Vec<String> = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    fn check(schema: &str, body: impl Serialize) {
        let all = schemas();
        let doc = &all[schema];
        assert_eq!(
            doc["additionalProperties"],
            json!(false),
            "{schema} is closed"
        );
        let body = serde_json::to_value(body).expect("a request struct serialises");
        assert_eq!(
            members(&body),
            members(&doc["properties"]),
            "{schema}: the struct's members against the document's properties"
        );
        for required in doc["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            assert!(
                body.get(name).is_some(),
                "{schema}: required {name} is a member"
            );
        }
    }

    #[test]
    fn every_request_body_struct_has_exactly_its_documented_members() {
        use crate::api::{approvals, assignments, instances, plugins, tokens};
        let text = || Some("x".to_owned());
        check(
            "StartInstance",
            instances::StartInstance { input: json!({}) },
        );
        check(
            "Event",
            instances::Event {
                kind: "confirmed".into(),
                data: json!({}),
                stage: text(),
            },
        );
        check("Cancel", instances::Cancel { reason: text() });
        check(
            "Decision",
            approvals::Decision {
                decision: "approve".into(),
                comment: text(),
            },
        );
        check(
            "Assign",
            assignments::Assign {
                to: "ana".into(),
                stage: text(),
            },
        );
        check("WorkStage", assignments::WorkAt { stage: text() });
        check(
            "NewToken",
            tokens::NewToken {
                name: "ana".into(),
                roles: vec!["operator".into()],
            },
        );
        check("PluginInvoke", plugins::Invoke { input: json!({}) });
        check(
            "Schedule",
            waystation_store::ScheduleSpec {
                cron: "0 7 * * Thu".into(),
                zone: "Asia/Shanghai".into(),
                workflow: "weekly".into(),
                input: Some(json!({})),
                input_expr: text(),
                catch_up: waystation_store::CatchUp::Last,
                paused: true,
            },
        );
    }
}
