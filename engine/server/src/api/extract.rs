//! Request extractors whose rejections are problem+json like every other error:
//! 415 for a wrong content type, 413 for a body over the limit, 400 for malformed JSON
//! (with line and column), 422 for JSON of the wrong shape (with the JSON pointer).

use super::error::{ApiError, FieldError};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads the body as bytes after checking its content type against `accepted`.
async fn body_of(req: Request, accepted: &[&str], state: &()) -> Result<Bytes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let ok = content_type.as_deref().is_some_and(|ct| {
        accepted
            .iter()
            .any(|a| ct == *a || (*a == "application/json" && ct.ends_with("+json")))
    });
    if !ok {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!(
                "send the body as {} (got {})",
                accepted.join(" or "),
                content_type.as_deref().unwrap_or("no Content-Type")
            ),
        ));
    }
    Bytes::from_request(req, state).await.map_err(unread)
}

/// The problem for a body that could not be read: 413 `too-large` past the size limit,
/// 408 `request-timeout` past the body's deadline.
fn unread(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if super::body_deadline::timed_out(&rejection) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "The body did not arrive in time",
            format!(
                "the request body must arrive within {} s of the request; send it at once",
                super::body_deadline::BODY_DEADLINE.as_secs()
            ),
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The body is too large",
            "the body is larger than this server accepts (see limits in the configuration)",
        )
    } else {
        ApiError::bad_request(format!("the body could not be read: {rejection}"))
    }
}

/// A body a route takes no use of, read and dropped (an unread body would break the
/// client's next request on the same connection), with the same size limit and problem
/// answers as every other body.
pub struct IgnoredBody;

impl<S: Send + Sync> FromRequest<S> for IgnoredBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(|_| IgnoredBody)
            .map_err(unread)
    }
}

/// A JSON body parsed into a value: checks content type and size, reports malformed JSON
/// with line and column, and duplicate keys with their pointer.
pub struct JsonValue(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonValue {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_of(req, &["application/json"], &()).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
        waystation_core::source::parse_json(text)
            .map(JsonValue)
            .map_err(|errors| {
                let malformed = errors.iter().any(|e| e.line.is_some());
                let fields = FieldError::from_validation(&errors, "");
                if malformed {
                    ApiError::bad_request("the body is not valid JSON").with_errors(fields)
                } else {
                    ApiError::invalid("the body repeats a key", fields)
                }
            })
    }
}

/// A JSON body of type `T`; a shape mismatch is a 422 naming the pointer.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonValue(value) = JsonValue::from_request(req, state).await?;
        // Every typed body is an object; serde would say "invalid length 0, expected struct
        // StartInstance with 1 element" for `[]`, naming a Rust type.
        let kind = match &value {
            Value::Object(_) => None,
            Value::Array(_) => Some("an array"),
            Value::String(_) => Some("a string"),
            Value::Number(_) => Some("a number"),
            Value::Bool(_) => Some("a boolean"),
            Value::Null => Some("null"),
        };
        serde_path_to_error::deserialize(value)
            .map(JsonBody)
            .map_err(|e| {
                let pointer = waystation_core::source::pointer_of_path(e.path());
                let message = match kind {
                    Some(kind) if pointer.is_empty() => {
                        format!("the body must be a JSON object ({{...}}), not {kind}")
                    }
                    _ => e.inner().to_string(),
                };
                ApiError::invalid(
                    format!("the body does not have the expected shape: {message}"),
                    vec![FieldError::at(pointer, message)],
                )
            })
    }
}

/// An optional JSON body of type `T`: no body at all (no `Content-Type`, nothing sent) is
/// `T::default()`; anything sent is read as [`JsonBody`] reads it.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // No body at all is the default, whatever the headers say: generic clients send
        // `Content-Type: application/json` on every POST, body or not.
        let empty = axum::body::HttpBody::size_hint(req.body()).exact() == Some(0);
        if empty || req.headers().get(header::CONTENT_TYPE).is_none() {
            let bytes = Bytes::from_request(req, state).await.map_err(unread)?;
            if bytes.is_empty() {
                return Ok(OptionalJsonBody(T::default()));
            }
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json (got no Content-Type)",
            ));
        }
        let JsonBody(body) = JsonBody::from_request(req, state).await?;
        Ok(OptionalJsonBody(body))
    }
}

/// A raw body of `application/wasm`.
pub struct WasmBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WasmBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        body_of(req, &["application/wasm"], &()).await.map(WasmBody)
    }
}

/// The optional `Idempotency-Key` header: one, of 1 to 255 visible ASCII characters (else
/// a 400 naming it).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all("idempotency-key").iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyKey(None));
        };
        // Two keys on one request: which one the caller meant to retry under is unknown,
        // so neither is taken.
        if values.next().is_some() {
            return Err(ApiError::bad_request(
                "Idempotency-Key is given more than once; send one key per request",
            )
            .with_errors(vec![FieldError::param(
                "Idempotency-Key",
                "given more than once",
            )]));
        }
        let key = value.to_str().ok().filter(|k| {
            !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b))
        });
        match key {
            Some(k) => Ok(IdempotencyKey(Some(k.to_owned()))),
            None => Err(ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .with_errors(vec![FieldError::param(
                "Idempotency-Key",
                "1 to 255 visible ASCII characters",
            )])),
        }
    }
}

/// Path parameters of type `T`, like axum's `Path`, whose rejection is a 400 problem+json
/// naming the parameter: a `%FF` (not UTF-8 once decoded) or a value of the wrong type.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = e.body_text();
                let errors = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        vec![FieldError::param(key, "not UTF-8 once percent-decoded")]
                    }
                    ErrorKind::ParseErrorAtKey {
                        key, expected_type, ..
                    } => vec![FieldError::param(key, format!("expected {expected_type}"))],
                    ErrorKind::DeserializeError { key, message, .. } => {
                        vec![FieldError::param(key, message.clone())]
                    }
                    _ => Vec::new(),
                };
                Err(
                    ApiError::bad_request(format!("a path parameter cannot be read: {message}"))
                        .with_errors(errors),
                )
            }
            Err(other) => Err(ApiError::bad_request(format!(
                "the path cannot be read: {}",
                other.body_text()
            ))),
        }
    }
}

/// The query string as name-value pairs; a query string that cannot be read is a 400
/// problem+json. A name given twice is a 400 naming it: which of two values a filter
/// means would be a guess.
pub struct Query(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).map_err(|e| {
                ApiError::bad_request(format!("the query string cannot be read: {e}"))
            })?;
        query_map(pairs).map(Query)
    }
}

/// `pairs` as a map; a 400 naming the first name given twice.
pub fn query_map(
    pairs: Vec<(String, String)>,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut map = std::collections::HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if map.contains_key(&name) {
            return Err(
                ApiError::bad_request(format!("parameter '{name}' is given twice"))
                    .with_errors(vec![FieldError::param(&name, "give it once")]),
            );
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// The answer to a request made with an `Idempotency-Key`: the first answer, flagged with
/// `idempotent-replayed: true` when this is a retry that changed nothing.
pub fn first_answer(
    answer: waystation_runtime::FirstAnswer,
    replayed: bool,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(answer.body)).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}
