//! The ordered key-value backend under every collection. Two implementations: in memory
//! (a `BTreeMap`) and sled. Everything above this trait is written once.

use crate::StoreError;

/// One change in an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
}

/// An ordered map of bytes to bytes with atomic batches.
pub trait Kv: Send + Sync + 'static {
    /// The value at `key`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the engine cannot read (an IO error).
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits entries whose key starts with `prefix`, in key order, starting after `after`
    /// (exclusive) when given, until `visit` returns false.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the engine cannot read (an IO error).
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;

    /// Applies every mutation or none: after a crash the batch is wholly there or wholly not.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the engine cannot write (an IO error, a full disk); nothing was
    /// applied then.
    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError>;

    /// Makes every applied batch durable.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the engine cannot sync its files (an IO error, a full disk):
    /// the batches applied since the last flush may then not survive a crash.
    fn flush(&self) -> Result<(), StoreError>;

    /// True when [`Kv::flush`] keeps batches from applying while it waits for the disk
    /// (sled's flush holds the database lock every batch takes; redb's is a write
    /// transaction). The group-commit flusher then lets the waiting commands apply before
    /// it flushes; for an engine whose flush lets batches go on (fjall syncs its journal
    /// outside the writer lock) it flushes as soon as one command waits, and what arrives
    /// during the sync makes up the next flush.
    fn flush_holds_commits(&self) -> bool {
        false
    }
}
