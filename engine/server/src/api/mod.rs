//! The HTTP API, versioned under `/v1`.
//!
//! Every route is declared once in [`routes`]: method, path, who may call it, what it takes
//! and answers, and its handler. The router, the authorization check, the OpenAPI document
//! and the role-matrix test are all derived from that one table, so they cannot drift.

mod approvals;
mod assignments;
pub mod body_deadline;
pub mod branch_view;
pub mod error;
mod export;
pub mod extract;
pub mod family_view;
mod history_schema;
mod http_metrics;
mod instances;
mod keys;
pub mod live;
pub mod openapi;
mod ops;
mod outbox;
pub mod panics;
mod params;
mod plugins;
mod postmortem;
mod progress;
mod reports;
mod schedules;
mod schema;
mod search;
mod state;
mod table;
mod tokens;
pub mod unread;
pub mod view_schemas;
pub mod views;
pub mod wire;
mod workflows;

use crate::auth::Caller;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
pub use axum::http::Method;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use error::ApiError;
pub use http_metrics::HttpMetrics;
pub use params::QueryParam;
pub use state::{AppState, Shared};
use std::collections::BTreeMap;
use std::time::Instant;
use table::{
    reading, route, ACT_ON_OWN_WORK, ADMIN, DEVELOPER, MANAGE_LINKS, OPERATOR, READ_INSTANCES,
    READ_OWN_WORK, READ_PLUGINS, READ_WORKFLOWS,
};
pub use table::{Access, AsAssignee, Body, Route};
use tracing::Instrument;

/// The API: every route with its handler.
///
/// One piece on purpose, though long: it is a table, one row per route, and the router, the
/// access check, the OpenAPI document and the role test all read it. Split, a reader would
/// have to gather the API back from several places to see it whole.
pub fn routes() -> Vec<(Route, MethodRouter<AppState>)> {
    use Method as M;
    vec![
        // Operations.
        route(
            M::GET,
            "/healthz",
            "Liveness: the process serves HTTP",
            "operations",
            Access::Public,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, ops::healthz),
        ),
        route(
            M::GET,
            "/readyz",
            "Readiness: the store is open and the scheduler runs",
            "operations",
            Access::Public,
            Body::None,
            200,
            &[503],
            on(MethodFilter::GET, ops::readyz),
        ),
        route(
            M::GET,
            "/metrics",
            "Prometheus metrics",
            "operations",
            Access::Public,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, ops::metrics),
        ),
        route(
            M::GET,
            "/v1/openapi.json",
            "This API's OpenAPI 3.1 document",
            "operations",
            Access::Public,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, serve_openapi),
        ),
        // Administrators: definitions.
        route(
            M::PUT,
            "/v1/workflows/{id}",
            "Upload a workflow definition: 201 for a new version, 200 when unchanged",
            "workflows",
            ADMIN,
            Body::Json("WorkflowDefinition"),
            201,
            &[200, 400, 413, 415, 422],
            on(MethodFilter::PUT, workflows::put),
        ),
        route(
            M::POST,
            "/v1/workflows/validate",
            "Validate a definition without storing it (every problem at once, each at its JSON pointer and line)",
            "workflows",
            READ_WORKFLOWS,
            Body::Json("WorkflowDefinition"),
            200,
            &[400, 413, 415, 422],
            on(MethodFilter::POST, workflows::validate),
        ),
        route(
            M::GET,
            "/v1/workflows",
            "List workflows with their newest version",
            "workflows",
            READ_WORKFLOWS,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, workflows::list),
        ),
        route(
            M::GET,
            "/v1/workflows/{id}",
            "The newest version of a workflow",
            "workflows",
            READ_WORKFLOWS,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, workflows::get_latest),
        ),
        route(
            M::GET,
            "/v1/workflows/{id}/versions/{version}",
            "One version of a workflow",
            "workflows",
            READ_WORKFLOWS,
            Body::None,
            200,
            &[400, 404],
            on(MethodFilter::GET, workflows::get_version),
        ),
        route(
            M::GET,
            "/v1/workflows/{id}/graph",
            "Mermaid flowchart of a workflow (text/plain)",
            "workflows",
            READ_WORKFLOWS,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, workflows::graph),
        ),
        // Operators: instances.
        route(
            M::POST,
            "/v1/workflows/{id}/instances",
            "Start an instance of the newest version",
            "instances",
            OPERATOR,
            Body::Json("StartInstance"),
            201,
            &[400, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, instances::start),
        ),
        route(
            M::GET,
            "/v1/workflows/{id}/keys/{key}",
            "The instance with this business key: the running one, else the newest that had it",
            "instances",
            READ_INSTANCES,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, keys::get),
        ),
        route(
            M::POST,
            "/v1/workflows/{id}/keys/{key}/events",
            "Send a named event to the instance with this business key",
            "instances",
            OPERATOR,
            Body::Json("Event"),
            200,
            &[400, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, keys::event),
        ),
        route(
            M::POST,
            "/v1/workflows/{id}/keys/{key}/cancel",
            "Cancel the instance with this business key",
            "instances",
            OPERATOR,
            Body::Json("Cancel"),
            200,
            &[400, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, keys::cancel),
        ),
        route(
            M::POST,
            "/v1/workflows/{id}/keys/{key}/decisions",
            "Decide the caller's open approval task on the instance with this business key",
            "approvals",
            Access::Approver,
            Body::Json("Decision"),
            200,
            &[400, 403, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, keys::decide),
        ),
        reading(
            route(
                M::GET,
                "/v1/instances",
                "List instances by workflow, stage, status, SLA, tag, staleness, business key or field values, sorted",
                "instances",
                READ_INSTANCES,
                Body::None,
                200,
                &[400],
                on(MethodFilter::GET, instances::list),
            ),
            instances::LIST_QUERY,
        ),
        route(
            M::GET,
            "/v1/instances/{id}",
            "One instance: stage, status, variables, SLA, tasks, timers, tags",
            "instances",
            READ_OWN_WORK,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, instances::get),
        ),
        reading(
            route(
                M::GET,
                "/v1/instances/{id}/history",
                "An instance's append-only history",
                "instances",
                READ_OWN_WORK,
                Body::None,
                200,
                &[400, 404],
                on(MethodFilter::GET, instances::history),
            ),
            instances::HISTORY_QUERY,
        ),
        route(
            M::GET,
            "/v1/instances/{id}/postmortem",
            "Post-mortem: each stage visit with its time against its deadline, at-risk and breach times, the response time and who acted when",
            "instances",
            READ_INSTANCES,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, postmortem::postmortem),
        ),
        route(
            M::GET,
            "/v1/instances/{id}/export",
            "The instance, its whole history and its post-mortem as one JSON file (an attachment)",
            "instances",
            READ_INSTANCES,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, export::export),
        ),
        route(
            M::POST,
            "/v1/instances/{id}/events",
            "Send a named event to an instance",
            "instances",
            ACT_ON_OWN_WORK,
            Body::Json("Event"),
            200,
            &[400, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, instances::event),
        ),
        route(
            M::POST,
            "/v1/instances/{id}/cancel",
            "Cancel a running instance, or close a failed one nobody will retry",
            "instances",
            OPERATOR,
            Body::Json("Cancel"),
            200,
            &[400, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, instances::cancel),
        ),
        route(
            M::POST,
            "/v1/instances/{id}/retry",
            "Retry a failed instance: it runs again on its version from the step that failed (409 not-failed otherwise)",
            "instances",
            OPERATOR,
            Body::None,
            200,
            &[400, 404, 409, 422],
            on(MethodFilter::POST, instances::retry),
        ),
        route(
            M::GET,
            "/v1/instances/{id}/progress-link",
            "The customer's progress link of an instance (a signed URL to a public page showing what the definition marks customer-visible)",
            "instances",
            READ_INSTANCES,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, progress::get),
        ),
        route(
            M::DELETE,
            "/v1/instances/{id}/progress-link",
            "Revoke the instance's progress link: links given out stop working; answers the new one",
            "instances",
            MANAGE_LINKS,
            Body::None,
            200,
            &[404],
            on(MethodFilter::DELETE, progress::revoke),
        ),
        route(
            M::GET,
            "/progress/{link}",
            "A customer's progress page as JSON, without a token: step titles and what the definition marks customer-visible (404 no-such-link, 410 link-expired)",
            "progress",
            Access::Public,
            Body::None,
            200,
            &[404, 410],
            on(MethodFilter::GET, progress::page),
        ),
        route(
            M::GET,
            "/v1/stream",
            "Server-sent events: a `change` per commit of any instance (`ready` first, `resync` after a lag); needs Accept: text/event-stream",
            "live",
            READ_INSTANCES,
            Body::None,
            200,
            &[406, 503],
            on(MethodFilter::GET, live::all),
        ),
        route(
            M::GET,
            "/v1/workflows/{id}/stream",
            "Server-sent events: a `change` per commit of the workflow's instances; needs Accept: text/event-stream",
            "live",
            READ_INSTANCES,
            Body::None,
            200,
            &[404, 406, 503],
            on(MethodFilter::GET, live::workflow),
        ),
        route(
            M::GET,
            "/v1/instances/{id}/stream",
            "Server-sent events: a `change` per commit of this instance; needs Accept: text/event-stream",
            "live",
            READ_OWN_WORK,
            Body::None,
            200,
            &[404, 406, 503],
            on(MethodFilter::GET, live::instance),
        ),
        reading(
            route(
                M::GET,
                "/v1/work",
                "My work: running instances where a current stage's work (a branch's too) is assigned to the caller",
                "instances",
                Access::AnyToken,
                Body::None,
                200,
                &[400],
                on(MethodFilter::GET, assignments::mine),
            ),
            assignments::MINE_QUERY,
        ),
        route(
            M::POST,
            "/v1/instances/{id}/claim",
            "Take the current stage's work (the caller must hold the stage's owner role as approver:<role>); optional body {\"stage\"} names a branch's stage, needed while branches run (409 stage-required)",
            "instances",
            Access::AnyToken,
            Body::OptionalJson("WorkStage"),
            200,
            &[403, 404, 409, 422],
            on(MethodFilter::POST, assignments::claim),
        ),
        route(
            M::POST,
            "/v1/instances/{id}/assign",
            "Assign or reassign the current stage's work to a named person in its owner role (supervisors)",
            "instances",
            READ_INSTANCES,
            Body::Json("Assign"),
            200,
            &[400, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, assignments::assign),
        ),
        route(
            M::POST,
            "/v1/instances/{id}/release",
            "Give the current stage's work back (its assignee or a supervisor); optional body {\"stage\"} as for claim",
            "instances",
            Access::AnyToken,
            Body::OptionalJson("WorkStage"),
            200,
            &[403, 404, 409, 422],
            on(MethodFilter::POST, assignments::release),
        ),
        route(
            M::GET,
            "/v1/stats/{workflow}",
            "Instance counts by stage and SLA state",
            "instances",
            READ_INSTANCES,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, instances::stats),
        ),
        reading(
            route(
                M::GET,
                "/v1/reports/{workflow}",
                "Figures per period in a time zone: volume, ends by status, response, stage and cycle times, SLA at-risk and breach counts, tags and number fields; JSON, or CSV with Accept: text/csv",
                "instances",
                READ_INSTANCES,
                Body::None,
                200,
                &[400, 404],
                on(MethodFilter::GET, reports::report),
            ),
            reports::REPORT_QUERY,
        ),
        // Approvers.
        reading(
            route(
                M::GET,
                "/v1/approvals",
                "Open approval tasks for the caller's approver roles",
                "approvals",
                Access::Approver,
                Body::None,
                200,
                &[],
                on(MethodFilter::GET, approvals::list),
            ),
            approvals::LIST_QUERY,
        ),
        route(
            M::POST,
            "/v1/approvals/{task_id}",
            "Approve or reject a task",
            "approvals",
            Access::Approver,
            Body::Json("Decision"),
            200,
            &[400, 403, 404, 409, 413, 415, 422],
            on(MethodFilter::POST, approvals::decide),
        ),
        // Administrators: tokens.
        route(
            M::POST,
            "/v1/tokens",
            "Create a token; its secret is shown once",
            "tokens",
            ADMIN,
            Body::Json("NewToken"),
            201,
            &[400, 409, 413, 415, 422],
            on(MethodFilter::POST, tokens::create),
        ),
        route(
            M::GET,
            "/v1/tokens",
            "List tokens (never their secrets)",
            "tokens",
            ADMIN,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, tokens::list),
        ),
        route(
            M::DELETE,
            "/v1/tokens/{id}",
            "Revoke a token",
            "tokens",
            ADMIN,
            Body::None,
            204,
            &[404, 409],
            on(MethodFilter::DELETE, tokens::revoke),
        ),
    ]
    .into_iter()
    .chain(plugin_routes())
    .chain(outbox::outbox_routes())
    .chain(schedules::schedule_routes())
    .collect()
}

fn plugin_routes() -> Vec<(Route, MethodRouter<AppState>)> {
    use Method as M;
    vec![
        route(
            M::PUT,
            "/v1/plugins/{name}",
            "Upload a plugin component: a new version, or 200 when these bytes are known",
            "plugins",
            DEVELOPER,
            Body::Wasm,
            201,
            &[400, 413, 415, 422],
            on(MethodFilter::PUT, plugins::put),
        ),
        route(
            M::GET,
            "/v1/plugins",
            "List plugins with their newest version",
            "plugins",
            READ_PLUGINS,
            Body::None,
            200,
            &[],
            on(MethodFilter::GET, plugins::list),
        ),
        route(
            M::GET,
            "/v1/plugins/{name}",
            "A plugin's versions, world and limits",
            "plugins",
            READ_PLUGINS,
            Body::None,
            200,
            &[404],
            on(MethodFilter::GET, plugins::get),
        ),
        route(
            M::POST,
            "/v1/plugins/{name}/invoke",
            "Run a plugin once in its sandbox (a dry run): output or typed failure, logs, duration",
            "plugins",
            DEVELOPER,
            Body::Json("PluginInvoke"),
            200,
            &[400, 404, 413, 415, 422],
            on(MethodFilter::POST, plugins::invoke),
        ),
    ]
}

/// The OpenAPI document of the whole route table.
pub fn openapi_document() -> serde_json::Value {
    let rows: Vec<Route> = routes().into_iter().map(|(r, _)| r).collect();
    openapi::document(&rows)
}

/// `GET /v1/openapi.json`.
async fn serve_openapi() -> axum::Json<serde_json::Value> {
    axum::Json(openapi_document())
}

/// Builds the application: every route of [`routes`] behind its access check, request
/// observation, body limits, and problem+json for unknown routes and methods. Serve it
/// behind [`panics::contain`] (as [`crate::run`] does) so a panicking handler answers 500.
pub fn router(state: AppState) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for (spec, handler) in routes() {
        let limit = match spec.body {
            Body::Wasm => state.config.limits.wasm_body_bytes,
            _ => state.config.limits.json_body_bytes,
        };
        let guarded = handler.layer(DefaultBodyLimit::max(limit)).route_layer(
            middleware::from_fn_with_state((state.clone(), spec.access), authorize),
        );
        let entry = by_path.remove(spec.path).unwrap_or_default();
        by_path.insert(spec.path, entry.merge(guarded));
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        router = router.route(path, methods);
    }
    router
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .fallback(|| async { ApiError::not_found("no such route; see /v1/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not take that method; see /v1/openapi.json",
            )
        })
        .with_state(state)
}

fn unauthorized(detail: &str) -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
        detail,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// True when `access` lets an instance's assignee in and `caller` is the person the
/// current work of the instance named in `path` (`/v1/instances/{id}/...`) is assigned to.
async fn assigned_to(app: &AppState, access: Access, path: &str, caller: &Caller) -> bool {
    let Access::RolesOrAssignee(_) = access else {
        return false;
    };
    let Some(id) = path
        .strip_prefix("/v1/instances/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
    else {
        return false;
    };
    let name = caller.name.clone();
    app.blocking(move |rt| Ok(rt.store().instance(&id)?))
        .await
        .ok()
        .flatten()
        // In a parallel stage, the work of any branch's stage.
        .is_some_and(|s| s.all_assignees().iter().any(|a| a.user == name))
}

async fn authorize(
    State((app, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let secret = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return unauthorized("send a token as `Authorization: Bearer <token>`");
    };
    let caller = match app.caller(secret).await {
        Ok(Some(c)) => c,
        Ok(None) => return unauthorized("the token is unknown or revoked"),
        Err(e) => return e.into_response(),
    };
    let by_role = access.allows(&caller);
    if !by_role && !assigned_to(&app, access, req.uri().path(), &caller).await {
        let needed = match access {
            Access::Roles(r) => r.join(" or "),
            Access::RolesOrAssignee(r) => {
                format!(
                    "{} or the work of the instance assigned to the caller",
                    r.join(" or ")
                )
            }
            Access::Approver => "an approver:<role> role".to_owned(),
            Access::Public | Access::AnyToken => String::new(),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            format!(
                "this needs {needed}; the token has {}",
                caller.roles.join(", ")
            ),
        )
        .into_response();
    }
    if !by_role {
        // Let in as the assignee of some of the instance's work only: a handler that acts
        // on one stage checks it is that stage's work (see `AsAssignee`).
        req.extensions_mut().insert(AsAssignee);
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A span per request, a log line per answer, latency by route.
async fn observe(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", %method, %route);
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    app.http.record(method.as_str(), &route, status, elapsed);
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, ms, "answered");
        } else {
            tracing::debug!(status, ms, "answered");
        }
    });
    response
}
