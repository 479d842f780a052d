//! Existing data directories: a sled store written by an earlier release is opened as sled,
//! a server configured for another engine refuses it and names the migration command, and
//! `waystation store migrate` copies everything (definitions, instances, history, tasks,
//! tokens, plugins) into a new data directory that a server then serves as it was.

use serde::Serialize;
use serde_json::Value;
use std::process::Command;
use waystation_tests::server::Server;
use waystation_tests::waystation_bin;

#[derive(Serialize)]
struct Start {
    input: Input,
}

#[derive(Serialize)]
struct Input {
    request_id: String,
    amount: u64,
}

#[derive(Serialize)]
struct Decision {
    decision: &'static str,
}

fn body<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("a request body is JSON")
}

#[test]
fn a_sled_data_directory_is_refused_by_a_fjall_server_and_migrated_whole() {
    let old = Server::start_with(&[("WAYSTATION_STORE_ENGINE", "sled")]);
    let admin = old.admin();
    admin.upload_workflow("approval-flow");
    let developer = old.token("dev", &["developer"]);
    developer.upload_plugin("order-health-score");
    let ops = old.token("ops", &["operator"]);
    let reviewer = old.token("rui", &["approver:reviewer"]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, b) = ops.post(
            "/v1/workflows/approval-flow/instances",
            &body(&Start {
                input: Input {
                    request_id: format!("M{i}"),
                    amount: 5_000,
                },
            }),
        );
        assert_eq!(s, 201, "{b}");
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    let task = ops.get(&format!("/v1/instances/{}", ids[0])).1["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = reviewer.post(
        &format!("/v1/approvals/{task}"),
        &body(&Decision {
            decision: "approve",
        }),
    );
    assert_eq!(s, 200, "{b}");
    let read = |server: &Server| {
        let ops = server.client(ops.token());
        let instances: Vec<Value> = ids
            .iter()
            .map(|id| {
                let (s, i) = ops.get(&format!("/v1/instances/{id}"));
                assert_eq!(s, 200, "{i}");
                let (s, h) = ops.get(&format!("/v1/instances/{id}/history"));
                assert_eq!(s, 200, "{h}");
                Value::Array(vec![i, h])
            })
            .collect();
        let plugins = server.admin().get("/v1/plugins").1;
        let workflows = server.admin().get("/v1/workflows").1;
        (instances, plugins, workflows)
    };
    let before = read(&old);
    let mut old = old;
    let data = old.data().to_path_buf();
    old.terminate();

    // Configured for fjall, the server refuses the sled directory and says what to run.
    let out = Command::new(waystation_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("WAYSTATION_STORE_ENGINE", "fjall")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("holds a sled store")
            && stderr.contains(&format!(
                "waystation store migrate --from {} --to NEW_DIR --engine fjall",
                data.display()
            )),
        "{stderr}"
    );
    assert!(
        !data.join("store").join("keyspaces").exists(),
        "no fjall store was started beside the sled one"
    );

    // With no engine configured it opens the sled store it finds.
    let again = Server::start_in(&data, &[]);
    assert_eq!(read(&again), before);
    drop(again);

    let new = std::env::temp_dir().join(format!("waystation-migrated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&new);
    let out = Command::new(waystation_bin())
        .args(["store", "migrate", "--from"])
        .arg(&data)
        .arg("--to")
        .arg(&new)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("to a fjall store"), "{stdout}");

    // A second migration into the same place is refused: it is not empty.
    let out = Command::new(waystation_bin())
        .args(["store", "migrate", "--from"])
        .arg(&data)
        .arg("--to")
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));

    let migrated = Server::start_in(&new, &[]);
    assert!(
        new.join("store").join("keyspaces").is_dir(),
        "a fjall store"
    );
    assert_eq!(
        read(&migrated),
        before,
        "instances, histories, plugins, workflows"
    );
    // Tokens came along: the reviewer still decides.
    let task = migrated
        .client(ops.token())
        .get(&format!("/v1/instances/{}", ids[1]))
        .1["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = migrated.client(reviewer.token()).post(
        &format!("/v1/approvals/{task}"),
        &body(&Decision {
            decision: "approve",
        }),
    );
    assert_eq!(s, 200, "{b}");
    drop(migrated);
    let _ = std::fs::remove_dir_all(&new);
}

#[derive(Serialize)]
struct InvokeRequest {
    input: Value,
}

/// Runs `migrate` with `args`; its stdout, asserting success.
fn migrate(args: &[&str]) -> String {
    let out = Command::new(waystation_bin())
        .args(["store", "migrate"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "migrate {args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn env_of(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// An operations team outgrowing one machine: its fjall data directory (workflows, running
/// and decided approvals, tokens, a plugin) is copied into PostgreSQL, where two nodes
/// serve it as it was and run the plugin that neither node's disk holds; a plugin uploaded
/// to one node runs on the other; and the database is copied back into a new data
/// directory that a single server serves as it was.
#[test]
fn an_embedded_store_moves_into_postgresql_and_back_with_its_plugins() {
    use waystation_tests::pg::{pg_url, Schema};
    let schema = Schema::new("migrate");
    let url = pg_url();
    let mut old = Server::start();
    let admin = old.admin();
    admin.upload_workflow("approval-flow");
    let developer = old.token("dev", &["developer"]);
    developer.upload_plugin("order-health-score");
    let ops = old.token("ops", &["operator"]);
    let reviewer = old.token("rui", &["approver:reviewer"]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, b) = ops.post(
            "/v1/workflows/approval-flow/instances",
            &body(&Start {
                input: Input {
                    request_id: format!("P{i}"),
                    amount: 5_000,
                },
            }),
        );
        assert_eq!(s, 201, "{b}");
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    let task = ops.get(&format!("/v1/instances/{}", ids[0])).1["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = reviewer.post(
        &format!("/v1/approvals/{task}"),
        &body(&Decision {
            decision: "approve",
        }),
    );
    assert_eq!(s, 200, "{b}");
    let read = |server: &Server| {
        let ops = server.client(ops.token());
        let instances: Vec<Value> = ids
            .iter()
            .map(|id| {
                let (s, i) = ops.get(&format!("/v1/instances/{id}"));
                assert_eq!(s, 200, "{i}");
                let (s, h) = ops.get(&format!("/v1/instances/{id}/history"));
                assert_eq!(s, 200, "{h}");
                Value::Array(vec![i, h])
            })
            .collect();
        let plugins = server.admin().get("/v1/plugins").1;
        let workflows = server.admin().get("/v1/workflows").1;
        (instances, plugins, workflows)
    };
    let before = read(&old);
    let data = old.data().to_path_buf();
    old.terminate();

    let stdout = migrate(&[
        "--from",
        data.to_str().unwrap(),
        "--to",
        &url,
        "--to-schema",
        &schema.0,
    ]);
    assert!(
        stdout.contains("3 instances") && stdout.contains("1 plugin components"),
        "{stdout}"
    );

    let env = schema.env(&url);
    let node_a = Server::start_with(&env_of(&env));
    let node_b = Server::start_with(&env_of(&env));
    assert_eq!(
        read(&node_a),
        before,
        "instances, histories, plugins, workflows"
    );
    assert_eq!(read(&node_b), before);
    // Neither node's data directory held the component: it came from the database.
    let invoke = |server: &Server, plugin: &str| {
        let (s, run) = server.client(developer.token()).post(
            &format!("/v1/plugins/{plugin}/invoke"),
            &body(&InvokeRequest {
                input: waystation_tests::sample("delay-early-warning", "late-regular"),
            }),
        );
        assert_eq!(s, 200, "{run}");
        run["outcome"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(invoke(&node_b, "order-health-score"), "ok");
    // A plugin uploaded to one node is known to and runs on the other at once.
    node_a
        .client(developer.token())
        .upload_plugin("order-priority");
    assert_eq!(
        node_b
            .client(developer.token())
            .get("/v1/plugins/order-priority")
            .0,
        200
    );
    assert_ne!(invoke(&node_b, "order-priority"), "", "it ran on node b");
    // The decision made before the move still counts; the next one is taken on node b.
    let task = node_b
        .client(ops.token())
        .get(&format!("/v1/instances/{}", ids[1]))
        .1["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = node_b.client(reviewer.token()).post(
        &format!("/v1/approvals/{task}"),
        &body(&Decision {
            decision: "approve",
        }),
    );
    assert_eq!(s, 200, "{b}");
    let in_postgres = read(&node_a);
    drop(node_a);
    drop(node_b);

    let back = std::env::temp_dir().join(format!("waystation-from-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&back);
    let stdout = migrate(&[
        "--from",
        &url,
        "--from-schema",
        &schema.0,
        "--to",
        back.to_str().unwrap(),
    ]);
    assert!(stdout.contains("2 plugin components"), "{stdout}");
    let single = Server::start_in(&back, &[]);
    assert_eq!(read(&single), in_postgres, "back on one machine, as it was");
    drop(single);
    let _ = std::fs::remove_dir_all(&back);

    // Into a database that already holds a store: refused, nothing changed.
    let out = Command::new(waystation_bin())
        .args(["store", "migrate", "--from"])
        .arg(&data)
        .args(["--to", &url, "--to-schema", &schema.0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
