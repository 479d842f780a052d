//! Kill -9 at random moments: a real process on the default store (fjall) takes concurrent commands
//! and is killed mid-flight, ten times. After every restart: every acknowledged command is
//! there exactly once, nothing unacknowledged is half-visible, and in the end every armed
//! timer has fired exactly once.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use waystation_tests::server::{Client, Server};

const TIMED: &str = r#"{"id": "crash-timers", "title": "Expires after a second", "start": "waiting",
  "stages": {
    "waiting": {"kind": "wait", "owner": "agent", "deadline": "PT1S",
                "on": {"done": {"to": "finished"}}, "timeout": {"to": "expired"}},
    "expired": {"kind": "end", "outcome": "expired"},
    "finished": {"kind": "end", "outcome": "resolved"}}}"#;

/// What the server acknowledged with a 2xx.
#[derive(Debug, Clone)]
enum Ack {
    Started {
        id: String,
    },
    Decided {
        id: String,
        task: String,
        key: String,
        answer: Value,
    },
    Timed {
        id: String,
    },
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn load(
    ops: Client,
    reviewer: Client,
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
    worker: u64,
    round: u64,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tag = format!("r{round}-w{worker}-n{n}");
        if n.is_multiple_of(3) {
            let (s, v) = ops.post_once(
                "/v1/workflows/crash-timers/instances",
                &json!({"input": {}}),
                &format!("timer-{tag}"),
            );
            match s {
                201 => acks.lock().unwrap().push(Ack::Timed {
                    id: v["id"].as_str().unwrap().to_owned(),
                }),
                0 => return,
                _ => {}
            }
            continue;
        }
        let amount = if n.is_multiple_of(2) { 5_000 } else { 50_000 };
        let (s, v) = ops.post_once(
            "/v1/workflows/approval-flow/instances",
            &json!({"input": {"request_id": tag, "amount": amount}}),
            &format!("start-{tag}"),
        );
        if s == 0 {
            return;
        }
        if s != 201 {
            continue;
        }
        let id = v["id"].as_str().unwrap().to_owned();
        acks.lock().unwrap().push(Ack::Started { id: id.clone() });
        let (s, inst) = ops.get(&format!("/v1/instances/{id}"));
        if s != 200 {
            return;
        }
        let task = inst["approvals"][0]["id"].as_str().unwrap().to_owned();
        let key = format!("decide-{tag}");
        let (s, answer) = reviewer.post_once(
            &format!("/v1/approvals/{task}"),
            &json!({"decision": "approve"}),
            &key,
        );
        match s {
            200 => acks.lock().unwrap().push(Ack::Decided {
                id,
                task,
                key,
                answer,
            }),
            0 => return,
            _ => {}
        }
    }
}

fn all_instances(ops: &Client, workflow: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = ops.get(&format!(
            "/v1/instances?workflow={workflow}&limit=1000{cursor}"
        ));
        assert_eq!(s, 200, "{page}");
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

fn history(ops: &Client, id: &str) -> Vec<Value> {
    let (s, h) = ops.get(&format!("/v1/instances/{id}/history?limit=1000"));
    assert_eq!(s, 200, "{h}");
    h["items"].as_array().unwrap().clone()
}

/// Nothing half-applied: the history is contiguous and the state is where it says.
fn check_consistent(ops: &Client, listed: &Value) {
    let id = listed["id"].as_str().unwrap();
    // A stable snapshot: the history did not move while the state was read (timers fire
    // in the background).
    let (h, instance) = loop {
        let before = history(ops, id);
        let (_, instance) = ops.get(&format!("/v1/instances/{id}"));
        let after = history(ops, id);
        if before.len() == after.len() {
            break (after, instance);
        }
    };
    for (i, entry) in h.iter().enumerate() {
        assert_eq!(
            entry["seq"].as_u64(),
            Some(i as u64),
            "{id}: history has a gap"
        );
    }
    let last_entered = h
        .iter()
        .rev()
        .find(|e| e["type"] == "entered")
        .map(|e| e["stage"].clone());
    assert_eq!(
        last_entered.as_ref(),
        Some(&instance["stage"]),
        "{id}: state and history disagree"
    );
    let mut decided: HashMap<String, u32> = HashMap::new();
    for e in h.iter().filter(|e| e["type"] == "decided") {
        *decided
            .entry(e["task_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(
        decided.values().all(|n| *n == 1),
        "{id}: a decision applied twice: {decided:?}"
    );
}

// Kept whole: one scenario told in order: rounds of commands and kill -9, each round's acknowledgements checked, then the timers.
#[test]
fn acknowledged_commands_survive_kill_9_exactly_once_and_timers_fire_once() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut server = Server::start();
    let admin = server.admin();
    admin.upload_workflow("approval-flow");
    assert_eq!(
        admin
            .put(
                "/v1/workflows/crash-timers",
                &serde_json::from_str(TIMED).unwrap()
            )
            .0,
        201
    );
    let ops = server.token("ops", &["operator"]);
    let reviewer = server.token("rui", &["approver:reviewer"]);
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut verified = 0;
    // Instance id -> the updated_at it had when last checked for consistency.
    let mut checked: HashMap<String, Value> = HashMap::new();

    for round in 0..10 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (ops, reviewer, acks, stop) =
                    (ops.clone(), reviewer.clone(), acks.clone(), stop.clone());
                std::thread::spawn(move || load(ops, reviewer, acks, stop, w, round))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.between(150, 700)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        server.restart();

        let acked = acks.lock().unwrap().clone();
        // Everything acknowledged in any round is still listed...
        let listed: HashMap<String, Value> = all_instances(&ops, "approval-flow")
            .into_iter()
            .chain(all_instances(&ops, "crash-timers"))
            .map(|i| (i["id"].as_str().unwrap().to_owned(), i))
            .collect();
        for ack in &acked {
            let (Ack::Started { id } | Ack::Timed { id } | Ack::Decided { id, .. }) = ack;
            assert!(
                listed.contains_key(id),
                "round {round}: acknowledged {id} lost"
            );
        }
        // ...and what this round acknowledged is there exactly once, in full.
        for ack in &acked[verified..] {
            match ack {
                Ack::Started { id } | Ack::Timed { id } => {
                    assert_eq!(
                        ops.get(&format!("/v1/instances/{id}")).0,
                        200,
                        "round {round}: acknowledged start of {id} lost"
                    );
                }
                Ack::Decided {
                    id,
                    task,
                    key,
                    answer,
                } => {
                    let h = history(&ops, id);
                    let n = h
                        .iter()
                        .filter(|e| e["type"] == "decided" && e["task_id"] == task.as_str())
                        .count();
                    assert_eq!(
                        n, 1,
                        "round {round}: acknowledged decision on {task} applied {n} times"
                    );
                    // Retrying with the same key replays the first answer.
                    let (s, replay) = reviewer.post_once(
                        &format!("/v1/approvals/{task}"),
                        &json!({"decision": "approve"}),
                        key,
                    );
                    assert_eq!(
                        (s, &replay),
                        (200, answer),
                        "round {round}: replay of {key}"
                    );
                }
            }
        }
        verified = acked.len();
        // Nothing half-visible: every instance that changed since the last check, acknowledged
        // or not, is internally consistent.
        for (id, instance) in &listed {
            if checked.get(id) != Some(&instance["updated_at"]) {
                check_consistent(&ops, instance);
                checked.insert(id.clone(), instance["updated_at"].clone());
            }
        }
        eprintln!(
            "round {round}: {} acknowledged so far, all there",
            acked.len()
        );
    }
    assert!(
        acks.lock().unwrap().len() >= 50,
        "the load was too light to prove anything"
    );

    // Every armed timer fires exactly once, including those armed before a kill.
    let timed = all_instances(&ops, "crash-timers");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting = all_instances(&ops, "crash-timers")
            .iter()
            .filter(|i| i["status"] == "running")
            .count();
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{waiting} timers never fired");
        std::thread::sleep(Duration::from_millis(100));
    }
    for instance in &timed {
        let id = instance["id"].as_str().unwrap();
        let h = history(&ops, id);
        let breaches = h
            .iter()
            .filter(|e| e["type"] == "sla_changed" && e["sla"] == "breached")
            .count();
        let timeouts = h
            .iter()
            .filter(|e| e["type"] == "transitioned" && e["cause"] == "timeout")
            .count();
        assert_eq!(
            (breaches, timeouts),
            (1, 1),
            "{id}: the deadline fired {breaches} times"
        );
        assert_eq!(
            ops.get(&format!("/v1/instances/{id}")).1["outcome"],
            "expired"
        );
    }
    let timed_acks = acks
        .lock()
        .unwrap()
        .iter()
        .filter(|a| matches!(a, Ack::Timed { .. }))
        .count();
    assert!(timed.len() >= timed_acks);
}
