//! Outbox delivery end to end (issue 6): the real binary, the real `tiered-notifier`
//! plugin rendering the `delay-emergency-response` notices, and real receivers on
//! loopback: an HTTP receiver that refuses the first attempts, an SMTP sink (Python's
//! `aiosmtpd`, `pip install aiosmtpd`), and a SIGKILL while messages are pending.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use waystation_server::delivery::webhook;
use waystation_tests::http::{read_request, Request};
use waystation_tests::sample;
use waystation_tests::server::{Client, Server};

const WORKFLOW: &str = "delay-emergency-response";
const SECRET: &str = "test-webhook-secret";

// ---------------------------------------------------------------------------------------
// An HTTP receiver.

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Arrival {
    message_id: String,
    attempt: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
}

/// A webhook receiver on loopback: answers 503 to the first `refuse` arrivals of each
/// message id (and to everything while `open` is false), 200 after.
struct Receiver {
    url: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    open: Arc<AtomicBool>,
}

impl Receiver {
    fn start(refuse: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/waystation", listener.local_addr().unwrap());
        let arrivals = Arc::new(Mutex::new(Vec::<Arrival>::new()));
        let open = Arc::new(AtomicBool::new(true));
        let (a, o) = (arrivals.clone(), open.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (a, o) = (a.clone(), o.clone());
                std::thread::spawn(move || serve(stream, refuse, &a, &o));
            }
        });
        Receiver {
            url,
            arrivals,
            open,
        }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }
}

/// Serves one keep-alive connection.
fn serve(stream: TcpStream, refuse: usize, arrivals: &Mutex<Vec<Arrival>>, open: &AtomicBool) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(Request { headers, body, .. }) = read_request(&mut reader) {
        let header = |k: &str| headers.get(k).cloned().unwrap_or_default();
        let message_id = header(webhook::MESSAGE_ID);
        let status = {
            let mut all = arrivals.lock().unwrap();
            let seen = all.iter().filter(|a| a.message_id == message_id).count();
            let status = if !open.load(Ordering::SeqCst) || seen < refuse {
                503
            } else {
                200
            };
            all.push(Arrival {
                message_id,
                attempt: header(webhook::ATTEMPT),
                timestamp: header(webhook::TIMESTAMP),
                signature: header(webhook::SIGNATURE),
                body,
                status,
            });
            status
        };
        let text = if status == 200 { "ok" } else { "try later" };
        let reply = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{text}",
            if status == 200 {
                "OK"
            } else {
                "Service Unavailable"
            },
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// An SMTP sink.

/// `aiosmtpd` with a handler that prints each message as a JSON line.
const SMTP_SINK: &str = r#"
import json, sys, threading
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                          "data": envelope.content.decode("utf-8", "replace")}), flush=True)
        return "250 Message accepted for delivery"

controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("READY", flush=True)
threading.Event().wait()
"#;

/// A local SMTP server that keeps what it receives.
struct SmtpSink {
    port: u16,
    child: Child,
    mails: Arc<Mutex<Vec<Value>>>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args(["-u", "-c", SMTP_SINK, &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (the SMTP sink needs it, with `pip install aiosmtpd`)");
        let stdout = child.stdout.take().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let m = mails.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "READY" {
                    let _ = tx.send(());
                } else if let Ok(mail) = serde_json::from_str(&line) {
                    m.lock().unwrap().push(mail);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "the SMTP sink did not start: is aiosmtpd installed? (`pip install aiosmtpd`)"
                )
            });
        SmtpSink { port, child, mails }
    }

    fn mails(&self) -> Vec<Value> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A header of a raw message, unfolded.
fn mail_header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next().unwrap_or(data);
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}

// ---------------------------------------------------------------------------------------
// The server.

/// A server configured with `toml`, the tiered notifier and the workflow uploaded, and an
/// operator.
struct Desk {
    server: Server,
    ops: Client,
    /// Orders started so far: each gets its own order number (the business key).
    started: std::cell::Cell<u32>,
    _config: ConfigFile,
}

/// A configuration file, removed at the end.
struct ConfigFile(PathBuf);

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Desk {
    fn open(name: &str, toml: &str) -> Desk {
        let path = std::env::temp_dir().join(format!(
            "waystation-outbox-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, toml).unwrap();
        let config = ConfigFile(path);
        let server = Server::start_with(&[("WAYSTATION_CONFIG", config.0.to_str().unwrap())]);
        server
            .token("dev", &["developer"])
            .upload_plugin("tiered-notifier");
        // The investigation first: the emergency calls it as a sub-workflow.
        server.admin().upload_workflow("investigation");
        server.admin().upload_workflow(WORKFLOW);
        let ops = server.token("olga", &["operator"]);
        Desk {
            server,
            ops,
            started: std::cell::Cell::new(0),
            _config: config,
        }
    }

    /// Starts an instance from `sample` and lets the investigation reply, which sends the
    /// customer notices; returns the instance id.
    fn notify(&self, sample_name: &str) -> String {
        // One running order per order number: each start is another order.
        let n = self.started.get() + 1;
        self.started.set(n);
        let mut input = sample(WORKFLOW, sample_name);
        let month = input["order_id"].as_str().unwrap()[..7].to_owned();
        input["order_id"] = json!(format!("{month}{:03}", n % 1000));
        let (status, body) = self.ops.post(
            &format!("/v1/workflows/{WORKFLOW}/instances"),
            &json!({"input": input}),
        );
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        // The ticket is the emergency's child instance: the reply goes there, and the
        // emergency tells the customer once it took the investigation's end.
        let (_, emergency) = self.ops.get(&format!("/v1/instances/{id}"));
        let child = emergency["children"][0]["id"].as_str().unwrap().to_owned();
        let (status, body) = self.ops.post(
            &format!("/v1/instances/{child}/events"),
            &json!({"type": "replied", "data": {}}),
        );
        assert_eq!(status, 200, "{body}");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, emergency) = self.ops.get(&format!("/v1/instances/{id}"));
            if emergency["stage"] != "investigate" {
                break;
            }
            assert!(
                Instant::now() < until,
                "{id} never took the reply: {emergency}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        id
    }

    fn history(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .ops
            .get(&format!("/v1/instances/{id}/history?limit=1000"));
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    /// Message ids the instance queued, with their channel.
    fn queued(&self, id: &str) -> Vec<(String, String)> {
        self.history(id)
            .into_iter()
            .filter(|h| h["type"] == "message_queued")
            .map(|h| {
                (
                    h["message_id"].as_str().unwrap().to_owned(),
                    h["channel"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Every message with `status`, following the cursor `limit` at a time.
    fn outbox(&self, status: &str, limit: usize) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/outbox?status={status}&limit={limit}&cursor={c}"),
                None => format!("/v1/outbox?status={status}&limit={limit}"),
            };
            let (code, body) = self.ops.get(&path);
            assert_eq!(code, 200, "{body}");
            let items = body["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            all.extend(items.iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }
}

/// Polls `check` until it holds or `secs` pass.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests.

// Kept whole: one scenario told in order: attempt by attempt until the webhook accepts.
#[test]
fn a_refusing_webhook_gets_one_signed_request_per_attempt_until_it_accepts() {
    let receiver = Receiver::start(2);
    // The notifier's `email` messages go to a webhook here (a mail gateway's API, say);
    // its `phone` call briefs to the log.
    let desk = Desk::open(
        "webhook",
        &format!(
            r#"
[outbox]
max_attempts = 5
backoff_ms = 100
max_backoff_ms = 400
[outbox.channels.email]
kind = "webhook"
url = "{}"
secret = "{SECRET}"
timeout_ms = 5000
[outbox.channels.phone]
kind = "log"
"#,
            receiver.url
        ),
    );
    let id = desk.notify("strategic-small-order");
    let queued = desk.queued(&id);
    let emails: BTreeSet<String> = queued
        .iter()
        .filter(|(_, c)| c == "email")
        .map(|(m, _)| m.clone())
        .collect();
    assert_eq!(
        emails.len(),
        2,
        "a strategic customer gets two emails: {queued:?}"
    );

    eventually(30, "every message delivered", || {
        desk.outbox("delivered", 100).len() == queued.len()
    });
    // Nothing arrives after a message was accepted.
    std::thread::sleep(Duration::from_millis(500));
    let arrivals = receiver.arrivals();
    for message_id in &emails {
        let mine: Vec<&Arrival> = arrivals
            .iter()
            .filter(|a| &a.message_id == message_id)
            .collect();
        assert_eq!(
            mine.iter()
                .map(|a| (a.attempt.as_str(), a.status))
                .collect::<Vec<_>>(),
            [("1", 503), ("2", 503), ("3", 200)],
            "{message_id}: one arrival per attempt until accepted"
        );
        for a in &mine {
            webhook::verify(
                SECRET.as_bytes(),
                &a.timestamp,
                &a.signature,
                &a.body,
                unix_now(),
                Duration::from_secs(300),
            )
            .unwrap_or_else(|e| panic!("{message_id} attempt {}: {e}", a.attempt));
            assert_eq!(a.body, mine[0].body, "the same body on every attempt");
        }
        let body: Value = serde_json::from_slice(&mine[0].body).unwrap();
        assert_eq!(body["id"], message_id.as_str());
        assert_eq!(body["instance_id"], id.as_str());
        assert_eq!(body["recipient"], "purchasing@huaxin.example.com");
        assert!(body["subject"].as_str().unwrap().contains("202405-001"));
    }
    // A forged signature would not pass.
    let a = &arrivals[0];
    assert!(webhook::verify(
        b"another-secret",
        &a.timestamp,
        &a.signature,
        &a.body,
        unix_now(),
        Duration::from_secs(300)
    )
    .is_err());

    let delivered = desk.outbox("delivered", 100);
    for m in delivered.iter().filter(|m| m["channel"] == "email") {
        assert_eq!(m["attempts"], 3, "{m}");
        assert_eq!(m["status"], "delivered");
        assert!(m["last_error"].is_null());
    }
    let attempts: Vec<(String, u64, String, String)> = desk
        .history(&id)
        .into_iter()
        .filter(|h| h["type"] == "delivery_attempted" && h["channel"] == "email")
        .map(|h| {
            (
                h["message_id"].as_str().unwrap().to_owned(),
                h["attempt"].as_u64().unwrap(),
                h["outcome"].as_str().unwrap().to_owned(),
                h["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for message_id in &emails {
        let mine: Vec<_> = attempts.iter().filter(|a| &a.0 == message_id).collect();
        assert_eq!(
            mine.iter().map(|a| (a.1, a.2.as_str())).collect::<Vec<_>>(),
            [(1, "retrying"), (2, "retrying"), (3, "delivered")],
            "the history tells every attempt: {mine:?}"
        );
        assert!(mine[0].3.contains("HTTP 503"), "{:?}", mine[0]);
    }
    assert!(desk.outbox("pending", 100).is_empty());
    assert!(desk.outbox("dead", 100).is_empty());
}

// Kept whole: one scenario told in order: each tier's emails, the dead letters, an operator's retry.
#[test]
fn the_tiered_notices_reach_an_smtp_sink_and_an_unconfigured_channel_is_a_visible_dead_letter() {
    let sink = SmtpSink::start();
    let desk = Desk::open(
        "smtp",
        &format!(
            r#"
[outbox]
max_attempts = 3
backoff_ms = 100
[outbox.channels.email]
kind = "email"
host = "127.0.0.1"
port = {}
tls = "none"
from = "Order desk <orders@waystation.example>"
hello_name = "waystation.test"
"#,
            sink.port
        ),
    );
    let instances: Vec<(&str, String)> = [
        "strategic-small-order",
        "class-a-before-holiday",
        "date-changed-three-times",
    ]
    .into_iter()
    .map(|s| (s, desk.notify(s)))
    .collect();
    let queued: Vec<(String, String)> = instances
        .iter()
        .flat_map(|(_, id)| desk.queued(id))
        .collect();
    let emails = queued.iter().filter(|(_, c)| c == "email").count();
    eventually(30, "every message delivered or dead", || {
        desk.outbox("pending", 100).is_empty()
            && desk.outbox("delivered", 100).len() + desk.outbox("dead", 100).len() == queued.len()
    });
    let delivered = desk.outbox("delivered", 1);
    assert!(
        delivered.iter().all(|m| m["channel"] == "email"),
        "{delivered:?}"
    );
    assert_eq!(delivered.len(), emails);

    // Each tier got the emails playbook 3 gives it.
    let kinds = |sample: &str| -> Vec<String> {
        let id = &instances.iter().find(|(s, _)| *s == sample).unwrap().1;
        delivered
            .iter()
            .filter(|m| m["instance_id"] == id.as_str())
            .map(|m| m["metadata"]["kind"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let mut strategic = kinds("strategic-small-order");
    strategic.sort();
    assert_eq!(strategic, ["compensation-offer", "email"]);
    assert_eq!(kinds("class-a-before-holiday"), ["written-notice"]);
    assert_eq!(kinds("date-changed-three-times"), ["standard-email"]);

    // The sink has each of them once, addressed, with the message id as Message-ID.
    eventually(10, "the sink to have every email", || {
        sink.mails().len() >= delivered.len()
    });
    let mails = sink.mails();
    assert_eq!(mails.len(), delivered.len(), "{mails:?}");
    for m in &delivered {
        let id = m["id"].as_str().unwrap();
        let mail = mails
            .iter()
            .find(|mail| {
                mail_header(mail["data"].as_str().unwrap(), "Message-ID").as_deref()
                    == Some(&format!("<{id}@waystation.example>"))
            })
            .unwrap_or_else(|| panic!("no email with Message-ID <{id}@...>: {mails:?}"));
        assert_eq!(mail["to"], json!([m["recipient"]]));
        assert_eq!(mail["from"], "orders@waystation.example");
        let data = mail["data"].as_str().unwrap();
        assert_eq!(
            mail_header(data, "Subject").as_deref(),
            m["subject"].as_str(),
            "{data}"
        );
        assert!(mail_header(data, "From").unwrap().contains("Order desk"));
    }

    // The calls have no channel here: dead at once, with the reason, in the API and the
    // history.
    let dead = desk.outbox("dead", 100);
    assert_eq!(dead.len(), queued.len() - emails, "{dead:?}");
    assert!(
        !dead.is_empty(),
        "the strategic and regular tiers get calls"
    );
    for m in &dead {
        let channel = m["channel"].as_str().unwrap();
        let reason = m["last_error"].as_str().unwrap();
        assert!(
            reason.contains(&format!("channel '{channel}' is not configured"))
                && reason.contains("email"),
            "{reason}"
        );
        assert_eq!(m["attempts"], 1);
        let history = desk.history(m["instance_id"].as_str().unwrap());
        assert!(
            history.iter().any(|h| h["type"] == "delivery_attempted"
                && h["message_id"] == m["id"]
                && h["outcome"] == "dead"
                && h["error"] == reason),
            "the history says why"
        );
    }

    // An operator puts a dead letter back (it dies again: the channel is still missing).
    let dead_id = dead[0]["id"].as_str().unwrap();
    let retry = format!("/v1/outbox/{dead_id}/retry");
    let (status, again) = desk.ops.post_once(&retry, &json!({}), "retry-1");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "pending");
    assert_eq!(
        (again["attempts"].as_u64(), again["retries"].as_u64()),
        (Some(0), Some(1))
    );
    let (status, replay) = desk.ops.post_once(&retry, &json!({}), "retry-1");
    assert_eq!(
        (status, &replay),
        (200, &again),
        "the same key, the same answer"
    );
    eventually(10, "the retried letter to die again", || {
        desk.outbox("dead", 100)
            .iter()
            .any(|m| m["id"] == dead_id && m["retries"] == 1)
    });
    let history = desk.history(dead[0]["instance_id"].as_str().unwrap());
    assert!(history.iter().any(|h| h["type"] == "delivery_retried"
        && h["message_id"] == dead_id
        && h["by"] == "olga"));

    // What cannot be retried, and bad listings, are problems.
    let delivered_id = delivered[0]["id"].as_str().unwrap();
    let (status, problem) = desk
        .ops
        .post(&format!("/v1/outbox/{delivered_id}/retry"), &json!({}));
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        problem["type"],
        "https://waystation.dev/problems/message-not-dead"
    );
    let (status, _) = desk
        .ops
        .post("/v1/outbox/no-such-message/retry", &json!({}));
    assert_eq!(status, 404);
    let (status, problem) = desk.ops.get("/v1/outbox?status=lost");
    assert_eq!(status, 400);
    assert_eq!(problem["errors"][0]["parameter"], "status");
    let (status, _) = desk.ops.get("/v1/outbox?status=dead&cursor=zz");
    assert_eq!(status, 400);
    let approver = desk.server.token("amy", &["approver:finance"]);
    assert_eq!(approver.post(&retry, &json!({})).0, 403);
}

#[test]
fn a_sigkill_while_messages_are_pending_loses_none() {
    let receiver = Receiver::start(0);
    receiver.open.store(false, Ordering::SeqCst);
    let mut desk = Desk::open(
        "sigkill",
        &format!(
            r#"
[outbox]
max_attempts = 100
backoff_ms = 50
max_backoff_ms = 300
[outbox.channels.email]
kind = "webhook"
url = "{}"
secret = "{SECRET}"
[outbox.channels.phone]
kind = "log"
"#,
            receiver.url
        ),
    );
    // Every acknowledged event queued its messages in the same commit.
    let instances: Vec<String> = (0..4)
        .map(|_| desk.notify("strategic-small-order"))
        .collect();
    let queued: Vec<(String, String)> = instances.iter().flat_map(|id| desk.queued(id)).collect();
    let webhooks: BTreeSet<String> = queued
        .iter()
        .filter(|(_, c)| c == "email")
        .map(|(m, _)| m.clone())
        .collect();
    assert_eq!(webhooks.len(), 8);
    eventually(30, "the receiver refusing attempts", || {
        receiver.arrivals().len() >= webhooks.len()
    });
    assert!(!desk.outbox("pending", 100).is_empty());

    desk.server.kill9();
    receiver.open.store(true, Ordering::SeqCst);
    desk.server.restart();

    eventually(60, "every message delivered after the restart", || {
        desk.outbox("pending", 100).is_empty()
    });
    assert_eq!(ids(&desk.outbox("delivered", 100)).len(), queued.len());
    assert!(desk.outbox("dead", 100).is_empty());
    let accepted: BTreeSet<String> = receiver
        .arrivals()
        .into_iter()
        .filter(|a| a.status == 200)
        .map(|a| a.message_id)
        .collect();
    assert_eq!(
        accepted, webhooks,
        "every pending message arrived after the crash"
    );
}
