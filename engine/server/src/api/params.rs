//! Query parameters: the table of what each route reads (the handler refuses any other, and
//! the OpenAPI document lists exactly these, so the two cannot drift apart), and reading one
//! value with a 400 that names the parameter and what it expected.

use super::error::{ApiError, FieldError};
use std::collections::HashMap;

/// A query parameter a route reads.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    /// Its name.
    pub name: &'static str,
    /// Its JSON Schema, as JSON text.
    pub schema: &'static str,
    /// What it does.
    pub description: &'static str,
}

impl QueryParam {
    /// A parameter `name` with JSON Schema `schema`, doing `description`.
    pub const fn new(name: &'static str, schema: &'static str, description: &'static str) -> Self {
        QueryParam {
            name,
            schema,
            description,
        }
    }
}

/// `cursor` of a paged list.
pub const CURSOR: QueryParam = QueryParam::new(
    "cursor",
    r#"{"type": "string"}"#,
    "The next_cursor of the previous page.",
);

/// `limit` of a list, [`PAGE`] by default.
pub const LIMIT: QueryParam = QueryParam::new(
    "limit",
    r#"{"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}"#,
    "Page size.",
);

/// `limit` of a list, [`LONG_PAGE`] by default.
pub const LONG_LIMIT: QueryParam = QueryParam::new(
    "limit",
    r#"{"type": "integer", "minimum": 1, "maximum": 1000, "default": 500}"#,
    "Page size.",
);

/// The default page size, as [`LIMIT`] documents it.
pub const PAGE: usize = 100;
/// The default size of a history page or an inbox, as [`LONG_LIMIT`] documents it.
pub const LONG_PAGE: usize = 500;

/// A 400 naming the first parameter of `params` that is not in `known`.
pub fn refuse_unknown(
    params: &HashMap<String, String>,
    known: &[QueryParam],
) -> Result<(), ApiError> {
    let Some(unknown) = params.keys().find(|k| !known.iter().any(|q| q.name == *k)) else {
        return Ok(());
    };
    let names: Vec<&str> = known.iter().map(|q| q.name).collect();
    Err(
        ApiError::bad_request(format!("unknown parameter '{unknown}'")).with_errors(vec![
            FieldError::param(unknown, format!("parameters are {}", names.join(", "))),
        ]),
    )
}

/// Parameter `name` read by `f`, if given; a 400 saying it expected `expected` if `f`
/// cannot read it.
pub fn parse<T>(
    params: &HashMap<String, String>,
    name: &str,
    f: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => f(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("bad value for {name}")).with_errors(vec![
                FieldError::param(name, format!("expected {expected}, got '{v}'")),
            ])
        }),
    }
}

/// `limit`: 1 to 1000, `default` when not given.
pub fn limit(params: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    let read = |v: &str| v.parse().ok().filter(|n| (1..=1000).contains(n));
    Ok(parse(params, "limit", read, "1 to 1000")?.unwrap_or(default))
}
