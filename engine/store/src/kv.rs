//! The ordered key-value backend under every collection: in memory (a `BTreeMap`), fjall,
//! sled and redb. Everything above this trait is written once.

use crate::StoreError;

/// One change in an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
}

/// The first key after every key that starts with `prefix`: the exclusive end of a scan
/// of `prefix`, `None` when no key is (an empty prefix or one of `0xff` bytes only).
///
/// Why a scan needs its end: in an LSM engine (fjall) a deleted key stays as a tombstone
/// until compaction, and an iterator without an end walks over every tombstone after the
/// prefix's last live key to find the next live key past it, only to stop there. Behind
/// the report delta records lie the timer index's deletions, thousands of them.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|b| *b != 0xff)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

/// A key and its value, as read.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// Up to `n` entries of `prefix` after `after` (exclusive), in key order: a chunk of a
/// walk that resumes after the last key of the chunk before (in an LSM store, not over
/// the deletions the chunks before made).
///
/// # Errors
/// As [`Kv::scan`].
pub(crate) fn collect<B: Kv + ?Sized>(
    kv: &B,
    prefix: &[u8],
    after: Option<&[u8]>,
    n: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    kv.scan(prefix, after, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        out.len() < n
    })?;
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_before_the_first_key_that_does_not_start_with_it() {
        assert_eq!(prefix_end(b"rm\0"), Some(b"rm\x01".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
        assert!(b"rm\0\xff\xff".as_slice() < prefix_end(b"rm\0").unwrap().as_slice());
    }
}
