//! Several nodes, one truth (issue 17): three real `waystation serve` processes on one
//! PostgreSQL schema take starts, decisions and timed work spread over all of them; one is
//! killed with SIGKILL mid-run and later restarted. Afterwards every acknowledged command is
//! there exactly once, every timer fired exactly once, every message reached the receiver
//! under its stable id, and the killed node's timers and messages were taken over within
//! 5 s. Needs the PostgreSQL that `.ci/run` starts (`WAYSTATION_TEST_PG_URL`).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waystation_tests::http::{read_request, Request};
use waystation_tests::pg::{pg_url, Schema};
use waystation_tests::server::{Client, Server};

/// A timed task handed to the duty officer: the assignment is a message on the
/// `assignment` channel (a webhook here), the deadline a timer one second out.
const DUTY: &str = r#"{"id": "duty-check", "title": "Checked within a second", "start": "waiting",
  "stages": {
    "waiting": {"kind": "wait", "owner": "agent", "deadline": "PT1S",
                "actions": [{"assign": "'duty-officer'"}],
                "on": {"done": {"to": "finished"}}, "timeout": {"to": "expired"}},
    "expired": {"kind": "end", "outcome": "expired"},
    "finished": {"kind": "end", "outcome": "resolved"}}}"#;

/// A webhook receiver that accepts everything and notes each message id with when it came.
struct Receiver {
    url: String,
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/duty", listener.local_addr().unwrap());
        let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let a = arrivals.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let a = a.clone();
                std::thread::spawn(move || serve(stream, &a));
            }
        });
        Receiver { url, arrivals }
    }

    /// Arrivals per message id.
    fn by_message(&self) -> HashMap<String, Vec<Instant>> {
        let mut out: HashMap<String, Vec<Instant>> = HashMap::new();
        for (id, at) in self.arrivals.lock().unwrap().iter() {
            out.entry(id.clone()).or_default().push(*at);
        }
        out
    }
}

fn serve(stream: TcpStream, arrivals: &Mutex<Vec<(String, Instant)>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(Request { headers, .. }) = read_request(&mut reader) {
        let id = headers
            .get(waystation_server::delivery::webhook::MESSAGE_ID)
            .cloned()
            .unwrap_or_default();
        arrivals.lock().unwrap().push((id, Instant::now()));
        let reply = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// What a node acknowledged with a 2xx, and which node.
#[derive(Debug, Clone)]
enum Ack {
    Started {
        id: String,
        key: String,
    },
    Decided {
        id: String,
        task: String,
        key: String,
        answer: Value,
    },
    Timed {
        id: String,
        node: usize,
        at: Instant,
    },
}

/// The clients of one node.
#[derive(Clone)]
struct Node {
    ops: Client,
    reviewer: Client,
}

/// Sends work until `stop`: starts on `nodes[w % n]`, each decision on the next node, and
/// a timed duty check every third request.
fn load(nodes: Vec<Node>, acks: Arc<Mutex<Vec<Ack>>>, stop: Arc<AtomicBool>, w: usize, tag: &str) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let here = (w + n) % nodes.len();
        let node = &nodes[here];
        let key = format!("{tag}-w{w}-n{n}");
        if n.is_multiple_of(3) {
            let (s, v) = node.ops.post_once(
                "/v1/workflows/duty-check/instances",
                &json!({"input": {}}),
                &format!("duty-{key}"),
            );
            if s == 201 {
                acks.lock().unwrap().push(Ack::Timed {
                    id: v["id"].as_str().unwrap().to_owned(),
                    node: here,
                    at: Instant::now(),
                });
            }
            continue;
        }
        let (s, v) = node.ops.post_once(
            "/v1/workflows/approval-flow/instances",
            &json!({"input": {"request_id": key, "amount": 500}}),
            &format!("start-{key}"),
        );
        if s != 201 {
            continue;
        }
        let id = v["id"].as_str().unwrap().to_owned();
        acks.lock().unwrap().push(Ack::Started {
            id: id.clone(),
            key: format!("start-{key}"),
        });
        // Read and decided on another node than the one that started it.
        let other = &nodes[(here + 1) % nodes.len()];
        let (s, inst) = other.ops.get(&format!("/v1/instances/{id}"));
        if s != 200 {
            continue;
        }
        let task = inst["approvals"][0]["id"].as_str().unwrap().to_owned();
        let dkey = format!("decide-{key}");
        let (s, answer) = other.reviewer.post_once(
            &format!("/v1/approvals/{task}"),
            &json!({"decision": "approve"}),
            &dkey,
        );
        if s == 200 {
            acks.lock().unwrap().push(Ack::Decided {
                id,
                task,
                key: dkey,
                answer,
            });
        }
    }
}

/// Runs `workers` load threads over `nodes` for `secs`, calling `midway` halfway.
fn run_load(
    nodes: &[Node],
    acks: &Arc<Mutex<Vec<Ack>>>,
    tag: &str,
    millis: u64,
    midway: impl FnOnce(),
) {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (nodes, acks, stop, tag) =
                (nodes.to_vec(), acks.clone(), stop.clone(), tag.to_owned());
            std::thread::spawn(move || load(nodes, acks, stop, w, &tag))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(millis / 2));
    midway();
    std::thread::sleep(Duration::from_millis(millis / 2));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

fn history(ops: &Client, id: &str) -> Vec<Value> {
    let (s, h) = ops.get(&format!("/v1/instances/{id}/history?limit=1000"));
    assert_eq!(s, 200, "{h}");
    h["items"].as_array().unwrap().clone()
}

fn count(h: &[Value], f: impl Fn(&Value) -> bool) -> usize {
    h.iter().filter(|e| f(e)).count()
}

fn config_file(receiver: &Receiver) -> PathBuf {
    let path = std::env::temp_dir().join(format!("waystation-cluster-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        format!(
            r#"
[outbox]
max_attempts = 20
backoff_ms = 200
max_backoff_ms = 1000
[outbox.channels.assignment]
kind = "webhook"
url = "{}"
secret = "cluster-test-secret"
timeout_ms = 1000
concurrency = 8
"#,
            receiver.url
        ),
    )
    .unwrap();
    path
}

// Kept whole: one scenario told in order: load on three nodes, one killed and back, then every command, deadline and claim checked.
#[test]
fn three_nodes_on_one_database_lose_nothing_when_one_is_killed_and_take_over_its_work() {
    let schema = Schema::new("cluster");
    let receiver = Receiver::start();
    let config = config_file(&receiver);
    let url = pg_url();
    let env = [
        ("WAYSTATION_STORE_URL", url.as_str()),
        ("WAYSTATION_STORE_SCHEMA", schema.0.as_str()),
        ("WAYSTATION_STORE_POOL_SIZE", "8"),
        ("WAYSTATION_CONFIG", config.to_str().unwrap()),
    ];
    // The first node makes the admin token; the others find it in the database.
    let mut servers: Vec<Server> = vec![Server::start_with(&env)];
    servers.push(Server::start_with(&env));
    servers.push(Server::start_with(&env));
    let admin = servers[0].admin();
    admin.upload_workflow("approval-flow");
    let (s, body) = admin.put(
        "/v1/workflows/duty-check",
        &serde_json::from_str(DUTY).unwrap(),
    );
    assert_eq!(s, 201, "{body}");
    let ops = servers[1].token("ops", &["operator"]);
    let reviewer = servers[2].token("rui", &["approver:reviewer"]);
    let nodes: Vec<Node> = servers
        .iter()
        .map(|s| Node {
            ops: Client::new(&s.addr, ops.token()),
            reviewer: Client::new(&s.addr, reviewer.token()),
        })
        .collect();

    // Load on all three; node 1 is killed halfway.
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let killed_at = Arc::new(Mutex::new(None));
    {
        let victim = &mut servers[1];
        let killed = killed_at.clone();
        run_load(&nodes, &acks, "a", 3000, || {
            victim.kill9();
            *killed.lock().unwrap() = Some((Instant::now(), chrono::Utc::now()));
        });
    }
    let (killed_at, killed_wall) = killed_at.lock().unwrap().expect("node 1 was killed");
    // Node 1 comes back over the same database; more load on all three.
    servers[1].restart();
    run_load(&nodes, &acks, "b", 1500, || {});

    let acked = acks.lock().unwrap().clone();
    eprintln!("cluster: {} acknowledged commands", acked.len());
    assert!(
        acked.len() >= 30,
        "the load was too light to prove anything"
    );
    let reader = &nodes[2].ops;

    // Every acknowledged command is there exactly once, whichever node is asked.
    for ack in &acked {
        match ack {
            Ack::Started { id, key } => {
                assert_eq!(
                    reader.get(&format!("/v1/instances/{id}")).0,
                    200,
                    "start of {id} lost"
                );
                // The idempotency key is the cluster's: another node replays the same start.
                let request_id = key.trim_start_matches("start-");
                let (s, again) = nodes[0].ops.post_once(
                    "/v1/workflows/approval-flow/instances",
                    &json!({"input": {"request_id": request_id, "amount": 500}}),
                    key,
                );
                assert_eq!(
                    (s, again["id"].as_str()),
                    (201, Some(id.as_str())),
                    "replay of {key}"
                );
            }
            Ack::Decided {
                id,
                task,
                key,
                answer,
            } => {
                let h = history(reader, id);
                let n = count(&h, |e| {
                    e["type"] == "decided" && e["task_id"] == task.as_str()
                });
                assert_eq!(n, 1, "decision on {task} applied {n} times");
                let (s, replay) = nodes[1].reviewer.post_once(
                    &format!("/v1/approvals/{task}"),
                    &json!({"decision": "approve"}),
                    key,
                );
                assert_eq!(
                    (s, &replay),
                    (200, answer),
                    "replay of {key} on another node"
                );
            }
            Ack::Timed { .. } => {}
        }
    }

    // Every duty check's deadline fires exactly once, and its assignment is delivered.
    let timed: Vec<(&String, usize, Instant)> = acked
        .iter()
        .filter_map(|a| match a {
            Ack::Timed { id, node, at } => Some((id, *node, *at)),
            _ => None,
        })
        .collect();
    assert!(
        timed.iter().any(|t| t.1 == 1),
        "node 1 armed timers before it was killed"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut messages: Vec<(String, &String, usize, Instant)> = Vec::new();
    for (id, node, at) in &timed {
        let h = loop {
            let h = history(reader, id);
            if count(&h, |e| {
                e["type"] == "transitioned" && e["cause"] == "timeout"
            }) > 0
            {
                break h;
            }
            assert!(Instant::now() < deadline, "{id}: its deadline never fired");
            std::thread::sleep(Duration::from_millis(100));
        };
        let breaches = count(&h, |e| e["type"] == "sla_changed" && e["sla"] == "breached");
        let timeouts = count(&h, |e| {
            e["type"] == "transitioned" && e["cause"] == "timeout"
        });
        assert_eq!(
            (breaches, timeouts),
            (1, 1),
            "{id}: the deadline fired more than once"
        );
        // A deadline node 1 had armed fires within 5 s of the kill, or of being due.
        if *node == 1 && *at < killed_at {
            let time = |e: &Value| {
                chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&chrono::Utc)
            };
            let due = time(&h[0]) + chrono::TimeDelta::seconds(1);
            let fired = h
                .iter()
                .find(|e| e["type"] == "transitioned" && e["cause"] == "timeout")
                .map(time)
                .unwrap();
            let late = fired - due.max(killed_wall);
            assert!(
                late <= chrono::TimeDelta::seconds(5),
                "{id}: node 1's deadline fired {late} after the kill"
            );
        }
        for e in h.iter().filter(|e| e["type"] == "message_queued") {
            messages.push((e["message_id"].as_str().unwrap().to_owned(), id, *node, *at));
        }
    }
    assert_eq!(messages.len(), timed.len(), "one assignment per duty check");

    let deadline = Instant::now() + Duration::from_secs(30);
    let arrivals = loop {
        let arrivals = receiver.by_message();
        if messages.iter().all(|(m, ..)| arrivals.contains_key(m)) {
            break arrivals;
        }
        assert!(Instant::now() < deadline, "assignments never delivered");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut repeated = 0;
    for (message, id, node, queued_at) in &messages {
        let times = &arrivals[message];
        repeated += times.len() - 1;
        let h = history(reader, id);
        let delivered = count(&h, |e| {
            e["type"] == "delivery_attempted"
                && e["message_id"] == message.as_str()
                && e["outcome"] == "delivered"
        });
        assert_eq!(
            delivered, 1,
            "{message}: recorded delivered {delivered} times"
        );
        // Work node 1 left when it died is taken over within 5 s of the kill (or of being
        // due, when that came later): its claims run out, another node's poll finds it.
        if *node == 1 && *queued_at < killed_at {
            let first = times.iter().min().unwrap();
            let from = killed_at.max(*queued_at);
            assert!(
                first.saturating_duration_since(from) <= Duration::from_secs(5),
                "{message} of killed node 1 delivered {:?} after the kill",
                first.saturating_duration_since(from)
            );
        }
    }
    eprintln!(
        "cluster: {} assignments delivered, {repeated} delivered again after the kill",
        messages.len()
    );

    // Metrics are per node: each names itself as its claims do, and counts its own work.
    let mut names = std::collections::BTreeSet::new();
    for server in &servers {
        let (status, metrics) = server.client(None).get("/metrics");
        assert_eq!(status, 200);
        let text = metrics.as_str().unwrap();
        let info = text
            .lines()
            .find(|l| l.starts_with("waystation_node_info{"))
            .unwrap_or_else(|| panic!("no node name in {text}"));
        assert!(info.contains("store=\"postgres\""), "{info}");
        names.insert(info.to_owned());
        assert!(
            text.contains("waystation_command_conflicts_total "),
            "{text}"
        );
    }
    assert_eq!(names.len(), 3, "three nodes, three names: {names:?}");
    let _ = std::fs::remove_file(&config);
}
