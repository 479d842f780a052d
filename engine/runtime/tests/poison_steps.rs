//! Issue 12, item 2: a step that cannot run is recorded once. A timer whose firing fails in
//! the engine (here: the plugin host panics while the timeout's stage calls it) is retried
//! a bounded number of times with backoff - never at once again - and then fails its
//! instance with the reason in the history, while the other instances' timers fire.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use waystation_core::plugin::{PluginFailure, PluginRef, World};
use waystation_core::{HistoryEvent, ManualClock, PluginCatalog, PluginInvoker, Status};
use waystation_runtime::{Options, Runtime, RuntimeError, StepRetry};
use waystation_store::{InstanceQuery, MemoryStore};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A plugin host whose every call panics: the engine failing, not the workflow.
struct PanickingHost;

impl PluginInvoker for PanickingHost {
    fn invoke(&self, plugin: &PluginRef, _: World, _: &Value) -> Result<Value, PluginFailure> {
        panic!("the plugin host failed calling {plugin}")
    }
}

impl PluginCatalog for PanickingHost {
    fn world_of(&self, _: &PluginRef) -> Option<World> {
        Some(World::Scorer)
    }
}

fn poisoned() -> Value {
    json!({"id": "poisoned", "title": "Poisoned", "start": "wait", "stages": {
        "wait": {"kind": "wait", "owner": "agent", "deadline": "PT1M",
                 "on": {"go": {"to": "done"}}, "timeout": {"to": "score"}},
        "score": {"kind": "task", "owner": "agent",
                  "actions": [{"call": "risk", "result": "risk"}],
                  "transitions": [{"to": "done"}]},
        "done": {"kind": "end", "outcome": "scored"}}})
}

fn calm() -> Value {
    json!({"id": "calm", "title": "Calm", "start": "confirm", "stages": {
        "confirm": {"kind": "wait", "owner": "agent", "deadline": "PT1M",
                    "on": {"confirmed": {"to": "done"}}, "timeout": {"to": "escalated"}},
        "escalated": {"kind": "wait", "owner": "supervisor", "on": {"confirmed": {"to": "done"}}},
        "done": {"kind": "end", "outcome": "resolved"}}})
}

// Kept whole: one scenario told in order: each failed firing and its backoff, the give-up, the other instance unharmed.
#[tokio::test]
async fn a_timer_whose_firing_panics_is_retried_with_backoff_then_fails_its_instance_alone() {
    let clock = Arc::new(ManualClock::new(t0()));
    let retry = StepRetry {
        attempts: 3,
        first_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(15),
    };
    let rt = Runtime::with_options(
        Arc::new(MemoryStore::default()),
        Arc::new(PanickingHost),
        clock.clone(),
        Options {
            step_retry: retry,
            ..Options::default()
        },
    );
    rt.put_definition(&poisoned()).await.unwrap();
    rt.put_definition(&calm()).await.unwrap();
    let poisoned = rt
        .start("poisoned", json!({}), None)
        .await
        .unwrap()
        .instance
        .id;
    let calm = rt.start("calm", json!({}), None).await.unwrap().instance.id;

    clock.advance(TimeDelta::minutes(2));
    rt.fire_due_timers().await.unwrap();
    // The other instance's deadline fired in the same round.
    let other = rt.instance(&calm).unwrap();
    assert_eq!(other.stage, "escalated");
    // The poisoned one is untouched and its timer moved by the first backoff: firing
    // again now finds nothing due.
    let first = rt.instance(&poisoned).unwrap();
    assert_eq!(
        (first.status, first.stage.as_str()),
        (Status::Running, "wait")
    );
    assert_eq!(rt.fire_due_timers().await.unwrap(), 0);
    assert_eq!(
        rt.store().next_due().unwrap(),
        Some(clock_now(&clock) + TimeDelta::seconds(10))
    );

    // Second failure: 20 s would be the doubled backoff, capped at 15 s.
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(rt.fire_due_timers().await.unwrap(), 1);
    assert_eq!(
        rt.store().next_due().unwrap(),
        Some(clock_now(&clock) + TimeDelta::seconds(15))
    );
    // Third failure: the instance is given up on, with the reason.
    clock.advance(TimeDelta::seconds(15));
    assert_eq!(rt.fire_due_timers().await.unwrap(), 1);

    let failed = rt.instance(&poisoned).unwrap();
    assert_eq!(failed.status, Status::Failed);
    let reason = failed.failure.clone().unwrap();
    assert!(
        reason.contains("could not be fired")
            && reason.contains("the plugin host failed calling risk")
            && reason.contains("tried 3 times"),
        "{reason}"
    );
    let history = rt.history(&poisoned, 0, 100).unwrap();
    let failures: Vec<&String> = history
        .iter()
        .filter_map(|(_, h)| match &h.event {
            HistoryEvent::Failed { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(failures, [&reason], "recorded once");
    assert_eq!(
        rt.store().next_due().unwrap(),
        None,
        "no timer left to loop on"
    );
    assert_eq!(rt.metrics().step_failures.load(Ordering::Relaxed), 3);
    assert_eq!(rt.metrics().steps_abandoned.load(Ordering::Relaxed), 1);

    // The other instance still takes commands.
    let done = rt.event(&calm, "confirmed", json!({}), None).await.unwrap();
    assert_eq!(done.instance.status, Status::Completed);
}

#[tokio::test]
async fn a_start_whose_step_panics_is_an_engine_error_and_stores_nothing() {
    let clock = Arc::new(ManualClock::new(t0()));
    let rt = Runtime::new(
        Arc::new(MemoryStore::default()),
        Arc::new(PanickingHost),
        clock,
    );
    let eager = json!({"id": "eager", "title": "Eager", "start": "score", "stages": {
        "score": {"kind": "task", "owner": "agent",
                  "actions": [{"call": "risk", "result": "risk"}],
                  "transitions": [{"to": "done"}]},
        "done": {"kind": "end", "outcome": "scored"}}});
    rt.put_definition(&eager).await.unwrap();
    let err = rt.start("eager", json!({}), None).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Engine(m) if m.contains("panicked") && m.contains("the plugin host failed calling risk")),
        "{err:?}"
    );
    let stored = rt.query(&InstanceQuery::default()).unwrap();
    assert!(
        stored.items.is_empty(),
        "nothing was stored: {:?}",
        stored.items
    );
    assert_eq!(rt.metrics().panics.load(Ordering::Relaxed), 1);
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    waystation_core::Clock::now(clock)
}
