//! The report folder: a thread of its own that folds the store's pending report delta
//! records into their cells (issue 15's rollups) once [`REPORT_FOLD_AT`] of them are
//! pending, and at least every [`IDLE_FOLD`] while any are.
//!
//! Why a thread: a fold of a few hundred records is milliseconds of CPU (reading, merging and
//! writing cells). Folding on the committing thread put that on one of tokio's two workers
//! every few hundred commands, stalling every task queued there. Commits only nudge the
//! folder (an atomic load and, past the mark, a non-blocking send); the store still folds on
//! the committing thread past a large backlog, so records cannot pile up without bound if
//! this thread falls behind, and a report read folds what is left first, so reports never
//! miss an applied commit.

use crate::owned_thread::OwnedThread;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use waystation_store::{Store, REPORT_FOLD_AT};

/// The longest pending records wait for a fold while fewer than [`REPORT_FOLD_AT`] are.
pub const IDLE_FOLD: Duration = Duration::from_secs(1);

/// The folder's wake-up channel and thread; the thread stops when this is dropped (and is
/// joined, so the store is released when the runtime is).
pub struct Folder {
    // A one-slot channel: a nudge while one is queued is dropped (the fold to come takes
    // everything pending), so sending never blocks.
    folder: OwnedThread<mpsc::SyncSender<()>>,
}

impl Folder {
    /// Starts the folder thread for `store`.
    ///
    /// # Panics
    /// If the OS refuses to start a thread.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (wake, rx) = mpsc::sync_channel::<()>(1);
        Folder {
            folder: OwnedThread::spawn("waystation-fold", wake, move || {
                fold_loop(store.as_ref(), &rx)
            }),
        }
    }

    /// Called after every commit: wakes the folder when `store` has [`REPORT_FOLD_AT`]
    /// records pending. Never blocks.
    pub fn nudge(&self, store: &dyn Store) {
        if store.reports_pending() >= REPORT_FOLD_AT {
            if let Some(wake) = self.folder.sender() {
                let _ = wake.try_send(());
            }
        }
    }
}

/// Folds on every nudge, and every [`IDLE_FOLD`] when records are pending, until the
/// runtime is dropped.
fn fold_loop(store: &dyn Store, rx: &mpsc::Receiver<()>) {
    loop {
        match rx.recv_timeout(IDLE_FOLD) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) if store.reports_pending() > 0 => {}
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if let Err(e) = store.fold_reports() {
            // The records stay pending; the next fold, or a report read (which returns
            // the error to its caller), takes them.
            tracing::warn!(error = %e, "folding the report rollups failed; retried on the next nudge");
        }
    }
}
