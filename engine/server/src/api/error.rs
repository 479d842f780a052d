//! Errors as RFC 9457 `application/problem+json`, each with a stable `type`, a `title`,
//! the `status`, a `detail`, and where it fits `errors: [{pointer, message}]`.
//! 5xx bodies never carry internals; those go to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use waystation_core::{Rejection, ValidationError};
use waystation_runtime::RuntimeError;
use waystation_store::StoreError;

/// One located problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer into the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Query or path parameter name, for problems outside the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Line and column, for malformed JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// See `line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl FieldError {
    /// A problem at `pointer` in the body.
    pub fn at(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            pointer: Some(pointer.into()),
            parameter: None,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// A problem with parameter `name`.
    pub fn param(name: &str, message: impl Into<String>) -> Self {
        FieldError {
            pointer: None,
            parameter: Some(name.to_owned()),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// Validation errors, their pointers placed under `prefix` (e.g. `/input`).
    pub fn from_validation(errors: &[ValidationError], prefix: &str) -> Vec<FieldError> {
        errors
            .iter()
            .map(|e| FieldError {
                pointer: Some(format!("{prefix}{}", e.pointer)),
                parameter: None,
                message: e.message.clone(),
                line: e.line.map(|l| l.0),
                column: e.line.map(|l| l.1),
            })
            .collect()
    }
}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable problem type slug (`https://waystation.dev/problems/<slug>`).
    pub kind: &'static str,
    /// Human summary of the problem type.
    pub title: &'static str,
    /// This occurrence.
    pub detail: String,
    /// Located problems.
    pub errors: Vec<FieldError>,
    /// The instance the problem is about, when naming it helps the caller (the running
    /// instance that holds a business key).
    pub instance: Option<String>,
}

impl ApiError {
    /// A new error.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            title,
            detail: cut(detail.into()),
            errors: Vec::new(),
            instance: None,
        }
    }

    /// With located problems.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// 400: the request cannot be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request cannot be read",
            detail,
        )
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 422: the request is well-formed but invalid.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "The request is invalid",
            detail,
        )
        .with_errors(errors)
    }

    /// 500, with the cause logged and not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to handle the request; it was logged, nothing was changed",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => ApiError::bad_request(
                "the cursor is not one this server handed out",
            )
            .with_errors(vec![FieldError::param(
                "cursor",
                "not a cursor from a previous page",
            )]),
            // Another node kept changing the same record through every retry: nothing was
            // written; sending the request again is safe (with its Idempotency-Key).
            StoreError::Conflict { what: detail, .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "contended",
                "Changed concurrently by other nodes",
                format!("the change lost to other nodes' changes {} times in a row and was not applied; send it again ({detail})", waystation_runtime::CONFLICT_ATTEMPTS),
            ),
            other => ApiError::internal(&other),
        }
    }
}

/// 409 for a command the instance cannot take in its current state.
fn conflict(kind: &'static str, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        kind,
        "The instance cannot take this now",
        detail,
    )
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::NotFound { what, id } => ApiError::not_found(format!("no {what} '{id}'")),
            RuntimeError::InvalidDefinition(errors) => ApiError::invalid(
                format!("the definition has {} error(s)", errors.len()),
                FieldError::from_validation(&errors, ""),
            ),
            RuntimeError::IdempotencyConflict(key) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                format!("Idempotency-Key '{key}' was already used for a different request; use a new key"),
            ),
            RuntimeError::KeyInUse { workflow, key, instance } => {
                let mut e = ApiError::new(
                    StatusCode::CONFLICT,
                    "key-in-use",
                    "The business key is in use",
                    format!("instance '{instance}' of workflow '{workflow}' is running with key '{key}'; send events to it, or start again once it ends"),
                );
                e.instance = Some(instance);
                e
            }
            RuntimeError::Store(e) => e.into(),
            RuntimeError::Engine(cause) => ApiError::internal(&cause),
            e @ RuntimeError::Encode { .. } => ApiError::internal(&e),
            e @ RuntimeError::TooLarge { pointer, .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Over a size limit",
                e.to_string(),
            )
            .with_errors(vec![FieldError::at(pointer, e.to_string())]),
            RuntimeError::OverLimit { pointer, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "instance-limit",
                "The instance would go over a limit",
                message.clone(),
            )
            .with_errors(vec![FieldError::at(pointer, message)]),
            RuntimeError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", "Shutting down", "the server is shutting down; retry")
            }
            RuntimeError::Rejected(r) => rejection(r),
        }
    }
}

/// The problem for a command the state machine refused: 422 for input that does not fit,
/// 403 for a decider who may not decide, 409 for the rest (the instance cannot take it now),
/// each with the pointer of what to change where there is one.
fn rejection(r: Rejection) -> ApiError {
    let detail = r.to_string();
    match r {
        Rejection::InvalidInput(errors) => ApiError::invalid(
            "the input does not match the workflow's input_schema",
            FieldError::from_validation(&errors, "/input"),
        ),
        Rejection::InvalidEventData(errors) => ApiError::invalid(
            "the event data holds values that cannot be kept exactly",
            FieldError::from_validation(&errors, "/data"),
        ),
        Rejection::KeyUnfit { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "key-unfit",
            "The input gives no usable business key",
            detail.clone(),
        )
        .with_errors(vec![FieldError::at("/input", detail)]),
        Rejection::FieldUnfit { field, message } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "field-unfit",
            "A field cannot hold the value this gives it",
            detail,
        )
        .with_errors(vec![FieldError::at(format!("/fields/{field}"), message)]),
        Rejection::NotAnApprover { .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "not-an-approver",
            "Not an approver of this task",
            detail,
        ),
        Rejection::SeparationOfDuties { .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "separation-of-duties",
            "Separation of duties: someone else must decide this",
            detail,
        ),
        Rejection::EventDataUnfit { .. } => {
            conflict("event-data-unfit", detail).with_errors(vec![FieldError::at(
                "/data",
                "the data does not fit the stage's conditions",
            )])
        }
        Rejection::AmbiguousEvent { stages, .. } => conflict("ambiguous-event", detail)
            .with_errors(vec![FieldError::at(
                "/stage",
                format!(
                    "name the stage the event is for: one of {}",
                    stages.join(", ")
                ),
            )]),
        Rejection::StageRequired { stages } => {
            conflict("stage-required", detail).with_errors(vec![FieldError::at(
                "/stage",
                format!(
                    "name the stage whose work this is: one of {}",
                    stages.join(", ")
                ),
            )])
        }
        Rejection::EventNotAccepted { accepted, .. } => conflict("event-not-accepted", detail)
            .with_errors(vec![FieldError::at(
                "/type",
                if accepted.is_empty() {
                    "no current stage takes an event now".to_owned()
                } else {
                    format!("the current stages take: {}", accepted.join(", "))
                },
            )]),
        Rejection::StageNotCurrent { current, .. } => conflict("stage-not-current", detail)
            .with_errors(vec![FieldError::at(
                "/stage",
                format!("the current stages are {}", current.join(", ")),
            )]),
        other => conflict(other.code(), detail),
    }
}

/// The body of every error answer (RFC 9457), typed so nothing is lost on the way out.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    /// `https://waystation.dev/problems/<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human summary of the problem type.
    pub title: &'a str,
    /// HTTP status, as in the status line.
    pub status: u16,
    /// This occurrence.
    pub detail: &'a str,
    /// Located problems, when there are any.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    pub errors: &'a [FieldError],
    /// The instance the problem is about, when naming it helps the caller (the running
    /// instance that holds a business key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<&'a str>,
}

impl<'a> Problem<'a> {
    /// The body for `status` with problem type `kind`.
    pub fn new(status: StatusCode, kind: &str, title: &'a str, detail: &'a str) -> Self {
        Problem {
            kind: format!("https://waystation.dev/problems/{kind}"),
            title,
            status: status.as_u16(),
            detail,
            errors: &[],
            instance: None,
        }
    }

    /// The JSON text. A problem is strings and numbers only, so this cannot fail; the
    /// fallback is a fixed body rather than an empty one.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialise a problem body");
            r#"{"type":"https://waystation.dev/problems/internal","title":"Internal error","status":500}"#.to_owned()
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut problem = Problem::new(self.status, self.kind, self.title, &self.detail);
        problem.errors = &self.errors;
        problem.instance = self.instance.as_deref();
        let mut response = (self.status, problem.to_json()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// Longest `detail` a problem carries, in bytes: details quote what the caller sent (an id,
/// a key, a name), and a 60 KB id must not come back as a 60 KB answer.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// `detail` cut to [`MAX_DETAIL_BYTES`] at a character boundary, marked with an ellipsis.
fn cut(mut detail: String) -> String {
    if detail.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    detail
}

#[cfg(test)]
mod cut_tests {
    use super::{cut, MAX_DETAIL_BYTES};

    #[test]
    fn a_detail_quoting_a_huge_id_is_cut_at_a_character_boundary() {
        let long = format!("no instance '{}'", "é".repeat(40_000));
        let short = cut(long);
        assert!(short.len() <= MAX_DETAIL_BYTES + '…'.len_utf8());
        assert!(short.ends_with('…'));
        assert_eq!(cut("no instance 'x'".into()), "no instance 'x'");
    }
}
