//! Fuzzing the request extractors (issue 12, item 9): arbitrary query strings, path
//! parameters and JSON bodies through the server's own extractors on a router. Every answer
//! is the handler's (2xx) or a problem+json 4xx naming what is wrong - never a panic, never
//! a 5xx, never another content type. `PROPTEST_CASES=100000 cargo test -p
//! waystation-server --test fuzz_requests` runs it longer (tests/README.md).

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use proptest::prelude::*;
use serde::Deserialize;
use tower::ServiceExt;
use waystation_server::api::extract::{JsonBody, Path, Query};

/// A body shaped like the start of an instance, to reach the shape check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Start {
    input: serde_json::Value,
    #[serde(default)]
    note: Option<String>,
}

fn app() -> Router {
    Router::new()
        .route(
            "/items/{id}",
            get(|Path(id): Path<String>| async move { id }),
        )
        .route(
            "/versions/{id}/{version}",
            get(|Path((id, v)): Path<(String, u32)>| async move { format!("{id}@{v}") }),
        )
        .route(
            "/list",
            get(|Query(q): Query| async move { q.len().to_string() }),
        )
        .route(
            "/start",
            post(|JsonBody(s): JsonBody<Start>| async move { format!("{:?}", s.note) }),
        )
}

/// Sends `request` through the router on a current-thread runtime and checks the answer.
fn check(request: Request<Body>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        if status.is_success() {
            return;
        }
        assert!(
            status.is_client_error(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(content_type, "application/problem+json", "{status}");
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["status"], status.as_u16());
        }
    });
}

/// `bytes` percent-encoded, every byte of them.
fn encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_path_parameter_is_read_or_a_400(id in proptest::collection::vec(any::<u8>(), 1..40),
                                           version in proptest::collection::vec(any::<u8>(), 1..12)) {
        check(Request::get(format!("/items/{}", encoded(&id))).body(Body::empty()).unwrap());
        check(
            Request::get(format!("/versions/{}/{}", encoded(&id), encoded(&version)))
                .body(Body::empty())
                .unwrap(),
        );
    }

    #[test]
    fn any_query_string_is_read_or_a_400(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        pairs in proptest::collection::vec(("[a-z%=&+]{0,8}", any::<String>()), 0..6),
    ) {
        check(Request::get(format!("/list?{}", encoded(&raw))).body(Body::empty()).unwrap());
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encoded(v.as_bytes())))
            .collect();
        check(Request::get(format!("/list?{}", query.join("&"))).body(Body::empty()).unwrap());
    }

    #[test]
    fn any_body_is_read_or_a_problem(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        text in "[{}\\[\\]\":,a-z0-9 .eE+-]{0,120}",
        content_type in prop_oneof![Just("application/json"), Just("text/plain"), Just("application/problem+json")],
    ) {
        for body in [bytes.clone(), text.clone().into_bytes(), format!("{{\"input\": {text}}}").into_bytes()] {
            check(
                Request::post("/start")
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .unwrap(),
            );
        }
    }
}
