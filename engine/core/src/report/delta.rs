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
    /// The figure (the names are in the figure table of the `report` module docs).
    pub metric: String,
    /// How it moves.
    pub change: Change,
}

/// A group borrowed from the state it was read from: `dim` empty for all instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupRef<'a> {
    /// The keyword field, or empty for all instances.
    pub dim: &'a str,
    /// Its value.
    pub value: &'a str,
}

impl GroupRef<'_> {
    /// An owned copy.
    pub fn to_group(self) -> Group {
        Group {
            dim: self.dim.to_owned(),
            value: self.value.to_owned(),
        }
    }
}

/// What a stage figure counts or times (the last part of `stage/{s}/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageFigure {
    /// `entered`: a visit began.
    Entered,
    /// `left`: a visit ended.
    Left,
    /// `time`: how long a visit lasted.
    Time,
    /// `response`: time from entering to the first action.
    Response,
    /// `at_risk`: the stage's SLA went at risk.
    AtRisk,
    /// `breached`: the stage's SLA was breached.
    Breached,
}

impl StageFigure {
    fn as_str(self) -> &'static str {
        match self {
            StageFigure::Entered => "entered",
            StageFigure::Left => "left",
            StageFigure::Time => "time",
            StageFigure::Response => "response",
            StageFigure::AtRisk => "at_risk",
            StageFigure::Breached => "breached",
        }
    }
}

/// A figure's name without the `String` [`Delta::metric`] holds: a change names its
/// figures without allocating, and the store writes the name straight into a cell key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric<'a> {
    /// `started` (cohort).
    Started,
    /// `running` (cohort).
    Running,
    /// `tag/{tag}` (cohort).
    Tag(&'a str),
    /// `stage/{stage}/{figure}`.
    Stage(&'a str, StageFigure),
    /// `ended/{status}`.
    Ended(Status),
    /// `outcome/{outcome}`.
    Outcome(&'a str),
    /// `cycle`.
    Cycle,
    /// `num/{field}`.
    Number(&'a str),
}

impl<'a> Metric<'a> {
    /// The figure's name (the figure table of the `report` module docs) in four pieces, some
    /// empty.
    fn parts(&self) -> [&'a str; 4] {
        match *self {
            Metric::Started => ["started", "", "", ""],
            Metric::Running => ["running", "", "", ""],
            Metric::Tag(t) => ["tag/", t, "", ""],
            Metric::Stage(s, f) => ["stage/", s, "/", f.as_str()],
            Metric::Ended(s) => ["ended/", s.as_str(), "", ""],
            Metric::Outcome(o) => ["outcome/", o, "", ""],
            Metric::Cycle => ["cycle", "", "", ""],
            Metric::Number(f) => ["num/", f, "", ""],
        }
    }

    /// Appends the figure's name to `out`.
    pub fn write_name(&self, out: &mut Vec<u8>) {
        for part in self.parts() {
            out.extend_from_slice(part.as_bytes());
        }
    }

    /// The length of the figure's name in bytes.
    pub fn name_len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// The figure's name.
    pub fn name(&self) -> String {
        self.parts().concat()
    }
}

/// One figure moving in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move<'a> {
    /// The 15-minute bucket.
    pub bucket: i64,
    /// The figure.
    pub metric: Metric<'a>,
    /// How it moves.
    pub change: Change,
}

/// What one change of an instance does to the reports, before it is spread over the
/// groups: the event figures happened once and count in every group the instance is in
/// now; the cohort moves each name their group (a keyword field that changed moves the
/// instance's cohort counts from one group to another). [`Moves::expand`] gives the
/// [`Delta`]s, one per cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Moves<'a> {
    /// The groups the instance is in now, the group of all first.
    pub groups: Vec<GroupRef<'a>>,
    /// Cohort counts, each in its own group.
    pub cohort: Vec<(GroupRef<'a>, Move<'a>)>,
    /// Event figures, each counted in every one of [`Moves::groups`].
    pub events: Vec<Move<'a>>,
}

impl Moves<'_> {
    /// True when nothing moves.
    pub fn is_empty(&self) -> bool {
        self.cohort.is_empty() && self.events.is_empty()
    }

    /// One [`Delta`] per cell that moves.
    pub fn expand(&self) -> Vec<Delta> {
        let mut out = Vec::with_capacity(self.cohort.len() + self.events.len() * self.groups.len());
        let delta = |g: &GroupRef<'_>, m: &Move<'_>| Delta {
            group: g.to_group(),
            bucket: m.bucket,
            metric: m.metric.name(),
            change: m.change,
        };
        out.extend(self.cohort.iter().map(|(g, m)| delta(g, m)));
        for m in &self.events {
            out.extend(self.groups.iter().map(|g| delta(g, m)));
        }
        out
    }
}

/// The groups `state` is in.
pub fn groups(state: &InstanceState) -> Vec<Group> {
    group_refs(state)
        .into_iter()
        .map(GroupRef::to_group)
        .collect()
}

/// The groups `state` is in, borrowed from it; the group of all first.
pub fn group_refs(state: &InstanceState) -> Vec<GroupRef<'_>> {
    let mut out = vec![GroupRef { dim: "", value: "" }];
    for (name, v) in &state.fields {
        if let FieldValue::Keyword(v) = v {
            out.push(GroupRef {
                dim: name,
                value: v,
            });
        }
    }
    out
}

/// The cohort cells of `state` with `sign` (+1 or -1), all in its start bucket, added into
/// `out` (a cell already there has its count moved instead, so that a figure both sides
/// hold cancels out).
fn cohort<'a>(state: &'a InstanceState, sign: i64, out: &mut Vec<(GroupRef<'a>, Move<'a>)>) {
    let bucket = bucket(state.started_at);
    let running = state.status == Status::Running;
    let metrics = [Metric::Started]
        .into_iter()
        .chain(running.then_some(Metric::Running))
        .chain(state.tags.iter().map(|t| Metric::Tag(t)));
    let groups = group_refs(state);
    for metric in metrics {
        for g in &groups {
            let same = out
                .iter_mut()
                .find(|(h, m)| h == g && m.metric == metric && m.bucket == bucket);
            match same {
                Some((_, m)) => {
                    if let Change::Count(n) = &mut m.change {
                        *n += sign;
                    }
                }
                None => out.push((
                    *g,
                    Move {
                        bucket,
                        metric,
                        change: Change::Count(sign),
                    },
                )),
            }
        }
    }
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

/// The cohort counts that move from `before` to `after`.
fn cohort_moves<'a>(
    before: Option<&'a InstanceState>,
    after: &'a InstanceState,
) -> Vec<(GroupRef<'a>, Move<'a>)> {
    let mut out = Vec::new();
    if let Some(b) = before {
        cohort(b, -1, &mut out);
    }
    cohort(after, 1, &mut out);
    out.retain(|(_, m)| m.change != Change::Count(0));
    out
}

/// The stage visit under way while walking the history.
struct Visit<'a> {
    stage: &'a str,
    entered: DateTime<Utc>,
    responded: bool,
}

/// What a change from `before` (none for a start or a rebuild) to `after`, adding
/// `history`, does to the reports, one [`Delta`] per cell: [`moves`] expanded.
pub fn deltas(
    before: Option<&InstanceState>,
    after: &InstanceState,
    history: &[&HistoryEntry],
) -> Vec<Delta> {
    moves(before, after, history).expand()
}

/// What a change from `before` (none for a start or a rebuild) to `after`, adding
/// `history`, does to the reports, before it is spread over the groups. Allocates only
/// its three lists: this runs in every commit.
pub fn moves<'a>(
    before: Option<&'a InstanceState>,
    after: &'a InstanceState,
    history: &[&'a HistoryEntry],
) -> Moves<'a> {
    // Cohort: after minus before; nothing when nothing it depends on changed (most
    // commands), without building either side.
    let cohort = match before.is_none_or(|b| !same_cohort(b, after)) {
        true => cohort_moves(before, after),
        false => Vec::new(),
    };
    let mut walk = Walk {
        after,
        visit: before
            .filter(|b| b.status == Status::Running)
            .map(|b| Visit {
                stage: &b.stage,
                entered: b.stage_entered_at,
                // Issue 14's "acted" clock: a person or system acted after the stage was entered.
                responded: b.acted_at.is_some_and(|a| a > b.stage_entered_at),
            }),
        continuing: false,
        out: Vec::new(),
    };
    for entry in history {
        walk.entry(entry);
    }
    Moves {
        groups: group_refs(after),
        cohort,
        events: walk.out,
    }
}

struct Walk<'a> {
    after: &'a InstanceState,
    visit: Option<Visit<'a>>,
    /// A self-loop kept its deadline: the next `Entered` continues the visit.
    continuing: bool,
    out: Vec<Move<'a>>,
}

impl<'a> Walk<'a> {
    fn add(&mut self, at: DateTime<Utc>, metric: Metric<'a>, change: Change) {
        self.out.push(Move {
            bucket: bucket(at),
            metric,
            change,
        });
    }

    fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        (to - from).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// The visit under way ends at `at`.
    fn leave(&mut self, at: DateTime<Utc>) {
        if let Some(v) = self.visit.take() {
            self.add(
                at,
                Metric::Stage(v.stage, StageFigure::Left),
                Change::Count(1),
            );
            let d = Self::seconds(v.entered, at);
            self.add(
                at,
                Metric::Stage(v.stage, StageFigure::Time),
                Change::Duration(d),
            );
        }
    }

    /// A person or an outside system acted at `at`.
    fn respond(&mut self, at: DateTime<Utc>) {
        let Some(v) = self.visit.as_mut().filter(|v| !v.responded) else {
            return;
        };
        v.responded = true;
        let (stage, d) = (v.stage, Self::seconds(v.entered, at));
        self.add(
            at,
            Metric::Stage(stage, StageFigure::Response),
            Change::Duration(d),
        );
    }

    /// The instance ended at `at` with `status`.
    fn end(&mut self, at: DateTime<Utc>, status: Status, outcome: Option<&'a str>) {
        self.add(at, Metric::Ended(status), Change::Count(1));
        if let Some(o) = outcome {
            self.add(at, Metric::Outcome(o), Change::Count(1));
        }
        let cycle = Self::seconds(self.after.started_at, at);
        self.add(at, Metric::Cycle, Change::Duration(cycle));
        let after = self.after;
        for (k, v) in &after.fields {
            if let FieldValue::Number(n) = v {
                self.add(at, Metric::Number(k), Change::Number(*n));
            }
        }
    }

    fn entry(&mut self, e: &'a HistoryEntry) {
        let at = e.at;
        match &e.event {
            HistoryEvent::Transitioned { from, to, .. } => {
                // A self-loop that kept its deadline (issue 14) continues the visit.
                self.continuing = from == to
                    && self.after.stage == *to
                    && self.after.stage_entered_at < at
                    && self.visit.as_ref().is_some_and(|v| v.stage == from);
                if !self.continuing {
                    self.leave(at);
                }
            }
            HistoryEvent::Entered { stage } => {
                if std::mem::take(&mut self.continuing) {
                    return;
                }
                self.visit = Some(Visit {
                    stage,
                    entered: at,
                    responded: false,
                });
                self.add(
                    at,
                    Metric::Stage(stage, StageFigure::Entered),
                    Change::Count(1),
                );
            }
            HistoryEvent::EventReceived { .. } | HistoryEvent::Decided { .. } => self.respond(at),
            HistoryEvent::Assigned { .. } if e.actor.is_some() => self.respond(at),
            HistoryEvent::SlaChanged { stage, sla } => {
                let figure = match sla {
                    SlaState::AtRisk => StageFigure::AtRisk,
                    SlaState::Breached => StageFigure::Breached,
                    SlaState::OnTime => return,
                };
                self.add(at, Metric::Stage(stage, figure), Change::Count(1));
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

#[cfg(test)]
mod tests {
    use super::{Metric, StageFigure};
    use crate::state::Status;

    #[test]
    fn each_figure_is_named_as_the_report_table_says() {
        let named = [
            (Metric::Started, "started"),
            (Metric::Running, "running"),
            (Metric::Tag("abnormal"), "tag/abnormal"),
            (
                Metric::Stage("todo", StageFigure::Entered),
                "stage/todo/entered",
            ),
            (Metric::Stage("todo", StageFigure::Left), "stage/todo/left"),
            (Metric::Stage("todo", StageFigure::Time), "stage/todo/time"),
            (
                Metric::Stage("todo", StageFigure::Response),
                "stage/todo/response",
            ),
            (
                Metric::Stage("todo", StageFigure::AtRisk),
                "stage/todo/at_risk",
            ),
            (
                Metric::Stage("todo", StageFigure::Breached),
                "stage/todo/breached",
            ),
            (Metric::Ended(Status::Cancelled), "ended/cancelled"),
            (Metric::Outcome("resolved"), "outcome/resolved"),
            (Metric::Cycle, "cycle"),
            (Metric::Number("satisfaction"), "num/satisfaction"),
        ];
        for (metric, name) in named {
            assert_eq!(metric.name(), name);
            assert_eq!(metric.name_len(), name.len());
            let mut bytes = b"x".to_vec();
            metric.write_name(&mut bytes);
            assert_eq!(&bytes[1..], name.as_bytes());
        }
    }
}
