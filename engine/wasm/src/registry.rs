//! The registry on disk: component bytes as `<digest>.wasm`, and `index.json` naming them
//! (name -> versions -> digest, world, size) with per-plugin limits. Every write goes to a
//! temporary file renamed into place.

use crate::errors::HostError;
use crate::limits::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use waystation_core::{PluginRef, World};

const INDEX: &str = "index.json";

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

/// Names, versions and limits, backed by `index.json` in the registry directory.
pub(crate) struct Registry {
    dir: PathBuf,
    index: RwLock<Index>,
}

impl Registry {
    /// Opens (creating when missing) the registry in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Registry, HostError> {
        std::fs::create_dir_all(dir).map_err(|e| HostError::io("creating", dir, e))?;
        let path = dir.join(INDEX);
        let index = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| HostError::CorruptIndex {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(HostError::io("reading", &path, e)),
        };
        Ok(Registry {
            dir: dir.to_owned(),
            index: RwLock::new(index),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, index: &Index) -> Result<(), HostError> {
        let mut text = serde_json::to_vec_pretty(index).map_err(|e| HostError::CorruptIndex {
            path: self.dir.join(INDEX),
            message: e.to_string(),
        })?;
        text.push(b'\n');
        write_atomically(&self.dir.join(INDEX), &text)
    }

    /// Where the bytes of `digest` are stored.
    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.wasm"))
    }

    /// Stores the bytes of `digest` unless already there.
    pub(crate) fn store_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), HostError> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, bytes)
    }

    /// Reads the bytes of `digest`.
    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, HostError> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|e| HostError::io("reading", &path, e))
    }

    /// The version of `name` with these bytes, if any.
    pub(crate) fn find(&self, name: &str, digest: &str) -> Option<PluginInfo> {
        self.read()
            .plugins
            .get(name)?
            .versions
            .iter()
            .find(|v| v.digest == digest)
            .cloned()
    }

    /// Whether any name refers to `digest`.
    pub(crate) fn references(&self, digest: &str) -> bool {
        self.read()
            .plugins
            .values()
            .any(|e| e.versions.iter().any(|v| v.digest == digest))
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
        let mut index = self.write();
        if let Some(existing) = index
            .plugins
            .get(name)
            .and_then(|e| e.versions.iter().find(|v| v.digest == digest))
        {
            return Ok(existing.clone());
        }
        let mut next = index.clone();
        let entry = next.plugins.entry(name.to_owned()).or_default();
        let version = entry.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let info = PluginInfo {
            name: name.to_owned(),
            version,
            digest: digest.to_owned(),
            world,
            size,
            added_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            uploaded_by: uploaded_by.cloned(),
        };
        entry.versions.push(info.clone());
        self.save(&next)?;
        *index = next;
        Ok(info)
    }

    /// The newest version of `reference.name`, or the pinned one.
    pub(crate) fn resolve(&self, reference: &PluginRef) -> Option<PluginInfo> {
        let index = self.read();
        let versions = &index.plugins.get(&reference.name)?.versions;
        match &reference.digest {
            Some(digest) => versions.iter().find(|v| &v.digest == digest).cloned(),
            None => versions.iter().max_by_key(|v| v.version).cloned(),
        }
    }

    /// Every version of every plugin, by name then version.
    pub(crate) fn list(&self) -> Vec<PluginInfo> {
        self.read()
            .plugins
            .values()
            .flat_map(|e| e.versions.iter().cloned())
            .collect()
    }

    /// The limits set for `name`, if any.
    pub(crate) fn limits(&self, name: &str) -> Option<Limits> {
        self.read().plugins.get(name).and_then(|e| e.limits)
    }

    /// Sets (or with `None` clears) the limits of an existing plugin.
    pub(crate) fn set_limits(&self, name: &str, limits: Option<Limits>) -> Result<(), HostError> {
        let mut index = self.write();
        let mut next = index.clone();
        next.plugins
            .get_mut(name)
            .ok_or_else(|| HostError::UnknownPlugin(name.to_owned()))?
            .limits = limits;
        self.save(&next)?;
        *index = next;
        Ok(())
    }
}

/// Writes `bytes` to a fresh temporary file beside `path`, syncs it, renames it over
/// `path`, and syncs the directory: readers see the old file or the new one, never a partial
/// one, and once it returns the new one survives a power cut (the rename is durable only
/// once its directory is synced).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
            _ => Ok(()),
        }
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        HostError::io("writing", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_and_identical_bytes_are_not_added_twice() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
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
            let reg = Registry::open(dir.path()).unwrap();
            reg.insert("n", &"c".repeat(64), World::Notifier, 5, None)
                .unwrap();
            let limits = Limits {
                time_budget_ms: 250,
                ..Limits::default()
            };
            reg.set_limits("n", Some(limits)).unwrap();
            assert!(reg.set_limits("missing", None).is_err());
        }
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.list().len(), 1);
        assert_eq!(reg.limits("n").unwrap().time_budget_ms, 250);
    }

    #[test]
    fn a_corrupt_index_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDEX), b"{not json").unwrap();
        assert!(matches!(
            Registry::open(dir.path()),
            Err(HostError::CorruptIndex { .. })
        ));
    }
}
