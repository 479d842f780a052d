//! "A 2xx reply means durable", checked on the real binary: the server runs under `strace`
//! (Debian package `strace`) and takes a few dozen commands one at a time: definition
//! uploads, a plugin upload, token creation and revocation, starts (with and without an
//! `Idempotency-Key`), events, approvals and a cancel. For each one the trace must show a
//! full sync (`fsync` or `fdatasync`, never `sync_file_range` alone) of a file of the store
//! (of the plugin registry, and its directory, for a plugin upload) that returned after the
//! request was read from the socket and before the first byte of the 2xx reply was written
//! to it. Run once per engine: fjall (the default), sled and redb.
//!
//! Syscalls are matched by the file descriptors' paths that `-y` prints and, for a call that
//! strace splits around another thread's (`<unfinished ...>` / `<... resumed>`), by thread
//! id. strace reports a thread's syscall exit before that thread can run on, so the order of
//! the trace's lines is the order in which calls returned and began.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use waystation_tests::server::{Client, Server};

/// The workflow with an event: `done` ends it, a deadline far away keeps a timer armed.
const WAITING: &str = r#"{"id": "durable-wait", "title": "Waits for done", "start": "waiting",
  "stages": {
    "waiting": {"kind": "wait", "owner": "agent", "deadline": "P30D",
                "on": {"done": {"to": "finished"}}, "timeout": {"to": "expired"}},
    "expired": {"kind": "end", "outcome": "expired"},
    "finished": {"kind": "end", "outcome": "resolved"}}}"#;

#[derive(Serialize)]
struct StartRequest {
    input: ApprovalInput,
}

#[derive(Serialize)]
struct ApprovalInput {
    request_id: String,
    amount: u64,
}

#[derive(Serialize)]
struct EmptyStart {
    input: serde_json::Map<String, Value>,
}

#[derive(Serialize)]
struct EventRequest {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct DecisionRequest {
    decision: &'static str,
}

#[derive(Serialize)]
struct CancelRequest {
    reason: &'static str,
}

#[derive(Serialize)]
struct TokenRequest {
    name: String,
    roles: Vec<&'static str>,
}

fn body<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a request body is JSON")
}

/// One syscall as traced: where in the trace it began and returned, its name, the fd's
/// number and path, the text of its arguments, and its return value.
#[derive(Debug, Clone)]
struct Call {
    entry: usize,
    exit: usize,
    name: String,
    fd: String,
    path: String,
    args: String,
    ret: String,
}

/// Parses `strace -f -tt -y` output: `TID HH:MM:SS.us name(args) = ret`, with calls split
/// around other threads' as `name(args <unfinished ...>` and `<... name resumed>rest`.
fn parse(trace: &str) -> Vec<Call> {
    let mut pending: HashMap<String, (usize, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (i, line) in trace.lines().enumerate() {
        // strace pads the thread id to five columns: `7632  01:22:57.553397 read(...`.
        let Some((tid, after_tid)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = after_tid.trim_start().split_once(' ') else {
            continue;
        };
        let (entry, text) = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(tid.to_owned(), (i, head.to_owned()));
            continue;
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            match pending.remove(tid) {
                Some((entry, head)) => (entry, format!("{head}{tail}")),
                None => continue,
            }
        } else {
            (i, rest.to_owned())
        };
        let Some((name, after)) = text.split_once('(') else {
            continue; // signals, exits
        };
        let Some((args, ret)) = after.rsplit_once(") = ") else {
            continue;
        };
        let (fd, path) = match args.split_once('<') {
            Some((fd, rest)) if fd.chars().all(|c| c.is_ascii_digit()) => (
                fd.to_owned(),
                rest.split_once('>').map_or("", |p| p.0).to_owned(),
            ),
            _ => (String::new(), String::new()),
        };
        calls.push(Call {
            entry,
            exit: i,
            name: name.to_owned(),
            fd,
            path,
            args: args.to_owned(),
            ret: ret.trim().to_owned(),
        });
    }
    calls
}

/// The bytes a read returned, as strace quotes them (up to the first quote: a request line
/// has none).
fn read_data(c: &Call) -> Option<&str> {
    let (_, rest) = c.args.split_once(", \"")?;
    Some(rest.split('"').next().unwrap_or(rest))
}

fn is_socket(c: &Call) -> bool {
    c.path.starts_with("socket:") || c.path.starts_with("TCP:")
}

fn is_read(c: &Call) -> bool {
    matches!(c.name.as_str(), "read" | "recvfrom" | "recvmsg")
}

fn is_write(c: &Call) -> bool {
    matches!(c.name.as_str(), "write" | "writev" | "sendto" | "sendmsg")
}

fn is_full_sync(c: &Call) -> bool {
    matches!(c.name.as_str(), "fsync" | "fdatasync") && c.ret == "0"
}

/// What a command needs synced before its reply.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Holds {
    /// The store (a file under `store/`).
    Store,
    /// The plugin registry: a file under `plugins/` and the directory its files are named in.
    Plugins,
}

/// A command sent: its request line, and where its data is held.
struct Sent {
    request_line: String,
    holds: Holds,
}

/// Checks every command in `sent` against the trace; returns the failures.
fn check(calls: &[Call], data: &Path, sent: &[Sent]) -> Vec<String> {
    let store = data.join("store");
    let plugins = data.join("plugins");
    let under = |c: &Call, dir: &Path| Path::new(&c.path).starts_with(dir);
    let mut failures = Vec::new();
    let mut from = 0; // commands are sent one at a time: search on from the last reply
    for s in sent {
        // The request's first read: it may hold only the beginning of the request line
        // (a new connection's first read is small) or the line and more.
        let Some(request) = calls[from..].iter().find(|c| {
            is_read(c)
                && is_socket(c)
                && read_data(c).is_some_and(|data| {
                    data.len() >= 8
                        && (data.starts_with(&s.request_line) || s.request_line.starts_with(data))
                })
        }) else {
            failures.push(format!(
                "{}: its request is not in the trace",
                s.request_line
            ));
            continue;
        };
        let Some(reply) = calls.iter().find(|c| {
            is_write(c)
                && c.fd == request.fd
                && c.path == request.path
                && c.entry > request.exit
                && c.args.contains("HTTP/1.1 ")
        }) else {
            failures.push(format!("{}: no reply in the trace", s.request_line));
            continue;
        };
        assert!(
            reply.args.contains("HTTP/1.1 2"),
            "{}: the reply is not a 2xx: {}",
            s.request_line,
            reply.args
        );
        let synced = |pred: &dyn Fn(&Call) -> bool| {
            calls.iter().any(|c| {
                is_full_sync(c) && c.exit > request.exit && c.exit < reply.entry && pred(c)
            })
        };
        let ok = match s.holds {
            Holds::Store => synced(&|c| under(c, &store)),
            Holds::Plugins => {
                synced(&|c| under(c, &plugins) && c.path != plugins.to_string_lossy())
                    && synced(&|c| {
                        Path::new(&c.path).is_dir() && Path::new(&c.path).starts_with(&plugins)
                    })
            }
        };
        if !ok {
            failures.push(format!(
                "{}: no fsync/fdatasync of the {:?} files returned between the request (trace line {}) and the reply (line {})",
                s.request_line,
                s.holds,
                request.exit + 1,
                reply.entry + 1
            ));
        }
        from = calls
            .iter()
            .position(|c| c.entry == reply.entry)
            .unwrap_or(from);
    }
    failures
}

/// Sends the commands; returns what was sent, in order.
fn send_commands(server: &Server) -> Vec<Sent> {
    let mut sent = Vec::new();
    let (ops, reviewer) = send_setup(server, &mut sent);
    send_approvals(&ops, &reviewer, &mut sent);
    send_waits(&ops, &mut sent);
    sent
}

/// Records that `line` was sent and what its flush must cover.
fn note(sent: &mut Vec<Sent>, line: String, holds: Holds) {
    sent.push(Sent {
        request_line: line,
        holds,
    });
}

/// The uploads and token changes: two workflows, a plugin, tokens created and one revoked.
/// Returns the operator's and the reviewer's clients.
fn send_setup(server: &Server, sent: &mut Vec<Sent>) -> (Client, Client) {
    let admin = server.admin();
    admin.upload_workflow("approval-flow");
    note(
        sent,
        "PUT /v1/workflows/approval-flow HTTP/1.1".into(),
        Holds::Store,
    );
    let (s, b) = admin.put(
        "/v1/workflows/durable-wait",
        &serde_json::from_str(WAITING).unwrap(),
    );
    assert_eq!(s, 201, "{b}");
    note(
        sent,
        "PUT /v1/workflows/durable-wait HTTP/1.1".into(),
        Holds::Store,
    );
    let create = |name: &str, roles: Vec<&'static str>| -> (String, Client) {
        let (s, b) = admin.post(
            "/v1/tokens",
            &body(&TokenRequest {
                name: name.to_owned(),
                roles,
            }),
        );
        assert_eq!(s, 201, "{b}");
        (
            b["id"].as_str().unwrap().to_owned(),
            server.client(Some(b["token"].as_str().unwrap())),
        )
    };
    let (_, developer) = create("dev", vec!["developer"]);
    note(sent, "POST /v1/tokens HTTP/1.1".into(), Holds::Store);
    developer.upload_plugin("order-health-score");
    note(
        sent,
        "PUT /v1/plugins/order-health-score HTTP/1.1".into(),
        Holds::Plugins,
    );
    let (_, ops) = create("ops", vec!["operator"]);
    note(sent, "POST /v1/tokens HTTP/1.1".into(), Holds::Store);
    let (_, reviewer) = create("rui", vec!["approver:reviewer"]);
    note(sent, "POST /v1/tokens HTTP/1.1".into(), Holds::Store);
    let (spare, _) = create("spare", vec!["operator"]);
    note(sent, "POST /v1/tokens HTTP/1.1".into(), Holds::Store);
    let (s, b) = admin.delete(&format!("/v1/tokens/{spare}"));
    assert_eq!(s, 204, "{b}");
    note(
        sent,
        format!("DELETE /v1/tokens/{spare} HTTP/1.1"),
        Holds::Store,
    );
    (ops, reviewer)
}

/// Eight approval-flow starts (every other one with an `Idempotency-Key`), each approved.
fn send_approvals(ops: &Client, reviewer: &Client, sent: &mut Vec<Sent>) {
    for i in 0..8u32 {
        let start = StartRequest {
            input: ApprovalInput {
                request_id: format!("D{i}"),
                amount: 5_000,
            },
        };
        let path = "/v1/workflows/approval-flow/instances";
        let (s, b) = if i.is_multiple_of(2) {
            ops.post(path, &body(&start))
        } else {
            ops.post_once(path, &body(&start), &format!("durable-start-{i}"))
        };
        assert_eq!(s, 201, "{b}");
        note(sent, format!("POST {path} HTTP/1.1"), Holds::Store);
        let id = b["id"].as_str().unwrap().to_owned();
        let (s, inst) = ops.get(&format!("/v1/instances/{id}"));
        assert_eq!(s, 200, "{inst}");
        let task = inst["approvals"][0]["id"].as_str().unwrap().to_owned();
        let (s, b) = reviewer.post(
            &format!("/v1/approvals/{task}"),
            &body(&DecisionRequest {
                decision: "approve",
            }),
        );
        assert_eq!(s, 200, "{b}");
        note(
            sent,
            format!("POST /v1/approvals/{task} HTTP/1.1"),
            Holds::Store,
        );
    }
}

/// Eight waiting instances, each ended by an event or (every fourth) cancelled.
fn send_waits(ops: &Client, sent: &mut Vec<Sent>) {
    for i in 0..8 {
        let path = "/v1/workflows/durable-wait/instances";
        let (s, b) = ops.post(
            path,
            &body(&EmptyStart {
                input: serde_json::Map::new(),
            }),
        );
        assert_eq!(s, 201, "{b}");
        note(sent, format!("POST {path} HTTP/1.1"), Holds::Store);
        let id = b["id"].as_str().unwrap().to_owned();
        if i % 4 == 3 {
            let path = format!("/v1/instances/{id}/cancel");
            let (s, b) = ops.post(&path, &body(&CancelRequest { reason: "test" }));
            assert_eq!(s, 200, "{b}");
            note(sent, format!("POST {path} HTTP/1.1"), Holds::Store);
        } else {
            let path = format!("/v1/instances/{id}/events");
            let (s, b) = ops.post(&path, &body(&EventRequest { kind: "done" }));
            assert_eq!(s, 200, "{b}");
            note(sent, format!("POST {path} HTTP/1.1"), Holds::Store);
        }
    }
}

fn trace_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "waystation-durability-{}-{name}.strace",
        std::process::id()
    ))
}

/// Runs the commands on `engine` under strace; returns the failures and the trace's path.
fn run(engine: &str) -> (Vec<String>, usize, PathBuf) {
    let trace = trace_file(engine);
    let trace_arg = trace.to_string_lossy().into_owned();
    let wrapper = [
        "strace",
        "-f",
        "-tt",
        "-y",
        "-s",
        "200",
        "-e",
        "trace=fsync,fdatasync,sync_file_range,write,writev,sendto,sendmsg,read,recvfrom,recvmsg",
        "-o",
        &trace_arg,
    ];
    let mut server = Server::start_under(&wrapper, &[("WAYSTATION_STORE_ENGINE", engine)]);
    let sent = send_commands(&server);
    let data = server.data().to_path_buf();
    server.terminate();
    let text = std::fs::read_to_string(&trace).expect("strace wrote its trace");
    let calls = parse(&text);
    (check(&calls, &data, &sent), sent.len(), trace)
}

fn every_acknowledged_command_was_synced_first_on(engine: &str) {
    let (failures, commands, trace) = run(engine);
    assert!(commands >= 30, "a few dozen commands: {commands}");
    assert!(
        failures.is_empty(),
        "{engine}: {} of {commands} replies went out before their data was synced (trace kept at {}):\n{}",
        failures.len(),
        trace.display(),
        failures.join("\n")
    );
    let _ = std::fs::remove_file(trace);
}

#[test]
fn on_fjall_every_2xx_follows_an_fsync_of_the_files_that_hold_it() {
    every_acknowledged_command_was_synced_first_on("fjall");
}

#[test]
fn on_sled_every_2xx_follows_an_fsync_of_the_files_that_hold_it() {
    every_acknowledged_command_was_synced_first_on("sled");
}

#[test]
fn on_redb_every_2xx_follows_an_fsync_of_the_files_that_hold_it() {
    every_acknowledged_command_was_synced_first_on("redb");
}

#[test]
fn the_check_refuses_a_reply_that_only_sync_file_range_preceded() {
    // The trace sled 0.34's own flush gives: sync_file_range, no fsync.
    let trace = "\
10 00:00:00.000001 recvfrom(9<socket:[77]>, \"POST /v1/workflows/a/instances HTTP/1.1\\r\\n\"..., 8192, 0, NULL, NULL) = 300
11 00:00:00.000002 sync_file_range(7</d/store/db>, 0, 4096, SYNC_FILE_RANGE_WAIT_BEFORE|SYNC_FILE_RANGE_WRITE|SYNC_FILE_RANGE_WAIT_AFTER) = 0
10 00:00:00.000003 writev(9<socket:[77]>, [{iov_base=\"HTTP/1.1 201 Created\\r\\n\"..., iov_len=120}], 1) = 120
10 00:00:00.000004 recvfrom(9<socket:[77]>, \"POST /v1/workflows/a/instances HTTP/1.1\\r\\n\"..., 8192, 0, NULL, NULL) = 300
11 00:00:00.000005 fdatasync(7</d/store/db> <unfinished ...>
10 00:00:00.000006 writev(9<socket:[77]>, [{iov_base=\"HTTP/1.1 201 Created\\r\\n\"..., iov_len=120}], 1) = 120
11 00:00:00.000007 <... fdatasync resumed>) = 0
10 00:00:00.000008 recvfrom(9<socket:[77]>, \"POST /v1/workflows/a/instances HTTP/1.1\\r\\n\"..., 8192, 0, NULL, NULL) = 300
11 00:00:00.000009 fdatasync(7</d/store/db>) = 0
10 00:00:00.000010 writev(9<socket:[77]>, [{iov_base=\"HTTP/1.1 201 Created\\r\\n\"..., iov_len=120}], 1) = 120
";
    let sent: Vec<Sent> = (0..3)
        .map(|_| Sent {
            request_line: "POST /v1/workflows/a/instances HTTP/1.1".into(),
            holds: Holds::Store,
        })
        .collect();
    let failures = check(&parse(trace), Path::new("/d"), &sent);
    // The first reply followed only sync_file_range; the second went out while the
    // fdatasync had not yet returned; the third is covered.
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].contains("line 1") && failures[1].contains("line 4"),
        "{failures:?}"
    );
}

#[test]
fn a_trace_line_whose_thread_id_strace_padded_is_read_whole() {
    // Thread ids under 10,000 are padded to five columns (as on a freshly booted machine).
    let calls = parse(
        "7632  01:22:57.553397 recvfrom(14<socket:[207602]>, \"PUT /v1/workflows/approv\", 24, 0, NULL, NULL) = 24\n\
         12345 01:22:57.553400 fdatasync(9</data/store/journal>) = 0",
    );
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].name.as_str(), calls[0].path.as_str()),
        ("recvfrom", "socket:[207602]")
    );
    assert_eq!(read_data(&calls[0]), Some("PUT /v1/workflows/approv"));
    assert!(is_full_sync(&calls[1]));
}
