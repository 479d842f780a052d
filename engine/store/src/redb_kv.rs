//! The redb backend: a copy-on-write B-tree in one file. A batch is one write transaction
//! committed without a sync ([`redb::Durability::None`]: visible at once, kept until the
//! process stops); [`Kv::flush`] commits an empty transaction with
//! [`redb::Durability::Immediate`], which makes it and every transaction before it durable
//! with an `fsync` of the file. After a crash the file opens at its last durable commit.

use crate::kv::{Kv, Mutation};
use crate::StoreError;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use std::ops::Bound;
use std::path::Path;

/// The one table every collection lives in (the key layout is `crate::keys`).
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("waystation");

/// The database file inside the store directory.
pub const FILE: &str = "waystation.redb";

/// Page cache, in bytes.
const CACHE_BYTES: usize = 256 * 1024 * 1024;

/// A redb database with one table.
pub struct RedbKv {
    db: Database,
}

impl std::fmt::Debug for RedbKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbKv").finish_non_exhaustive()
    }
}

fn backend<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl Fn(E) -> StoreError {
    move |e| StoreError::backend_from(format!("redb {what}"), e)
}

impl RedbKv {
    /// Opens (or creates) the database file in directory `path`.
    ///
    /// # Errors
    /// When the directory cannot be created, the file cannot be opened (another process
    /// holds it) or is damaged.
    pub fn open(path: &Path) -> Result<RedbKv, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| {
            StoreError::backend_from(format!("cannot create {}", path.display()), e)
        })?;
        let file = path.join(FILE);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&file)
            .map_err(|e| {
                StoreError::backend_from(
                    format!("cannot open the redb store at {}", file.display()),
                    e,
                )
            })?;
        // The table exists from the first open on, so readers never meet its absence.
        let tx = db.begin_write().map_err(backend("begin"))?;
        tx.open_table(TABLE).map_err(backend("open table"))?;
        tx.commit().map_err(backend("commit"))?;
        Ok(RedbKv { db })
    }
}

impl Kv for RedbKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(backend("begin read"))?;
        let table = tx.open_table(TABLE).map_err(backend("open table"))?;
        Ok(table
            .get(key)
            .map_err(backend("get"))?
            .map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_read().map_err(backend("begin read"))?;
        let table = tx.open_table(TABLE).map_err(backend("open table"))?;
        let range = match after {
            Some(a) => table.range::<&[u8]>((Bound::Excluded(a), Bound::Unbounded)),
            None => table.range::<&[u8]>(prefix..),
        }
        .map_err(backend("range"))?;
        for item in range {
            let (k, v) = item.map_err(backend("scan"))?;
            let (k, v) = (k.value(), v.value());
            if !k.starts_with(prefix) || !visit(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(backend("begin"))?;
        tx.set_durability(Durability::None)
            .map_err(backend("durability"))?;
        {
            let mut table = tx.open_table(TABLE).map_err(backend("open table"))?;
            for m in batch {
                match m {
                    Mutation::Put(k, v) => {
                        table
                            .insert(k.as_slice(), v.as_slice())
                            .map_err(backend("insert"))?;
                    }
                    Mutation::Delete(k) => {
                        table.remove(k.as_slice()).map_err(backend("remove"))?;
                    }
                }
            }
        }
        tx.commit().map_err(backend("commit"))
    }

    fn flush_holds_commits(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(backend("begin"))?;
        tx.set_durability(Durability::Immediate)
            .map_err(backend("durability"))?;
        tx.commit().map_err(backend("durable commit"))
    }
}
