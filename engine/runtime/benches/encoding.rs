#![allow(missing_docs)]
//! Issue 13: the encoding of what a command writes, measured against JSON.
//!
//! A command writes the instance state (one value) and its history entries (one value).
//! Both are JSON today. This measures, on the states and histories of a real
//! `approval-flow` lifecycle (start, review approval, manager approval of 50,000), the time
//! to encode and decode them and their size in JSON (`serde_json`, what the store writes)
//! and in MessagePack (`rmp-serde` with field names, the binary format that can carry the
//! `serde_json::Value` of inputs and variables: bincode and postcard cannot decode
//! `deserialize_any`). `WAYSTATION_BENCH_ROUNDS` (default 20,000) rounds of each.
//!
//! Run: `cargo bench -p waystation-runtime --bench encoding`

mod common;

use chrono::Utc;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use std::time::Instant;
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::{Decider, HistoryEntry, Input, InstanceState, Workflow};
use waystation_runtime::NoPlugins;

fn decide(wf: &Workflow, state: InstanceState, role: &str) -> waystation_core::Step {
    let task = state
        .approval
        .as_ref()
        .and_then(|a| a.open.first())
        .map(|t| t.id.clone())
        .expect("an open task");
    let input = Input::Decision {
        task_id: task,
        decider: Decider {
            id: format!("{role}-1"),
            roles: vec![role.into()],
        },
        approve: true,
        comment: Some("ok".into()),
    };
    apply_until_quiet(wf, state, input, Utc::now(), &NoPlugins).unwrap()
}

/// Each state of one lifecycle and the history entries each command added.
fn samples() -> (Vec<InstanceState>, Vec<Vec<HistoryEntry>>) {
    let mut wf = Workflow::from_value(&common::workflow_json("approval-flow"), None).unwrap();
    wf.version = 1;
    let input = json!({"request_id": "R-2024-0001", "amount": 50_000,
                       "requester": "li.wei", "reason": "New servo motors for line 3"});
    let started = start_until_quiet(
        &wf,
        "0190b3c4d5e6-0000abcd".into(),
        input,
        Utc::now(),
        &NoPlugins,
    )
    .unwrap();
    let reviewed = decide(&wf, started.state.clone(), "reviewer");
    let approved = decide(&wf, reviewed.state.clone(), "manager");
    let history = |s: &waystation_core::Step| {
        waystation_core::effect::history_of(&s.effects)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    (
        vec![
            started.state.clone(),
            reviewed.state.clone(),
            approved.state.clone(),
        ],
        vec![history(&started), history(&reviewed), history(&approved)],
    )
}

struct Row {
    what: &'static str,
    format: &'static str,
    bytes: usize,
    encode_ns: f64,
    decode_ns: f64,
}

fn measure<T: Serialize + DeserializeOwned>(
    what: &'static str,
    values: &[T],
    rounds: usize,
) -> [Row; 2] {
    let json_bytes: Vec<Vec<u8>> = values
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let msgpack_bytes: Vec<Vec<u8>> = values
        .iter()
        .map(|v| rmp_serde::to_vec_named(v).unwrap())
        .collect();
    for b in &msgpack_bytes {
        let _: T = rmp_serde::from_slice(b).expect("MessagePack round-trips the record");
    }
    let per = |f: &mut dyn FnMut()| {
        let began = Instant::now();
        for _ in 0..rounds {
            f();
        }
        began.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64
    };
    let json_encode = per(&mut || {
        for v in values {
            std::hint::black_box(serde_json::to_vec(v).unwrap());
        }
    });
    let json_decode = per(&mut || {
        for b in &json_bytes {
            std::hint::black_box(serde_json::from_slice::<T>(b).unwrap());
        }
    });
    let msgpack_encode = per(&mut || {
        for v in values {
            std::hint::black_box(rmp_serde::to_vec_named(v).unwrap());
        }
    });
    let msgpack_decode = per(&mut || {
        for b in &msgpack_bytes {
            std::hint::black_box(rmp_serde::from_slice::<T>(b).unwrap());
        }
    });
    let mean = |all: &[Vec<u8>]| all.iter().map(Vec::len).sum::<usize>() / all.len();
    [
        Row {
            what,
            format: "JSON (serde_json)",
            bytes: mean(&json_bytes),
            encode_ns: json_encode,
            decode_ns: json_decode,
        },
        Row {
            what,
            format: "MessagePack (rmp-serde, named)",
            bytes: mean(&msgpack_bytes),
            encode_ns: msgpack_encode,
            decode_ns: msgpack_decode,
        },
    ]
}

fn main() {
    println!("{}", common::machine());
    let rounds = common::env_usize("WAYSTATION_BENCH_ROUNDS", 20_000);
    let (states, histories) = samples();
    println!("\n| record | format | mean bytes | encode | decode |");
    println!("| --- | --- | --- | --- | --- |");
    let rows = measure("instance state", &states, rounds)
        .into_iter()
        .chain(measure("one command's history entries", &histories, rounds));
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} µs | {:.2} µs |",
            r.what,
            r.format,
            r.bytes,
            r.encode_ns / 1000.0,
            r.decode_ns / 1000.0
        );
    }
    println!("\nload average after the run: {}", common::loadavg());
}
