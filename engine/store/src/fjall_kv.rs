//! The fjall backend: the embedded default store. An LSM tree with one journal for the whole
//! database; a batch is one journal record, so after a crash it is wholly there or wholly
//! not, and [`Kv::flush`] is an `fdatasync` of that journal.
//!
//! Restart is bounded: recovery replays only the journal not yet flushed into tables, and
//! the journal is kept to at most [`MAX_JOURNAL_BYTES`] (memtables are flushed to tables in
//! the background once they reach [`MEMTABLE_BYTES`] or the journal its bound), so an open
//! reads at most that much log whatever was written since the last one.

use crate::kv::{Kv, Mutation};
use crate::StoreError;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The most journal a restart replays, in bytes: fjall's own floor (64 MiB). Replaying it
/// takes about a second on this project's build machine (BENCHMARKS.md, restart).
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Size at which a memtable is sealed and flushed to a table, in bytes, for the keyspace of
/// a store this version creates: fjall keeps the size a keyspace was created with, so a
/// store created earlier keeps its 16 MiB (`waystation store migrate` into a new directory
/// takes the new size). 32 MiB started 11 % more instances per second over HTTP than
/// 16 MiB in alternated runs (fewer flushes and compactions per command; BENCHMARKS.md,
/// "Memtable size"), for at most 160 MiB of memtables (the active one and four sealed:
/// fjall halts writers past four).
pub const MEMTABLE_BYTES: u64 = 32 * 1024 * 1024;

/// Block cache, in bytes.
pub const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// The one keyspace every collection lives in (the key layout is `crate::keys`).
const KEYSPACE: &str = "waystation";

/// A fjall database with one keyspace.
#[derive(Clone)]
pub struct FjallKv {
    db: Database,
    items: Keyspace,
    journal: Arc<ActiveJournal>,
}

/// The journal file a flush syncs, opened by the store itself.
///
/// Why not `Database::persist(SyncData)`: fjall holds its journal writer's lock for the
/// whole `fdatasync`, so every commit that arrives during a sync (a millisecond or more)
/// waits for it, and group commit degenerates into commit, sync, commit, sync. A flush
/// instead hands fjall's buffer to the OS under that lock (`PersistMode::Buffer`, a
/// `write`) and then `fdatasync`s the journal file through its own descriptor, without
/// the lock: commits go on appending while the disk syncs, and the next flush covers them.
///
/// Which file: fjall's journals are `{dir}/{n}.jnl`, the newest being the active one. A
/// rotation syncs the journal it seals (`SyncAll`) before creating the next, so whatever a
/// flush handed over either lies in a sealed, already synced journal or in the newest one,
/// which is the file synced here. The files are preallocated, so `fdatasync` covers
/// everything a read needs.
struct ActiveJournal {
    dir: PathBuf,
    /// The newest journal seen, by number, and a descriptor of it.
    open: Mutex<Option<(u64, File)>>,
}

impl ActiveJournal {
    /// `fdatasync` of the newest journal file.
    fn sync(&self) -> std::io::Result<()> {
        let newest = newest_journal(&self.dir)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = open.as_ref().is_none_or(|(n, _)| *n != newest);
        if stale {
            let file = File::open(self.dir.join(format!("{newest}.jnl")))?;
            *open = Some((newest, file));
        }
        // A descriptor opened for reading syncs the file's data like any other (the sync is
        // of the inode); the lock only guards the cached descriptor.
        match open.as_ref() {
            Some((_, file)) => file.sync_data(),
            None => Ok(()),
        }
    }
}

/// The highest `n` of the `{n}.jnl` files in `dir`.
fn newest_journal(dir: &Path) -> std::io::Result<u64> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let n = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok());
        newest = newest.max(n);
    }
    newest.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no journal file (*.jnl) in {}", dir.display()),
        )
    })
}

impl std::fmt::Debug for FjallKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallKv").finish_non_exhaustive()
    }
}

fn backend(what: &str) -> impl Fn(fjall::Error) -> StoreError + '_ {
    move |e| StoreError::backend_from(format!("fjall {what}"), e)
}

impl FjallKv {
    /// Opens (or creates) the database in directory `path`, replaying its journal.
    ///
    /// # Errors
    /// When the directory cannot be created or read, another process holds it, or the
    /// journal is damaged beyond its last complete batch.
    pub fn open(path: &Path) -> Result<FjallKv, StoreError> {
        let db = Database::builder(path)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            // Syncs are explicit (group commit); none in between.
            .manual_journal_persist(true)
            .open()
            .map_err(|e| {
                // The lock is the usual reason, and the operator's fix is elsewhere: say so.
                let hint = match e {
                    fjall::Error::Locked => {
                        " (is another waystation serving or migrating this directory? stop it first)"
                    }
                    _ => "",
                };
                StoreError::backend_from(
                    format!("cannot open the fjall store at {}{hint}", path.display()),
                    e,
                )
            })?;
        let items = db
            .keyspace(KEYSPACE, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(backend("open keyspace"))?;
        let journal = Arc::new(ActiveJournal {
            dir: path.to_path_buf(),
            open: Mutex::new(None),
        });
        Ok(FjallKv { db, items, journal })
    }

    /// Bytes the database occupies on disk (tables and journal).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the engine cannot list or measure its files.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.disk_space().map_err(backend("disk space"))
    }
}

impl Kv for FjallKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .items
            .get(key)
            .map_err(backend("get"))?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let iter = match after {
            // Bounded by the prefix's end: see `prefix_end`.
            Some(a) => {
                let end = crate::kv::prefix_end(prefix);
                if end.as_deref().is_some_and(|e| a >= e) {
                    return Ok(());
                }
                let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                self.items.range::<&[u8], _>((Bound::Excluded(a), end))
            }
            None => self.items.prefix(prefix),
        };
        for guard in iter {
            let (k, v) = guard.into_inner().map_err(backend("scan"))?;
            if !k.starts_with(prefix) || !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let mut b = self.db.batch();
        for m in batch {
            match m {
                Mutation::Put(k, v) => b.insert(&self.items, k, v),
                Mutation::Delete(k) => b.remove(&self.items, k),
            }
        }
        b.commit().map_err(backend("commit"))
    }

    fn flush(&self) -> Result<(), StoreError> {
        // See `ActiveJournal`: hand the buffer over under fjall's lock, sync outside it.
        self.db
            .persist(PersistMode::Buffer)
            .map_err(backend("write the journal buffer"))?;
        self.journal.sync().map_err(|e| {
            StoreError::backend_from(
                format!("fjall: sync the journal in {}", self.journal.dir.display()),
                e,
            )
        })
    }
}
