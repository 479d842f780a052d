//! `GET /v1/reports/{workflow}`: figures per period in a time zone, from the store's
//! rollups (issue 15), as JSON or, with `Accept: text/csv`, as CSV.

use super::error::{ApiError, FieldError};
use super::extract::Query;
use super::params::{self, parse, QueryParam};
use super::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use waystation_core::report::{
    spans, zone, PeriodError, PeriodKind, Row, Summary, MAX_ROWS, RELATIVE_ERROR,
};
use waystation_runtime::{ReportBy, ReportError};

/// The parameters of `GET /v1/reports/{workflow}`.
pub const REPORT_QUERY: &[QueryParam] = &[
    QueryParam::new(
        "from",
        r#"{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$"}"#,
        "Required. The first period: a month (2026-10) or a day (2026-10-05); the period holding it is the first.",
    ),
    QueryParam::new(
        "to",
        r#"{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$"}"#,
        "The last period, included (default: from). At most 400 periods.",
    ),
    QueryParam::new(
        "period",
        r#"{"enum": ["day", "week", "month"], "default": "month"}"#,
        "Period length: a calendar day, an ISO week (from Monday) or a calendar month, in tz.",
    ),
    QueryParam::new(
        "tz",
        r#"{"type": "string", "default": "UTC"}"#,
        "IANA time zone the periods begin and end in (Asia/Shanghai, America/New_York).",
    ),
    QueryParam::new(
        "by",
        r#"{"type": "string", "pattern": "^(role|field\\..+)$"}"#,
        "field.<keyword field>: a row per value; role: stage figures merged per owner role.",
    ),
];

/// A report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The workflow.
    pub workflow: String,
    /// `day`, `week` or `month`.
    pub period: PeriodKind,
    /// The time zone.
    pub tz: String,
    /// The grouping asked for (`field.tier`, `role`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The relative error bound of every p50 and p90 (0.01: within 1%).
    pub percentile_relative_error: f64,
    /// One row per period (and group value), in order.
    pub rows: Vec<Row>,
}

fn bad(parameter: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::bad_request(format!("bad value for {parameter}: {message}"))
        .with_errors(vec![FieldError::param(parameter, message)])
}

fn period_error(e: PeriodError) -> ApiError {
    bad(e.parameter, e.message)
}

/// True when the caller asked for CSV: `text/csv` among the media ranges of `Accept`,
/// with a quality above zero (`text/csv;q=0` means "not CSV", RFC 9110 section 12.5.1).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let csv = parts
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"));
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            csv && !refused
        })
}

/// A text cell as a spreadsheet may safely open it: one that begins with `=`, `+`, `-`,
/// `@`, a tab or a carriage return (a formula to Excel and LibreOffice) gets a leading `'`
/// (OWASP's advice for CSV injection). Group values come from whoever starts instances,
/// so an operator opening the file must not run what they wrote.
fn text_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// `GET /v1/reports/{workflow}?from=&to=&period=&tz=&by=`.
pub async fn report(
    State(app): State<AppState>,
    Path(workflow): Path<String>,
    Query(params): Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    params::refuse_unknown(&params, REPORT_QUERY)?;
    let period = parse(&params, "period", PeriodKind::parse, "day, week or month")?
        .unwrap_or(PeriodKind::Month);
    let tz_name = params.get("tz").map_or("UTC", String::as_str).to_owned();
    let tz = zone(&tz_name).map_err(period_error)?;
    let from = params
        .get("from")
        .ok_or_else(|| bad("from", "give the first period, as 2026-10 or 2026-10-05"))?;
    let spans =
        spans(period, tz, from, params.get("to").map(String::as_str)).map_err(period_error)?;
    let wf = app.runtime.workflow(&workflow, None).await?;
    let by_param = params.get("by").cloned();
    let by = ReportBy::parse(by_param.as_deref(), &wf).map_err(|e| bad("by", e.to_string()))?;
    let rows = app
        .blocking(move |rt| match rt.report(&wf, spans, &by) {
            Ok(rows) => Ok(rows),
            // Only a grouping gets past MAX_ROWS: without one a row is a period (at most
            // MAX_PERIODS).
            Err(ReportError::TooManyRows) => Err(bad(
                "by",
                format!(
                    "the report would have more than {MAX_ROWS} rows (periods x groups); ask for fewer periods, a longer period, or no grouping"
                ),
            )),
            Err(ReportError::Runtime(e)) => Err(e.into()),
        })
        .await?;
    let report = Report {
        workflow,
        period,
        tz: tz_name,
        by: by_param,
        percentile_relative_error: RELATIVE_ERROR,
        rows,
    };
    if wants_csv(&headers) {
        let body = csv(&report).map_err(|e| ApiError::internal(&e))?;
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    Ok(Json(report).into_response())
}

/// The report as CSV (RFC 4180), one figure per line:
/// `period,start,end,group,stage,figure,value`; `stage` is empty for instance figures
/// (and holds the owner role with `by=role`), `value` is a number (seconds for times).
/// A text cell that a spreadsheet would take for a formula starts with `'` ([`text_cell`]).
///
/// # Errors
/// Only if the CSV writer fails on memory.
pub fn csv(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "period", "start", "end", "group", "stage", "figure", "value",
    ])?;
    for row in &report.rows {
        let start = row.start.to_rfc3339();
        let end = row.end.to_rfc3339();
        let group = text_cell(row.group.as_deref().unwrap_or_default()).into_owned();
        let mut line = |stage: &str, figure: &str, value: String| {
            w.write_record([
                row.period.as_str(),
                &start,
                &end,
                &group,
                &text_cell(stage),
                &text_cell(figure),
                &value,
            ])
        };
        line("", "started", row.started.to_string())?;
        line("", "running", row.running.to_string())?;
        for (status, n) in &row.ended {
            line("", &format!("ended.{status}"), n.to_string())?;
        }
        for (outcome, n) in &row.outcomes {
            line("", &format!("outcome.{outcome}"), n.to_string())?;
        }
        for (figure, v) in summary("cycle", &row.cycle) {
            line("", &figure, v)?;
        }
        for (tag, t) in &row.tags {
            line("", &format!("tag.{tag}.count"), t.count.to_string())?;
            if let Some(r) = t.rate {
                line("", &format!("tag.{tag}.rate"), r.to_string())?;
            }
        }
        for (field, n) in &row.numbers {
            line("", &format!("number.{field}.count"), n.count.to_string())?;
            line("", &format!("number.{field}.mean"), n.mean.to_string())?;
            line("", &format!("number.{field}.min"), n.min.to_string())?;
            line("", &format!("number.{field}.max"), n.max.to_string())?;
        }
        for s in &row.stages {
            let mut figures = vec![
                ("entered".to_owned(), s.entered.to_string()),
                ("left".to_owned(), s.left.to_string()),
                ("at_risk".to_owned(), s.at_risk.to_string()),
                ("breached".to_owned(), s.breached.to_string()),
            ];
            figures.extend(
                s.at_risk_rate
                    .map(|r| ("at_risk_rate".to_owned(), r.to_string())),
            );
            figures.extend(
                s.breach_rate
                    .map(|r| ("breach_rate".to_owned(), r.to_string())),
            );
            figures.extend(summary("response", &s.response));
            figures.extend(summary("time", &s.time));
            for (figure, v) in figures {
                line(&s.name, &figure, v)?;
            }
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `name.count`, and `name.mean` ... `name.max` when there is something to summarise.
fn summary(name: &str, s: &Summary) -> Vec<(String, String)> {
    let mut out = vec![(format!("{name}.count"), s.count.to_string())];
    for (k, v) in [
        ("mean", s.mean),
        ("p50", s.p50),
        ("p90", s.p90),
        ("max", s.max),
    ] {
        if let Some(v) = v {
            out.push((format!("{name}.{k}"), v.to_string()));
        }
    }
    out
}

/// The OpenAPI schema of [`Report`] and the core's figures, closed.
pub fn schemas() -> serde_json::Value {
    use super::schema::{array, closed, component, described, text, time};
    use serde_json::json;
    let number = || json!({"type": "number"});
    let integer = || json!({"type": "integer"});
    let counts = || json!({"type": "object", "additionalProperties": {"type": "integer"}});
    json!({
        "DurationSummary": described("Durations in seconds; p50 and p90 within 1% (DDSketch), the rest exact; absent without values.",
            closed(json!({"count": integer()}), json!({"mean": number(), "p50": number(), "p90": number(), "max": number()}))),
        "StageFigures": closed(json!({
            "name": described("The stage, or its owner role with by=role.", text()),
            "entered": described("Visits begun in the period.", integer()),
            "left": described("Visits ended in the period.", integer()),
            "response": described("Entering to the first accepted event, decision or assignment by a person, counted when it happened.", component("DurationSummary")),
            "time": described("Time in the stage, counted when it was left.", component("DurationSummary")),
            "at_risk": integer(), "breached": integer()}),
            json!({"at_risk_rate": described("at_risk / entered", number()),
                "breach_rate": described("breached / entered", number())})),
        "ReportRow": closed(json!({
            "period": described("2026-10 (month) or 2026-10-05 (day, or the Monday of a week).", text()),
            "start": time(), "end": time(),
            "started": described("Instances started in the period.", integer()),
            "running": described("Of those, still running now.", integer()),
            "ended": described("Instances ended in the period by status.", counts()),
            "outcomes": described("Completed in the period by outcome.", counts()),
            "cycle": component("DurationSummary"),
            "tags": {"type": "object", "description": "Of the instances started in the period, those carrying each tag now, and their share.",
                "additionalProperties": closed(json!({"count": integer()}), json!({"rate": number()}))},
            "numbers": {"type": "object", "description": "Number fields of the instances ended in the period, at their end.",
                "additionalProperties": closed(json!({"count": integer(), "mean": number(), "min": number(), "max": number()}), json!({}))},
            "stages": array(component("StageFigures"))}),
            json!({"group": described("The grouping field's value (by=field.*).", text())})),
        "Report": closed(json!({
            "workflow": text(), "period": {"enum": ["day", "week", "month"]}, "tz": text(),
            "percentile_relative_error": number(),
            "rows": array(component("ReportRow"))}),
            json!({"by": text()})),
    })
}

#[cfg(test)]
mod tests {
    use super::{text_cell, wants_csv};
    use axum::http::{header, HeaderMap, HeaderValue};

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn csv_is_what_accept_asks_for_unless_its_quality_is_zero() {
        assert!(wants_csv(&accept("text/csv")));
        assert!(wants_csv(&accept("application/json;q=0.5, text/csv;q=0.9")));
        assert!(wants_csv(&accept("TEXT/CSV; charset=utf-8")));
        assert!(!wants_csv(&accept("text/csv;q=0, application/json")));
        assert!(!wants_csv(&accept("text/csv; q=0.0")));
        assert!(!wants_csv(&accept("application/json")));
        assert!(!wants_csv(&HeaderMap::new()));
    }

    #[test]
    fn a_group_value_a_spreadsheet_would_run_as_a_formula_is_written_as_text() {
        for formula in [
            "=cmd|' /C calc'!A0",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(text_cell(formula), format!("'{formula}"));
        }
        for plain in ["delivery", "price, refund", "", "a=b"] {
            assert_eq!(text_cell(plain), plain);
        }
    }
}
