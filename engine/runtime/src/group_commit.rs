//! Group commit: commands apply their batches, then wait here for a flush that covers them.
//! One flusher thread takes every waiter queued so far, flushes once, and answers them all,
//! so concurrent commands share one fsync and no reply goes out before its data is on disk.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use waystation_store::{Store, StoreError};

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// The flusher's queue and thread.
pub struct GroupCommit {
    queue: Option<mpsc::UnboundedSender<Waiter>>,
    // Joined on drop, so the store (and sled's file lock) is released when the engine is.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl GroupCommit {
    /// Starts the flusher thread for `store`. It stops when the `GroupCommit` is dropped.
    ///
    /// # Panics
    /// If the OS refuses to start a thread.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("waystation-flush".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut waiters = vec![first];
                    while let Ok(w) = rx.try_recv() {
                        waiters.push(w);
                    }
                    let result = store.flush();
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "flush failed; commands are not acknowledged");
                    }
                    tracing::trace!(batch = waiters.len(), "group flush");
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .expect("start the flush thread");
        GroupCommit {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Waits until everything committed before this call is durable.
    ///
    /// # Errors
    /// The flush's error; the commit is then visible but may not survive a crash.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the flusher has stopped".into()))?
            .send(tx)
            .map_err(|_| StoreError::Backend("the flusher has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the flusher has stopped".into()))?
    }
}
