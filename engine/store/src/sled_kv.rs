//! The sled backend (sled 0.34, the store of Waystation's first releases, kept selectable).
//! One sled tree; a batch is applied with `Tree::apply_batch`, which sled makes 100% visible
//! or 0% visible after a crash.
//!
//! sled's own flush writes its log with `sync_file_range`, which neither flushes the drive's
//! cache nor the file's metadata, and writes large values to blob files without any sync: an
//! acknowledged command would survive `kill -9` but not a power cut. [`Kv::flush`] here
//! therefore follows sled's flush with an `fdatasync` of every blob file written since the last flush
//! and an `fsync` of their directory, then an `fdatasync` of the log file.

use crate::kv::{Kv, Mutation};
use crate::StoreError;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// A sled database.
#[derive(Debug, Clone)]
pub struct SledKv {
    db: sled::Db,
    /// sled's log file (`db`), opened again to sync it.
    log: Arc<File>,
    /// sled's blob directory and the blob files already synced.
    blobs: PathBuf,
    synced_blobs: Arc<Mutex<HashSet<std::ffi::OsString>>>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::backend_from(what, e)
}

/// `fsync` of a directory, so the names created in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync the directory {}", dir.display())))
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
                StoreError::backend_from(
                    format!("cannot open the sled store at {}", path.display()),
                    e,
                )
            })?;
        let log = File::open(path.join("db"))
            .map_err(io(format!("cannot open sled's log in {}", path.display())))?;
        // The files sled made at its first open are named in the directory durably.
        sync_dir(path)?;
        let blobs = path.join("blobs");
        let synced_blobs = std::fs::read_dir(&blobs)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        Ok(SledKv {
            db,
            log: Arc::new(log),
            blobs,
            synced_blobs: Arc::new(Mutex::new(synced_blobs)),
        })
    }

    /// `fdatasync` of the blob files written since the last flush, then of their directory.
    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let Ok(dir) = std::fs::read_dir(&self.blobs) else {
            return Ok(()); // sled makes the directory with its first blob
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut any = false;
        let present: HashSet<_> = dir.flatten().map(|e| e.file_name()).collect();
        for name in present.difference(&synced) {
            let path = self.blobs.join(name);
            match File::open(&path) {
                Ok(f) => f
                    .sync_data()
                    .map_err(io(format!("cannot sync {}", path.display())))?,
                // Removed by sled since the listing: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(format!("cannot open {}", path.display()))(e)),
            }
            any = true;
        }
        if any || present.len() != synced.len() {
            sync_dir(&self.blobs)?;
            *synced = present;
        }
        Ok(())
    }

    /// Bytes the database occupies on disk.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the engine cannot list or measure its files.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(backend)
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::backend_from("sled", e)
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

    fn flush_holds_commits(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        // Blobs first: the log names them.
        self.sync_new_blobs()?;
        self.log
            .sync_data()
            .map_err(io("cannot sync sled's log".to_owned()))
    }
}
