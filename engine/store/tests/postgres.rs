//! The PostgreSQL store on the real database of this machine (CI starts it; the URL is
//! `WAYSTATION_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`). Each store
//! gets a schema of its own, dropped afterwards, so runs and cases never see each other.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use waystation_core::drive::start_until_quiet;
use waystation_core::sim::FakePlugins;
use waystation_core::{Input, Workflow};
use waystation_store::{
    conformance, Commit, HistoryStore, InstanceStore, PgOptions, PgStore, QueryStore, Store,
    StoreError, TimerStore, TokenRecord, TokenStore,
};

fn url() -> String {
    std::env::var("WAYSTATION_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other run or case uses.
fn fresh_schema() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = Utc::now().timestamp_subsec_nanos();
    format!("ws_test_{}_{n}_{nanos}", std::process::id())
}

/// A schema dropped (with everything in it) when this goes.
struct Schema(String);

impl Schema {
    fn new() -> Self {
        Schema(fresh_schema())
    }

    fn options(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.0.clone()),
            pool_size: 4,
            ..PgOptions::new(url())
        }
    }

    fn open(&self) -> PgStore {
        PgStore::open(&self.options()).expect("PostgreSQL at WAYSTATION_TEST_PG_URL (CI starts it)")
    }

    fn sql(&self, sql: &str) {
        let mut client = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {}; {sql}", self.0))
            .unwrap();
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&url(), postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
        }
    }
}

#[test]
fn the_postgres_store_passes_the_shared_suite() {
    let schemas: std::cell::RefCell<Vec<Schema>> = Default::default();
    conformance::run_all(&mut || {
        let schema = Schema::new();
        let store = schema.open();
        schemas.borrow_mut().push(schema);
        Box::new(store)
    });
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ticket() -> Workflow {
    let mut wf = Workflow::from_text(conformance::TICKET, None).unwrap();
    wf.version = 1;
    wf
}

#[test]
fn a_commit_is_durable_when_it_returns_and_another_node_sees_it() {
    let schema = Schema::new();
    let wf = ticket();
    {
        let node_a = schema.open();
        let step =
            start_until_quiet(&wf, "a".into(), json!({}), t0(), &FakePlugins::new()).unwrap();
        node_a
            .commit(&Commit {
                before: None,
                after: &step.state,
                effects: &step.effects,
                fired_timer: None,
                idempotency: None,
            })
            .unwrap();
        // No flush: synchronous_commit makes the commit itself durable.
    }
    let node_b = schema.open();
    let state = node_b.instance("a").unwrap().expect("committed by node a");
    assert_eq!(
        node_b.history("a", 0, 100).unwrap().len() as u64,
        state.history_len
    );
    assert_eq!(node_b.next_due().unwrap(), Some(t0() + TimeDelta::hours(3)));
    node_b.flush().unwrap();
}

#[test]
fn a_command_computed_from_a_state_another_node_changed_is_a_conflict() {
    let schema = Schema::new();
    let (node_a, node_b) = (schema.open(), schema.open());
    let wf = ticket();
    let plugins = FakePlugins::new();
    let start = start_until_quiet(&wf, "a".into(), json!({}), t0(), &plugins).unwrap();
    let commit = |store: &PgStore, before, step: &waystation_core::Step| {
        store.commit(&Commit {
            before,
            after: &step.state,
            effects: &step.effects,
            fired_timer: None,
            idempotency: None,
        })
    };
    commit(&node_a, None, &start).unwrap();
    assert!(
        matches!(
            commit(&node_b, None, &start),
            Err(StoreError::Conflict { .. })
        ),
        "the same instance id started twice"
    );
    let close = |at| {
        waystation_core::drive::apply_until_quiet(
            &wf,
            start.state.clone(),
            Input::Event {
                name: "close".into(),
                data: serde_json::Value::Null,
                stage: None,
            },
            at,
            &plugins,
        )
        .unwrap()
    };
    commit(
        &node_a,
        Some(&start.state),
        &close(t0() + TimeDelta::minutes(1)),
    )
    .unwrap();
    let stale = commit(
        &node_b,
        Some(&start.state),
        &close(t0() + TimeDelta::minutes(2)),
    );
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let kept = node_b.instance("a").unwrap().unwrap();
    assert_eq!(
        kept.updated_at,
        t0() + TimeDelta::minutes(1),
        "node a's close stands"
    );
    assert_eq!(
        node_b.history("a", 0, 1000).unwrap().len() as u64,
        kept.history_len,
        "the refused commit wrote no history"
    );
    assert_eq!(
        node_b
            .count_status(waystation_core::Status::Completed)
            .unwrap(),
        1
    );
}

#[test]
fn a_database_migrated_by_a_newer_release_is_refused_with_both_versions() {
    let schema = Schema::new();
    let store = schema.open();
    let (applied, known) = store.schema_version().unwrap();
    assert_eq!(
        applied, known,
        "a new database is migrated to this binary's schema"
    );
    drop(store);
    schema.sql(
        "INSERT INTO waystation_schema (version, description) VALUES (999, 'from the future')",
    );
    let err = PgStore::open(&schema.options()).unwrap_err().to_string();
    assert!(err.contains("999") && err.contains("newer"), "{err}");
    assert!(err.contains(&format!("({known})")), "{err}");
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let options = PgOptions {
        wait: std::time::Duration::from_secs(2),
        ..PgOptions::new("postgres://ws:secret-pw@127.0.0.1:1/nowhere")
    };
    let err = PgStore::open(&options).unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:1/nowhere"), "{err}");
    assert!(!err.contains("secret-pw"), "{err}");
}

/// The shared plugin registry: two nodes saving the index from the same revision cannot
/// both win (the loser reads the winner's and tries again), and component bytes stored by
/// one node are read by the other, once, whatever how often they are stored.
#[test]
fn two_nodes_saving_the_plugin_index_from_one_revision_cannot_both_win() {
    let schema = Schema::new();
    let (node_a, node_b) = (schema.open(), schema.open());
    assert_eq!(node_a.plugin_index().unwrap(), None);
    assert_eq!(node_b.plugin_index_revision().unwrap(), 0);
    assert!(node_a.save_plugin_index(0, b"{\"a\":1}").unwrap());
    assert!(
        !node_b.save_plugin_index(0, b"{\"b\":1}").unwrap(),
        "node b saved from revision 0 too: refused"
    );
    assert_eq!(node_b.plugin_index_revision().unwrap(), 1);
    assert!(node_b.save_plugin_index(1, b"{\"a\":1,\"b\":1}").unwrap());
    assert!(!node_a.save_plugin_index(1, b"{\"a\":2}").unwrap());
    assert_eq!(
        node_a.plugin_index().unwrap(),
        Some((2, b"{\"a\":1,\"b\":1}".to_vec()))
    );

    let digest = "ab".repeat(32);
    node_a.put_plugin_blob(&digest, b"\0asm component").unwrap();
    node_b.put_plugin_blob(&digest, b"\0asm component").unwrap();
    assert_eq!(
        node_b.plugin_blob(&digest).unwrap().as_deref(),
        Some(&b"\0asm component"[..])
    );
    assert_eq!(node_b.plugin_blobs().unwrap(), vec![digest]);
    assert_eq!(node_a.plugin_blob(&"cd".repeat(32)).unwrap(), None);
}

#[test]
fn a_database_that_cannot_be_reached_is_a_backend_error_that_keeps_the_clients_error() {
    // Port 9 (discard) on loopback: nothing listens there, the connection is refused.
    let options = PgOptions {
        wait: std::time::Duration::from_secs(2),
        ..PgOptions::new("postgres://waystation@127.0.0.1:9/waystation")
    };
    let Err(e) = PgStore::open(&options) else {
        panic!("a store opened on a port where nothing listens");
    };
    assert!(
        e.to_string().starts_with(
            "storage backend: cannot connect to postgres://waystation@127.0.0.1:9/waystation: "
        ),
        "{e}"
    );
    let source = std::error::Error::source(&e).expect("the client's error is the source");
    // The client's error is in the chain (behind the wrapper that shows the server's reason).
    assert!(
        std::iter::successors(Some(source), |e| e.source())
            .any(|e| e.downcast_ref::<postgres::Error>().is_some()),
        "{source:?}"
    );
}

#[test]
fn a_unique_violation_is_a_conflict_that_keeps_the_databases_error() {
    let schema = Schema::new();
    let store = schema.open();
    let token = |id: &str, secret: &str| TokenRecord {
        id: id.into(),
        name: "deploy".into(),
        roles: vec!["admin".into()],
        secret_sha256: secret.into(),
        created_at: t0(),
    };
    store.put_token(&token("t-1", "aa")).unwrap();
    let taken = store.put_token(&token("t-2", "bb"));
    let Err(e @ StoreError::Conflict { .. }) = taken else {
        panic!("a second token named 'deploy' was not a conflict: {taken:?}");
    };
    let db = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<postgres::Error>())
        .expect("the client's error is the source");
    assert_eq!(
        db.code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        "{db:?}"
    );
}
