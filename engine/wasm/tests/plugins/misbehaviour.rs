//! Each misbehaving plugin gets its typed error within its budget, and the host keeps
//! serving the well-behaved one afterwards.

use crate::support::{self, bodies, by_name};
use serde_json::json;
use std::time::{Duration, Instant};
use waystation_core::{PluginRef, World};
use waystation_wasm::{CallError, CallReport, Limits, PluginHost};

/// Generous: budgets are ~100 ms, but debug builds on a loaded 2-core machine are slow.
const PATIENCE: Duration = Duration::from_secs(3);

fn host_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PluginHost) {
    let (dir, host) = support::host();
    host.add("good", &support::scorer()).unwrap();
    host.add(name, bytes).unwrap();
    (dir, host)
}

fn call(host: &PluginHost, name: &str) -> CallReport {
    host.invoke_with_logs(&by_name(name), World::Scorer, &json!({"order": 1}))
}

fn still_serving(host: &PluginHost) {
    let report = call(host, "good");
    assert!(
        report.result.is_ok(),
        "good plugin failed: {:?}",
        report.result
    );
}

#[test]
fn an_infinite_loop_is_stopped_by_the_time_budget_and_the_host_keeps_serving() {
    let (_dir, host) = host_with("spinner", &support::scorer_doing(bodies::INFINITE_LOOP));
    let started = Instant::now();
    let report = call(&host, "spinner");
    assert_eq!(report.result, Err(CallError::Timeout { budget_ms: 100 }));
    assert!(started.elapsed() < PATIENCE, "took {:?}", started.elapsed());
    assert!(report.duration >= Duration::from_millis(100));
    assert!(report.epoch_ticks > 0);
    still_serving(&host);
}

#[test]
fn a_per_plugin_time_budget_is_honoured() {
    let (_dir, host) = host_with("spinner", &support::scorer_doing(bodies::INFINITE_LOOP));
    let tight = Limits {
        time_budget_ms: 20,
        ..Limits::default()
    };
    host.set_limits("spinner", Some(tight)).unwrap();
    let report = call(&host, "spinner");
    assert_eq!(report.result, Err(CallError::Timeout { budget_ms: 20 }));
    assert_eq!(report.limits, tight);
    still_serving(&host);
}

#[test]
fn a_memory_bomb_is_stopped_at_the_memory_cap_and_the_host_keeps_serving() {
    let (_dir, host) = host_with("bomb", &support::scorer_doing(bodies::MEMORY_BOMB));
    let started = Instant::now();
    let report = call(&host, "bomb");
    match report.result {
        Err(CallError::OutOfMemory { desired, cap }) => {
            assert_eq!(cap, 64 << 20);
            assert!(desired > cap);
        }
        other => panic!("expected out of memory, got {other:?}"),
    }
    assert!(started.elapsed() < PATIENCE);
    still_serving(&host);
}

#[test]
fn a_smaller_per_plugin_memory_cap_is_honoured() {
    let (_dir, host) = host_with("bomb", &support::scorer_doing(bodies::MEMORY_BOMB));
    let small = Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    host.set_limits("bomb", Some(small)).unwrap();
    let report = call(&host, "bomb");
    assert!(
        matches!(report.result, Err(CallError::OutOfMemory { cap, .. }) if cap == 4 << 20),
        "{:?}",
        report.result
    );
    still_serving(&host);
}

#[test]
fn a_trap_is_reported_with_the_guests_message_and_its_logs_are_kept() {
    let (_dir, host) = host_with("crasher", &support::scorer_doing(bodies::TRAP));
    let report = call(&host, "crasher");
    match &report.result {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].message, "about to fail");
    still_serving(&host);
}

#[test]
fn an_oversized_output_is_refused_as_bad_output() {
    let (_dir, host) = host_with("chatty", &support::scorer_doing(bodies::BIG_REASON));
    let report = call(&host, "chatty");
    match &report.result {
        Err(CallError::BadOutput { reason }) => assert!(reason.contains("cap"), "{reason}"),
        other => panic!("expected bad output, got {other:?}"),
    }
    still_serving(&host);
}

#[test]
fn a_million_aliased_reasons_are_refused_before_the_host_allocates_them() {
    let (_dir, host) = host_with("amplifier", &support::scorer_doing(bodies::MILLION_REASONS));
    let started = Instant::now();
    let report = call(&host, "amplifier");
    // wasmtime's hostcall fuel stops the lift; its error type is private, so the host
    // recognises it by its text ("fuel allocated for hostcalls"). This pins that text: were
    // wasmtime to reword it, the failure would come back as a trap and this would fail.
    match &report.result {
        Err(CallError::BadOutput { reason }) => assert_eq!(
            reason,
            "the plugin handed the host more data in one go than its output cap allows"
        ),
        other => panic!("expected bad output, got {other:?}"),
    }
    assert!(started.elapsed() < PATIENCE);
    still_serving(&host);
}

#[test]
fn a_plugin_sleeping_through_wasi_is_cut_short_at_its_deadline() {
    let (_dir, host) = host_with("sleeper", &support::sleeper());
    let started = Instant::now();
    let report = call(&host, "sleeper");
    assert_eq!(report.result, Err(CallError::Timeout { budget_ms: 100 }));
    assert!(started.elapsed() < PATIENCE, "took {:?}", started.elapsed());
    still_serving(&host);
}

#[test]
fn every_misbehaviour_in_turn_leaves_the_host_serving() {
    let (_dir, host) = support::host();
    host.add("good", &support::scorer()).unwrap();
    let cases = [
        ("spinner", support::scorer_doing(bodies::INFINITE_LOOP)),
        ("bomb", support::scorer_doing(bodies::MEMORY_BOMB)),
        ("crasher", support::scorer_doing(bodies::TRAP)),
        ("chatty", support::scorer_doing(bodies::BIG_REASON)),
        ("sleeper", support::sleeper()),
    ];
    for (name, bytes) in &cases {
        host.add(name, bytes).unwrap();
    }
    for _round in 0..3 {
        for (name, _) in &cases {
            let report = call(&host, name);
            assert!(report.result.is_err(), "{name} should fail");
            still_serving(&host);
        }
    }
    // Refused uploads do not disturb it either.
    host.add("junk", b"").unwrap_err();
    host.add("junk", &support::wrong_world()).unwrap_err();
    still_serving(&host);
    let _ = PluginRef::parse("good").unwrap();
}
