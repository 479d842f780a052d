//! Where a plugin registry keeps its index and component bytes: a directory of this node
//! ([`DirStorage`], the embedded default) or a database several nodes share (implemented
//! outside this crate, e.g. the server's PostgreSQL adapter), behind [`RegistryStorage`].
//!
//! The index is one small JSON document with a revision number. Writers compare and swap
//! it ([`RegistryStorage::save_index`]), so two nodes adding a version of the same plugin
//! at once cannot both get version 3: the loser reads the winner's index and tries again.
//! Component bytes are content-addressed (by SHA-256), so storing them is idempotent and
//! needs no coordination.

use crate::errors::HostError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The index document as stored, with the revision it was stored as (0 before the first
/// save).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIndex {
    /// Counts saves: [`RegistryStorage::save_index`] succeeds only from the current one.
    pub revision: u64,
    /// The index as JSON (the registry's own format; storages do not read it).
    pub document: Vec<u8>,
}

/// A registry's backing storage. Calls block (file or database IO): the host calls them on
/// blocking threads (uploads, plugin calls), never while holding its own locks across an
/// await.
pub trait RegistryStorage: Send + Sync + 'static {
    /// Where it is, for messages and logs (a directory, or a database without password).
    fn describe(&self) -> String;

    /// The stored index, or `None` when nothing was saved yet.
    ///
    /// # Errors
    /// The storage cannot be read ([`HostError::Io`], [`HostError::Storage`]).
    fn load_index(&self) -> Result<Option<StoredIndex>, HostError>;

    /// The current revision without the document, for a storage other processes write
    /// too: the host reloads the index when it moved. `None` for a storage only this
    /// process writes, whose index the host never needs to read again.
    ///
    /// # Errors
    /// As [`RegistryStorage::load_index`].
    fn revision(&self) -> Result<Option<u64>, HostError>;

    /// Stores `document` as revision `expected + 1` if the stored revision is still
    /// `expected`, durably before it returns. `Ok(false)`: another writer saved first;
    /// nothing was written.
    ///
    /// # Errors
    /// The storage cannot be written; nothing was saved then.
    fn save_index(&self, expected: u64, document: &[u8]) -> Result<bool, HostError>;

    /// Stores the component `bytes` under their `digest` (hex SHA-256), durably before it
    /// returns; a no-op when already stored.
    ///
    /// # Errors
    /// The storage cannot be written.
    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), HostError>;

    /// The component bytes stored under `digest`.
    ///
    /// # Errors
    /// Not stored, or the storage cannot be read.
    fn get_blob(&self, digest: &str) -> Result<Vec<u8>, HostError>;

    /// Every digest with stored bytes, for copying a registry to another storage.
    ///
    /// # Errors
    /// The storage cannot be read.
    fn blobs(&self) -> Result<Vec<String>, HostError>;
}

const INDEX: &str = "index.json";

/// The registry as files of one node: `index.json` and `<digest>.wasm`, each written to a
/// temporary file, synced, renamed into place, its directory synced.
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    /// Saves since open: this process is the directory's only writer, so the revision
    /// only guards against the host's own mistakes, and is not kept on disk.
    revision: AtomicU64,
}

impl DirStorage {
    /// Opens (creating when missing) the registry directory `dir`.
    ///
    /// # Errors
    /// [`HostError::Io`] when it cannot be created.
    pub fn open(dir: &Path) -> Result<DirStorage, HostError> {
        std::fs::create_dir_all(dir).map_err(|e| HostError::io("creating", dir, e))?;
        Ok(DirStorage {
            dir: dir.to_owned(),
            revision: AtomicU64::new(0),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.wasm"))
    }
}

impl RegistryStorage for DirStorage {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn load_index(&self) -> Result<Option<StoredIndex>, HostError> {
        let path = self.dir.join(INDEX);
        match std::fs::read(&path) {
            Ok(document) => Ok(Some(StoredIndex {
                revision: self.revision.load(Ordering::Acquire),
                document,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HostError::io("reading", &path, e)),
        }
    }

    fn revision(&self) -> Result<Option<u64>, HostError> {
        Ok(None)
    }

    fn save_index(&self, expected: u64, document: &[u8]) -> Result<bool, HostError> {
        if self.revision.load(Ordering::Acquire) != expected {
            return Ok(false);
        }
        write_atomically(&self.dir.join(INDEX), document)?;
        self.revision.store(expected + 1, Ordering::Release);
        Ok(true)
    }

    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), HostError> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, bytes)
    }

    fn get_blob(&self, digest: &str) -> Result<Vec<u8>, HostError> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|e| HostError::io("reading", &path, e))
    }

    fn blobs(&self) -> Result<Vec<String>, HostError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| HostError::io("listing", &self.dir, e))?;
        let mut digests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| HostError::io("listing", &self.dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(digest) = name.strip_suffix(".wasm") {
                if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    digests.push(digest.to_owned());
                }
            }
        }
        digests.sort();
        Ok(digests)
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

/// What [`copy_registry`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopiedRegistry {
    /// Components copied (by digest).
    pub components: u64,
    /// Bytes of those components.
    pub bytes: u64,
}

/// Copies every component and then the index from `from` to `to`, for
/// `waystation store migrate`: the components first, so the index never names bytes the
/// target lacks. `to` must hold no index yet (revision 0).
///
/// # Errors
/// Either storage fails; `to` already holds an index ([`HostError::Config`]).
pub fn copy_registry(
    from: &dyn RegistryStorage,
    to: &dyn RegistryStorage,
) -> Result<CopiedRegistry, HostError> {
    if to.load_index()?.is_some() {
        return Err(HostError::config(format!(
            "the plugin registry in {} is not empty",
            to.describe()
        )));
    }
    let mut copied = CopiedRegistry::default();
    for digest in from.blobs()? {
        let bytes = from.get_blob(&digest)?;
        to.put_blob(&digest, &bytes)?;
        copied.components += 1;
        copied.bytes += bytes.len() as u64;
    }
    if let Some(index) = from.load_index()? {
        if !to.save_index(0, &index.document)? {
            return Err(HostError::config(format!(
                "the plugin registry in {} changed while it was copied into",
                to.describe()
            )));
        }
    }
    Ok(copied)
}
