//! Bucket cells merged into periods and groups, and the figures read from them.

use super::cell::{Cell, CellError};
use super::period::Span;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Count, mean, p50, p90 and max of durations, in seconds. The percentiles are within
/// [`super::cell::RELATIVE_ERROR`] of the true value; the rest are exact. Absent when `count` is 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many durations.
    pub count: u64,
    /// Their mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Their median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// Their 90th percentile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    /// The longest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Summary {
    fn of(cell: Option<&Cell>) -> Summary {
        let Some(Cell::Sketch(s)) = cell else {
            return Summary::default();
        };
        let count = s.count() as u64;
        if count == 0 {
            return Summary::default();
        }
        let q = |q: f64| s.quantile(q).ok().flatten();
        Summary {
            count,
            mean: s.sum().map(|sum| sum / count as f64),
            p50: q(0.5),
            p90: q(0.9),
            max: s.max(),
        }
    }
}

/// One stage's figures in one period (or one owner role's, with `by=role`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageFigures {
    /// The stage, or the owner role the figures are grouped by.
    pub name: String,
    /// Visits that began in the period.
    pub entered: i64,
    /// Visits that ended in the period.
    pub left: i64,
    /// Time from entering to the first accepted event, decision or assignment by a person
    /// (at most one per visit; counted when that action happened).
    pub response: Summary,
    /// Time from entering to leaving (counted when the stage was left).
    pub time: Summary,
    /// Visits that went at risk in the period.
    pub at_risk: i64,
    /// Visits that breached their deadline in the period.
    pub breached: i64,
    /// `at_risk / entered`; absent when nothing entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_risk_rate: Option<f64>,
    /// `breached / entered`; absent when nothing entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_rate: Option<f64>,
}

/// How many of the period's started instances carry a tag now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagFigures {
    /// Instances.
    pub count: i64,
    /// `count / started`; absent when none started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// A number field's values at the end of the instances that ended in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberFigures {
    /// Instances that ended with a value.
    pub count: u64,
    /// Mean value.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// The figures of one period and one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The period as the caller names it (`2026-10`, `2026-10-05`).
    pub period: String,
    /// Its first instant (UTC).
    pub start: DateTime<Utc>,
    /// The first instant after it (UTC).
    pub end: DateTime<Utc>,
    /// The value of the grouping field; absent without `by=field.*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Instances started in the period.
    pub started: i64,
    /// Of those, still running now.
    pub running: i64,
    /// Instances that ended in the period, by status (`completed`, `cancelled`, `failed`).
    pub ended: BTreeMap<String, i64>,
    /// Completed instances of the period by their end stage's outcome.
    pub outcomes: BTreeMap<String, i64>,
    /// Start-to-end time of the instances that ended in the period.
    pub cycle: Summary,
    /// Tags of the instances started in the period.
    pub tags: BTreeMap<String, TagFigures>,
    /// Number fields of the instances that ended in the period.
    pub numbers: BTreeMap<String, NumberFigures>,
    /// Per stage (or per owner role).
    pub stages: Vec<StageFigures>,
}

/// Most rows (period and group pairs) one report answers with: a caller asking for more
/// (a year of days grouped by a field with many values) gets a 400 naming `by` or `to`
/// instead of an answer of hundreds of megabytes. Ten thousand rows are a year of days for
/// 27 groups, or ten years of months for 83.
pub const MAX_ROWS: usize = 10_000;

/// Why a cell could not be added to a report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A stored cell does not merge with the one already there.
    #[error(transparent)]
    Cell(#[from] CellError),
    /// The report would have more than [`MAX_ROWS`] rows.
    #[error("more than {MAX_ROWS} rows (periods x groups); ask for fewer periods, a longer period, or no grouping")]
    TooManyRows,
}

/// Merges bucket cells into the periods of a report.
#[derive(Debug)]
pub struct Builder {
    spans: Vec<Span>,
    grouped: bool,
    /// Stage -> the name its figures go under (its owner role with `by=role`).
    rename: Option<BTreeMap<String, String>>,
    /// The stage (or role) order of the answer: the definition's, then any others seen.
    order: Vec<String>,
    cells: BTreeMap<(usize, String), BTreeMap<String, Cell>>,
}

impl Builder {
    /// A report over `spans` (in order, adjacent), grouped by a field's value when
    /// `grouped`; stage figures under `rename`'s names when given, listed in `order`.
    pub fn new(
        spans: Vec<Span>,
        grouped: bool,
        rename: Option<BTreeMap<String, String>>,
        order: Vec<String>,
    ) -> Self {
        Builder {
            spans,
            grouped,
            rename,
            order,
            cells: BTreeMap::new(),
        }
    }

    /// The buckets to read: from the first period's first to the last one's end.
    pub fn bucket_range(&self) -> (i64, i64) {
        match (self.spans.first(), self.spans.last()) {
            (Some(a), Some(b)) => (a.first_bucket(), b.end_bucket()),
            _ => (0, 0),
        }
    }

    /// Adds a stored cell of `bucket`, `group` (the field's value; empty for all).
    ///
    /// # Errors
    /// Cells of one figure of different kinds.
    pub fn add(
        &mut self,
        bucket: i64,
        group: &str,
        metric: &str,
        cell: Cell,
    ) -> Result<(), BuildError> {
        let i = self.spans.partition_point(|s| s.end_bucket() <= bucket);
        if i == self.spans.len() || bucket < self.spans[i].first_bucket() {
            return Ok(());
        }
        let metric = match (&self.rename, metric.strip_prefix("stage/")) {
            (Some(rename), Some(rest)) => match rest.rsplit_once('/') {
                Some((stage, what)) => {
                    let to = rename.get(stage).map_or("(none)", String::as_str);
                    format!("stage/{to}/{what}")
                }
                None => metric.to_owned(),
            },
            _ => metric.to_owned(),
        };
        let row = (i, group.to_owned());
        if self.cells.len() >= MAX_ROWS && !self.cells.contains_key(&row) {
            return Err(BuildError::TooManyRows);
        }
        let cells = self.cells.entry(row).or_default();
        match cells.get_mut(&metric) {
            Some(c) => c.merge(&cell)?,
            None => {
                cells.insert(metric, cell);
            }
        }
        Ok(())
    }

    /// The rows: every period for every group seen (all periods once without grouping).
    pub fn rows(self) -> Vec<Row> {
        let groups: BTreeSet<String> = if self.grouped {
            self.cells.keys().map(|(_, g)| g.clone()).collect()
        } else {
            BTreeSet::from([String::new()])
        };
        let empty = BTreeMap::new();
        let mut rows = Vec::new();
        for g in &groups {
            for (i, span) in self.spans.iter().enumerate() {
                let cells = self.cells.get(&(i, g.clone())).unwrap_or(&empty);
                let group = self.grouped.then(|| g.clone());
                rows.push(row(span, group, cells, &self.order));
            }
        }
        rows
    }
}

fn row(
    span: &Span,
    group: Option<String>,
    cells: &BTreeMap<String, Cell>,
    order: &[String],
) -> Row {
    let count = |m: &str| cells.get(m).map_or(0, Cell::count);
    let started = count("started");
    let under = |p: &str| -> BTreeMap<String, i64> {
        cells
            .iter()
            .filter_map(|(k, c)| Some((k.strip_prefix(p)?.to_owned(), c.count())))
            .filter(|(_, n)| *n != 0)
            .collect()
    };
    let tags = under("tag/")
        .into_iter()
        .map(|(t, n)| {
            let rate = (started > 0).then(|| n as f64 / started as f64);
            (t, TagFigures { count: n, rate })
        })
        .collect();
    let numbers = cells
        .iter()
        .filter_map(|(k, c)| match (k.strip_prefix("num/"), c) {
            (Some(name), Cell::Numbers(n)) if n.count > 0 => Some((
                name.to_owned(),
                NumberFigures {
                    count: n.count,
                    mean: n.sum / n.count as f64,
                    min: n.min,
                    max: n.max,
                },
            )),
            _ => None,
        })
        .collect();
    Row {
        period: span.label.clone(),
        start: span.start,
        end: span.end,
        group,
        started,
        running: count("running"),
        ended: under("ended/"),
        outcomes: under("outcome/"),
        cycle: Summary::of(cells.get("cycle")),
        tags,
        numbers,
        stages: stages(cells, order),
    }
}

fn stages(cells: &BTreeMap<String, Cell>, order: &[String]) -> Vec<StageFigures> {
    let mut names: Vec<String> = order.to_vec();
    for k in cells.keys() {
        if let Some((stage, _)) = k.strip_prefix("stage/").and_then(|r| r.rsplit_once('/')) {
            if !names.iter().any(|n| n == stage) {
                names.push(stage.to_owned());
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let get = |what: &str| cells.get(&format!("stage/{name}/{what}"));
            let count = |what: &str| get(what).map_or(0, Cell::count);
            let entered = count("entered");
            let rate = |n: i64| (entered > 0).then(|| n as f64 / entered as f64);
            StageFigures {
                entered,
                left: count("left"),
                response: Summary::of(get("response")),
                time: Summary::of(get("time")),
                at_risk: count("at_risk"),
                breached: count("breached"),
                at_risk_rate: rate(count("at_risk")),
                breach_rate: rate(count("breached")),
                name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{BuildError, Builder, Cell, MAX_ROWS};
    use crate::report::{spans, zone, PeriodKind};

    #[test]
    fn a_year_of_days_grouped_by_a_field_of_many_values_stops_at_the_row_limit() {
        // 2026 by day: 365 periods; 28 customers each day is 10,220 rows.
        let days = spans(
            PeriodKind::Day,
            zone("UTC").unwrap(),
            "2026-01-01",
            Some("2026-12-31"),
        )
        .unwrap();
        let buckets: Vec<i64> = days.iter().map(|s| s.first_bucket()).collect();
        let mut b = Builder::new(days, true, None, Vec::new());
        let mut added = 0;
        let mut refused = None;
        'all: for customer in 0..28 {
            for &bucket in &buckets {
                let group = format!("customer-{customer}");
                match b.add(bucket, &group, "started", Cell::Count(1)) {
                    Ok(()) => added += 1,
                    Err(e) => {
                        refused = Some(e);
                        break 'all;
                    }
                }
            }
        }
        assert_eq!(refused, Some(BuildError::TooManyRows));
        assert_eq!(added, MAX_ROWS);
        // A row already there still takes more figures.
        assert_eq!(
            b.add(buckets[0], "customer-0", "started", Cell::Count(1)),
            Ok(())
        );
    }
}
