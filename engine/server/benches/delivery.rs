#![allow(missing_docs)]
//! Issue 6: outbox messages delivered per second to a local webhook receiver.
//!
//! A backlog of `WAYSTATION_BENCH_MESSAGES` messages (default 10,000; 10 per instance) is
//! queued through the real `Runtime` on the real sled store, then the dispatcher delivers
//! it through the real `webhook` channel (HMAC-signed POSTs over pooled HTTP/1.1
//! connections) to an axum receiver on loopback in the same process, which checks every
//! signature. Each delivery is recorded as the server records it: the message's new status
//! and its history entry in one batch under the instance's lock, then a group flush.
//! Nothing is relaxed for the benchmark.
//!
//! `WAYSTATION_BENCH_CONCURRENCY` (a list, default `1,8,32,128`) is the channel's
//! concurrency; each value runs on a fresh sled store. The receiver and the engine share
//! the machine's cores (a 2-worker tokio runtime), so the figures are a floor for a remote
//! receiver.
//!
//! Run: `cargo bench -p waystation-server --bench delivery`

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waystation_core::sim::FakePlugins;
use waystation_runtime::{Runtime, SystemClock};
use waystation_server::delivery::{self, webhook, ChannelConfig, OutboxConfig, WebhookConfig};
use waystation_store::{OutboxStatus, SledStore, Store};

const SECRET: &str = "bench-secret";
const PER_INSTANCE: usize = 10;

const NOTICE: &str = r#"{"id": "notice", "title": "Send what the input says", "start": "send",
  "stages": {
    "send": {"kind": "task", "actions": [{"notify": "notifier", "input": "input"}],
             "transitions": [{"to": "done"}]},
    "done": {"kind": "end", "outcome": "sent"}}}"#;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The receiver: checks the signature, counts, answers 204.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let count = count.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                match webhook::verify(
                    SECRET.as_bytes(),
                    &h(webhook::TIMESTAMP),
                    &h(webhook::SIGNATURE),
                    &body,
                    now,
                    Duration::from_secs(300),
                ) {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        StatusCode::NO_CONTENT
                    }
                    Err(_) => StatusCode::UNAUTHORIZED,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, accepted)
}

async fn run(messages: usize, concurrency: usize, url: &str, accepted: &AtomicU64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let plugins = FakePlugins::new().notifier("notifier", |input| {
        Ok(json!({"messages": input["messages"]}))
    });
    let rt = Runtime::new(store, Arc::new(plugins), Arc::new(SystemClock));
    rt.put_definition(&serde_json::from_str(NOTICE).unwrap())
        .await
        .unwrap();

    // The backlog, queued 64 instances at a time.
    let batch: Vec<Value> = (0..PER_INSTANCE)
        .map(|i| {
            json!({"channel": "webhook", "recipient": format!("ops-{i}"),
            "subject": "Order 202405-001 is delayed",
            "body": "Dear customer, order 202405-001 will arrive about 3 days late."})
        })
        .collect();
    let instances = messages.div_ceil(PER_INSTANCE);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..instances {
        if set.len() >= 64 {
            set.join_next().await.unwrap().unwrap();
        }
        let rt = rt.clone();
        let input = json!({"n": i, "messages": batch});
        set.spawn(async move { rt.start("notice", input, None).await.unwrap() });
    }
    while set.join_next().await.is_some() {}
    let total = (instances * PER_INSTANCE) as u64;

    let mut config = OutboxConfig::default();
    config.channels.insert(
        "webhook".into(),
        ChannelConfig::Webhook(WebhookConfig {
            url: url.to_owned(),
            secret: Some(SECRET.into()),
            secret_env: None,
            timeout_ms: 10_000,
            concurrency,
        }),
    );
    let outbox = delivery::build(&config, &|_| None).unwrap();
    let before = accepted.load(Ordering::Relaxed);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let dispatcher = tokio::spawn(rt.clone().run_dispatcher(outbox, async {
        let _ = stopped.await;
    }));
    while rt.metrics().messages_delivered.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "delivery stalled"
        );
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    dispatcher.await.unwrap();
    let received = accepted.load(Ordering::Relaxed) - before;
    let pending = rt
        .store()
        .outbox(OutboxStatus::Pending, None, 10)
        .unwrap()
        .items
        .len();
    assert_eq!(pending, 0);
    let failures = rt.metrics().delivery_failures.load(Ordering::Relaxed);
    println!(
        "concurrency {concurrency:>4}: {total} messages in {:>7.1} ms = {:>7.0} delivered/s \
         (receiver accepted {received}, failed attempts {failures})",
        elapsed.as_secs_f64() * 1000.0,
        total as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    let messages = env_list("WAYSTATION_BENCH_MESSAGES", "10000")
        .first()
        .copied()
        .unwrap_or(10_000);
    let levels = env_list("WAYSTATION_BENCH_CONCURRENCY", "1,8,32,128");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let (url, accepted) = receiver().await;
        println!(
            "outbox delivery to a local webhook receiver: {messages} messages, sled store, \
             {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        for concurrency in levels {
            run(messages, concurrency, &url, &accepted).await;
        }
    });
}
