//! The shared store suite against every backend, and what only a disk can show: flushed
//! commits survive reopening the files, counts survive too, a store is copied whole from
//! one engine to another, and each engine's files are recognised.

use std::path::Path;
use waystation_core::Status;
use waystation_store::{
    conformance, copy, DefinitionStore, DiskStore, Engine, HistoryStore, InstanceStore, Kv,
    KvStore, MemoryStore, Mutation, QueryStore, Store, TimerStore, TokenStore,
};

/// Opens `dir` with `engine`. A sled database just dropped in this process may still be
/// locked for a moment by sled's IO threads finishing their work (the file lock goes with
/// the last of its handles), so a reopen waits up to 5 s for that lock; any other error,
/// or the lock still held after that, fails the test.
fn open(engine: Engine, dir: &Path) -> DiskStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match engine.open(dir) {
            Ok(kv) => return KvStore::new(kv),
            Err(e)
                if format!("{e:?}").contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {engine} at {}: {e:?}", dir.display()),
        }
    }
}

fn passes_the_shared_suite(engine: Engine) {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    conformance::run_all(&mut || {
        let dir = tempfile::tempdir().unwrap();
        let store = open(engine, dir.path());
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

#[test]
fn the_in_memory_store_passes_the_shared_suite() {
    conformance::run_all(&mut || Box::new(MemoryStore::default()));
}

#[test]
fn the_fjall_store_passes_the_shared_suite() {
    passes_the_shared_suite(Engine::Fjall);
}

#[test]
fn the_sled_store_passes_the_shared_suite() {
    passes_the_shared_suite(Engine::Sled);
}

#[test]
fn the_redb_store_passes_the_shared_suite() {
    passes_the_shared_suite(Engine::Redb);
}

fn flushed_commits_are_there_after_reopening(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(engine, dir.path());
        conformance::a_commit_writes_state_history_and_timers(&store);
        store.flush().unwrap();
    }
    assert_eq!(Engine::detect(dir.path()), Some(engine));
    let store = open(engine, dir.path());
    let state = store.instance("a").unwrap().expect("the instance survived");
    assert_eq!(
        store.history("a", 0, 1000).unwrap().len() as u64,
        state.history_len
    );
    assert!(store.next_due().unwrap().is_some(), "its timers survived");
}

#[test]
fn flushed_commits_are_there_after_reopening_the_fjall_files() {
    flushed_commits_are_there_after_reopening(Engine::Fjall);
}

#[test]
fn flushed_commits_are_there_after_reopening_the_sled_files() {
    flushed_commits_are_there_after_reopening(Engine::Sled);
}

#[test]
fn flushed_commits_are_there_after_reopening_the_redb_file() {
    flushed_commits_are_there_after_reopening(Engine::Redb);
}

#[test]
fn a_directory_without_a_store_is_no_engine_s() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Engine::detect(dir.path()), None);
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    assert_eq!(Engine::detect(dir.path()), None);
}

fn snapshot(store: &DiskStore) -> (waystation_store::Counts, Vec<u64>) {
    let statuses: Vec<u64> = [
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ]
    .iter()
    .map(|s| store.count_status(*s).unwrap())
    .collect();
    (store.counts("ticket").unwrap(), statuses)
}

#[test]
fn counts_kept_while_running_equal_the_counts_scanned_after_a_reopen() {
    for engine in Engine::ALL {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let store = open(engine, dir.path());
            // Counts asked for first, then moved by every commit of the case.
            conformance::counts_follow_every_commit(&store);
            store.flush().unwrap();
            snapshot(&store)
        };
        let store = open(engine, dir.path());
        assert_eq!(snapshot(&store), kept, "{engine}");
    }
}

#[test]
fn report_delta_records_pending_at_a_reopen_count_once_and_new_ones_do_not_overwrite_them() {
    for engine in Engine::ALL {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(engine, dir.path());
            conformance::start_tickets(&store, "a", 10);
            store.flush().unwrap();
        }
        // Ten records are pending (no fold ran); the numbering continues after them.
        let store = open(engine, dir.path());
        conformance::start_tickets(&store, "b", 10);
        assert_eq!(conformance::report_count(&store, "started"), 20, "{engine}");
        store.flush().unwrap();
        drop(store);
        let store = open(engine, dir.path());
        assert_eq!(conformance::report_count(&store, "started"), 20, "{engine}");
    }
}

/// Every key of a store, in order.
/// A store written when running business keys were kept as `ix/rkey/{workflow}/{key}/{instance}`
/// is rewritten when opened: the running order still holds its number (a second order
/// with it is refused), and nothing of the earlier layout is left.
#[test]
fn running_business_keys_kept_in_the_earlier_layout_are_rewritten_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let old = |parts: &[&[u8]]| waystation_store::keys::key(parts);
    {
        let store = open(Engine::Fjall, dir.path());
        conformance::start_keyed_ticket(&store, "first", "ORDER-1");
        conformance::start_keyed_ticket(&store, "second", "ORDER-2");
        // Back to the earlier layout, as the previous version wrote it.
        let mut batch = Vec::new();
        for (id, key) in [("first", "ORDER-1"), ("second", "ORDER-2")] {
            batch.push(Mutation::Delete(old(&[
                b"ix",
                b"rk",
                b"ticket",
                key.as_bytes(),
            ])));
            batch.push(Mutation::Put(
                old(&[b"ix", b"rkey", b"ticket", key.as_bytes(), id.as_bytes()]),
                Vec::new(),
            ));
        }
        store.backend().apply(batch).unwrap();
        store.flush().unwrap();
    }
    let store = open(Engine::Fjall, dir.path());
    assert_eq!(
        store.running_with_key("ticket", "ORDER-1").unwrap(),
        None,
        "before the upgrade the point key is not there (what the upgrade is for)"
    );
    assert_eq!(store.upgrade_layout().unwrap(), 2);
    assert_eq!(
        store
            .running_with_key("ticket", "ORDER-1")
            .unwrap()
            .as_deref(),
        Some("first")
    );
    assert_eq!(
        store
            .running_with_key("ticket", "ORDER-2")
            .unwrap()
            .as_deref(),
        Some("second")
    );
    let left: Vec<_> = dump(store.backend())
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"ix\0rkey\0"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        store.upgrade_layout().unwrap(),
        0,
        "an upgraded store is left alone"
    );
}

/// The keys `kv.scan(prefix, after)` visits.
fn scanned(kv: &dyn Kv, prefix: &[u8], after: Option<&[u8]>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    kv.scan(prefix, after, &mut |k, _| {
        out.push(k.to_vec());
        true
    })
    .unwrap();
    out
}

/// A scan that resumes after a key (a page of a query, a fold after its last record)
/// visits the rest of its prefix and nothing else, on every engine: with deleted keys
/// right behind the prefix (an LSM's tombstones) and with a resume point at or past the
/// prefix's end.
#[test]
fn a_scan_resumed_after_a_key_stays_within_its_prefix_on_every_engine() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let kvs: Vec<(String, Box<dyn Kv>)> = vec![
        (
            "memory".into(),
            Box::new(waystation_store::MemoryKv::default()),
        ),
        (
            "fjall".into(),
            Box::new(Engine::Fjall.open(dirs[0].path()).unwrap()),
        ),
        (
            "sled".into(),
            Box::new(Engine::Sled.open(dirs[1].path()).unwrap()),
        ),
        (
            "redb".into(),
            Box::new(Engine::Redb.open(dirs[2].path()).unwrap()),
        ),
    ];
    for (engine, kv) in &kvs {
        let mut batch: Vec<Mutation> = [&b"rm\0\x01"[..], b"rm\0\x02", b"rm\0\x03", b"ru\0x"]
            .iter()
            .map(|k| Mutation::Put(k.to_vec(), b"v".to_vec()))
            .collect();
        batch.extend((0..100u8).map(|i| Mutation::Put(vec![b'r', b'n', 0, i], Vec::new())));
        kv.apply(batch).unwrap();
        kv.apply(
            (0..100u8)
                .map(|i| Mutation::Delete(vec![b'r', b'n', 0, i]))
                .collect(),
        )
        .unwrap();
        let p = b"rm\0";
        assert_eq!(
            scanned(kv.as_ref(), p, Some(b"rm\0\x01")),
            [b"rm\0\x02".to_vec(), b"rm\0\x03".to_vec()],
            "{engine}"
        );
        assert!(
            scanned(kv.as_ref(), p, Some(b"rm\0\x03")).is_empty(),
            "{engine}"
        );
        assert!(
            scanned(kv.as_ref(), p, Some(b"rm\x01")).is_empty(),
            "{engine}: at the end"
        );
        assert!(
            scanned(kv.as_ref(), p, Some(b"ru\0x")).is_empty(),
            "{engine}: past the end"
        );
        assert_eq!(scanned(kv.as_ref(), p, None).len(), 3, "{engine}");
    }
}

fn dump(kv: &dyn Kv) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    kv.scan(b"", None, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        true
    })
    .unwrap();
    out
}

#[test]
fn a_sled_store_copied_to_fjall_holds_every_key_and_answers_the_same() {
    let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = open(Engine::Sled, from_dir.path());
    // The counting case first: it needs a store with nothing in it.
    conformance::counts_follow_every_commit(&from);
    from.put_token(&waystation_store::TokenRecord {
        id: "t1".into(),
        name: "ci".into(),
        roles: vec!["operator".into()],
        secret_sha256: "ab".repeat(32),
        created_at: chrono::Utc::now(),
    })
    .unwrap();
    from.put_definition(
        "kept",
        &serde_json::json!({"id": "kept"}),
        chrono::Utc::now(),
        None,
    )
    .unwrap();
    from.flush().unwrap();
    let keys = dump(from.backend());
    assert!(keys.len() > 20, "the case wrote a store worth copying");

    // Batches smaller than the store, so the copy crosses batch boundaries.
    let to = Engine::Fjall.open(to_dir.path()).unwrap();
    let copied = copy(from.backend(), &to, 7).unwrap();
    assert_eq!(copied.keys, keys.len() as u64);
    drop(to);

    // Reopened from disk: the copy was flushed.
    let to = open(Engine::Fjall, to_dir.path());
    assert_eq!(dump(to.backend()), keys);
    assert_eq!(snapshot(&to), snapshot(&from));
    assert_eq!(to.tokens().unwrap(), from.tokens().unwrap());
    assert_eq!(
        to.list_definitions().unwrap(),
        from.list_definitions().unwrap()
    );
    let all = waystation_store::InstanceQuery {
        limit: 1000,
        ..Default::default()
    };
    let instances = from.query(&all).unwrap().items;
    assert!(!instances.is_empty());
    assert_eq!(to.query(&all).unwrap().items, instances);
}
