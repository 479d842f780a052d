//! Health, readiness and metrics.

use super::error::ApiError;
use super::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use waystation_runtime::metrics::{Metrics, LAG_BUCKETS_MS};

/// The answer of `/healthz`.
#[derive(Debug, serde::Serialize)]
pub struct Health {
    /// Always `ok`: an answer at all is the news.
    pub status: &'static str,
    /// This server's version.
    pub version: &'static str,
}

/// The process is up and serving HTTP.
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The answer of `/readyz`.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: &'static str,
    /// Why the store cannot serve requests, when that is why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// The store is open, answers (for PostgreSQL: a round trip on a pooled connection) and
/// the scheduler runs; 503 before that, during shutdown, and while the database cannot be
/// reached (the body's `store` says why).
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let not_ready = |store| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not ready",
                store,
            }),
        )
    };
    if !app.ready.load(Ordering::Acquire) {
        return not_ready(None);
    }
    let runtime = app.runtime.clone();
    match tokio::task::spawn_blocking(move || runtime.store().check_ready()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                store: None,
            }),
        ),
        Ok(Err(e)) => not_ready(Some(e.to_string())),
        Err(e) => not_ready(Some(format!("the readiness check failed: {e}"))),
    }
}

/// Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    let m = app.runtime.metrics();
    counters(&mut out, m);
    if let Some(node) = app.runtime.store().node_name() {
        // Node names are 16 hex digits (`pg/mod.rs`): nothing to escape in a label.
        let _ = writeln!(
            out,
            "# HELP waystation_node_info This node's name in the shared store's timer and message claims.\n# TYPE waystation_node_info gauge\nwaystation_node_info{{node=\"{node}\",store=\"postgres\"}} 1"
        );
    }
    let _ = writeln!(
        out,
        "# HELP waystation_plugin_call_seconds_total Time spent in plugin calls.\n# TYPE waystation_plugin_call_seconds_total counter\nwaystation_plugin_call_seconds_total {}",
        m.plugin_call_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    timer_lag(&mut out, m);
    instance_gauges(&app, &mut out).await?;
    app.runtime.durations().render(&mut out);
    app.http.render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// The engine's counters, each with its `# HELP` and `# TYPE` lines.
fn counters(out: &mut String, m: &Metrics) {
    let counters: [(&str, &str, &AtomicU64); 12] = [
        ("waystation_commands_total", "Commands applied.", &m.commands_ok),
        ("waystation_commands_refused_total", "Commands refused by the state machine.", &m.commands_refused),
        ("waystation_transitions_total", "Stage entries.", &m.transitions),
        ("waystation_plugin_calls_total", "Plugin calls.", &m.plugin_calls),
        ("waystation_plugin_failures_total", "Plugin calls that failed.", &m.plugin_failures),
        ("waystation_outbox_delivered_total", "Outbox messages delivered.", &m.messages_delivered),
        ("waystation_outbox_failed_attempts_total", "Outbox delivery attempts that failed (retried or dead).", &m.delivery_failures),
        ("waystation_outbox_dead_total", "Outbox messages given up (dead letters).", &m.messages_dead),
        ("waystation_step_failures_total", "Timer firings that failed in the engine (each retried later with backoff, or failing its instance).", &m.step_failures),
        ("waystation_steps_abandoned_total", "Instances failed because a step kept failing in the engine.", &m.steps_abandoned),
        ("waystation_command_conflicts_total", "Commands run again because another node changed their instance first (shared store only).", &m.command_conflicts),
        ("waystation_panics_total", "Steps and request handlers that panicked (contained: answered 500 or retried).", &m.panics),
    ];
    for (name, help, value) in counters {
        let value = value.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
}

/// How late timers fired, as a histogram in seconds.
fn timer_lag(out: &mut String, m: &Metrics) {
    let (buckets, sum_ms) = m.timer_lag();
    let _ = writeln!(out, "# HELP waystation_timer_lag_seconds How late timers fired.\n# TYPE waystation_timer_lag_seconds histogram");
    let mut cumulative = 0;
    for (i, count) in buckets.iter().enumerate() {
        cumulative += count;
        let le = LAG_BUCKETS_MS.get(i).map_or_else(
            || "+Inf".to_owned(),
            |ms| format!("{}", *ms as f64 / 1000.0),
        );
        let _ = writeln!(
            out,
            "waystation_timer_lag_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "waystation_timer_lag_seconds_sum {}\nwaystation_timer_lag_seconds_count {cumulative}",
        sum_ms as f64 / 1000.0
    );
}

/// Instances by workflow and stage, running ones by SLA state, and all by status.
async fn instance_gauges(app: &AppState, out: &mut String) -> Result<(), ApiError> {
    // The counts are kept in memory once built; until then (just after a start) asking
    // builds them, which walks the indexes: on the blocking pool.
    let statuses = [
        waystation_core::Status::Running,
        waystation_core::Status::Completed,
        waystation_core::Status::Failed,
        waystation_core::Status::Cancelled,
    ];
    let (by_workflow, by_status) = app
        .blocking(move |rt| {
            let mut by_workflow = Vec::new();
            for (workflow, _) in rt.store().list_definitions()? {
                let counts = rt.counts(&workflow)?;
                by_workflow.push((workflow, counts));
            }
            let mut by_status = Vec::new();
            for status in statuses {
                by_status.push((status, rt.store().count_status(status)?));
            }
            Ok((by_workflow, by_status))
        })
        .await?;
    let _ = writeln!(out, "# HELP waystation_instances Instances by workflow and stage, and running ones by SLA state.\n# TYPE waystation_instances gauge");
    for (workflow, counts) in by_workflow {
        for (stage, n) in counts.by_stage {
            let _ = writeln!(
                out,
                "waystation_instances{{workflow=\"{workflow}\",stage=\"{stage}\"}} {n}"
            );
        }
        for (sla, n) in counts.by_sla {
            let _ = writeln!(
                out,
                "waystation_instances_running_by_sla{{workflow=\"{workflow}\",sla=\"{sla}\"}} {n}"
            );
        }
    }
    let _ = writeln!(out, "# HELP waystation_instances_by_status Instances by status.\n# TYPE waystation_instances_by_status gauge");
    for (status, n) in by_status {
        let _ = writeln!(
            out,
            "waystation_instances_by_status{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    Ok(())
}

/// The OpenAPI schema of [`Readiness`] (a 503 answers the same shape, `not ready`).
pub fn schemas() -> serde_json::Value {
    use super::schema::{closed, described, text};
    serde_json::json!({
        "Readiness": closed(serde_json::json!({"status": {"enum": ["ready", "not ready"]}}),
            serde_json::json!({"store": described("Why the store cannot serve requests, when that is why.", text())})),
    })
}
