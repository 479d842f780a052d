//! What a schedule is: the administrator's spec, its checked (compiled) form, the view the
//! API lists, and the slots a cron expression read in a zone names.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use waystation_core::expr::{Expr, InstanceView, Scope};
use waystation_core::ValidationError;
use waystation_store::{ScheduleRecord, ScheduleSpec};

/// A schedule with its progress and next slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    /// The schedule's id.
    pub id: String,
    /// What was set.
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// The latest slot handled.
    pub last_slot: DateTime<Utc>,
    /// The next slot that will start an instance; absent while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<DateTime<Utc>>,
    /// When the schedule was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A checked schedule: the parsed expression and zone, the compiled input expression.
pub(super) struct Compiled {
    cron: cron::Schedule,
    zone: Tz,
    input_expr: Option<Expr>,
}

/// Five crontab fields get a zero seconds field in front, and their numbered weekdays mean
/// what crontab means (0 or 7 Sunday, 1 Monday ... 6 Saturday): the `cron` crate counts 1 for
/// Sunday, so "0 7 * * 4" (Thursday in crontab) would otherwise run on Wednesday.
pub(super) fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let full = if let [minute, hour, day, month, weekday] = fields.as_slice() {
        // The `cron` crate's own range errors name its internal six-field form and say
        // "less than" for "at most": checked here in crontab's terms first.
        for (name, field, lo, hi) in [
            ("minute", minute, 0, 59),
            ("hour", hour, 0, 23),
            ("day of month", day, 1, 31),
            ("month", month, 1, 12),
        ] {
            if let Some(n) = out_of_range(field, lo, hi) {
                return Err(format!(
                    "'{text}' is not a cron expression: the {name} field holds {n}, outside {lo} to {hi}"
                ));
            }
        }
        let weekday = crontab_weekdays(weekday)
            .map_err(|e| format!("'{text}' is not a cron expression: the weekday field {e}"))?;
        format!("0 {minute} {hour} {day} {month} {weekday}")
    } else {
        text.to_owned()
    };
    cron::Schedule::from_str(&full).map_err(|e| {
        format!("'{text}' is not a cron expression (minute hour day month weekday, or with seconds first): {e}")
    })
}

/// The first number of a crontab field (`5`, `1-5`, `*/15`, `0,30`) outside `lo..=hi`;
/// step values (after `/`) and names (`JAN`) are left to the parser.
fn out_of_range(field: &str, lo: u32, hi: u32) -> Option<String> {
    field
        .split(',')
        .filter_map(|item| item.split('/').next())
        .flat_map(|base| base.split('-'))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .find(|n| n.parse::<u32>().map_or(true, |v| v < lo || v > hi))
        .map(str::to_owned)
}

/// A crontab weekday field with its numbers written as day names, which the `cron` crate
/// reads unambiguously. `*`, `?` and names pass through; `a`, `a-b` and `a-b/s` over
/// 0-7 become the days they name.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let day = |n: &str| -> Result<u32, String> {
        n.parse::<u32>()
            .ok()
            .filter(|d| *d <= 7)
            .ok_or_else(|| format!("has '{n}': a weekday is 0-7 (0 and 7 are Sunday) or a name"))
    };
    let mut out: Vec<String> = Vec::new();
    for item in field.split(',') {
        if item.starts_with(['*', '?']) || item.chars().any(|c| c.is_ascii_alphabetic()) {
            out.push(item.to_owned());
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("has the step '{s}': a whole number from 1"))?,
            ),
            None => (item, 1),
        };
        let (from, to) = match range.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(range)?, day(range)?),
        };
        if from > to {
            return Err(format!("has the range '{range}', which runs backwards"));
        }
        for d in (from..=to).step_by(step) {
            out.push(NAMES[(d % 7) as usize].to_owned());
        }
    }
    Ok(out.join(","))
}

pub(super) fn compile(spec: &ScheduleSpec) -> Result<Compiled, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let cron = parse_cron(&spec.cron)
        .map_err(|m| errors.push(ValidationError::new("/cron", m)))
        .ok();
    let zone = Tz::from_str(&spec.zone)
        .map_err(|_| {
            errors.push(ValidationError::new(
                "/zone",
                format!(
                    "'{}' is not an IANA time zone such as Europe/Berlin",
                    spec.zone
                ),
            ))
        })
        .ok();
    if spec.input.is_some() && spec.input_expr.is_some() {
        errors.push(ValidationError::new(
            "/input_expr",
            "give the start payload as `input` or as `input_expr`, not both",
        ));
    }
    if spec.input.as_ref().is_some_and(|i| !i.is_object()) {
        errors.push(ValidationError::new(
            "/input",
            "the start payload must be an object",
        ));
    }
    let input_expr = spec.input_expr.as_deref().and_then(|src| {
        Expr::compile(src)
            .map_err(|m| errors.push(ValidationError::new("/input_expr", m)))
            .ok()
    });
    match (cron, zone) {
        (Some(cron), Some(zone)) if errors.is_empty() => Ok(Compiled {
            cron,
            zone,
            input_expr,
        }),
        _ => Err(errors),
    }
}

pub(super) fn well_named(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Compiled {
    /// Slots strictly after `after` up to and including `until`, at most `max`.
    pub(super) fn slots(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&self.zone))
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t <= until)
            .take(max)
            .collect()
    }

    pub(super) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&self.zone))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The start payload of the slot at `slot`; `input_expr` may ask the calendars.
    pub(super) fn input(
        &self,
        spec: &ScheduleSpec,
        slot: DateTime<Utc>,
        calendars: &Arc<waystation_core::calendar::Calendars>,
    ) -> Result<Value, String> {
        let Some(expr) = &self.input_expr else {
            return Ok(spec
                .input
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default())));
        };
        static NO_TAGS: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let vars = serde_json::Map::new();
        let scope = Scope {
            input: &Value::Null,
            vars: &vars,
            event: None,
            now: slot,
            instance: InstanceView {
                id: "",
                workflow: &spec.workflow,
                version: 0,
                stage: "",
                started_at: slot,
                tags: &NO_TAGS,
            },
            calendars: Some(calendars),
        };
        expr.eval(&scope).map_err(|e| e.to_string())
    }
}

pub(super) fn view(
    record: &ScheduleRecord,
    compiled: Option<&Compiled>,
    now: DateTime<Utc>,
) -> ScheduleView {
    let next_run = match compiled {
        Some(c) if !record.spec.paused => c.next_after(record.last_slot.max(now)),
        _ => None,
    };
    ScheduleView {
        id: record.id.clone(),
        spec: record.spec.clone(),
        last_slot: record.last_slot,
        next_run,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}
