//! What one change of an instance adds to the reports: a list of [`Delta`]s, each one cell
//! of one 15-minute UTC bucket of one group moving.
//!
//! Two kinds of figures, so that every delta is exact whatever happens later:
//! - **Cohort figures** belong to the bucket the instance *started* in: `started`,
//!   `running` (still running now) and `tag/{tag}` (carries the tag now). They are a
//!   function of the state alone, so a change adds `figures(after) - figures(before)`:
//!   an instance that ends, gains a tag or moves to another group (a keyword field
//!   changed) moves its cohort counts with it.
//! - **Event figures** belong to the bucket of the moment something happened, read from
//!   the history entries the change adds: stage entries and exits, time in stage, time to
//!   first action, SLA at-risk and breach, ends by status and outcome, cycle time, and the
//!   number fields' values at the end. Once added they never move.
//!
//! Rebuilding from scratch is the same function over the whole history with no `before`.

use crate::effect::{HistoryEntry, HistoryEvent};
use crate::fields::FieldValue;
use crate::state::{InstanceState, SlaState, Status};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Seconds per bucket: 15 minutes, so that a day, week or month in any zone (UTC+05:30,
/// +05:45 and +08:45 exist) starts and ends on a bucket boundary.
pub const BUCKET_SECONDS: i64 = 900;

/// The bucket holding `t`: 15-minute steps since the Unix epoch.
pub fn bucket(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(BUCKET_SECONDS)
}

/// A group of instances: every instance is in the group of all (`dim` and `value` empty)
/// and, for each keyword field it has, in the group `(field, value)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group {
    /// The keyword field, or empty for all instances.
    pub dim: String,
    /// Its value.
    pub value: String,
}

impl Group {
    /// The group of all instances.
    pub fn all() -> Self {
        Group {
            dim: String::new(),
            value: String::new(),
        }
    }
}

/// How a cell moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A count goes up or down.
    Count(i64),
    /// A duration in seconds joins a sketch.
    Duration(f64),
    /// A value joins a number summary.
    Number(f64),
}

/// One cell moving: `metric` of `group` in `bucket`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The group.
    pub group: Group,
    /// The 15-minute bucket.
    pub bucket: i64,
    /// The figure (see the module docs of [`crate::report`] for the names).
    pub metric: String,
    /// How it moves.
    pub change: Change,
}

/// The groups `state` is in.
pub fn groups(state: &InstanceState) -> Vec<Group> {
    let mut out = vec![Group::all()];
    for (name, v) in &state.fields {
        if let FieldValue::Keyword(v) = v {
            out.push(Group {
                dim: name.clone(),
                value: v.clone(),
            });
        }
    }
    out
}

/// The cohort counts of `state`, keyed by (group, metric), all in its start bucket.
fn cohort(state: &InstanceState) -> BTreeMap<(Group, String), i64> {
    let mut metrics = vec!["started".to_owned()];
    if state.status == Status::Running {
        metrics.push("running".to_owned());
    }
    metrics.extend(state.tags.iter().map(|t| format!("tag/{t}")));
    let mut out = BTreeMap::new();
    for g in groups(state) {
        for m in &metrics {
            out.insert((g.clone(), m.clone()), 1);
        }
    }
    out
}

/// True when `before` and `after` are in the same cohort cells: same start, running or
/// not alike, same tags, same keyword fields (the groups).
fn same_cohort(before: &InstanceState, after: &InstanceState) -> bool {
    fn keywords(s: &InstanceState) -> impl Iterator<Item = (&String, &FieldValue)> {
        s.fields
            .iter()
            .filter(|(_, v)| matches!(v, FieldValue::Keyword(_)))
    }
    before.started_at == after.started_at
        && (before.status == Status::Running) == (after.status == Status::Running)
        && before.tags == after.tags
        && keywords(before).eq(keywords(after))
}

/// The cohort counts that move from `before` to `after`, into `out`.
fn cohort_moves(before: Option<&InstanceState>, after: &InstanceState, out: &mut Vec<Delta>) {
    let mut moved = before.map(cohort).unwrap_or_default();
    for v in moved.values_mut() {
        *v = -*v;
    }
    for (k, v) in cohort(after) {
        *moved.entry(k).or_insert(0) += v;
    }
    let start = bucket(after.started_at);
    for ((group, metric), n) in moved.into_iter().filter(|(_, n)| *n != 0) {
        out.push(Delta {
            group,
            bucket: start,
            metric,
            change: Change::Count(n),
        });
    }
}

/// The stage visit under way while walking the history.
struct Visit {
    stage: String,
    entered: DateTime<Utc>,
    responded: bool,
}

/// What a change from `before` (none for a start or a rebuild) to `after`, adding
/// `history`, does to the reports.
pub fn deltas(
    before: Option<&InstanceState>,
    after: &InstanceState,
    history: &[&HistoryEntry],
) -> Vec<Delta> {
    let mut out = Vec::new();
    // Cohort: after minus before; nothing when nothing it depends on changed (most
    // commands), without building either side.
    if before.is_none_or(|b| !same_cohort(b, after)) {
        cohort_moves(before, after, &mut out);
    }
    // Events, in every group the instance is in now.
    let mut walk = Walk {
        groups: groups(after),
        after,
        visit: before
            .filter(|b| b.status == Status::Running)
            .map(|b| Visit {
                stage: b.stage.clone(),
                entered: b.stage_entered_at,
                // Issue 14's "acted" clock: a person or system acted after the stage was entered.
                responded: b.acted_at.is_some_and(|a| a > b.stage_entered_at),
            }),
        continuing: false,
        out,
    };
    for entry in history {
        walk.entry(entry);
    }
    walk.out
}

struct Walk<'a> {
    groups: Vec<Group>,
    after: &'a InstanceState,
    visit: Option<Visit>,
    /// A self-loop kept its deadline: the next `Entered` continues the visit.
    continuing: bool,
    out: Vec<Delta>,
}

impl Walk<'_> {
    fn add(&mut self, at: DateTime<Utc>, metric: String, change: Change) {
        for g in &self.groups {
            self.out.push(Delta {
                group: g.clone(),
                bucket: bucket(at),
                metric: metric.clone(),
                change,
            });
        }
    }

    fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        (to - from).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// The visit under way ends at `at`.
    fn leave(&mut self, at: DateTime<Utc>) {
        if let Some(v) = self.visit.take() {
            self.add(at, format!("stage/{}/left", v.stage), Change::Count(1));
            let d = Self::seconds(v.entered, at);
            self.add(at, format!("stage/{}/time", v.stage), Change::Duration(d));
        }
    }

    /// A person or an outside system acted at `at`.
    fn respond(&mut self, at: DateTime<Utc>) {
        let Some(v) = self.visit.as_mut().filter(|v| !v.responded) else {
            return;
        };
        v.responded = true;
        let (metric, d) = (
            format!("stage/{}/response", v.stage),
            Self::seconds(v.entered, at),
        );
        self.add(at, metric, Change::Duration(d));
    }

    /// The instance ended at `at` with `status`.
    fn end(&mut self, at: DateTime<Utc>, status: Status, outcome: Option<&str>) {
        self.add(at, format!("ended/{}", status.as_str()), Change::Count(1));
        if let Some(o) = outcome {
            self.add(at, format!("outcome/{o}"), Change::Count(1));
        }
        let cycle = Self::seconds(self.after.started_at, at);
        self.add(at, "cycle".into(), Change::Duration(cycle));
        let numbers: Vec<(String, f64)> = self
            .after
            .fields
            .iter()
            .filter_map(|(k, v)| match v {
                FieldValue::Number(n) => Some((k.clone(), *n)),
                _ => None,
            })
            .collect();
        for (k, n) in numbers {
            self.add(at, format!("num/{k}"), Change::Number(n));
        }
    }

    fn entry(&mut self, e: &HistoryEntry) {
        let at = e.at;
        match &e.event {
            HistoryEvent::Transitioned { from, to, .. } => {
                // A self-loop that kept its deadline (issue 14) continues the visit.
                self.continuing = from == to
                    && self.after.stage == *to
                    && self.after.stage_entered_at < at
                    && self.visit.as_ref().is_some_and(|v| v.stage == *from);
                if !self.continuing {
                    self.leave(at);
                }
            }
            HistoryEvent::Entered { stage } => {
                if std::mem::take(&mut self.continuing) {
                    return;
                }
                self.visit = Some(Visit {
                    stage: stage.clone(),
                    entered: at,
                    responded: false,
                });
                self.add(at, format!("stage/{stage}/entered"), Change::Count(1));
            }
            HistoryEvent::EventReceived { .. } | HistoryEvent::Decided { .. } => self.respond(at),
            HistoryEvent::Assigned { .. } if e.actor.is_some() => self.respond(at),
            HistoryEvent::SlaChanged { stage, sla } => {
                let what = match sla {
                    SlaState::AtRisk => "at_risk",
                    SlaState::Breached => "breached",
                    SlaState::OnTime => return,
                };
                self.add(at, format!("stage/{stage}/{what}"), Change::Count(1));
            }
            HistoryEvent::Completed { outcome } => {
                // The end stage: entered, never left.
                self.visit = None;
                self.end(at, Status::Completed, Some(outcome));
            }
            HistoryEvent::Failed { .. } => {
                self.leave(at);
                self.end(at, Status::Failed, None);
            }
            HistoryEvent::Cancelled { .. } => {
                self.leave(at);
                self.end(at, Status::Cancelled, None);
            }
            _ => {}
        }
    }
}
