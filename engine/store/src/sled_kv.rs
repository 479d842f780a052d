//! The sled backend: the embedded default store. One sled tree; a batch is applied with
//! `Tree::apply_batch`, which sled makes 100% visible or 0% visible after a crash.

use crate::kv::{Kv, Mutation};
use crate::StoreError;
use std::path::Path;

/// A sled database.
#[derive(Debug, Clone)]
pub struct SledKv {
    db: sled::Db,
}

impl SledKv {
    /// Opens (or creates) the database in directory `path`.
    ///
    /// # Errors
    /// When the directory cannot be created or the files cannot be opened (for example
    /// another process holds them).
    pub fn open(path: &Path) -> Result<SledKv, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            // Flushes are explicit (group commit); no background flusher racing them.
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot open the sled store at {}: {e}",
                    path.display()
                ))
            })?;
        Ok(SledKv { db })
    }

    /// Bytes the database occupies on disk.
    ///
    /// # Errors
    /// Backend IO errors.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(backend)
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let iter = match after {
            Some(a) => self
                .db
                .range::<&[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => self.db.range::<&[u8], _>(prefix..),
        };
        for item in iter {
            let (k, v) = item.map_err(backend)?;
            if !k.starts_with(prefix) || !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for m in batch {
            match m {
                Mutation::Put(k, v) => b.insert(k, v),
                Mutation::Delete(k) => b.remove(k),
            }
        }
        self.db.apply_batch(b).map_err(backend)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }
}
