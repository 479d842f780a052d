//! Plugin developers' endpoints: upload a component, list and read the registry, and run
//! a plugin once in the sandbox (a dry run that touches no instance).

use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::extract::{first_answer, IdempotencyKey, JsonBody, WasmBody};
use super::state::AppState;
use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use waystation_core::{Actor, FailureKind, PluginRef, World};
use waystation_runtime::{FirstAnswer, Seen};
use waystation_wasm::{AddError, Limits, LogLine, PluginInfo};

/// `PUT /v1/plugins/{name}` with `application/wasm`: 201 with the new version, its digest
/// and world; 200 when these exact bytes are already registered under `name`; 422 with
/// the reason (and a stable `code`) when the bytes are not a usable plugin. With an
/// `Idempotency-Key`, a verbatim retry gets the first answer (201, not 200) and the same
/// key with other bytes or another name is a 422.
pub async fn put(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Extension(caller): Extension<Caller>,
    IdempotencyKey(key): IdempotencyKey,
    WasmBody(bytes): WasmBody,
) -> Result<Response, ApiError> {
    let by = caller.actor();
    let Some(key) = key else {
        return upload(&app, name, bytes, by)
            .await
            .map(IntoResponse::into_response);
    };
    let lock = match app
        .runtime
        .idempotent(&key, "plugin", &name, &bytes)
        .await?
    {
        Seen::Replay(first) => return Ok(first_answer(first, true)),
        Seen::New(lock) => lock,
    };
    let (status, Json(body)) = upload(&app, name, bytes, by).await?;
    let answer = FirstAnswer {
        status: status.as_u16(),
        body,
    };
    lock.record(&app.runtime, &answer).await?;
    Ok(first_answer(answer, false))
}

async fn upload(
    app: &AppState,
    name: String,
    bytes: axum::body::Bytes,
    by: Actor,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (status, Json(uploaded)) = add(app, name, bytes, by).await?;
    // The idempotency record keeps the answer as JSON; a failure to make it is a 500,
    // never an empty answer replayed later.
    let body = serde_json::to_value(&uploaded).map_err(|e| ApiError::internal(&e))?;
    Ok((status, Json(body)))
}

/// The answer of `PUT /v1/plugins/{name}`: the version the bytes are registered as.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    /// The version.
    #[serde(flatten)]
    pub plugin: PluginVersion,
    /// False when these exact bytes were already registered under the name (a 200).
    pub created: bool,
}

async fn add(
    app: &AppState,
    name: String,
    bytes: axum::body::Bytes,
    by: Actor,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let host = app.plugins.clone();
    let added = tokio::task::spawn_blocking(move || {
        let digest = waystation_wasm::digest(&bytes);
        let known = host
            .list()
            .into_iter()
            .any(|p| p.name == name && p.digest == digest);
        host.add_by(&name, &bytes, Some(&by))
            .map(|info| (info, !known))
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    match added {
        Ok((info, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((
                status,
                Json(Uploaded {
                    plugin: PluginVersion::from(&info),
                    created,
                }),
            ))
        }
        Err(AddError::Storage(e)) => Err(ApiError::internal(&e)),
        Err(e) => {
            let at = if matches!(e, AddError::BadName { .. }) {
                "name"
            } else {
                "body"
            };
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unusable-plugin",
                "Not a usable plugin",
                format!("the upload is not a usable plugin ({}): {e}", e.code()),
            )
            .with_errors(vec![FieldError::param(at, e.to_string())]))
        }
    }
}

/// One plugin of `GET /v1/plugins`: its newest version and how many versions it has.
#[derive(Debug, Serialize)]
pub struct PluginItem {
    /// The newest version.
    #[serde(flatten)]
    pub newest: PluginVersion,
    /// How many versions are registered.
    pub versions: u32,
}

/// The answer of `GET /v1/plugins`.
#[derive(Debug, Serialize)]
pub struct PluginList {
    /// Every plugin name, in name order.
    pub items: Vec<PluginItem>,
}

/// `GET /v1/plugins`: every plugin name with its newest version and how many there are.
pub async fn list(State(app): State<AppState>) -> Json<PluginList> {
    let mut newest: BTreeMap<String, (PluginInfo, u32)> = BTreeMap::new();
    for info in app.plugins.list() {
        let entry = newest.entry(info.name.clone()).or_insert((info.clone(), 0));
        entry.1 += 1;
        if info.version > entry.0.version {
            entry.0 = info;
        }
    }
    let items = newest
        .into_values()
        .map(|(info, versions)| PluginItem {
            newest: PluginVersion::from(&info),
            versions,
        })
        .collect();
    Json(PluginList { items })
}

/// The answer of `GET /v1/plugins/{name}`.
#[derive(Debug, Serialize)]
pub struct PluginDetail {
    /// The plugin name.
    pub name: String,
    /// The world of its newest version.
    pub world: World,
    /// The newest version.
    pub newest: PluginVersion,
    /// Every version, newest first.
    pub versions: Vec<PluginVersion>,
    /// The limits its calls run under.
    pub limits: Limits,
}

/// `GET /v1/plugins/{name}`: every version of `name`, newest first, and its limits.
pub async fn get(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    let mut versions: Vec<PluginInfo> = app
        .plugins
        .list()
        .into_iter()
        .filter(|p| p.name == name)
        .collect();
    if versions.is_empty() {
        return Err(ApiError::not_found(format!(
            "no plugin named '{name}' is registered"
        )));
    }
    versions.sort_by_key(|p| std::cmp::Reverse(p.version));
    let newest = PluginVersion::from(&versions[0]);
    Ok(Json(PluginDetail {
        world: newest.world,
        newest,
        versions: versions.iter().map(PluginVersion::from).collect(),
        limits: app.plugins.limits(&name),
        name,
    }))
}

/// The body of `POST /v1/plugins/{name}/invoke`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// The JSON the plugin receives, exactly as given.
    pub input: Value,
}

/// `POST /v1/plugins/{name}/invoke`: runs the newest version of `name` (or the pinned
/// `name@sha256:...`) once under its sandbox limits. 200 with the output, or with the typed
/// failure, plus the guest's log lines and the duration; 404 for an unknown plugin.
pub async fn invoke(
    State(app): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Invoke>,
) -> Result<Json<Invocation>, ApiError> {
    let reference = PluginRef::parse(&name)
        .map_err(|e| ApiError::not_found(format!("'{name}' is not a plugin reference: {e}")))?;
    let Some(info) = app.plugins.resolve(&reference) else {
        return Err(ApiError::not_found(format!(
            "no plugin '{reference}' is registered"
        )));
    };
    let host = app.plugins.clone();
    let report = tokio::task::spawn_blocking(move || {
        host.invoke_with_logs(&reference, info.world, &body.input)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let (outcome, output, error) = match report.result {
        Ok(output) => ("ok", output, None),
        Err(e) => (
            "failed",
            Value::Null,
            Some(CallFailure {
                kind: e.kind(),
                message: e.to_string(),
            }),
        ),
    };
    Ok(Json(Invocation {
        outcome,
        output,
        error,
        logs: report.logs,
        duration_us: u64::try_from(report.duration.as_micros()).unwrap_or(u64::MAX),
        plugin: report.plugin.as_ref().map(PluginVersion::from),
        limits: report.limits,
    }))
}

/// The answer of `POST /v1/plugins/{name}/invoke`: what one dry run produced.
#[derive(Debug, Serialize)]
pub struct Invocation {
    /// `ok` or `failed`.
    pub outcome: &'static str,
    /// The plugin's output; `null` when it failed.
    pub output: Value,
    /// Why it failed; `null` when it succeeded.
    pub error: Option<CallFailure>,
    /// The lines the plugin logged.
    pub logs: Vec<LogLine>,
    /// Instantiation plus call, in microseconds.
    pub duration_us: u64,
    /// The version that ran.
    pub plugin: Option<PluginVersion>,
    /// The limits it ran under.
    pub limits: Limits,
}

/// Why a dry run produced no output.
#[derive(Debug, Serialize)]
pub struct CallFailure {
    /// The failure kind, as an instance's history records it (`timeout`, `trap`, ...).
    pub kind: FailureKind,
    /// What happened, for people.
    pub message: String,
}

/// One registered version of a plugin, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginVersion {
    /// The plugin name.
    pub name: String,
    /// The version number, from 1.
    pub version: u32,
    /// `scorer` or `notifier`.
    pub world: World,
    /// Hex SHA-256 of the component's bytes.
    pub digest: String,
    /// The reference that names exactly this version (`name@sha256:<hex>`).
    pub pinned: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was added, in seconds since the Unix epoch.
    pub added_at: u64,
    /// Who uploaded it; `null` for versions added before uploads were attributed.
    pub uploaded_by: Option<Actor>,
}

impl From<&PluginInfo> for PluginVersion {
    fn from(info: &PluginInfo) -> PluginVersion {
        PluginVersion {
            name: info.name.clone(),
            version: info.version,
            world: info.world,
            digest: info.digest.clone(),
            pinned: info.pinned().to_string(),
            size: info.size,
            added_at: info.added_at,
            uploaded_by: info.uploaded_by.clone(),
        }
    }
}
