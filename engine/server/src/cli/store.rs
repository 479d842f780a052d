//! `waystation store migrate`: copies a data directory's store, whatever its engine, into a
//! new data directory on another engine, with its plugin registry; and the start-up check
//! that picks the engine of an existing data directory.

use crate::config::{plugin_dir, store_dir};
use std::io::Write;
use std::path::Path;
use waystation_store::{AnyKv, Engine, StoreError};

/// Keys per batch written to the target store.
const BATCH_KEYS: usize = 1024;

/// Why the store of a data directory cannot be opened or copied.
#[derive(Debug, thiserror::Error)]
pub enum StoreSetupError {
    /// The data directory holds a store of another engine than the one configured.
    #[error(
        "{dir} holds a {found} store, but the configuration asks for {wanted}. Start with \
         [store] engine = \"{found}\" (or WAYSTATION_STORE_ENGINE={found}), or copy it to a \
         new data directory on {wanted} with `waystation store migrate --from {data} --to \
         NEW_DIR --engine {wanted}` and start on NEW_DIR"
    )]
    OtherEngine {
        /// The store directory.
        dir: String,
        /// The data directory.
        data: String,
        /// The engine whose files are there.
        found: Engine,
        /// The engine configured.
        wanted: Engine,
    },
    /// The store directory holds files that are no engine's.
    #[error(
        "{0} is not empty but holds no fjall, sled or redb store; refusing to start an empty \
         store beside it"
    )]
    Unrecognised(String),
    /// The source data directory has no store.
    #[error("{0} holds no store to migrate")]
    NothingToMigrate(String),
    /// The data directory has no store to work on.
    #[error("{0} holds no store")]
    NoStore(String),
    /// The target data directory already has a store or plugins.
    #[error("{0} is not empty; migrate into a new data directory")]
    TargetNotEmpty(String),
    /// The store failed.
    #[error("{context}")]
    Store {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: StoreError,
    },
    /// A file could not be copied.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the store of data directory `data`: the engine whose files are there (or `wanted`,
/// or the default, for a new directory). Refuses a store of another engine than `wanted`,
/// and a non-empty store directory that no engine recognises.
///
/// # Errors
/// [`StoreSetupError`] as above; the engine's open errors.
pub fn open_store(data: &Path, wanted: Option<Engine>) -> Result<AnyKv, StoreSetupError> {
    let dir = store_dir(data);
    let engine = match (Engine::detect(&dir), wanted) {
        (Some(found), Some(wanted)) if found != wanted => {
            return Err(StoreSetupError::OtherEngine {
                dir: dir.display().to_string(),
                data: data.display().to_string(),
                found,
                wanted,
            })
        }
        (Some(found), _) => found,
        (None, wanted) => {
            if is_non_empty(&dir) {
                return Err(StoreSetupError::Unrecognised(dir.display().to_string()));
            }
            wanted.unwrap_or(Engine::DEFAULT)
        }
    };
    engine.open(&dir).map_err(|source| StoreSetupError::Store {
        context: format!("cannot open the {engine} store in {}", dir.display()),
        source,
    })
}

fn is_non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// `waystation store migrate --from FROM --to TO [--engine E]`: copies every key of FROM's
/// store into a new store of engine `to_engine` in TO (in batches of 1,024 keys, then one
/// flush), and FROM's plugin registry file by file (each synced). TO must be new or empty.
/// Prints what it copied. The server must not be running on FROM.
///
/// # Errors
/// [`StoreSetupError`]: no store in FROM, TO not empty, IO and store errors.
pub fn migrate(
    from: &Path,
    to: &Path,
    to_engine: Engine,
    out: &mut dyn Write,
) -> Result<(), StoreSetupError> {
    let from_dir = store_dir(from);
    let Some(from_engine) = Engine::detect(&from_dir) else {
        return Err(StoreSetupError::NothingToMigrate(
            from.display().to_string(),
        ));
    };
    if is_non_empty(to) {
        return Err(StoreSetupError::TargetNotEmpty(to.display().to_string()));
    }
    let source = from_engine
        .open(&from_dir)
        .map_err(|source| StoreSetupError::Store {
            context: format!(
                "cannot open the {from_engine} store in {}",
                from_dir.display()
            ),
            source,
        })?;
    let to_dir = store_dir(to);
    let target = to_engine
        .open(&to_dir)
        .map_err(|source| StoreSetupError::Store {
            context: format!(
                "cannot create the {to_engine} store in {}",
                to_dir.display()
            ),
            source,
        })?;
    let copied = waystation_store::copy(&source, &target, BATCH_KEYS).map_err(|source| {
        StoreSetupError::Store {
            context: format!("copying {} to {}", from_dir.display(), to_dir.display()),
            source,
        }
    })?;
    let plugins = copy_tree(&plugin_dir(from), &plugin_dir(to))?;
    sync_dir(to)?;
    let _ = writeln!(
        out,
        "copied {} keys ({} bytes) from the {from_engine} store in {} to a {to_engine} store in {}, and {plugins} plugin registry files",
        copied.keys,
        copied.bytes,
        from.display(),
        to.display()
    );
    Ok(())
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StoreSetupError {
    move |source| StoreSetupError::Io { context, source }
}

fn sync_dir(dir: &Path) -> Result<(), StoreSetupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

/// Copies the files under `from` to `to` (made), each synced, with their directories.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, StoreSetupError> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(0); // no plugin registry yet
    };
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    let mut files = 0;
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot list {}", from.display())))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry
            .file_type()
            .map_err(io(format!("cannot read {}", src.display())))?;
        if kind.is_dir() {
            files += copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)
                .and_then(|_| std::fs::File::open(&dst)?.sync_all())
                .map_err(io(format!(
                    "cannot copy {} to {}",
                    src.display(),
                    dst.display()
                )))?;
            files += 1;
        }
    }
    sync_dir(to)?;
    Ok(files)
}
