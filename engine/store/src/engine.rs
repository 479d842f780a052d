//! The embedded engines a server can run on, told apart by the files they leave, and
//! [`AnyKv`]: whichever of them is open, behind one [`Kv`].

use crate::kv::{Kv, Mutation};
use crate::{FjallKv, RedbKv, SledKv, StoreError};
use std::path::Path;

/// An embedded storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// fjall 3 (LSM tree, one journal, bounded recovery): the default.
    Fjall,
    /// sled 0.34, the first releases' store, made durable (see [`SledKv`]).
    Sled,
    /// redb 4 (copy-on-write B-tree in one file).
    Redb,
}

impl Engine {
    /// Every engine, the default first.
    pub const ALL: [Engine; 3] = [Engine::Fjall, Engine::Sled, Engine::Redb];

    /// The engine a new data directory gets (chosen by measurement: BENCHMARKS.md).
    pub const DEFAULT: Engine = Engine::Fjall;

    /// Its name in configuration: `fjall`, `sled` or `redb`.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Fjall => "fjall",
            Engine::Sled => "sled",
            Engine::Redb => "redb",
        }
    }

    /// The engine whose files are in `dir`, if any engine's are. Names each engine's own
    /// marker: sled's `conf` and `db`, fjall's `version` and `keyspaces/`, redb's
    /// [`crate::redb_kv::FILE`].
    pub fn detect(dir: &Path) -> Option<Engine> {
        if dir.join("conf").is_file() && dir.join("db").is_file() {
            Some(Engine::Sled)
        } else if dir.join("version").is_file() && dir.join("keyspaces").is_dir() {
            Some(Engine::Fjall)
        } else if dir.join(crate::redb_kv::FILE).is_file() {
            Some(Engine::Redb)
        } else {
            None
        }
    }

    /// Opens (or creates) a store of this engine in `dir`.
    ///
    /// # Errors
    /// The engine's open errors (see each backend).
    pub fn open(self, dir: &Path) -> Result<AnyKv, StoreError> {
        Ok(match self {
            Engine::Fjall => AnyKv::Fjall(FjallKv::open(dir)?),
            Engine::Sled => AnyKv::Sled(SledKv::open(dir)?),
            Engine::Redb => AnyKv::Redb(RedbKv::open(dir)?),
        })
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Engine::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a store engine; use fjall, sled or redb"))
    }
}

/// One open engine.
#[derive(Debug)]
pub enum AnyKv {
    /// fjall.
    Fjall(FjallKv),
    /// sled.
    Sled(SledKv),
    /// redb.
    Redb(RedbKv),
}

impl AnyKv {
    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        match self {
            AnyKv::Fjall(_) => Engine::Fjall,
            AnyKv::Sled(_) => Engine::Sled,
            AnyKv::Redb(_) => Engine::Redb,
        }
    }

    fn kv(&self) -> &dyn Kv {
        match self {
            AnyKv::Fjall(kv) => kv,
            AnyKv::Sled(kv) => kv,
            AnyKv::Redb(kv) => kv,
        }
    }
}

impl Kv for AnyKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv().get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.kv().scan(prefix, after, visit)
    }

    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        self.kv().apply(batch)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.kv().flush()
    }

    fn flush_holds_commits(&self) -> bool {
        self.kv().flush_holds_commits()
    }
}

/// What [`copy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Keys copied.
    pub keys: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// Copies every key of `from` into `to`, in batches of `batch_keys` keys, then flushes `to`.
/// `to` should be empty: keys it holds that `from` lacks are left as they are.
///
/// # Errors
/// Either side's backend errors; `to` then holds a prefix of the keys (in key order).
pub fn copy(from: &dyn Kv, to: &dyn Kv, batch_keys: usize) -> Result<Copied, StoreError> {
    let batch_keys = batch_keys.max(1);
    let mut copied = Copied { keys: 0, bytes: 0 };
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut batch = Vec::with_capacity(batch_keys);
        from.scan(b"", after.as_deref(), &mut |k, v| {
            batch.push(Mutation::Put(k.to_vec(), v.to_vec()));
            batch.len() < batch_keys
        })?;
        let last = match batch.last() {
            Some(Mutation::Put(k, _)) => k.clone(),
            _ => break,
        };
        let full = batch.len() == batch_keys;
        copied.keys += batch.len() as u64;
        copied.bytes += batch
            .iter()
            .map(|m| match m {
                Mutation::Put(k, v) => (k.len() + v.len()) as u64,
                Mutation::Delete(k) => k.len() as u64,
            })
            .sum::<u64>();
        to.apply(batch)?;
        after = Some(last);
        if !full {
            break;
        }
    }
    to.flush()?;
    Ok(copied)
}
