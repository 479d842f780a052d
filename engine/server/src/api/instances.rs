//! Operators' instances: start, list, read, history, events, cancel, counts.

use super::error::{ApiError, FieldError};
use super::extract::{IdempotencyKey, JsonBody};
use super::extract::{Path, Query};
use super::params::{self, parse, QueryParam, CURSOR, LIMIT, LONG_LIMIT, LONG_PAGE, PAGE};
use super::views::{
    DeclaredField, HistoryItem, HistoryPage, Identity, InstanceDetail, InstanceItem, InstancePage,
    Stats,
};
use super::{search, state::AppState};
use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use waystation_core::{InstanceState, SlaState, Status, Workflow};
use waystation_runtime::Applied;
use waystation_store::{InstanceQuery, Page};

/// Body of `POST /v1/workflows/{id}/instances`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StartInstance {
    /// The start payload, checked against the workflow's `input_schema`.
    pub input: Value,
}

/// Body of `POST /v1/instances/{id}/events`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Event name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Payload.
    #[serde(default)]
    pub data: Value,
    /// The current stage the event is for: needed only in a parallel stage where several
    /// branches' stages accept this event (otherwise 409 `ambiguous-event`). Where a
    /// `for_each` runs the same stage in several branches, `{branch}/{stage}` names one
    /// (`shipment[1]/ship_confirm`); the stage name alone is then a 409 `ambiguous-event`
    /// listing each branch's address.
    #[serde(default)]
    pub stage: Option<String>,
}

/// Body of `POST /v1/instances/{id}/cancel`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// Why the instance is cancelled, kept in its history for whoever reads it later.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A command's answer: the instance summary, flagged when replayed.
pub fn applied(status: StatusCode, applied: Applied) -> Response {
    let mut response = (status, Json(applied.instance)).into_response();
    if applied.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// `POST /v1/workflows/{id}/instances`.
pub async fn start(
    State(app): State<AppState>,
    Path(workflow): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<StartInstance>,
) -> Result<Response, ApiError> {
    let done = app
        .runtime
        .acting(caller.actor())
        .start(&workflow, body.input, key.as_deref())
        .await?;
    Ok(applied(StatusCode::CREATED, done))
}

/// `POST /v1/instances/{id}/events`. A caller let in as the assignee of some of the
/// instance's work (no operator role) may only send events to the stage whose work is
/// theirs: 403 for another branch's stage.
pub async fn event(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    as_assignee: Option<Extension<super::table::AsAssignee>>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Event>,
) -> Result<Response, ApiError> {
    if body.kind.is_empty() {
        return Err(ApiError::invalid(
            "the event has no type",
            vec![FieldError::at("/type", "an event name is required")],
        ));
    }
    if as_assignee.is_some() {
        check_own_work(&app, &id, body.stage.clone(), &caller).await?;
    }
    let done = app
        .runtime
        .acting(caller.actor())
        .event_at(
            &id,
            body.stage.as_deref(),
            &body.kind,
            body.data,
            key.as_deref(),
        )
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// For a caller let in as an assignee: the stage `stage` addresses (the top level's work
/// without one) must be assigned to them. An address that names no current stage, or
/// several, is left to the command, which answers it with the addresses there are.
///
/// # Errors
/// 403 `not-your-work` naming the stage and whose work it is; store errors.
pub async fn check_own_work(
    app: &AppState,
    id: &str,
    stage: Option<String>,
    caller: &Caller,
) -> Result<(), ApiError> {
    let id = id.to_owned();
    let name = caller.name.clone();
    let refusal = app
        .blocking(move |rt| {
            let Some(state) = rt.store().instance(&id)? else {
                return Ok(None);
            };
            let Ok(path) = state.work_path(stage.as_deref()) else {
                return Ok(None);
            };
            let Some(frame) = state.frame_at(&path) else {
                return Ok(None);
            };
            let holder = frame.assignee.map(|a| a.user.clone());
            Ok((holder.as_deref() != Some(name.as_str()))
                .then(|| (state.stage_address(&path, &frame), holder)))
        })
        .await?;
    match refusal {
        None => Ok(()),
        Some((stage, holder)) => {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not-your-work",
                "Not your work",
                format!(
                "the work of stage '{stage}' is {}; you may act on the work assigned to you only",
                holder.map_or("assigned to nobody".to_owned(), |h| format!("assigned to '{h}'"))
            ),
            ))
        }
    }
}

/// `POST /v1/instances/{id}/cancel`.
pub async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Cancel>,
) -> Result<Response, ApiError> {
    let done = app
        .runtime
        .acting(caller.actor())
        .cancel(&id, body.reason, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// `POST /v1/instances/{id}/retry`: a failed instance runs again from the step that
/// failed, on its version; the history records `retried` with the caller. 409
/// `not-failed` unless it failed, 409 `key-in-use` when another instance took its
/// business key meanwhile.
///
/// It takes no body; one sent anyway (`{}` from a generic client) is read and ignored, so
/// the connection stays usable for the next request.
pub async fn retry(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    _body: super::extract::IgnoredBody,
) -> Result<Response, ApiError> {
    let done = app
        .runtime
        .acting(caller.actor())
        .retry(&id, key.as_deref())
        .await?;
    Ok(applied(StatusCode::OK, done))
}

/// The filters of `GET /v1/instances`; all given must hold.
pub const LIST_QUERY: &[QueryParam] = &[
    QueryParam::new(
        "workflow",
        r#"{"type": "string"}"#,
        "Instances of this workflow.",
    ),
    QueryParam::new(
        "version",
        r#"{"type": "integer", "minimum": 1}"#,
        "Started on this version of the workflow (with workflow).",
    ),
    QueryParam::new(
        "stage",
        r#"{"type": "string"}"#,
        "At this stage (needs workflow: stage names belong to a workflow).",
    ),
    QueryParam::new(
        "status",
        r#"{"enum": ["running", "completed", "failed", "cancelled"]}"#,
        "In this status.",
    ),
    QueryParam::new(
        "sla",
        r#"{"type": "array", "items": {"enum": ["on_time", "at_risk", "breached"]}, "minItems": 1}"#,
        "In this SLA state now, or in any of several separated by commas (sla=at_risk,breached).",
    ),
    QueryParam::new(
        "breached",
        r#"{"type": "boolean"}"#,
        "true: breached some stage's deadline at any point, even if it moved on since (with breached_stage: that stage); false: never did.",
    ),
    QueryParam::new(
        "breached_stage",
        r#"{"type": "string"}"#,
        "Breached this stage's deadline at any point (needs workflow).",
    ),
    QueryParam::new(
        "assignee",
        r#"{"type": "string"}"#,
        "Running, with the current stage's work assigned to this person (token name); `me`: the caller (\"my work\").",
    ),
    QueryParam::new(
        "acted_before",
        r#"{"type": "string", "format": "date-time"}"#,
        "No person or outside system has acted since this time (RFC 3339): no start, event, decision or cancellation. The engine's own SLA changes and timers do not count.",
    ),
    QueryParam::new("tag", r#"{"type": "string"}"#, "Carrying this tag."),
    QueryParam::new(
        "updated_before",
        r#"{"type": "string", "format": "date-time"}"#,
        "Not updated since this time (RFC 3339).",
    ),
    QueryParam::new(
        "untouched",
        r#"{"type": "boolean"}"#,
        "true: nobody has acted in the current stage since it was entered.",
    ),
    QueryParam::new(
        "key",
        r#"{"type": "string", "maxLength": 200}"#,
        "With this business key (needs workflow).",
    ),
    QueryParam::new(
        "field.{name}",
        r#"{"type": "string"}"#,
        "A test on a field of the workflow (needs workflow): equality on keyword, boolean, number and timestamp fields; on text fields every word given begins a word of the field (case-insensitive). `field.{name}.gte`, `.gt`, `.lte`, `.lt` bound number and timestamp fields (RFC 3339). At most 8 per request.",
    ),
    QueryParam::new(
        "sort",
        r#"{"type": "string", "description": "deadline | updated | field.{name}"}"#,
        "Ascending order: by stage deadline (running instances with one), by update time, or by a keyword, boolean, number or timestamp field (instances where it has a value). Default: by the index the filters use.",
    ),
    CURSOR,
    LIMIT,
];

/// The parameters of `GET /v1/instances/{id}/history`.
pub const HISTORY_QUERY: &[QueryParam] = &[
    QueryParam::new(
        "from",
        r#"{"type": "integer", "minimum": 0, "default": 0}"#,
        "First sequence number (the next_from of the previous page).",
    ),
    LONG_LIMIT,
];

/// `GET /v1/instances?workflow=&version=&stage=&status=&sla=&tag=&updated_before=&untouched=&key=&field.{name}=&sort=&cursor=&limit=`.
pub async fn list(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query,
) -> Result<Json<InstancePage>, ApiError> {
    let query = list_query(&app, &caller, &params).await?;
    let page = app.blocking(move |rt| Ok(rt.query(&query)?)).await?;
    page_of(&app, page).await
}

/// A page of instances as the API lists them, one [`InstanceItem`] each.
///
/// # Errors
/// As [`InstanceItem::of`].
pub(super) async fn page_of(
    app: &AppState,
    page: Page<InstanceState>,
) -> Result<Json<InstancePage>, ApiError> {
    let mut items = Vec::with_capacity(page.items.len());
    for s in &page.items {
        items.push(InstanceItem::of(app, s).await?);
    }
    Ok(Json(InstancePage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// The store query `params` ask for (see [`LIST_QUERY`]). A 400 names the first parameter
/// at fault: unknown names, then `status`, `sla`, a filter that needs `workflow`, the
/// workflow itself, then the others in the order of [`InstanceQuery`]'s fields.
async fn list_query(
    app: &AppState,
    caller: &Caller,
    params: &HashMap<String, String>,
) -> Result<InstanceQuery, ApiError> {
    let plain: HashMap<String, String> = params
        .iter()
        .filter(|(k, _)| !search::is_field_param(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params::refuse_unknown(&plain, LIST_QUERY)?;
    let status = parse(
        params,
        "status",
        |v| serde_json::from_value::<Status>(json!(v)).ok(),
        "running, completed, failed or cancelled",
    )?;
    let (sla, sla_in) = sla_filter(params)?;
    let workflow = params.get("workflow").cloned();
    let definition = filter_workflow(app, params, workflow.as_deref()).await?;
    let fields = definition.as_ref().map(|d| &d.definition.fields);
    Ok(InstanceQuery {
        workflow,
        version: parse(params, "version", |v| v.parse().ok(), "a whole number")?,
        // A stage name: `shipment[3]/ship_confirm` addresses one branch's stage for a
        // command, and the index holds stage names only, so it would silently match none.
        stage: parse(
            params,
            "stage",
            |v| (!v.contains('/')).then(|| v.to_owned()),
            "a stage name (a branch's address such as shipment[1]/ship_confirm is for commands; filter by its stage name, ship_confirm)",
        )?,
        status,
        sla,
        tag: params.get("tag").cloned(),
        updated_before: time_param(params, "updated_before")?,
        untouched: parse(params, "untouched", |v| v.parse().ok(), "true or false")?,
        breached: parse(params, "breached", |v| v.parse().ok(), "true or false")?,
        breached_stage: params.get("breached_stage").cloned(),
        acted_before: time_param(params, "acted_before")?,
        sla_in,
        assignee: params.get("assignee").map(|a| {
            if a == "me" {
                caller.name.clone()
            } else {
                a.clone()
            }
        }),
        key: params.get("key").cloned(),
        fields: match fields {
            Some(f) => search::field_filters(params, f)?,
            None => Vec::new(),
        },
        sort: params
            .get("sort")
            .map(|s| search::sort(s, fields))
            .transpose()?,
        cursor: params.get("cursor").cloned(),
        limit: params::limit(params, PAGE)?,
    })
}

/// `sla=`: one state as `(Some(state), [])`, several (comma-separated) as `(None, states)`
/// for the store's "any of" filter, none as `(None, [])`.
fn sla_filter(
    params: &HashMap<String, String>,
) -> Result<(Option<SlaState>, Vec<SlaState>), ApiError> {
    let slas = parse(
        params,
        "sla",
        |v| {
            v.split(',')
                .map(|s| serde_json::from_value::<SlaState>(json!(s)).ok())
                .collect::<Option<Vec<_>>>()
        },
        "on_time, at_risk or breached, or several separated by commas",
    )?
    .unwrap_or_default();
    Ok(match slas.as_slice() {
        [one] => (Some(*one), Vec::new()),
        _ => (None, slas),
    })
}

/// The time parameter `name` (RFC 3339), in UTC.
fn time_param(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    parse(
        params,
        name,
        |v| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        },
        "an RFC 3339 time",
    )
}

/// The newest version of `workflow` when a parameter needs it (stage names, keys and
/// fields belong to a workflow; field names and types come from that version); `None`
/// when none does. A 400 when such a parameter comes without `workflow`, or names a
/// workflow that does not exist.
async fn filter_workflow(
    app: &AppState,
    params: &HashMap<String, String>,
    workflow: Option<&str>,
) -> Result<Option<Arc<Workflow>>, ApiError> {
    let needs_workflow = params
        .keys()
        .find(|k| {
            search::is_field_param(k) || ["key", "stage", "breached_stage"].contains(&k.as_str())
        })
        .cloned()
        .or_else(|| {
            params
                .get("sort")
                .filter(|s| s.starts_with("field."))
                .map(|_| "sort".to_owned())
        });
    match (needs_workflow, workflow) {
        (Some(param), None) => Err(ApiError::bad_request(format!("{param} needs workflow"))
            .with_errors(vec![FieldError::param(
                &param,
                "stage names, keys and fields belong to a workflow; add workflow=",
            )])),
        (Some(_), Some(w)) => Ok(Some(app.runtime.workflow(w, None).await.map_err(|_| {
            ApiError::bad_request(format!("no workflow '{w}'"))
                .with_errors(vec![FieldError::param("workflow", "no such workflow")])
        })?)),
        (None, _) => Ok(None),
    }
}

/// `GET /v1/instances/{id}`: everything an operator needs to know where it stands.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceDetail>, ApiError> {
    let s = app.instance(&id).await?;
    Ok(Json(InstanceDetail::of(&app, s).await?))
}

/// `GET /v1/instances/{id}/history?from=&limit=`.
pub async fn history(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query,
) -> Result<Json<HistoryPage>, ApiError> {
    params::refuse_unknown(&params, HISTORY_QUERY)?;
    let from = parse(&params, "from", |v| v.parse::<u64>().ok(), "a whole number")?.unwrap_or(0);
    let limit = params::limit(&params, LONG_PAGE)?;
    let entries = {
        let id = id.clone();
        app.blocking(move |rt| Ok(rt.history(&id, from, limit)?))
            .await?
    };
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|(seq, _)| seq + 1))
        .flatten();
    let items = entries
        .into_iter()
        .map(|(seq, entry)| HistoryItem { seq, entry })
        .collect();
    let s = app.instance(&id).await?;
    let identity = Identity::of(&app, &s).await?;
    Ok(Json(HistoryPage {
        id: s.id,
        workflow: s.workflow,
        identity,
        items,
        next_from: next,
    }))
}

/// `GET /v1/stats/{workflow}`: counts, with the key and fields the workflow declares so a
/// report knows what it can group and search by.
pub async fn stats(
    State(app): State<AppState>,
    Path(workflow): Path<String>,
) -> Result<Json<Stats>, ApiError> {
    let counts = {
        let workflow = workflow.clone();
        app.blocking(move |rt| Ok(rt.counts(&workflow)?)).await?
    };
    // A workflow never uploaded is a 404, as for its reports; one whose stored definition
    // no longer loads still has its counts (it declares nothing then).
    let declared = match app.runtime.workflow(&workflow, None).await {
        Ok(wf) => Some(wf),
        Err(e @ waystation_runtime::RuntimeError::NotFound { .. }) => return Err(e.into()),
        Err(_) => None,
    };
    Ok(Json(Stats {
        by_stage: counts.by_stage,
        by_sla: counts.by_sla,
        key: declared.as_ref().and_then(|w| w.definition.key.clone()),
        fields: declared
            .as_ref()
            .map(|w| DeclaredField::all(&w.definition.fields))
            .unwrap_or_default(),
    }))
}
