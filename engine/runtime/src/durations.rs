//! Prometheus histograms of stage response time and cycle time per workflow (and stage),
//! fed by the same report deltas the store rolls up (counted since the process started,
//! as Prometheus histograms are; the exact figures over any period are the reports').

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use waystation_core::effect::history_of;
use waystation_core::report::{moves, Change, Metric, StageFigure};
use waystation_core::{Effect, InstanceState};

/// Upper bounds (seconds) of the buckets: a minute to a month; the last bucket is
/// unbounded.
pub const DURATION_BUCKETS_S: [f64; 14] = [
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14_400.0,
    28_800.0,
    43_200.0,
    86_400.0,
    172_800.0,
    259_200.0,
    604_800.0,
    2_592_000.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS_S.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, s: f64) {
        let i = DURATION_BUCKETS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(DURATION_BUCKETS_S.len());
        self.counts[i] += 1;
        self.sum += s;
    }
}

/// The histograms: (workflow, stage) for response times, workflow for cycle times.
#[derive(Debug, Default)]
pub struct Durations {
    response: Mutex<BTreeMap<(String, String), Histogram>>,
    cycle: Mutex<BTreeMap<String, Histogram>>,
}

impl Durations {
    /// Observes what one committed change adds.
    pub fn observe(
        &self,
        before: Option<&InstanceState>,
        after: &InstanceState,
        effects: &[Effect],
    ) {
        let history = history_of(effects);
        if history.is_empty() {
            return;
        }
        // Events only: a duration is never a cohort move, and each event counts once here
        // (the report cells spread it over the groups).
        for m in moves(before, after, &history).events {
            let Change::Duration(s) = m.change else {
                continue;
            };
            if m.metric == Metric::Cycle {
                let mut cycle = self
                    .cycle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cycle.entry(after.workflow.clone()).or_default().observe(s);
            } else if let Metric::Stage(stage, StageFigure::Response) = m.metric {
                let mut response = self
                    .response
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                response
                    .entry((after.workflow.clone(), stage.to_owned()))
                    .or_default()
                    .observe(s);
            }
        }
    }

    /// Appends both histograms in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        let response = self
            .response
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let cycle = self
            .cycle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let _ = writeln!(out, "# HELP waystation_stage_response_seconds Time from entering a stage to the first action by a person or system.\n# TYPE waystation_stage_response_seconds histogram");
        for ((wf, stage), h) in &response {
            series(
                out,
                "waystation_stage_response_seconds",
                &format!("workflow=\"{}\",stage=\"{}\"", esc(wf), esc(stage)),
                h,
            );
        }
        let _ = writeln!(out, "# HELP waystation_cycle_seconds Time from start to end of instances.\n# TYPE waystation_cycle_seconds histogram");
        for (wf, h) in &cycle {
            series(
                out,
                "waystation_cycle_seconds",
                &format!("workflow=\"{}\"", esc(wf)),
                h,
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn series(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        let le = DURATION_BUCKETS_S
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(
        out,
        "{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {cumulative}",
        h.sum
    );
}
