//! Layer 1: the definition's structure, checked by `schemas/workflow.schema.json`.
//!
//! jsonschema's own messages echo whole objects (`{"role":"agent","user":"ana"} has more than
//! 1 property`) and name schema keywords (`not valid under any of the schemas listed in the
//! 'oneOf' keyword`). [`humanize`] turns each error into one short line that says what to
//! change, pointed at the member to change.

use super::ValidationError;
use crate::source::escape_pointer_segment;
use jsonschema::error::{TypeKind, ValidationErrorKind as K};
use serde_json::Value;
use std::sync::LazyLock;

/// The workflow schema, embedded at build time so the binary needs no files beside it.
pub const WORKFLOW_SCHEMA: &str = include_str!("../../../../schemas/workflow.schema.json");

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(WORKFLOW_SCHEMA).expect("the embedded workflow schema is JSON")
});

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::draft202012::new(&SCHEMA).expect("the embedded workflow schema compiles")
});

/// Whose schema an error comes from: the words differ.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The workflow schema, checking a definition: we know every path and can name things.
    Definition,
    /// The JSON Schema meta-schema, checking a definition's `input_schema`.
    MetaSchema,
    /// A definition's `input_schema`, checking a start payload.
    Payload,
}

/// Every structural error in `doc`.
pub(crate) fn check(doc: &Value) -> Vec<ValidationError> {
    VALIDATOR
        .iter_errors(doc)
        .flat_map(|e| humanize(&e, Source::Definition, ""))
        .collect()
}

/// Compiles a user-supplied JSON Schema (a definition's `input_schema`, at `pointer`).
///
/// `format` is asserted, not just annotated: a payload whose `date-time` is
/// `2024-02-30T12:00:00Z` or `tomorrow` is refused at its pointer (see `schemas/README.md`
/// for the formats known).
///
/// # Errors
/// The schema's own problem, pointed into the definition.
pub(crate) fn compile_user_schema(
    schema: &Value,
    pointer: &str,
) -> Result<jsonschema::Validator, Vec<ValidationError>> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            humanize(&e, Source::MetaSchema, pointer)
                .into_iter()
                .map(|mut v| {
                    v.message = format!("not a valid JSON Schema: {}", v.message);
                    v
                })
                .collect()
        })
}

/// Checks `instance` against a compiled user schema, errors pointed into the instance.
pub(crate) fn check_against(
    validator: &jsonschema::Validator,
    instance: &Value,
) -> Vec<ValidationError> {
    validator
        .iter_errors(instance)
        .flat_map(|e| humanize(&e, Source::Payload, ""))
        .collect()
}

/// One or more short errors for one jsonschema error, each pointed at what to change.
///
/// `prefix` is prepended to every pointer (for schemas nested in the definition).
///
/// One piece on purpose, though long: it is a table, one match arm per kind of jsonschema
/// error, each a few lines that word it. Split, the arms would be functions called from one
/// place each, and a reader would lose the one list of every error a definition can get.
fn humanize(
    e: &jsonschema::ValidationError<'_>,
    source: Source,
    prefix: &str,
) -> Vec<ValidationError> {
    let at = format!("{prefix}{}", e.instance_path());
    let schema_path = e.schema_path().to_string();
    let definition = source == Source::Definition;
    let one = |pointer: String, message: String| vec![ValidationError::new(pointer, message)];
    match e.kind() {
        K::PropertyNames { error } => {
            let name = error.instance().as_str().unwrap_or("?");
            let pointer = format!("{at}/{}", escape_pointer_segment(name));
            let message = match error.kind() {
                K::Enum { options } if definition && schema_path.starts_with("/$defs/stage/") => {
                    let kind = stage_kind(e.instance());
                    let fields = strings(options);
                    format!(
                        "'{name}' is not a field of {}{}",
                        stage_noun(kind),
                        suggestion_or_list(name, &fields, "its fields are")
                    )
                }
                K::Pattern { pattern } => {
                    let noun = match last_segment(&at).as_str() {
                        "stages" => "stage name",
                        "on" => "event name",
                        "set" => "variable name",
                        _ => "name",
                    };
                    pattern_message(name, pattern, noun, source)
                }
                _ => format!("the name '{name}' is not allowed: {}", short(&error.to_string())),
            };
            one(pointer, message)
        }
        K::AdditionalProperties { unexpected } => {
            let parent = schema_path.trim_end_matches("/additionalProperties");
            let fields = if definition {
                allowed_fields(parent)
            } else {
                Vec::new()
            };
            let noun = if definition {
                object_noun(parent, e.instance())
            } else {
                "this object".to_owned()
            };
            unexpected
                .iter()
                .map(|u| {
                    let tail = if fields.is_empty() {
                        String::new()
                    } else {
                        suggestion_or_list(u, &fields, "its fields are")
                    };
                    ValidationError::new(
                        format!("{at}/{}", escape_pointer_segment(u)),
                        format!("'{u}' is not a field of {noun}{tail}"),
                    )
                })
                .collect()
        }
        K::Required { property } => {
            let property = property.as_str().unwrap_or("?");
            let message = if definition {
                let parent = schema_path.trim_end_matches("/required");
                if parent == "/$defs/stage" {
                    "a stage needs 'kind': task, wait, approval or end".to_owned()
                } else {
                    format!(
                        "{} needs '{property}'{}",
                        object_noun(parent, e.instance()),
                        required_hint(property)
                    )
                }
            } else {
                format!("'{property}' is required")
            };
            one(at, message)
        }
        K::OneOfNotValid { context } | K::OneOfMultipleValid { context }
            if definition && schema_path == "/$defs/action/oneOf" =>
        {
            explain_action(e.instance(), context, &at)
        }
        K::AnyOf { .. } if definition && schema_path.starts_with("/$defs/level/properties/quorum") => {
            one(
                at,
                format!(
                    "quorum must be \"any\", \"all\" or a whole number from 1 to 4294967295, not {}",
                    render(e.instance())
                ),
            )
        }
        K::AnyOf { context } if definition && schema_path == "/$defs/branches/anyOf" => {
            // One branch object, or a list of them: explain against the form that was meant.
            let meant = match e.instance().as_ref() {
                Value::Object(_) => context.first(),
                Value::Array(_) => context.get(1),
                _ => None,
            };
            match meant {
                Some(errors) if !errors.is_empty() => errors
                    .iter()
                    .flat_map(|c| humanize(c, source, prefix))
                    .collect(),
                _ => one(
                    at,
                    format!(
                        "expected a branch {{\"to\": \"stage\"}} or a non-empty list of them, not {}",
                        type_noun(e.instance())
                    ),
                ),
            }
        }
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            // The alternatives whose type fits are the ones the author meant.
            let fitting: Vec<_> = context
                .iter()
                .filter(|errors| !errors.iter().all(|c| matches!(c.kind(), K::Type { .. })))
                .collect();
            match fitting.as_slice() {
                [errors] if !errors.is_empty() => errors
                    .iter()
                    .flat_map(|c| humanize(c, source, prefix))
                    .collect(),
                _ => one(
                    at,
                    format!("{} matches none of the allowed forms", render(e.instance())),
                ),
            }
        }
        K::MinItems { .. } if definition => {
            let message = match last_segment(&at).as_str() {
                "approvers" => "an approval level needs at least one approver",
                "levels" => "an approval stage needs at least one level",
                "transitions" => "a task stage needs at least one transition; end the list with one without `when`",
                _ if schema_path.starts_with("/$defs/branches") => {
                    "the list of branches is empty; give at least one {\"to\": \"stage\"}"
                }
                _ => "the list must not be empty",
            };
            one(at, message.to_owned())
        }
        K::MinItems { limit } => {
            let message = if *limit == 1 {
                "the list must not be empty".to_owned()
            } else {
                format!("the list needs at least {limit} items")
            };
            one(at, message)
        }
        K::OneOfMultipleValid { .. } => one(
            at,
            format!(
                "{} matches more than one of the allowed forms",
                render(e.instance())
            ),
        ),
        K::Constant { expected_value } => one(
            at,
            format!(
                "expected {}, not {}",
                render(expected_value),
                render(e.instance())
            ),
        ),
        K::UniqueItems => one(at, "the list has repeated items".to_owned()),
        K::MinProperties { .. } | K::MaxProperties { .. }
            if definition && schema_path.starts_with("/$defs/approver/") =>
        {
            one(
                at,
                "an approver is either {\"role\": \"...\"} or {\"user\": \"...\"}; list a role and a user as two approvers".to_owned(),
            )
        }
        K::MinProperties { .. } if definition => {
            let message = match last_segment(&at).as_str() {
                "stages" => "a workflow needs at least one stage",
                "set" => "set needs at least one variable",
                _ if schema_path.starts_with("/$defs/action/") => {
                    "an action needs one of set, call, notify or tag"
                }
                _ => "the object must not be empty",
            };
            one(at, message.to_owned())
        }
        K::MinLength { limit: 1 } => {
            let field = last_segment(&at);
            let message = if field.is_empty() || field.bytes().all(|b| b.is_ascii_digit()) {
                "must not be empty".to_owned()
            } else {
                format!("{field} must not be empty")
            };
            one(at, message)
        }
        K::Pattern { pattern } => {
            let text = e.instance().as_str().unwrap_or_default();
            let noun = match last_segment(&at).as_str() {
                "to" | "start" => "stage name",
                "name" if at.contains("/branches/") || at.contains("/for_each/") => "branch name",
                "name" => "level name",
                "result" => "variable name",
                "id" => "id",
                "outcome" => "outcome",
                "tag" => "tag",
                _ => "value",
            };
            one(at, pattern_message(text, pattern, noun, source))
        }
        K::Enum { options } => {
            let message = if definition && schema_path == "/$defs/stage/properties/kind/enum" {
                format!(
                    "{} is not a kind of stage: use task, wait, approval or end",
                    render(e.instance())
                )
            } else if source == Source::MetaSchema && schema_path.ends_with("simpleTypes/enum") {
                format!(
                    "{} is not a JSON type: use one of {}",
                    render(e.instance()),
                    strings(options).join(", ")
                )
            } else {
                let options: Vec<String> = match options.as_ref() {
                    Value::Array(items) => items.iter().map(render).collect(),
                    other => vec![render(other)],
                };
                format!("{} is not one of {}", render(e.instance()), options.join(", "))
            };
            one(at, message)
        }
        K::Type { .. } if definition && last_segment(&at) == "transitions" => one(
            at,
            format!(
                "transitions is a list of branches, [{{\"to\": \"stage\"}}, ...], not {}",
                type_noun(e.instance())
            ),
        ),
        K::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![t.as_str()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
            };
            let expected: Vec<String> = expected.iter().map(|t| with_article(t)).collect();
            one(
                at,
                format!(
                    "expected {}, not {}",
                    expected.join(" or "),
                    type_noun(e.instance())
                ),
            )
        }
        K::Format { format } => one(
            at,
            format!("{} is not a valid {format}", render(e.instance())),
        ),
        _ => one(at, short(&e.to_string())),
    }
}

/// An action matched no verb's form: explain it against the verb it uses.
fn explain_action(
    instance: &Value,
    context: &[Vec<jsonschema::ValidationError<'static>>],
    at: &str,
) -> Vec<ValidationError> {
    const VERBS: [&str; 4] = ["set", "call", "notify", "tag"];
    let Value::Object(fields) = instance else {
        return vec![ValidationError::new(
            at,
            format!("expected an action object, not {}", type_noun(instance)),
        )];
    };
    let used: Vec<usize> = (0..VERBS.len())
        .filter(|&i| fields.contains_key(VERBS[i]))
        .collect();
    match used.as_slice() {
        [verb] => context
            .get(*verb)
            .map(|errors| {
                errors
                    .iter()
                    .flat_map(|c| humanize(c, Source::Definition, ""))
                    .collect::<Vec<_>>()
            })
            .filter(|errors| !errors.is_empty())
            .unwrap_or_else(|| {
                vec![ValidationError::new(
                    at,
                    format!("this {} action is malformed", VERBS[*verb]),
                )]
            }),
        [] => {
            let names: Vec<String> = fields.keys().cloned().collect();
            let hint = names
                .iter()
                .find_map(|n| suggestion(n, &VERBS.map(str::to_owned)))
                .unwrap_or_default();
            vec![ValidationError::new(
                at,
                format!("an action needs one of set, call, notify or tag{hint}"),
            )]
        }
        several => {
            let names: Vec<String> = several.iter().map(|&i| format!("'{}'", VERBS[i])).collect();
            vec![ValidationError::new(
                at,
                format!(
                    "an action does one thing, but this one has {}; split it into {} actions",
                    join_and(&names),
                    several.len()
                ),
            )]
        }
    }
}

/// What a required field is for, when its name alone does not say.
fn required_hint(property: &str) -> &'static str {
    match property {
        "start" => ": the name of the first stage",
        "outcome" => ", such as resolved or rejected",
        "result" => ": the variable that receives the plugin's result",
        "transitions" => ": where to go once its actions have run",
        "on_approve" => ": where to go once the last level approves",
        "on_reject" => ": where to go when a level rejects",
        "to" => ": the stage it leads to",
        _ => "",
    }
}

/// "an approval stage", "a task stage", or "a stage" when the kind is unknown.
fn stage_noun(kind: Option<&str>) -> String {
    match kind {
        Some(k @ ("task" | "wait")) => format!("a {k} stage"),
        Some(k @ ("approval" | "end")) => format!("an {k} stage"),
        _ => "a stage".to_owned(),
    }
}

fn stage_kind(stage: &Value) -> Option<&str> {
    stage.get("kind").and_then(Value::as_str)
}

/// What the object described by the schema at `schema_pointer` is, for messages.
fn object_noun(schema_pointer: &str, instance: &Value) -> String {
    let noun = match schema_pointer {
        "" => "the definition",
        "/$defs/branch" => "a branch",
        "/$defs/level" => "an approval level",
        "/$defs/approver" => "an approver",
        "/$defs/parallel_branch" => "a parallel stage's branch",
        "/$defs/join" => "a join",
        "/$defs/action/oneOf/0" => "a set action",
        "/$defs/action/oneOf/1" => "a call action",
        "/$defs/action/oneOf/2" => "a notify action",
        "/$defs/action/oneOf/3" => "a tag action",
        p if p.starts_with("/$defs/stage") => return stage_noun(stage_kind(instance)),
        _ => "this object",
    };
    noun.to_owned()
}

/// The fields the workflow schema allows on the object it describes at `schema_pointer`.
fn allowed_fields(schema_pointer: &str) -> Vec<String> {
    SCHEMA
        .pointer(schema_pointer)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// What a pattern of the workflow schema asks for, in words.
fn pattern_message(text: &str, pattern: &str, noun: &str, source: Source) -> String {
    if source != Source::Definition {
        return format!("'{text}' does not match the pattern {pattern}");
    }
    let rule = match pattern {
        "^P" => {
            return format!("'{text}' is not an ISO 8601 duration such as PT4H, P3D or PT1H30M")
        }
        p if p.contains("@sha256") => {
            return format!(
                "'{text}' is not a plugin reference: write name or name@sha256:<64 lowercase hex digits>, the name in lowercase letters, digits and '-'"
            )
        }
        "^[a-z][a-z0-9_-]{0,62}$" => "lowercase letters, digits, '_' and '-', starting with a letter",
        "^[a-z0-9][a-z0-9-]{0,62}$" => "lowercase letters, digits and '-', starting with a letter or digit",
        "^[a-z_][a-z0-9_]{0,62}$" => "lowercase letters, digits and '_', not starting with a digit",
        "^[a-z][a-z0-9_.-]{0,62}$" => "lowercase letters, digits, '_', '.' and '-', starting with a letter",
        "^[a-z0-9][a-z0-9_.:-]{0,62}$" => {
            "lowercase letters, digits, '_', '.', ':' and '-', starting with a letter or digit"
        }
        _ => return format!("'{text}' does not match the pattern {pattern}"),
    };
    format!("'{text}' is not a valid {noun}: use {rule}, at most 63 characters")
}

/// " (did you mean 'x'?)" when a candidate is close to `name`.
fn suggestion(name: &str, candidates: &[String]) -> Option<String> {
    crate::hint::did_you_mean(name, candidates.iter().map(String::as_str))
}

/// A "did you mean" hint, or the list of what is allowed.
fn suggestion_or_list(name: &str, candidates: &[String], lead: &str) -> String {
    suggestion(name, candidates).unwrap_or_else(|| format!("; {lead} {}", candidates.join(", ")))
}

fn strings(options: &Value) -> Vec<String> {
    match options {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The last segment of a JSON pointer, unescaped.
fn last_segment(pointer: &str) -> String {
    pointer
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~")
}

/// A value as messages quote it: strings in single quotes, anything else as compact JSON,
/// never more than a few dozen characters.
fn render(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("'{s}'"),
        Value::Object(_) | Value::Array(_) => return type_noun(value).to_owned(),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn type_noun(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn with_article(json_type: &str) -> String {
    match json_type {
        "null" => "null".to_owned(),
        "array" => "a list".to_owned(),
        "integer" | "object" => format!("an {json_type}"),
        other => format!("a {other}"),
    }
}

fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(197).collect();
        format!("{cut}...")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload_errors(schema: Value, payload: Value) -> Vec<String> {
        let validator = compile_user_schema(&schema, "/input_schema").expect("schema compiles");
        check_against(&validator, &payload)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn payload_errors_are_short_and_name_no_workflow_fields() {
        let schema = json!({
            "type": "object",
            "required": ["order_no"],
            "properties": {
                "levels": { "type": "array", "minItems": 2 },
                "tier": { "enum": ["strategic", "regular"] },
                "amount": { "type": "number" }
            }
        });
        let payload = json!({ "levels": [1], "tier": "gold", "amount": { "value": 3 } });
        assert_eq!(
            payload_errors(schema, payload),
            [
                "(document): 'order_no' is required",
                "/levels: the list needs at least 2 items",
                "/tier: 'gold' is not one of 'strategic', 'regular'",
                "/amount: expected a number, not an object",
            ]
        );
    }

    #[test]
    fn a_broken_input_schema_is_pointed_into_the_definition() {
        let errors = compile_user_schema(
            &json!({ "properties": { "a": { "minimum": "x" } } }),
            "/input_schema",
        )
        .expect_err("the schema is invalid");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "/input_schema/properties/a/minimum");
        assert!(
            errors[0].message.starts_with("not a valid JSON Schema: "),
            "{}",
            errors[0].message
        );
    }
}
