//! One host, several threads: calls run side by side and failures stay their own.

use crate::support::{self, bodies, by_name};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waystation_core::{FailureKind, PluginInvoker, World};
use waystation_wasm::{HostConfig, PluginHost, Sandbox};

#[test]
fn calls_from_several_threads_at_once_all_get_their_own_answers() {
    let (_dir, host) = support::host();
    host.add("good", &support::scorer()).unwrap();
    host.add("crasher", &support::scorer_doing(bodies::TRAP))
        .unwrap();
    host.add("notifier", &support::notifier()).unwrap();
    let host = Arc::new(host);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let host = host.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let input = json!({"thread": t, "call": i});
                    let score = host
                        .invoke(&by_name("good"), World::Scorer, &input)
                        .unwrap();
                    assert_eq!(score["score"], input.to_string().len() as f64);
                    let crash = host
                        .invoke(&by_name("crasher"), World::Scorer, &input)
                        .unwrap_err();
                    assert_eq!(crash.kind, FailureKind::Trap);
                    let note = host
                        .invoke(&by_name("notifier"), World::Notifier, &input)
                        .unwrap();
                    assert_eq!(note["messages"][0]["body"], input.to_string());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_plugin_spinning_on_one_thread_does_not_hold_up_calls_on_another() {
    let (_dir, host) = support::host();
    host.add("good", &support::scorer()).unwrap();
    host.add("spinner", &support::scorer_doing(bodies::INFINITE_LOOP))
        .unwrap();
    let host = Arc::new(host);
    let spinning = {
        let host = host.clone();
        std::thread::spawn(move || {
            host.invoke(&by_name("spinner"), World::Scorer, &json!({}))
                .unwrap_err()
                .kind
        })
    };
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(50) {
        host.invoke(&by_name("good"), World::Scorer, &json!({}))
            .unwrap();
        calls += 1;
    }
    assert!(
        calls > 5,
        "only {calls} calls in 50 ms beside a spinning plugin"
    );
    assert_eq!(spinning.join().unwrap(), FailureKind::Timeout);
}

/// Calls beyond the cores wait for a running slot, and a call's time budget starts when it
/// gets one: a busy host cannot turn a plugin that fits its budget into a timeout (issue 12:
/// 991 of 1,000 concurrent calls of a 51 ms plugin timed out against a 100 ms budget when
/// every call's clock ran while it waited for a core).
#[test]
fn a_call_waiting_for_a_running_slot_spends_none_of_its_time_budget_waiting() {
    let sandbox = Sandbox::new(HostConfig {
        max_concurrent_calls: 8,
        max_running_calls: 1,
        ..HostConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::open(dir.path().join("plugins"), sandbox).unwrap();
    host.add("good", &support::scorer()).unwrap();
    host.add("spinner", &support::scorer_doing(bodies::INFINITE_LOOP))
        .unwrap();
    let host = Arc::new(host);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spinning = {
        let host = host.clone();
        let done = done_tx.clone();
        std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            let kind = host
                .invoke(&by_name("spinner"), World::Scorer, &json!({}))
                .unwrap_err()
                .kind;
            done.send("spinner").unwrap();
            kind
        })
    };
    started_rx.recv().unwrap();
    // The good call asks only once the spinner holds the one running slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.sandbox().free_running_slots() > 0 {
        assert!(Instant::now() < deadline, "the spinner never got a slot");
        std::thread::sleep(Duration::from_millis(1));
    }
    let good = {
        let host = host.clone();
        std::thread::spawn(move || {
            let score = host.invoke(&by_name("good"), World::Scorer, &json!({"a": 1}));
            done_tx.send("good").unwrap();
            score
        })
    };
    // The good call takes well under a millisecond once it runs; while the spinner holds
    // the only slot (until its 100 ms budget ends) it must not have run.
    std::thread::sleep(Duration::from_millis(10));
    let early: Vec<&str> = done_rx.try_iter().collect();
    let spinner_kind = spinning.join().unwrap();
    assert!(
        early.is_empty(),
        "with one running slot nothing finished beside the spinner: {early:?}"
    );
    assert_eq!(spinner_kind, FailureKind::Timeout);
    let score = good
        .join()
        .unwrap()
        .expect("the waiting call kept its whole budget");
    assert_eq!(score["score"], json!({"a": 1}).to_string().len() as f64);
}
