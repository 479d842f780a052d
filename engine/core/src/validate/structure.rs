//! Layer 1: the definition's structure, checked by `schemas/workflow.schema.json`.

use super::ValidationError;
use serde_json::Value;
use std::sync::LazyLock;

/// The workflow schema, embedded at build time so the binary needs no files beside it.
pub const WORKFLOW_SCHEMA: &str = include_str!("../../../../schemas/workflow.schema.json");

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value =
        serde_json::from_str(WORKFLOW_SCHEMA).expect("the embedded workflow schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the embedded workflow schema compiles")
});

/// Every structural error in `doc`.
pub(crate) fn check(doc: &Value) -> Vec<ValidationError> {
    VALIDATOR
        .iter_errors(doc)
        .map(|e| ValidationError::new(e.instance_path().to_string(), humanize(&e)))
        .collect()
}

/// Compiles a user-supplied JSON Schema (a definition's `input_schema`).
///
/// # Errors
/// The schema's own problem, as a message.
pub(crate) fn compile_user_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::new(schema).map_err(|e| {
        let at = e.instance_path().to_string();
        if at.is_empty() {
            format!("not a valid JSON Schema: {e}")
        } else {
            format!("not a valid JSON Schema at {at}: {e}")
        }
    })
}

/// Checks `instance` against a compiled user schema, errors pointed into the instance.
pub(crate) fn check_against(
    validator: &jsonschema::Validator,
    instance: &Value,
) -> Vec<ValidationError> {
    validator
        .iter_errors(instance)
        .map(|e| ValidationError::new(e.instance_path().to_string(), humanize(&e)))
        .collect()
}

/// jsonschema's messages echo whole objects; keep them short and say what to change.
fn humanize(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::PropertyNames { error } => match error.kind() {
            K::Enum { .. } => format!(
                "'{}' is not a field of this kind of stage",
                error.instance().as_str().unwrap_or("?")
            ),
            _ => format!("name '{}' is not allowed: {}", error.instance().as_str().unwrap_or("?"), short(&error.to_string())),
        },
        K::AdditionalProperties { unexpected } => format!(
            "unknown field{} {}",
            if unexpected.len() > 1 { "s" } else { "" },
            unexpected.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
        ),
        K::OneOfNotValid { .. } | K::OneOfMultipleValid { .. } if e.schema_path().to_string().contains("action") => {
            "an action has exactly one of set, call (with result), notify or tag, and only their own fields".to_owned()
        }
        K::AnyOf { .. } if e.schema_path().to_string().contains("branches") => {
            "expected a branch {\"to\": ...} or a non-empty list of them".to_owned()
        }
        K::AnyOf { .. } if e.schema_path().to_string().contains("quorum") => {
            "quorum is \"any\", \"all\" or a whole number of at least 1".to_owned()
        }
        _ => short(&e.to_string()),
    }
}

fn short(message: &str) -> String {
    if message.chars().count() > 200 {
        let cut: String = message.chars().take(197).collect();
        format!("{cut}...")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod debug_tmp {
    use super::*;
    fn dump(e: &jsonschema::ValidationError<'_>, depth: usize) {
        use jsonschema::error::ValidationErrorKind as K;
        let pad = "  ".repeat(depth);
        println!("{pad}kind={:?} inst={} schema={} eval={} :: {}", std::mem::discriminant(e.kind()), e.instance_path(), e.schema_path(), e.evaluation_path(), e);
        match e.kind() {
            K::AnyOf { context } | K::OneOfNotValid { context } | K::OneOfMultipleValid { context } => {
                for (i, branch) in context.iter().enumerate() {
                    println!("{pad} branch {i}:");
                    for c in branch { dump(c, depth + 2); }
                }
            }
            K::PropertyNames { error } => dump(error, depth + 1),
            _ => {}
        }
    }
    #[test]
    fn dump_golden() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/invalid");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        files.sort();
        for f in files {
            let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(&f).unwrap()) else { continue };
            println!("=== {}", f.display());
            for e in VALIDATOR.iter_errors(&v) { dump(&e, 1); }
            if let Some(s) = v.get("input_schema") {
                if let Err(e) = jsonschema::draft202012::new(s) { dump(&e, 1); }
            }
        }
    }
}
