//! A background thread owned together with the sending end of the channel it reads:
//! dropping the owner drops the sender, which ends the thread's loop, then joins the
//! thread, so whatever the thread holds (the store, sled's file lock) is released when its
//! owner is. The group commit's flusher and the report folder are such threads.

use std::thread::JoinHandle;

/// A thread and the sender whose drop stops it.
pub(crate) struct OwnedThread<S> {
    sender: Option<S>,
    thread: Option<JoinHandle<()>>,
}

impl<S> OwnedThread<S> {
    /// Starts `run` on a thread called `name`; `run` must return once `sender` (its
    /// channel's only sender) is dropped.
    ///
    /// # Panics
    /// If the OS refuses to start a thread.
    pub(crate) fn spawn(name: &str, sender: S, run: impl FnOnce() + Send + 'static) -> Self {
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(run)
            .unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"));
        OwnedThread {
            sender: Some(sender),
            thread: Some(thread),
        }
    }

    /// The sender; `None` only while the owner is being dropped.
    pub(crate) fn sender(&self) -> Option<&S> {
        self.sender.as_ref()
    }
}

impl<S> Drop for OwnedThread<S> {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
