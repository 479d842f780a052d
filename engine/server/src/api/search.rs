//! The key, field and sort parameters of `GET /v1/instances`, read against the
//! definition of the `workflow=` given (field names and types belong to a workflow):
//!
//! | parameter | field types | meaning |
//! | --- | --- | --- |
//! | `key=202405-001` | | the instance(s) with this business key |
//! | `field.tier=gold` | keyword, boolean | equal |
//! | `field.customer=acme co` | text | every word begins a word of the field (case-insensitive) |
//! | `field.amount=50000` | number, timestamp | equal |
//! | `field.amount.gte=`, `.gt=`, `.lte=`, `.lt=` | number, timestamp | a range (timestamps in RFC 3339) |
//! | `sort=deadline`, `sort=updated`, `sort=field.amount` | keyword, boolean, number, timestamp | ascending |
//!
//! A list sorted by deadline holds running instances with a deadline; one sorted by a field
//! holds instances where the field has a value.

use super::error::{ApiError, FieldError};
use std::collections::HashMap;
use waystation_core::definition::{FieldType, OrderedFields};
use waystation_core::fields::words;
use waystation_core::FieldValue;
use waystation_store::{Bound, FieldFilter, FieldTest, SortBy};

/// Most field tests one list request may carry.
pub const MAX_FIELD_TESTS: usize = 8;

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::bad_request(format!("bad value for {param}: {message}"))
        .with_errors(vec![FieldError::param(param, message)])
}

/// True when `name` is a field parameter (`field.` ...), read by [`field_filters`].
pub fn is_field_param(name: &str) -> bool {
    name.starts_with("field.")
}

/// The field tests of `params`, checked against `fields` (the workflow's declared fields);
/// 400 naming the parameter for an unknown field, a test its type does not take, or a
/// value it cannot read.
pub fn field_filters(
    params: &HashMap<String, String>,
    fields: &OrderedFields,
) -> Result<Vec<FieldFilter>, ApiError> {
    let mut names: Vec<&String> = params.keys().filter(|k| is_field_param(k)).collect();
    names.sort();
    if names.len() > MAX_FIELD_TESTS {
        return Err(bad(
            names[MAX_FIELD_TESTS],
            format!("at most {MAX_FIELD_TESTS} field tests per request"),
        ));
    }
    let mut out: Vec<FieldFilter> = Vec::new();
    for param in names {
        let rest = &param["field.".len()..];
        let (field, op) = match rest.rsplit_once('.') {
            Some((f, op)) if ["gte", "gt", "lte", "lt"].contains(&op) => (f, Some(op)),
            _ => (rest, None),
        };
        let kind = field_type(fields, param, field)?;
        let test = field_test(param, field, kind, op, &params[param])?;
        add_test(&mut out, field, test);
    }
    Ok(out)
}

/// The declared type of `field`; 400 on `param` listing the workflow's fields when it has
/// no such field.
fn field_type(fields: &OrderedFields, param: &str, field: &str) -> Result<FieldType, ApiError> {
    match fields.get(field) {
        Some(def) => Ok(def.kind),
        None => {
            let known: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
            Err(bad(
                param,
                format!(
                    "the workflow has no field '{field}'; its fields are {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ))
        }
    }
}

/// The test `param` asks of `field` (of type `kind`): `raw` read as that type, compared
/// with `op` (`gte`, `gt`, `lte`, `lt`) or, without one, by equality (word prefixes for
/// text). 400 on `param` for a value it cannot read or a comparison the type does not take.
fn field_test(
    param: &str,
    field: &str,
    kind: FieldType,
    op: Option<&str>,
    raw: &str,
) -> Result<FieldTest, ApiError> {
    let value = read(kind, raw).map_err(|m| bad(param, m))?;
    Ok(match (kind, op) {
        (FieldType::Text, None) => {
            let w: Vec<String> = words(raw).into_iter().collect();
            if w.is_empty() {
                return Err(bad(param, "give at least one word (letters or digits)"));
            }
            FieldTest::WordPrefixes(w)
        }
        (FieldType::Keyword | FieldType::Boolean, None) => FieldTest::Equals(value),
        (FieldType::Number | FieldType::Timestamp, None) => FieldTest::Range {
            lower: Some(Bound {
                value: value.clone(),
                inclusive: true,
            }),
            upper: Some(Bound {
                value,
                inclusive: true,
            }),
        },
        (FieldType::Number | FieldType::Timestamp, Some(op)) => {
            let bound = Bound {
                value,
                inclusive: op.ends_with('e'),
            };
            let (lower, upper) = if op.starts_with('g') {
                (Some(bound), None)
            } else {
                (None, Some(bound))
            };
            FieldTest::Range { lower, upper }
        }
        (kind, Some(op)) => {
            return Err(bad(
                param,
                format!(
                    "'{op}' compares numbers and timestamps; '{field}' is a {} field",
                    kind.as_str()
                ),
            ))
        }
    })
}

/// Adds `test` on `field` to `out`; two bounds on one field are one range.
fn add_test(out: &mut Vec<FieldFilter>, field: &str, test: FieldTest) {
    if let FieldTest::Range { lower, upper } = &test {
        if let Some(FieldFilter {
            test: FieldTest::Range { lower: l, upper: u },
            ..
        }) = out
            .iter_mut()
            .find(|f| f.field == field && matches!(f.test, FieldTest::Range { .. }))
        {
            if lower.is_some() {
                l.clone_from(lower);
            }
            if upper.is_some() {
                u.clone_from(upper);
            }
            return;
        }
    }
    out.push(FieldFilter {
        field: field.to_owned(),
        test,
    });
}

fn read(kind: FieldType, raw: &str) -> Result<FieldValue, String> {
    let json = match kind {
        FieldType::Number => serde_json::Value::from(
            raw.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or("expected a number")?,
        ),
        FieldType::Boolean => {
            serde_json::Value::Bool(raw.parse().map_err(|_| "expected true or false")?)
        }
        _ => serde_json::Value::String(raw.to_owned()),
    };
    FieldValue::from_json(kind, &json)?.ok_or_else(|| "expected a value".to_owned())
}

/// `sort=`: `deadline`, `updated` or `field.<name>` of a keyword, boolean, number or
/// timestamp field.
pub fn sort(raw: &str, fields: Option<&OrderedFields>) -> Result<SortBy, ApiError> {
    match raw {
        "deadline" => Ok(SortBy::Deadline),
        "updated" => Ok(SortBy::Updated),
        other => {
            let Some(field) = other.strip_prefix("field.") else {
                return Err(bad(
                    "sort",
                    format!("expected deadline, updated or field.<name>, got '{other}'"),
                ));
            };
            let Some(fields) = fields else {
                return Err(bad(
                    "sort",
                    "sorting by a field needs workflow=: fields belong to a workflow",
                ));
            };
            match fields.get(field).map(|d| d.kind) {
                None => Err(bad("sort", format!("the workflow has no field '{field}'"))),
                Some(FieldType::Text) => Err(bad("sort", format!("'{field}' is a text field; sort by a keyword, boolean, number or timestamp field"))),
                Some(kind) => Ok(SortBy::Field { field: field.to_owned(), kind }),
            }
        }
    }
}
