//! One host, several threads: calls run side by side and failures stay their own.

use crate::support::{self, bodies, by_name};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waystation_core::{FailureKind, PluginInvoker, World};

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
