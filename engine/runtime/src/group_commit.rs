//! Group commit: commands apply their batches, then wait here for a flush that covers them.
//! One flusher thread takes every waiter queued so far, flushes once, and answers them all,
//! so concurrent commands share one fsync and no reply goes out before its data is on disk.
//!
//! How long to wait before a flush depends on the store
//! ([`Store::flush_holds_commits`]):
//! - A flush that lets commits go on (fjall syncs its journal outside its writer lock):
//!   flush as soon as one command waits. The commands that apply during the sync queue up
//!   and make up the next flush, so under load every flush covers what one sync time
//!   brought, and a command waits at most for the sync under way and its own.
//! - A flush that holds commits (sled's holds its database-wide lock, the read side of the
//!   lock every `apply_batch` takes for writing, while it waits for the disk): flushing as
//!   soon as the first waiter arrives gives flushes of one or two batches, and the database
//!   spends most of its time locked for them. Under concurrent load the flusher first
//!   collects for as long as the previous flush took, which lets the commands that are ready
//!   apply, then flushes them together. When commands come one at a time (the last flush
//!   covered one), it flushes at once and adds no latency.

use crate::owned_thread::OwnedThread;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use waystation_store::{Store, StoreError};

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// The longest the flusher collects before a flush, whatever the last flush took.
const MAX_COLLECT: Duration = Duration::from_millis(10);

/// The flusher's queue and thread (joined on drop, so the store and sled's file lock are
/// released when the engine is).
pub struct GroupCommit {
    // std's channel, for `recv_timeout`; sending never blocks, so async code may send.
    flusher: OwnedThread<mpsc::Sender<Waiter>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `store`. It stops when the `GroupCommit` is dropped.
    ///
    /// # Panics
    /// If the OS refuses to start a thread.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, rx) = mpsc::channel::<Waiter>();
        GroupCommit {
            flusher: OwnedThread::spawn("waystation-flush", queue, move || {
                flusher(store.as_ref(), &rx)
            }),
        }
    }

    /// Waits until everything committed before this call is durable.
    ///
    /// # Errors
    /// The flush's error; the commit is then visible but may not survive a crash.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.flusher
            .sender()
            .ok_or_else(|| StoreError::backend("the flusher has stopped"))?
            .send(tx)
            .map_err(|_| StoreError::backend("the flusher has stopped"))?;
        rx.await
            .map_err(|_| StoreError::backend("the flusher has stopped"))?
    }
}

/// The flusher thread's loop, until every sender is gone.
fn flusher(store: &dyn Store, rx: &mpsc::Receiver<Waiter>) {
    // How long to collect before the next flush: for a store whose flush holds commits, the
    // last flush's duration when it covered more than one command; else nothing.
    let holds = store.flush_holds_commits();
    let mut collect = Duration::ZERO;
    while let Ok(first) = rx.recv() {
        let until = Instant::now() + collect;
        let mut waiters = vec![first];
        loop {
            while let Ok(w) = rx.try_recv() {
                waiters.push(w);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(w) => waiters.push(w),
                Err(_) => break,
            }
        }
        let began = Instant::now();
        let result = store.flush();
        collect = if holds && waiters.len() > 1 {
            began.elapsed().min(MAX_COLLECT)
        } else {
            Duration::ZERO
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "flush failed; commands are not acknowledged");
        }
        tracing::trace!(batch = waiters.len(), "group flush");
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use waystation_store::{Kv, KvStore, MemoryKv, Mutation};

    /// The in-memory backend, with flushes that take `FLUSH` and are counted.
    #[derive(Default)]
    struct SlowFlush {
        kv: MemoryKv,
        started: AtomicU64,
        finished: AtomicU64,
        fail: AtomicBool,
    }

    const FLUSH: Duration = Duration::from_millis(2);

    /// A handle the test keeps while the store owns another.
    struct Shared(Arc<SlowFlush>);

    impl Kv for Shared {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.kv.get(key)
        }
        fn scan(
            &self,
            prefix: &[u8],
            after: Option<&[u8]>,
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), StoreError> {
            self.0.kv.scan(prefix, after, visit)
        }
        fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
            self.0.kv.apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.0.started.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(FLUSH);
            self.0.finished.fetch_add(1, Ordering::SeqCst);
            if self.0.fail.load(Ordering::SeqCst) {
                return Err(StoreError::backend("disk full"));
            }
            self.0.kv.flush()
        }
    }

    fn setup() -> (Arc<SlowFlush>, Arc<GroupCommit>) {
        let kv = Arc::new(SlowFlush::default());
        let store: Arc<dyn Store> = Arc::new(KvStore::new(Shared(kv.clone())));
        (kv, Arc::new(GroupCommit::start(store)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_answer_follows_a_flush_begun_after_the_call() {
        let (kv, gc) = setup();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200u64 {
            let (kv, gc) = (kv.clone(), gc.clone());
            tasks.spawn(async move {
                tokio::time::sleep(Duration::from_micros(i * 50)).await;
                let started_before = kv.started.load(Ordering::SeqCst);
                gc.durable().await.unwrap();
                assert!(
                    kv.finished.load(Ordering::SeqCst) > started_before,
                    "answered before a flush that began after the call had finished"
                );
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        // Concurrent waiters share flushes.
        assert!(kv.finished.load(Ordering::SeqCst) < 200);
    }

    #[tokio::test]
    async fn one_at_a_time_each_call_gets_its_own_flush() {
        let (kv, gc) = setup();
        for n in 1..=5 {
            gc.durable().await.unwrap();
            assert_eq!(kv.finished.load(Ordering::SeqCst), n);
        }
    }

    #[tokio::test]
    async fn a_failed_flush_is_every_waiters_error() {
        let (kv, gc) = setup();
        kv.fail.store(true, Ordering::SeqCst);
        let (a, b) = tokio::join!(gc.durable(), gc.durable());
        assert!(a.is_err() && b.is_err());
        kv.fail.store(false, Ordering::SeqCst);
        gc.durable().await.unwrap();
    }
}
