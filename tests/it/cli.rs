//! The real `waystation` binary: validate, graph, and serve with a health check.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use waystation_tests::{root, waystation_bin};

fn waystation(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(waystation_bin())
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn validate_accepts_the_reference_workflows_and_exits_zero() {
    let (code, out, _) = waystation(&["validate", "workflows/approval-flow.json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "workflows/approval-flow.json: valid (4 stages)\n");
}

#[test]
fn validate_prints_each_error_with_file_and_pointer_and_exits_one() {
    let dir = std::env::temp_dir().join(format!("waystation-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"id": "bad", "title": "Bad", "start": "review", "stages": {
            "review": {"kind": "task", "transitions": [{"to": "aproved"}]},
            "approved": {"kind": "end", "outcome": "approved"}}}"#,
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let (code, out, _) = waystation(&["validate", "workflows/approval-flow.json", bad]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "workflows/approval-flow.json: valid (4 stages)");
    assert!(
        lines.contains(&format!("{bad}: /stages/review/transitions/0/to: no stage named 'aproved' (did you mean 'approved'?)").as_str()),
        "{out}"
    );
}

#[test]
fn validate_reports_malformed_json_with_line_and_column() {
    let dir = std::env::temp_dir().join(format!("waystation-cli-m-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("malformed.json");
    std::fs::write(
        &bad,
        "{\n  \"id\": \"x\",\n  \"title\": \"y\"\n  \"start\": \"a\"\n}\n",
    )
    .unwrap();
    let (code, out, _) = waystation(&["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains(": line 4, column 3: malformed JSON: expected `,` or `}`"),
        "{out}"
    );
}

#[test]
fn graph_prints_a_mermaid_flowchart_of_stages_and_transitions() {
    let (code, out, _) = waystation(&["graph", "workflows/approval-flow.json"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("flowchart TD\n"), "{out}");
    assert!(out.contains("start((start)) --> s_review"), "{out}");
    assert!(
        out.contains(r#"s_review -->|"approved (any): input.amount > 10000"| s_manager"#),
        "{out}"
    );
    assert!(
        out.contains(r#"s_manager -->|"rejected"| s_rejected"#),
        "{out}"
    );
}

#[test]
fn serve_answers_health_checks_over_http_and_stops_cleanly_on_sigterm() {
    let data = std::env::temp_dir().join(format!("waystation-cli-serve-{}", std::process::id()));
    let mut child = Command::new(waystation_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        assert!(
            Instant::now() < deadline,
            "the server never said where it listens"
        );
        let line = lines.next().expect("server output").unwrap();
        let line = strip_ansi(&line);
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""status":"ok""#), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn plugin_check_prints_the_world_surface_size_and_digest_of_a_built_plugin() {
    let (code, out, err) = waystation(&["plugin", "check", "plugins/dist/order-health-score.wasm"]);
    assert_eq!(code, 0, "{out}{err}");
    for expected in [
        "world:   scorer",
        "size:    ",
        "digest:  sha256:",
        "waystation:plugin/types@0.1.0",
        "log: func",
        "score: func",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
}

#[test]
fn plugin_check_refuses_a_file_that_is_not_wasm_and_exits_one_with_the_reason() {
    let (code, out, _) = waystation(&["plugin", "check", "workflows/approval-flow.json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("workflows/approval-flow.json: ") && out.contains("[not_wasm]"),
        "{out}"
    );
}

#[test]
fn plugin_invoke_runs_the_c_scorer_in_the_sandbox_and_prints_output_logs_and_duration() {
    let input = serde_json::json!({
        "input": waystation_tests::sample("delay-early-warning", "late-regular"),
        "vars": {},
        "instance": {"id": "cli", "workflow": "delay-early-warning", "version": 1, "stage": "score", "tags": []},
        "now": "2024-05-08T10:00:00Z"
    })
    .to_string();
    let (code, out, err) = waystation(&[
        "plugin",
        "invoke",
        "plugins/dist/order-health-score.wasm",
        "--input",
        &input,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"score\""), "{out}");
    assert!(out.contains("logs:") && out.contains("[info]"), "{out}");
    assert!(
        out.contains("duration: ") && out.contains("budget 100 ms"),
        "{out}"
    );
}

#[test]
fn plugin_invoke_with_input_that_is_not_json_exits_non_zero_naming_the_problem() {
    let (code, out, err) = waystation(&[
        "plugin",
        "invoke",
        "plugins/dist/order-health-score.wasm",
        "--input",
        "{not json",
    ]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("JSON"), "{out}{err}");
}

#[test]
fn serve_refuses_to_start_with_a_calendar_in_an_unknown_zone_naming_the_calendar_and_member() {
    let dir = std::env::temp_dir().join(format!("ws-bad-calendar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("waystation.toml");
    std::fs::write(
        &config,
        "[calendars.cn-office]\nzone = \"Asia/Shangai\"\nhours = { mon = [\"09:00-18:00\"] }\n",
    )
    .unwrap();
    let data = dir.join("data");
    let (code, _, stderr) = waystation(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let created = data.exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(code, 0);
    let stderr = strip_ansi(&stderr);
    assert!(
        stderr.contains("[calendars.cn-office] /zone: 'Asia/Shangai' is not an IANA time zone"),
        "{stderr}"
    );
    assert!(
        !created,
        "nothing is written before the configuration is known good"
    );
}

#[test]
fn serve_refuses_to_start_without_a_calendar_that_a_stored_definition_uses_naming_where() {
    let mut server = waystation_tests::server::Server::start();
    server.admin().upload_workflow("payment-precheck");
    assert!(server.terminate().success());
    let dir = std::env::temp_dir().join(format!("ws-no-calendar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("waystation.toml");
    std::fs::write(&config, "# the calendars were dropped from this file\n").unwrap();
    let (code, _, stderr) = waystation(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data",
        server.data().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(code, 0);
    let stderr = strip_ansi(&stderr);
    assert!(
        stderr.contains(
            "workflow 'payment-precheck' version 1 names business calendar 'cn-office' at /stages/scan/calendar"
        ),
        "{stderr}"
    );
    server.restart();
    let (s, _) = server.admin().get("/v1/workflows/payment-precheck");
    assert_eq!(
        s, 200,
        "with the calendar back, the server starts on the same data"
    );
}

#[test]
fn validate_checks_calendar_names_against_the_configuration_it_is_given() {
    let file = "workflows/payment-precheck.json";
    let (code, out, _) = waystation(&["validate", "--config", "workflows/calendars.toml", file]);
    assert_eq!(
        (code, out.as_str()),
        (0, "workflows/payment-precheck.json: valid (2 stages)\n")
    );
    let (code, out, _) = waystation(&["validate", file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("/stages/scan/calendar: no business calendar named 'cn-office'"),
        "{out}"
    );
}

#[test]
fn validate_checks_sub_workflow_calls_among_the_files_given_and_names_the_rest() {
    let (code, out, _) = waystation(&[
        "validate",
        "workflows/investigation.json",
        "workflows/delay-emergency-response.json",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("checked at upload"), "both are given: {out}");
    let (code, out, _) = waystation(&["validate", "workflows/delay-emergency-response.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("name workflows not among these files: checked at upload"),
        "{out}"
    );

    let dir = std::env::temp_dir().join(format!("waystation-cli-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let selfcall = dir.join("selfcall.json");
    std::fs::write(
        &selfcall,
        r#"{"id": "selfcall", "title": "Calls itself", "start": "again", "stages": {
  "again": {"kind": "subworkflow", "workflow": "selfcall", "input": {}, "on_outcome": {"done": {"to": "done"}}},
  "done": {"kind": "end", "outcome": "done"}}}"#,
    )
    .unwrap();
    let (code, out, _) = waystation(&["validate", selfcall.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("/stages/again/workflow: workflow 'selfcall' calls itself"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
