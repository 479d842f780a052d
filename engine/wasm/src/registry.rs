//! The registry: an index naming component digests (name -> versions -> digest, world,
//! size) with per-plugin limits, kept with the component bytes in a [`RegistryStorage`]
//! (files of this node, or a database all nodes share).

use crate::errors::HostError;
use crate::limits::Limits;
use crate::storage::RegistryStorage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::RwLock;
use waystation_core::{PluginRef, World};

/// One registered version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Registered name.
    pub name: String,
    /// Version under that name: 1, 2, ... in the order they were added.
    pub version: u32,
    /// Hex SHA-256 of the component bytes.
    pub digest: String,
    /// The world it implements.
    pub world: World,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was added, in seconds since the Unix epoch.
    pub added_at: u64,
    /// Who uploaded it (the token behind the request); `None` for versions added before
    /// uploads recorded it and for the engine's own tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<waystation_core::Actor>,
}

impl PluginInfo {
    /// The pinned reference to exactly this version: `name@sha256:<digest>`.
    pub fn pinned(&self) -> PluginRef {
        PluginRef {
            name: self.name.clone(),
            digest: Some(self.digest.clone()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    versions: Vec<PluginInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    format: u32,
    plugins: BTreeMap<String, Entry>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            format: 1,
            plugins: BTreeMap::new(),
        }
    }
}

/// How many times a change to a shared index is tried against other nodes' changes.
const SAVE_ATTEMPTS: u32 = 16;

/// How long a node trusts its copy of a shared index before asking the storage whether it
/// moved (one small read). A name or pinned digest this node does not know is looked up at
/// once, so a plugin uploaded on another node runs here at its first call; only which
/// version is *newest* can lag by this much.
pub(crate) const SHARED_INDEX_TTL: std::time::Duration = std::time::Duration::from_millis(500);

/// The cached index and the revision it was read at.
struct Cached {
    revision: u64,
    index: Index,
    checked: std::time::Instant,
}

/// Names, versions and limits, backed by a [`RegistryStorage`]: an index document plus
/// component bytes by digest. The index is cached; for a shared storage it is re-read when
/// its revision moved ([`SHARED_INDEX_TTL`]) or a lookup misses.
pub(crate) struct Registry {
    storage: Box<dyn RegistryStorage>,
    cached: RwLock<Cached>,
    /// True when other processes write the storage (its revision is worth checking).
    shared: bool,
}

impl Registry {
    /// Opens the registry kept in `storage`, reading its index.
    pub(crate) fn open(storage: Box<dyn RegistryStorage>) -> Result<Registry, HostError> {
        let shared = storage.revision()?.is_some();
        let (revision, index) = read_index(storage.as_ref())?;
        Ok(Registry {
            storage,
            cached: RwLock::new(Cached {
                revision,
                index,
                checked: std::time::Instant::now(),
            }),
            shared,
        })
    }

    /// Where the registry is kept.
    pub(crate) fn describe(&self) -> String {
        self.storage.describe()
    }

    /// The storage, for copying a registry.
    pub(crate) fn storage(&self) -> &dyn RegistryStorage {
        self.storage.as_ref()
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, Cached> {
        self.cached.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the index again when the shared storage's revision moved (checked at most every
    /// [`SHARED_INDEX_TTL`] unless `force`). A storage error keeps the cached copy
    /// (logged): a database hiccup must not make every plugin unknown.
    fn refresh(&self, force: bool) {
        if !self.shared {
            return;
        }
        if !force && self.cache().checked.elapsed() < SHARED_INDEX_TTL {
            return;
        }
        let result = self.storage.revision().and_then(|revision| {
            if revision == Some(self.cache().revision) {
                self.cache_mut().checked = std::time::Instant::now();
                return Ok(());
            }
            let (revision, index) = read_index(self.storage.as_ref())?;
            let mut cached = self.cache_mut();
            if revision >= cached.revision {
                *cached = Cached {
                    revision,
                    index,
                    checked: std::time::Instant::now(),
                };
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(registry = %self.describe(), "cannot refresh the plugin index, using the cached one: {e}");
        }
    }

    /// Answers `read` from the cached index; on `None` from a shared storage, reads the index
    /// again and asks once more (the answer may have been added on another node).
    fn lookup<T>(&self, read: impl Fn(&Index) -> Option<T>) -> Option<T> {
        self.refresh(false);
        if let Some(found) = read(&self.cache().index) {
            return Some(found);
        }
        if !self.shared {
            return None;
        }
        self.refresh(true);
        read(&self.cache().index)
    }

    /// Applies `change` to the newest index and saves it, retrying against other writers.
    /// `change` returns what to answer and whether the index changed at all.
    fn update<T>(
        &self,
        change: impl Fn(&mut Index) -> Result<(T, bool), HostError>,
    ) -> Result<T, HostError> {
        let mut cached = self.cache_mut();
        for attempt in 0..SAVE_ATTEMPTS {
            if attempt > 0 || self.shared {
                let (revision, index) = read_index(self.storage.as_ref())?;
                *cached = Cached {
                    revision,
                    index,
                    checked: std::time::Instant::now(),
                };
            }
            let mut next = cached.index.clone();
            let (answer, changed) = change(&mut next)?;
            if !changed {
                return Ok(answer);
            }
            let mut text =
                serde_json::to_vec_pretty(&next).map_err(|source| HostError::EncodeIndex {
                    location: self.describe(),
                    source,
                })?;
            text.push(b'\n');
            if self.storage.save_index(cached.revision, &text)? {
                *cached = Cached {
                    revision: cached.revision + 1,
                    index: next,
                    checked: std::time::Instant::now(),
                };
                return Ok(answer);
            }
        }
        Err(HostError::Contended {
            location: self.describe(),
            attempts: SAVE_ATTEMPTS,
        })
    }

    /// Stores the bytes of `digest` unless already there.
    pub(crate) fn store_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), HostError> {
        self.storage.put_blob(digest, bytes)
    }

    /// Reads the bytes of `digest`.
    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, HostError> {
        self.storage.get_blob(digest)
    }

    /// The version of `name` with these bytes, if any.
    pub(crate) fn find(&self, name: &str, digest: &str) -> Option<PluginInfo> {
        self.lookup(|index| find_in(index, name, digest))
    }

    /// Whether any name refers to `digest`.
    pub(crate) fn references(&self, digest: &str) -> bool {
        self.lookup(|index| {
            index
                .plugins
                .values()
                .any(|e| e.versions.iter().any(|v| v.digest == digest))
                .then_some(())
        })
        .is_some()
    }

    /// Records a new version of `name` (or returns the existing one with these bytes).
    pub(crate) fn insert(
        &self,
        name: &str,
        digest: &str,
        world: World,
        size: u64,
        uploaded_by: Option<&waystation_core::Actor>,
    ) -> Result<PluginInfo, HostError> {
        let added_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.update(|index| {
            if let Some(existing) = find_in(index, name, digest) {
                return Ok((existing, false));
            }
            let entry = index.plugins.entry(name.to_owned()).or_default();
            let version = entry.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
            let info = PluginInfo {
                name: name.to_owned(),
                version,
                digest: digest.to_owned(),
                world,
                size,
                added_at,
                uploaded_by: uploaded_by.cloned(),
            };
            entry.versions.push(info.clone());
            Ok((info, true))
        })
    }

    /// The newest version of `reference.name`, or the pinned one.
    pub(crate) fn resolve(&self, reference: &PluginRef) -> Option<PluginInfo> {
        self.lookup(|index| {
            let versions = &index.plugins.get(&reference.name)?.versions;
            match &reference.digest {
                Some(digest) => versions.iter().find(|v| &v.digest == digest).cloned(),
                None => versions.iter().max_by_key(|v| v.version).cloned(),
            }
        })
    }

    /// Every version of every plugin, by name then version.
    pub(crate) fn list(&self) -> Vec<PluginInfo> {
        self.refresh(false);
        self.cache()
            .index
            .plugins
            .values()
            .flat_map(|e| e.versions.iter().cloned())
            .collect()
    }

    /// The limits set for `name`, if any.
    pub(crate) fn limits(&self, name: &str) -> Option<Limits> {
        self.refresh(false);
        self.cache().index.plugins.get(name).and_then(|e| e.limits)
    }

    /// Sets (or with `None` clears) the limits of an existing plugin.
    pub(crate) fn set_limits(&self, name: &str, limits: Option<Limits>) -> Result<(), HostError> {
        self.update(|index| {
            index
                .plugins
                .get_mut(name)
                .ok_or_else(|| HostError::UnknownPlugin(name.to_owned()))?
                .limits = limits;
            Ok(((), true))
        })
    }
}

fn find_in(index: &Index, name: &str, digest: &str) -> Option<PluginInfo> {
    index
        .plugins
        .get(name)?
        .versions
        .iter()
        .find(|v| v.digest == digest)
        .cloned()
}

/// The stored index and its revision; an empty index at revision 0 when none is stored.
fn read_index(storage: &dyn RegistryStorage) -> Result<(u64, Index), HostError> {
    match storage.load_index()? {
        None => Ok((0, Index::default())),
        Some(stored) => {
            let index = serde_json::from_slice(&stored.document).map_err(|source| {
                HostError::CorruptIndex {
                    location: storage.describe(),
                    source,
                }
            })?;
            Ok((stored.revision, index))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DirStorage;

    fn open(dir: &std::path::Path) -> Registry {
        Registry::open(Box::new(DirStorage::open(dir).unwrap())).unwrap()
    }

    #[test]
    fn versions_count_up_and_identical_bytes_are_not_added_twice() {
        let dir = tempfile::tempdir().unwrap();
        let reg = open(dir.path());
        let a = reg
            .insert("p", &"a".repeat(64), World::Scorer, 10, None)
            .unwrap();
        let b = reg
            .insert("p", &"b".repeat(64), World::Scorer, 11, None)
            .unwrap();
        let again = reg
            .insert("p", &"a".repeat(64), World::Scorer, 10, None)
            .unwrap();
        assert_eq!((a.version, b.version, again.version), (1, 2, 1));
        let newest = reg.resolve(&PluginRef::parse("p").unwrap()).unwrap();
        assert_eq!(newest.version, 2);
        let pinned = reg.resolve(&a.pinned()).unwrap();
        assert_eq!(pinned.version, 1);
    }

    #[test]
    fn the_index_survives_reopening_and_keeps_limits() {
        let dir = tempfile::tempdir().unwrap();
        {
            let reg = open(dir.path());
            reg.insert("n", &"c".repeat(64), World::Notifier, 5, None)
                .unwrap();
            let limits = Limits {
                time_budget_ms: 250,
                ..Limits::default()
            };
            reg.set_limits("n", Some(limits)).unwrap();
            assert!(reg.set_limits("missing", None).is_err());
        }
        let reg = open(dir.path());
        assert_eq!(reg.list().len(), 1);
        assert_eq!(reg.limits("n").unwrap().time_budget_ms, 250);
    }

    #[test]
    fn a_corrupt_index_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.json"), b"{not json").unwrap();
        let opened = Registry::open(Box::new(DirStorage::open(dir.path()).unwrap()));
        let Err(e @ HostError::CorruptIndex { .. }) = opened else {
            panic!("a damaged index was not refused as corrupt");
        };
        let json = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<serde_json::Error>())
            .expect("the parser's error is the source");
        assert_eq!(json.classify(), serde_json::error::Category::Syntax);
    }

    /// A registry storage other processes write too, in memory: what a database gives the
    /// registry (revisions it must notice), without one. The real one is tested against
    /// PostgreSQL in the server's tests.
    #[derive(Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<(u64, Option<Vec<u8>>)>>);

    impl RegistryStorage for Shared {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn load_index(&self) -> Result<Option<crate::StoredIndex>, HostError> {
            let g = self.0.lock().unwrap();
            Ok(g.1.clone().map(|document| crate::StoredIndex {
                revision: g.0,
                document,
            }))
        }
        fn revision(&self) -> Result<Option<u64>, HostError> {
            Ok(Some(self.0.lock().unwrap().0))
        }
        fn save_index(&self, expected: u64, document: &[u8]) -> Result<bool, HostError> {
            let mut g = self.0.lock().unwrap();
            if g.0 != expected {
                return Ok(false);
            }
            *g = (expected + 1, Some(document.to_vec()));
            Ok(true)
        }
        fn put_blob(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
            Ok(())
        }
        fn get_blob(&self, digest: &str) -> Result<Vec<u8>, HostError> {
            Err(HostError::UnknownPlugin(digest.to_owned()))
        }
        fn blobs(&self) -> Result<Vec<String>, HostError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn two_nodes_on_one_shared_index_number_versions_once_and_see_each_others_uploads() {
        let shared = Shared::default();
        let node = || Registry::open(Box::new(Shared(shared.0.clone()))).unwrap();
        let (a, b) = (node(), node());
        let v1 = a
            .insert("p", &"a".repeat(64), World::Scorer, 1, None)
            .unwrap();
        // b's cached index is older than a's upload: the miss makes it read again.
        assert_eq!(b.resolve(&PluginRef::parse("p").unwrap()), Some(v1.clone()));
        // b adds from a cache that may be stale: it saves against the newest, so 2.
        let v2 = b
            .insert("p", &"b".repeat(64), World::Scorer, 1, None)
            .unwrap();
        assert_eq!(v2.version, 2);
        // a finds the pinned version at once (a miss), and v2 as newest once its copy
        // is older than the TTL.
        assert_eq!(a.resolve(&v2.pinned()), Some(v2.clone()));
        std::thread::sleep(SHARED_INDEX_TTL);
        assert_eq!(a.resolve(&PluginRef::parse("p").unwrap()), Some(v2));
        a.set_limits(
            "p",
            Some(Limits {
                time_budget_ms: 50,
                ..Limits::default()
            }),
        )
        .unwrap();
        std::thread::sleep(SHARED_INDEX_TTL);
        assert_eq!(b.limits("p").unwrap().time_budget_ms, 50);
    }
}
