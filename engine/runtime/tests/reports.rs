//! Issue 15: a month of disputes on a fixed clock, whose figures are worked out by hand
//! from the script below, read back through `Runtime::report` value by value; the same
//! figures after the rollups are rebuilt from the histories, and after the store is
//! closed and opened again.
//!
//! The script, dispute `i` of 0..20, started October `i + 1`, 09:00 UTC, category
//! `delivery` for even `i`, `quality` for odd:
//! - triage (deadline 4 h, at risk after 3 h) is taken after 1, 2, 3.5 or 5 hours
//!   (`i % 4`): the last two go at risk, the last breaches;
//! - disputes 0, 5 and 10 get a complaint an hour into settling (tagged `abnormal`, back to
//!   settle); disputes 0..=14 are settled 10 hours after settling began, with a
//!   satisfaction of `i % 5 + 1`; dispute 15 is cancelled 2 hours into settling; 16..=19
//!   are still settling;
//! - one more dispute starts 2026-10-31 20:00 UTC (November in Asia/Shanghai) and runs on.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use waystation_core::report::{spans, zone, PeriodKind, Row, StageFigures, RELATIVE_ERROR};
use waystation_core::{Actor, ManualClock};
use waystation_runtime::{NoPlugins, ReportBy, Runtime};
use waystation_store::{FjallStore, Kv, ReportStore, Store};

fn disputes() -> Value {
    json!({"id": "disputes", "title": "Disputes", "start": "triage",
        "fields": {
            "category": {"type": "keyword", "value": "input.category"},
            "satisfaction": {"type": "number", "value": "vars.satisfaction"}},
        "stages": {
            "triage": {"kind": "wait", "owner": "agent", "deadline": "PT4H", "at_risk": "PT1H",
                       "on": {"take": {"to": "settle"}}},
            "settle": {"kind": "wait", "owner": "lead",
                       "on": {"settled": {"to": "record"}, "complaint": {"to": "flag"}}},
            "flag": {"kind": "task", "owner": "lead", "actions": [{"tag": "abnormal"}],
                     "transitions": [{"to": "settle"}]},
            "record": {"kind": "task", "owner": "lead",
                       "actions": [{"set": {"satisfaction": "event.data.score"}}],
                       "transitions": [{"to": "done"}]},
            "done": {"kind": "end", "outcome": "settled"}}})
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn hours(h: f64) -> TimeDelta {
    TimeDelta::milliseconds((h * 3_600_000.0) as i64)
}

/// What happens to dispute `i`, and when.
enum Step {
    Start(usize),
    Event(usize, &'static str, Value),
    Cancel(usize),
}

fn script() -> Vec<(DateTime<Utc>, Step)> {
    let mut steps = Vec::new();
    for i in 0..20 {
        let start = at("2026-10-01T09:00:00Z") + TimeDelta::days(i as i64);
        let take = [1.0, 2.0, 3.5, 5.0][i % 4];
        let settle = start + hours(take);
        steps.push((start, Step::Start(i)));
        steps.push((settle, Step::Event(i, "take", Value::Null)));
        if i % 5 == 0 && i < 15 {
            steps.push((
                settle + hours(1.0),
                Step::Event(i, "complaint", Value::Null),
            ));
        }
        match i {
            0..=14 => steps.push((
                settle + hours(10.0),
                Step::Event(i, "settled", json!({"score": i % 5 + 1})),
            )),
            15 => steps.push((settle + hours(2.0), Step::Cancel(i))),
            _ => {}
        }
    }
    steps.push((at("2026-10-31T20:00:00Z"), Step::Start(20)));
    steps.sort_by_key(|(t, _)| *t);
    steps
}

async fn play(rt: &Arc<Runtime>, clock: &ManualClock) {
    let person = Actor {
        token_id: "t1".into(),
        name: "agent-wu".into(),
    };
    let mut ids: Vec<String> = vec![String::new(); 21];
    for (t, step) in script() {
        clock.set(t);
        rt.fire_due_timers().await.unwrap();
        let acting = rt.acting(person.clone());
        match step {
            Step::Start(i) => {
                let category = if i % 2 == 0 { "delivery" } else { "quality" };
                let started = acting
                    .start("disputes", json!({"category": category}), None)
                    .await
                    .unwrap();
                ids[i] = started.instance.id;
            }
            Step::Event(i, name, data) => {
                acting.event(&ids[i], name, data, None).await.unwrap();
            }
            Step::Cancel(i) => {
                acting.cancel(&ids[i], None, None).await.unwrap();
            }
        }
    }
    clock.set(at("2026-11-05T00:00:00Z"));
    rt.fire_due_timers().await.unwrap();
}

async fn report(rt: &Runtime, tz: &str, by: ReportBy) -> Vec<Row> {
    let wf = rt.workflow("disputes", None).await.unwrap();
    let spans = spans(
        PeriodKind::Month,
        zone(tz).unwrap(),
        "2026-10",
        Some("2026-11"),
    )
    .unwrap();
    rt.report(&wf, spans, &by).unwrap()
}

fn stage<'a>(row: &'a Row, name: &str) -> &'a StageFigures {
    row.stages.iter().find(|s| s.name == name).unwrap()
}

fn close(actual: Option<f64>, hours: f64) {
    let want = hours * 3600.0;
    let got = actual.unwrap();
    assert!(
        (got - want).abs() <= want * RELATIVE_ERROR,
        "{got} s is not within 1% of {want} s"
    );
}

fn exact(actual: Option<f64>, hours: f64) {
    let got = actual.unwrap();
    assert!(
        (got - hours * 3600.0).abs() < 1e-6,
        "{got} s, not {hours} h"
    );
}

/// October in Shanghai holds the twenty scripted disputes and nothing else.
fn october_matches_the_script(oct: &Row) {
    assert_eq!(oct.period, "2026-10");
    assert_eq!((oct.started, oct.running), (20, 4));
    assert_eq!(oct.ended.get("completed"), Some(&15));
    assert_eq!(oct.ended.get("cancelled"), Some(&1));
    assert_eq!(oct.outcomes.get("settled"), Some(&15));
    // Cycle: 15 settled in take + 10 h, one cancelled after 5 + 2 h: 198 h over 16.
    assert_eq!(oct.cycle.count, 16);
    exact(oct.cycle.mean, 198.0 / 16.0);
    exact(oct.cycle.max, 15.0);
    close(oct.cycle.p50, 12.0);
    close(oct.cycle.p90, 15.0);
    let abnormal = &oct.tags["abnormal"];
    assert_eq!((abnormal.count, abnormal.rate), (3, Some(3.0 / 20.0)));
    let satisfaction = &oct.numbers["satisfaction"];
    assert_eq!(
        (
            satisfaction.count,
            satisfaction.mean,
            satisfaction.min,
            satisfaction.max
        ),
        (15, 3.0, 1.0, 5.0)
    );

    let triage = stage(oct, "triage");
    assert_eq!((triage.entered, triage.left), (20, 20));
    assert_eq!((triage.at_risk, triage.breached), (10, 5));
    assert_eq!(
        (triage.at_risk_rate, triage.breach_rate),
        (Some(0.5), Some(0.25))
    );
    assert_eq!(triage.response.count, 20);
    exact(triage.response.mean, 2.875);
    exact(triage.response.max, 5.0);
    close(triage.response.p50, 2.0);
    assert_eq!(triage.time.count, 20);

    // Settle: 20 first visits and 3 after a complaint; 12 settled after 10 h, 3 left for
    // the complaint after 1 h and settled 9 h later, one cancelled after 2 h.
    let settle = stage(oct, "settle");
    assert_eq!((settle.entered, settle.left), (23, 19));
    assert_eq!(
        (settle.at_risk, settle.breached, settle.breach_rate),
        (0, 0, Some(0.0))
    );
    assert_eq!(settle.response.count, 18);
    exact(settle.response.mean, 150.0 / 18.0);
    assert_eq!(settle.time.count, 19);
    exact(settle.time.mean, 152.0 / 19.0);
    exact(settle.time.max, 10.0);
    let flag = stage(oct, "flag");
    assert_eq!((flag.entered, flag.left, flag.time.max), (3, 3, Some(0.0)));
    assert_eq!(stage(oct, "done").entered, 15);
    assert_eq!(stage(oct, "done").left, 0);
}

fn runtime(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Arc<Runtime> {
    Runtime::new(store, Arc::new(NoPlugins), clock)
}

#[tokio::test]
async fn a_scripted_month_of_disputes_reads_back_value_by_value() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-10-01T00:00:00Z")));
    let store = Arc::new(FjallStore::open(dir.path()).unwrap());
    let rt = runtime(store.clone(), clock.clone());
    rt.put_definition(&disputes()).await.unwrap();
    play(&rt, &clock).await;

    let shanghai = report(&rt, "Asia/Shanghai", ReportBy::Nothing).await;
    assert_eq!(shanghai.len(), 2);
    october_matches_the_script(&shanghai[0]);
    // The dispute started 2026-10-31 20:00 UTC is November's in Shanghai, October's in UTC.
    let nov = &shanghai[1];
    assert_eq!(
        (nov.period.as_str(), nov.started, nov.running),
        ("2026-11", 1, 1)
    );
    assert_eq!(stage(nov, "triage").entered, 1);
    let utc = report(&rt, "UTC", ReportBy::Nothing).await;
    assert_eq!((utc[0].started, utc[0].running, utc[1].started), (21, 5, 0));

    // By category: even disputes are deliveries, and dispute 15 (quality) was cancelled.
    let by = report(&rt, "Asia/Shanghai", ReportBy::Field("category".into())).await;
    let row = |group: &str, period: &str| {
        by.iter()
            .find(|r| r.group.as_deref() == Some(group) && r.period == period)
            .unwrap()
            .clone()
    };
    let (delivery, quality) = (row("delivery", "2026-10"), row("quality", "2026-10"));
    assert_eq!(
        (
            delivery.started,
            delivery.running,
            delivery.ended.get("completed")
        ),
        (10, 2, Some(&8))
    );
    assert_eq!(
        (
            quality.started,
            quality.running,
            quality.ended.get("cancelled")
        ),
        (10, 2, Some(&1))
    );
    assert_eq!(quality.ended.get("completed"), Some(&7));
    assert_eq!(row("delivery", "2026-11").started, 1);
    assert_eq!(by.len(), 4, "two categories times two months");

    // By owner role: the agent's triage, the lead's settle, flag and record together.
    let roles = report(&rt, "Asia/Shanghai", ReportBy::Role).await;
    let lead = stage(&roles[0], "lead");
    assert_eq!(lead.entered, 23 + 3 + 15);
    assert_eq!(stage(&roles[0], "agent").breached, 5);

    // A rebuild from the histories gives the same figures as the kept rollups.
    let kept = report(&rt, "Asia/Shanghai", ReportBy::Nothing).await;
    let rebuilt = store.rebuild_reports().unwrap();
    assert_eq!(rebuilt.instances, 21);
    assert_eq!(report(&rt, "Asia/Shanghai", ReportBy::Nothing).await, kept);
    assert_eq!(
        report(&rt, "Asia/Shanghai", ReportBy::Field("category".into())).await,
        by
    );

    // And so does the store opened again.
    drop(rt);
    drop(store);
    let store = Arc::new(FjallStore::open(dir.path()).unwrap());
    let rt = runtime(store, clock);
    october_matches_the_script(&report(&rt, "Asia/Shanghai", ReportBy::Nothing).await[0]);
}

#[tokio::test]
async fn figures_older_than_the_report_retention_are_purged_and_newer_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-10-01T00:00:00Z")));
    let store = Arc::new(FjallStore::open(dir.path()).unwrap());
    let rt = runtime(store.clone(), clock.clone());
    rt.put_definition(&disputes()).await.unwrap();
    play(&rt, &clock).await;
    // The script ends on November 5th: keeping ten days of figures keeps November's
    // dispute (started October 31st, 20:00 UTC) and drops every October 1-20 start.
    rt.set_retention(waystation_runtime::Retention {
        reports: TimeDelta::days(10),
        batch: 1, // 128 bucket values (a group's figures of 15 minutes) per batch
        ..waystation_runtime::Retention::default()
    });
    let purged = rt.purge_expired().await.unwrap();
    assert!(purged.report_cells > 64, "{purged:?}");
    assert_eq!(
        purged.instances, 0,
        "the instances themselves are kept 730 days"
    );
    let shanghai = report(&rt, "Asia/Shanghai", ReportBy::Nothing).await;
    assert_eq!((shanghai[0].started, shanghai[0].running), (0, 0));
    assert_eq!(stage(&shanghai[0], "triage").entered, 0);
    assert_eq!((shanghai[1].started, shanghai[1].running), (1, 1));
    assert_eq!(rt.purge_expired().await.unwrap().report_cells, 0);
}

/// The report folder thread folds what commands leave pending, with no report read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollups_of_a_busy_hour_are_folded_in_the_background_without_a_report_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FjallStore::open(dir.path()).unwrap());
    let clock = Arc::new(ManualClock::new(at("2026-10-01T09:00:00Z")));
    let rt = Runtime::new(store.clone(), Arc::new(NoPlugins), clock);
    rt.put_definition(&disputes()).await.unwrap();
    let starts = waystation_store::REPORT_FOLD_AT + 8;
    for i in 0..starts {
        rt.start("disputes", json!({"category": "delivery", "n": i}), None)
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.reports_pending() >= waystation_store::REPORT_FOLD_AT {
        assert!(
            std::time::Instant::now() < deadline,
            "{} records still pending after 30 s",
            store.reports_pending()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The stored bucket values count every start, read as they are (a report read would
    // fold what is pending first). What was folded is taken before the scan: the folder
    // goes on meanwhile, so the cells hold at least that.
    let folded = starts as i64 - store.reports_pending() as i64;
    let mut started = 0;
    let all = waystation_store::keys::prefix(&[
        waystation_store::keys::part::ROLLUP_BUCKET,
        b"disputes",
        b"",
    ]);
    let mut failed = None;
    store
        .backend()
        .scan(&all, None, &mut |_, v| {
            let read = waystation_store::ReportBucket::decode(v).and_then(|b| {
                b.figures().try_for_each(|f| {
                    let (figure, cell) = f?;
                    if figure == "started" {
                        started += cell.count();
                    }
                    Ok(())
                })
            });
            if let Err(e) = read {
                failed = Some(e.to_string());
            }
            true
        })
        .unwrap();
    assert_eq!(failed, None);
    assert!(
        started >= folded,
        "{started} starts in the cells, {folded} folded"
    );
    assert!(started >= waystation_store::REPORT_FOLD_AT as i64);
}
