//! The post-mortem of one instance (the playbooks' "response time of every step"): each
//! stage visit with its time against its deadline, the first action and everyone who acted
//! in it, read from the whole history and the kept SLA records.

use crate::effect::{HistoryEntry, HistoryEvent};
use crate::state::{InstanceState, SlaState};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Someone acting in a stage visit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Act {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the token name of the request (absent for entries written before actors were
    /// recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// What: `event:<name>`, `approved:<level>`, `rejected:<level>`, `assigned:<person>`,
    /// `released`, `cancelled`.
    pub what: String,
    /// Seconds since the visit began.
    pub after_seconds: f64,
}

/// One visit of a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    /// The stage.
    pub stage: String,
    /// When the visit began.
    pub entered_at: DateTime<Utc>,
    /// When it ended; absent while the instance is still there (or it is an end stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DateTime<Utc>>,
    /// Time spent, in seconds (up to `now` while still there).
    pub seconds: f64,
    /// The deadline, when the stage had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When it went at risk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_risk_at: Option<DateTime<Utc>>,
    /// When it breached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breached_at: Option<DateTime<Utc>>,
    /// Seconds between entering and the first action (the response time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_seconds: Option<f64>,
    /// Everyone who acted, in order.
    pub acts: Vec<Act>,
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

fn act_of(e: &HistoryEntry) -> Option<String> {
    match &e.event {
        HistoryEvent::EventReceived { name, .. } => Some(format!("event:{name}")),
        HistoryEvent::Decided {
            level, decision, ..
        } => Some(format!(
            "{}:{level}",
            if decision == "approve" {
                "approved"
            } else {
                "rejected"
            }
        )),
        HistoryEvent::Assigned { assignee, .. } if e.actor.is_some() => Some(
            assignee
                .as_ref()
                .map_or_else(|| "released".to_owned(), |a| format!("assigned:{a}")),
        ),
        HistoryEvent::Cancelled { .. } => Some("cancelled".to_owned()),
        _ => None,
    }
}

/// The visits of `state` from its whole `history`, `now` closing a visit still under way.
/// A self-loop (an event leading back to the same stage) stays one visit.
pub fn visits(state: &InstanceState, history: &[HistoryEntry], now: DateTime<Utc>) -> Vec<Visit> {
    let mut out: Vec<Visit> = Vec::new();
    let mut continuing = false;
    for e in history {
        match &e.event {
            HistoryEvent::Transitioned { from, to, .. } => {
                // An event that loops back to the stage stays in the same visit here (the
                // stage did not change); the reports count a new visit when the loop
                // restarts the deadline.
                continuing = from == to && out.last().is_some_and(|v| v.stage == *from);
                if !continuing {
                    // The visit of `from`: with parallel branches, not always the last one.
                    if let Some(v) = open_visit(&mut out, from) {
                        v.left_at = Some(e.at);
                    }
                }
            }
            HistoryEvent::Entered { stage } => {
                if std::mem::take(&mut continuing) {
                    continue;
                }
                out.push(Visit::entered(stage, e.at));
            }
            HistoryEvent::Failed { .. } | HistoryEvent::Cancelled { .. } => {
                if let Some(what) = act_of(e) {
                    record(&mut out, e, what);
                }
                if let Some(v) = out.last_mut().filter(|v| v.left_at.is_none()) {
                    v.left_at = Some(e.at);
                }
            }
            HistoryEvent::Completed { .. } => {
                if let Some(v) = out.last_mut() {
                    v.left_at = Some(e.at);
                }
            }
            HistoryEvent::TimerArmed {
                purpose: crate::state::TimerPurpose::Deadline,
                due,
                ..
            } => {
                if let Some(v) = out.last_mut().filter(|v| v.left_at.is_none()) {
                    v.deadline = Some(*due);
                }
            }
            HistoryEvent::BranchCancelled { in_stage, .. } => {
                if let Some(v) = open_visit(&mut out, in_stage) {
                    v.left_at = Some(e.at);
                }
            }
            HistoryEvent::SlaChanged { sla, stage } => {
                if let Some(v) = out.iter_mut().rev().find(|v| v.stage == *stage) {
                    v.sla_changed(*sla, e.at);
                }
            }
            _ => {
                if let Some(what) = act_of(e) {
                    record(&mut out, e, what);
                }
            }
        }
    }
    for v in &mut out {
        v.close(state, now);
    }
    out
}

impl Visit {
    /// A visit of `stage` that began `at`, nothing known of it yet.
    fn entered(stage: &str, at: DateTime<Utc>) -> Visit {
        Visit {
            stage: stage.to_owned(),
            entered_at: at,
            left_at: None,
            seconds: 0.0,
            deadline: None,
            at_risk_at: None,
            breached_at: None,
            response_seconds: None,
            acts: Vec::new(),
        }
    }

    /// The visit went at risk or breached `at`.
    fn sla_changed(&mut self, sla: SlaState, at: DateTime<Utc>) {
        match sla {
            SlaState::AtRisk => self.at_risk_at = Some(at),
            SlaState::Breached => self.breached_at = Some(at),
            SlaState::OnTime => {}
        }
    }

    /// Once the history is read: the time spent (up to `now` while still there), and the
    /// deadline of `state`'s kept SLA record, which wins (a self-loop may have moved it).
    fn close(&mut self, state: &InstanceState, now: DateTime<Utc>) {
        self.seconds = seconds(self.entered_at, self.left_at.unwrap_or(now));
        let kept = state
            .sla_record
            .iter()
            .find(|r| r.stage == self.stage && r.entered_at == self.entered_at);
        self.deadline = kept.and_then(|r| r.deadline).or(self.deadline);
    }
}

/// The latest visit of `stage` not yet left.
fn open_visit<'a>(out: &'a mut [Visit], stage: &str) -> Option<&'a mut Visit> {
    out.iter_mut()
        .rev()
        .find(|v| v.stage == stage && v.left_at.is_none())
}

fn record(out: &mut [Visit], e: &HistoryEntry, what: String) {
    if let Some(v) = out.last_mut() {
        let after = seconds(v.entered_at, e.at);
        if v.response_seconds.is_none() && what != "cancelled" {
            v.response_seconds = Some(after);
        }
        v.acts.push(Act {
            at: e.at,
            by: e.actor.as_ref().map(|a| a.name.clone()),
            what,
            after_seconds: after,
        });
    }
}
