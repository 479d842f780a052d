//! Existing data directories: a sled store written by an earlier release is opened as sled,
//! a server configured for another engine refuses it and names the migration command, and
//! `waystation store migrate` copies everything (definitions, instances, history, tasks,
//! tokens, plugins) into a new data directory that a server then serves as it was.

use serde::Serialize;
use serde_json::Value;
use std::process::Command;
use waystation_tests::server::Server;
use waystation_tests::{serve_refused, waystation_bin};

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

/// What a migration must carry: an approval workflow with three requests (the first
/// approved), a plugin, and the tokens of a developer, an operator and a reviewer.
struct Desk {
    developer: waystation_tests::server::Client,
    ops: waystation_tests::server::Client,
    reviewer: waystation_tests::server::Client,
    ids: Vec<String>,
}

impl Desk {
    /// Fills `server`; the requests' ids start with `prefix`.
    fn fill(server: &Server, prefix: &str) -> Desk {
        server.admin().upload_workflow("approval-flow");
        let developer = server.token("dev", &["developer"]);
        developer.upload_plugin("order-health-score");
        let ops = server.token("ops", &["operator"]);
        let reviewer = server.token("rui", &["approver:reviewer"]);
        let mut ids = Vec::new();
        for i in 0..3 {
            let (s, b) = ops.post(
                "/v1/workflows/approval-flow/instances",
                &body(&Start {
                    input: Input {
                        request_id: format!("{prefix}{i}"),
                        amount: 5_000,
                    },
                }),
            );
            assert_eq!(s, 201, "{b}");
            ids.push(b["id"].as_str().unwrap().to_owned());
        }
        approve(server, &ops, &reviewer, &ids[0]);
        Desk {
            developer,
            ops,
            reviewer,
            ids,
        }
    }
}

/// The reviewer approves the open approval task of request `id` on `server`.
fn approve(
    server: &Server,
    ops: &waystation_tests::server::Client,
    reviewer: &waystation_tests::server::Client,
    id: &str,
) {
    let task = server
        .client(ops.token())
        .get(&format!("/v1/instances/{id}"))
        .1["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = server.client(reviewer.token()).post(
        &format!("/v1/approvals/{task}"),
        &body(&Decision {
            decision: "approve",
        }),
    );
    assert_eq!(s, 200, "{b}");
}

/// Everything a copy must answer as the original did: each instance with its history, the
/// plugins, the workflows.
fn read_all(
    server: &Server,
    ops: &waystation_tests::server::Client,
    ids: &[String],
) -> (Vec<Value>, Value, Value) {
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
}

#[test]
fn a_sled_data_directory_is_refused_by_a_fjall_server_and_migrated_whole() {
    let old = Server::start_with(&[("WAYSTATION_STORE_ENGINE", "sled")]);
    let Desk {
        ops, reviewer, ids, ..
    } = Desk::fill(&old, "M");
    let read = |server: &Server| read_all(server, &ops, &ids);
    let before = read(&old);
    let mut old = old;
    let data = old.data().to_path_buf();
    old.terminate();

    // Configured for fjall, the server refuses the sled directory and says what to run.
    let stderr = serve_refused(&data, &[("WAYSTATION_STORE_ENGINE", "fjall")]);
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
    let stdout = migrate(&[
        "--from",
        data.to_str().unwrap(),
        "--to",
        new.to_str().unwrap(),
    ]);
    assert!(stdout.contains("to a fjall store"), "{stdout}");

    // A second migration into the same place is refused: it is not empty.
    let stderr = migrate_refused(&[
        "--from",
        data.to_str().unwrap(),
        "--to",
        new.to_str().unwrap(),
    ]);
    assert!(stderr.contains("is not empty"), "{stderr}");

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
    approve(&migrated, &ops, &reviewer, &ids[1]);
    drop(migrated);
    let _ = std::fs::remove_dir_all(&new);
}

/// A workflow whose instances customers follow by a progress link.
const ORDERS: &str = r#"{"id": "orders", "title": "Orders", "key": "input.order_no", "start": "packing",
  "progress": {"key": true},
  "stages": {
    "packing": {"kind": "wait", "title": "Packing", "owner": "warehouse", "on": {"packed": {"to": "done"}}},
    "done": {"kind": "end", "title": "Shipped", "outcome": "shipped"}}}"#;

#[derive(Serialize)]
struct OrderStart {
    input: OrderInput,
}

#[derive(Serialize)]
struct OrderInput {
    order_no: &'static str,
}

/// The token of a progress link to `id`, made on `server`.
fn progress_token(server: &Server, ops: &waystation_tests::server::Client, id: &str) -> String {
    let _ = server;
    let (s, b) = ops.get(&format!("/v1/instances/{id}/progress-link"));
    assert_eq!(s, 200, "{b}");
    b["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Runs `migrate` with `args`, expecting it to refuse: its stderr.
fn migrate_refused(args: &[&str]) -> String {
    let out = Command::new(waystation_bin())
        .args(["store", "migrate"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "migrate {args:?} was not refused: {stderr}"
    );
    stderr
}

fn schema_exists(url: &str, schema: &str) -> bool {
    let out = Command::new("psql")
        .args(["-Atq", "-d", url, "-c"])
        .arg(format!(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{schema}'"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "1"
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
// Kept whole: one scenario told in order: the copy there, two nodes serving it, the copy back.
#[test]
fn an_embedded_store_moves_into_postgresql_and_back_with_its_plugins() {
    use waystation_tests::pg::{pg_url, Schema};
    let schema = Schema::new("migrate");
    let url = pg_url();
    let mut old = Server::start();
    let admin = old.admin();
    let Desk {
        developer,
        ops,
        reviewer,
        ids,
    } = Desk::fill(&old, "P");
    // A customer's progress link, given out before the move.
    let (s, b) = admin.put(
        "/v1/workflows/orders",
        &serde_json::from_str(ORDERS).unwrap(),
    );
    assert_eq!(s, 201, "{b}");
    let (s, b) = ops.post(
        "/v1/workflows/orders/instances",
        &body(&OrderStart {
            input: OrderInput { order_no: "ORD-7" },
        }),
    );
    assert_eq!(s, 201, "{b}");
    let order = b["id"].as_str().unwrap().to_owned();
    let link = progress_token(&old, &ops, &order);
    let follows = |server: &Server| server.client(None).get(&format!("/progress/{link}")).0;
    assert_eq!(follows(&old), 200);
    let read = |server: &Server| read_all(server, &ops, &ids);
    let before = read(&old);
    let data = old.data().to_path_buf();
    old.terminate();

    // What an operator may mistype is refused, and nothing is written anywhere.
    let stderr = migrate_refused(&[
        "--from",
        data.to_str().unwrap(),
        "--to",
        "mysql://root@127.0.0.1:3306/test",
    ]);
    assert!(stderr.contains("looks like a mysql: URL"), "{stderr}");
    assert!(!std::path::Path::new("mysql:").exists());
    let typo = format!("{}_typo", schema.0);
    let stderr = migrate_refused(&[
        "--from",
        &url,
        "--from-schema",
        &typo,
        "--to",
        "/tmp/never-made",
    ]);
    assert!(stderr.contains("holds no Waystation store"), "{stderr}");
    assert!(
        !schema_exists(&url, &typo),
        "reading a mistyped schema created it"
    );
    assert!(!std::path::Path::new("/tmp/never-made").exists());

    let stdout = migrate(&[
        "--from",
        data.to_str().unwrap(),
        "--to",
        &url,
        "--to-schema",
        &schema.0,
    ]);
    assert!(
        stdout.contains("4 instances") && stdout.contains("1 plugin components"),
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
    approve(&node_b, &ops, &reviewer, &ids[1]);
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
    assert_eq!(follows(&single), 200, "and the customer's link still opens");
    drop(single);
    let _ = std::fs::remove_dir_all(&back);

    // A copy that fails part way (here: a record of the source no longer reads) leaves a
    // target marked unfinished, says how to remove it, and no server starts on it.
    let corrupt = Command::new("psql")
        .args(["-q", "-d", &url, "-c"])
        .arg(format!(
            "UPDATE {}.instances SET state = '{{\"not\": \"a state\"}}' WHERE id = '{}'",
            schema.0, ids[2]
        ))
        .output()
        .unwrap();
    assert!(corrupt.status.success());
    let partial = std::env::temp_dir().join(format!("waystation-partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let stderr = migrate_refused(&[
        "--from",
        &url,
        "--from-schema",
        &schema.0,
        "--to",
        partial.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("marked unfinished")
            && stderr.contains(&format!("rm -r {}", partial.display())),
        "{stderr}"
    );
    let stderr = serve_refused(&partial, &[]);
    assert!(stderr.contains("unfinished copy"), "{stderr}");
    let _ = std::fs::remove_dir_all(&partial);

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

/// An orchestrator starts every node of a new installation at once: they all come up on
/// the one database (one makes the admin token and the progress link key; the others use
/// them).
#[test]
fn nodes_started_together_on_a_new_database_all_come_up() {
    use waystation_tests::pg::{pg_url, Schema};
    let schema = Schema::new("together");
    let env = schema.env(&pg_url());
    let nodes: Vec<Server> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Server::start_with(&env_of(&env))))
            .collect();
        starts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for node in &nodes {
        assert_eq!(node.client(None).get("/readyz").0, 200);
    }
}

#[test]
fn a_second_server_on_a_served_directory_is_refused_saying_why_once() {
    let server = waystation_tests::server::Server::start();
    let stderr = serve_refused(server.data(), &[]);
    assert!(
        stderr.contains("is another waystation serving or migrating this directory?"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Locked").count(),
        1,
        "each cause once: {stderr}"
    );
    // The first server goes on.
    assert_eq!(server.client(None).get("/healthz").0, 200);
}
