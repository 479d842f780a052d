//! The outbox dispatcher with channels in the test: retries with backoff, the dead letter,
//! an operator's retry, unconfigured channels, timeouts, per-channel concurrency. Time is
//! tokio's paused clock, so hours of backoff take no time.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use waystation_core::effect::DeliveryOutcome;
use waystation_core::sim::FakePlugins;
use waystation_core::{Clock, HistoryEvent, OutboundMessage};
use waystation_runtime::{
    Channel, Channels, Delivery, DeliveryError, Outbox, OutboxError, RetryPolicy, Runtime,
};
use waystation_store::{MemoryStore, OutboxRecord, OutboxStatus, Store};

/// The engine's time follows tokio's (paused) clock.
struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + TimeDelta::from_std(self.start.elapsed()).unwrap()
    }
}

const NOTICE: &str = r#"{"id": "notice", "title": "Send what the input says", "start": "send",
  "stages": {
    "send": {"kind": "task", "actions": [{"notify": "notifier", "input": "input"}],
             "transitions": [{"to": "done"}]},
    "done": {"kind": "end", "outcome": "sent"}}}"#;

async fn runtime() -> Arc<Runtime> {
    let plugins = FakePlugins::new().notifier("notifier", |input| {
        Ok(json!({"messages": input["messages"]}))
    });
    let clock = TokioClock {
        base: DateTime::parse_from_rfc3339("2024-05-06T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        start: tokio::time::Instant::now(),
    };
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let rt = Runtime::new(store, Arc::new(plugins), Arc::new(clock));
    rt.put_definition(&serde_json::from_str(NOTICE).unwrap())
        .await
        .unwrap();
    rt
}

/// Starts an instance that queues one message per `(channel, recipient)`.
async fn send(rt: &Runtime, messages: &[(&str, &str)]) -> String {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(c, r)| json!({"channel": c, "recipient": r, "subject": "Order 202405-001", "body": "delayed"}))
        .collect();
    rt.start("notice", json!({"messages": messages}), None)
        .await
        .unwrap()
        .instance
        .id
}

/// The ids of the messages `instance` queued, in order.
fn queued(rt: &Runtime, instance: &str) -> Vec<String> {
    rt.history(instance, 0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|(_, h)| match h.event {
            HistoryEvent::MessageQueued { message_id, .. } => Some(message_id),
            _ => None,
        })
        .collect()
}

/// A channel that fails its first `failures` attempts per message, counting every call.
#[derive(Default)]
struct Flaky {
    failures: u32,
    calls: Mutex<Vec<(String, u32)>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    /// How long each attempt takes.
    takes: Duration,
}

impl Channel for Flaky {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage, attempt: u32) -> Delivery<'a> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.takes).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.calls
                .lock()
                .unwrap()
                .push((message.id.clone(), attempt));
            if attempt <= self.failures {
                Err(DeliveryError::transient(format!(
                    "HTTP 503 on attempt {attempt}"
                )))
            } else {
                Ok(())
            }
        })
    }
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        first_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(600),
    }
}

/// Runs the dispatcher in the background; dropping the guard stops it.
struct Running(
    Option<tokio::sync::oneshot::Sender<()>>,
    tokio::task::JoinHandle<()>,
);

impl Running {
    async fn stop(mut self) {
        let _ = self.0.take().unwrap().send(());
        (&mut self.1).await.unwrap();
    }
}

fn dispatch(rt: &Arc<Runtime>, outbox: Outbox) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rt.clone().run_dispatcher(outbox, async {
        let _ = rx.await;
    }));
    Running(Some(tx), task)
}

/// Waits (in paused time) until `id` has `status`.
async fn until(rt: &Runtime, id: &str, status: OutboxStatus) -> OutboxRecord {
    for _ in 0..10_000 {
        if let Some(r) = rt.store().outbox_message(id).unwrap() {
            if r.status == status {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{id} never became {status:?}: {:?}",
        rt.store().outbox_message(id)
    );
}

/// An attempt in the history: number, outcome, error, when the next is due, when it ended.
type Attempt = (
    u32,
    DeliveryOutcome,
    Option<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The delivery attempts in `instance`'s history.
fn attempts(rt: &Runtime, instance: &str) -> Vec<Attempt> {
    rt.history(instance, 0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|(_, h)| match h.event {
            HistoryEvent::DeliveryAttempted {
                attempt,
                outcome,
                error,
                next_attempt_at,
                ..
            } => Some((attempt, outcome, error, next_attempt_at, h.at)),
            _ => None,
        })
        .collect()
}

fn one_channel(
    name: &str,
    channel: Arc<dyn Channel>,
    concurrency: usize,
    max_attempts: u32,
) -> Outbox {
    let mut channels = Channels::new();
    channels.add(name, channel, concurrency, Duration::from_secs(5));
    Outbox {
        channels,
        policy: policy(max_attempts),
    }
}

#[tokio::test(start_paused = true)]
async fn a_flaky_receiver_gets_one_call_per_attempt_with_growing_waits_until_it_accepts() {
    let rt = runtime().await;
    let flaky = Arc::new(Flaky {
        failures: 2,
        ..Flaky::default()
    });
    let running = dispatch(&rt, one_channel("webhook", flaky.clone(), 4, 5));
    let instance = send(&rt, &[("webhook", "ops")]).await;
    let id = queued(&rt, &instance).remove(0);
    let record = until(&rt, &id, OutboxStatus::Delivered).await;
    running.stop().await;

    assert_eq!(record.attempts, 3);
    assert_eq!(record.last_error, None);
    assert_eq!(
        *flaky.calls.lock().unwrap(),
        [(id.clone(), 1), (id.clone(), 2), (id.clone(), 3)],
        "one call per attempt, none after it was accepted"
    );
    let seen = attempts(&rt, &instance);
    let outcomes: Vec<_> = seen.iter().map(|a| (a.0, a.1)).collect();
    assert_eq!(
        outcomes,
        [
            (1, DeliveryOutcome::Retrying),
            (2, DeliveryOutcome::Retrying),
            (3, DeliveryOutcome::Delivered)
        ]
    );
    assert_eq!(seen[0].2.as_deref(), Some("HTTP 503 on attempt 1"));
    // Waits: 10 s doubled each time, half of it jittered.
    for (i, (low, high)) in [(5, 10), (10, 20)].into_iter().enumerate() {
        let wait = seen[i].3.unwrap() - seen[i].4;
        assert!(
            wait >= TimeDelta::seconds(low) && wait <= TimeDelta::seconds(high),
            "wait after attempt {}: {wait}",
            i + 1
        );
        assert!(
            seen[i + 1].4 >= seen[i].3.unwrap(),
            "not attempted before due"
        );
    }
    let state = rt.instance(&instance).unwrap();
    assert_eq!(
        rt.history(&instance, 0, 1000).unwrap().len() as u64,
        state.history_len,
        "history entries and the instance agree"
    );
    assert_eq!(rt.metrics().messages_delivered.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn used_up_attempts_make_a_dead_letter_that_an_operator_puts_back() {
    let rt = runtime().await;
    let always = Arc::new(Flaky {
        failures: u32::MAX,
        ..Flaky::default()
    });
    let running = dispatch(&rt, one_channel("webhook", always.clone(), 4, 3));
    let instance = send(&rt, &[("webhook", "ops")]).await;
    let id = queued(&rt, &instance).remove(0);
    let dead = until(&rt, &id, OutboxStatus::Dead).await;
    running.stop().await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 503 on attempt 3"));
    assert_eq!(
        always.calls.lock().unwrap().len(),
        3,
        "nothing after the last"
    );
    assert_eq!(
        attempts(&rt, &instance).last().map(|a| a.1),
        Some(DeliveryOutcome::Dead)
    );

    // Put back, it goes to a receiver that is fine now.
    let retried = rt
        .retry_message(&id, "ops-lead", Some("retry-1"))
        .await
        .unwrap();
    assert!(!retried.replayed);
    assert_eq!(retried.record.status, OutboxStatus::Pending);
    assert_eq!((retried.record.attempts, retried.record.retries), (0, 1));
    let again = rt
        .retry_message(&id, "ops-lead", Some("retry-1"))
        .await
        .unwrap();
    assert!(again.replayed, "the same key answers the same");
    assert_eq!(again.record, retried.record);
    assert!(matches!(
        rt.retry_message(&id, "ops-lead", None).await,
        Err(OutboxError::NotDead {
            status: OutboxStatus::Pending,
            ..
        })
    ));
    let fine = Arc::new(Flaky::default());
    let running = dispatch(&rt, one_channel("webhook", fine.clone(), 4, 3));
    let delivered = until(&rt, &id, OutboxStatus::Delivered).await;
    running.stop().await;
    assert_eq!((delivered.attempts, delivered.retries), (1, 1));
    assert!(rt.history(&instance, 0, 1000).unwrap().iter().any(
        |(_, h)| matches!(&h.event, HistoryEvent::DeliveryRetried { by, .. } if by == "ops-lead")
    ));
    let err = rt.retry_message(&id, "ops-lead", None).await.unwrap_err();
    assert!(err.to_string().contains("is delivered"), "{err}");
    assert!(matches!(
        rt.retry_message("nope.m1", "ops-lead", None).await,
        Err(OutboxError::NotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_message_for_an_unconfigured_channel_is_dead_at_once_with_the_reason() {
    let rt = runtime().await;
    let running = dispatch(&rt, one_channel("email", Arc::new(Flaky::default()), 4, 5));
    let instance = send(
        &rt,
        &[("sms", "+86 21 5555 0101"), ("email", "a@b.example")],
    )
    .await;
    let ids = queued(&rt, &instance);
    let dead = until(&rt, &ids[0], OutboxStatus::Dead).await;
    until(&rt, &ids[1], OutboxStatus::Delivered).await;
    running.stop().await;
    assert_eq!(dead.attempts, 1);
    let reason = dead.last_error.unwrap();
    assert!(
        reason.contains("channel 'sms' is not configured") && reason.contains("email"),
        "{reason}"
    );
    let seen = attempts(&rt, &instance);
    assert!(seen
        .iter()
        .any(|a| a.1 == DeliveryOutcome::Dead && a.2.as_deref() == Some(reason.as_str())));
}

/// Never answers.
struct Silent;

impl Channel for Silent {
    fn deliver<'a>(&'a self, _: &'a OutboundMessage, _: u32) -> Delivery<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_without_an_answer_times_out_and_is_retried() {
    let rt = runtime().await;
    let running = dispatch(&rt, one_channel("webhook", Arc::new(Silent), 4, 2));
    let instance = send(&rt, &[("webhook", "ops")]).await;
    let ids = queued(&rt, &instance);
    let dead = until(&rt, &ids[0], OutboxStatus::Dead).await;
    running.stop().await;
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.last_error.as_deref(), Some("no answer within 5000 ms"));
    let seen = attempts(&rt, &instance);
    assert_eq!(seen[0].1, DeliveryOutcome::Retrying);
}

#[tokio::test(start_paused = true)]
async fn each_channel_has_its_own_concurrency() {
    let rt = runtime().await;
    let slow = Arc::new(Flaky {
        takes: Duration::from_secs(1),
        ..Flaky::default()
    });
    let fast = Arc::new(Flaky::default());
    let mut channels = Channels::new();
    channels
        .add("webhook", slow.clone(), 2, Duration::from_secs(5))
        .add("email", fast.clone(), 1, Duration::from_secs(5));
    let running = dispatch(
        &rt,
        Outbox {
            channels,
            policy: policy(3),
        },
    );
    let mut batch: Vec<(&str, &str)> = vec![("webhook", "ops"); 8];
    batch.push(("email", "a@b.example"));
    let instance = send(&rt, &batch).await;
    let ids = queued(&rt, &instance);
    let started = tokio::time::Instant::now();
    until(&rt, &ids[8], OutboxStatus::Delivered).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the email did not wait for the webhooks"
    );
    for id in &ids[..8] {
        until(&rt, id, OutboxStatus::Delivered).await;
    }
    running.stop().await;
    assert_eq!(slow.most_running.load(Ordering::SeqCst), 2);
    assert_eq!(slow.calls.lock().unwrap().len(), 8);
    assert_eq!(fast.calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn pending_messages_are_delivered_after_the_dispatcher_restarts() {
    let rt = runtime().await;
    // Queued while no dispatcher runs (as after a crash).
    let instance = send(&rt, &[("log", "dev"), ("log", "dev")]).await;
    let ids = queued(&rt, &instance);
    let counted = Arc::new(Flaky::default());
    let running = dispatch(&rt, one_channel("log", counted.clone(), 1, 3));
    until(&rt, &ids[1], OutboxStatus::Delivered).await;
    until(&rt, &ids[0], OutboxStatus::Delivered).await;
    running.stop().await;
    assert_eq!(counted.calls.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_backlog_larger_than_the_ready_queues_is_delivered_once_each() {
    let rt = runtime().await;
    // 150 webhooks and 100 emails at concurrency 1 (ready queues of 64), then one for a
    // channel nobody configured: every refill must find the rest, and nothing twice.
    let mut batch: Vec<(&str, &str)> = vec![("webhook", "ops"); 150];
    batch.extend(vec![("email", "a@b.example"); 100]);
    batch.push(("sms", "+1 555 0100"));
    let webhook = Arc::new(Flaky::default());
    let email = Arc::new(Flaky {
        failures: 1,
        ..Flaky::default()
    });
    let instance = send(&rt, &batch).await;
    let ids = queued(&rt, &instance);
    let mut channels = Channels::new();
    channels
        .add("webhook", webhook.clone(), 1, Duration::from_secs(5))
        .add("email", email.clone(), 1, Duration::from_secs(5));
    let running = dispatch(
        &rt,
        Outbox {
            channels,
            policy: policy(3),
        },
    );
    for id in &ids[..250] {
        until(&rt, id, OutboxStatus::Delivered).await;
    }
    until(&rt, &ids[250], OutboxStatus::Dead).await;
    running.stop().await;
    let mut calls: Vec<(String, u32)> = webhook.calls.lock().unwrap().clone();
    calls.sort();
    calls.dedup();
    assert_eq!(calls.len(), 150, "each webhook once");
    assert_eq!(webhook.calls.lock().unwrap().len(), 150);
    assert_eq!(email.calls.lock().unwrap().len(), 200, "each email twice");
}
