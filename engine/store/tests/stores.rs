//! The shared store suite against both backends, and what only a disk can show.

use waystation_store::{conformance, MemoryStore, SledStore, Store};

#[test]
fn the_in_memory_store_passes_the_shared_suite() {
    conformance::run_all(&mut || Box::new(MemoryStore::default()));
}

#[test]
fn the_sled_store_passes_the_shared_suite() {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    conformance::run_all(&mut || {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

#[test]
fn flushed_commits_are_there_after_reopening_the_sled_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        conformance::a_commit_writes_state_history_and_timers(&store);
        store.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    use waystation_store::{HistoryStore, InstanceStore, TimerStore};
    let state = store.instance("a").unwrap().expect("the instance survived");
    assert_eq!(
        store.history("a", 0, 1000).unwrap().len() as u64,
        state.history_len
    );
    assert!(store.next_due().unwrap().is_some(), "its timers survived");
}

#[test]
fn counts_kept_while_running_equal_the_counts_scanned_after_a_reopen() {
    use waystation_core::Status;
    use waystation_store::QueryStore;
    let dir = tempfile::tempdir().unwrap();
    let snapshot = |store: &SledStore| {
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
    };
    let kept = {
        let store = SledStore::open(dir.path()).unwrap();
        // Counts asked for first, then moved by every commit of the case.
        conformance::counts_follow_every_commit(&store);
        store.flush().unwrap();
        snapshot(&store)
    };
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(snapshot(&store), kept);
}
