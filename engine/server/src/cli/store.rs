//! `waystation store migrate`: copies a store with its plugin registry - a data directory on
//! any embedded engine, or a PostgreSQL database - into a new data directory or an empty
//! database; and the start-up check that picks the engine of an existing data directory.

use crate::config::{plugin_dir, store_dir};
use std::io::Write;
use std::path::{Path, PathBuf};
use waystation_store::{AnyKv, Engine, KvStore, Store, StoreError};
use waystation_wasm::RegistryStorage;

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
    /// A plugin registry could not be opened or copied.
    #[error("{context}")]
    Registry {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: waystation_wasm::HostError,
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

/// One side of `waystation store migrate`: a data directory (an embedded store and the
/// plugin registry under it) or a PostgreSQL database (store and registry in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A data directory.
    Dir(PathBuf),
    /// A database: its URL and the schema holding Waystation's tables (`None`: the
    /// user's default).
    Postgres {
        /// `postgres://...` or `postgresql://...`.
        url: String,
        /// The schema, as `[store] schema`.
        schema: Option<String>,
    },
}

impl Location {
    /// `text` as a location: a `postgres://` or `postgresql://` URL is a database (in
    /// `schema`), anything else a data directory.
    pub fn parse(text: &str, schema: Option<String>) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres {
                url: text.to_owned(),
                schema,
            }
        } else {
            Location::Dir(PathBuf::from(text))
        }
    }

    fn describe(&self) -> String {
        match self {
            Location::Dir(dir) => dir.display().to_string(),
            Location::Postgres { schema, .. } => format!(
                "the PostgreSQL database{}",
                schema
                    .as_ref()
                    .map(|s| format!(" (schema {s})"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// A store opened for copying, with its plugin registry.
struct Opened {
    store: std::sync::Arc<dyn Store>,
    registry: Box<dyn RegistryStorage>,
    what: String,
}

/// `waystation store migrate --from FROM --to TO [--engine E]`: copies everything of FROM
/// (definitions, versions, instances with their history, timers, tasks, outbox messages,
/// idempotency records, tokens, schedules, and the plugin registry) into TO, which must be
/// new or empty. Between two data directories the store is copied key by key (batches of
/// 1,024, then one flush) onto `to_engine`; when either side is PostgreSQL it is copied
/// record by record through the store traits (see `waystation_store::transfer`) and the
/// report rollups are recomputed on TO. Prints what it copied. No server may be running
/// on FROM or TO.
///
/// # Errors
/// [`StoreSetupError`]: no store in FROM, TO not empty, IO, store and registry errors.
pub fn migrate(
    from: &Location,
    to: &Location,
    to_engine: Engine,
    out: &mut dyn Write,
) -> Result<(), StoreSetupError> {
    if let (Location::Dir(from), Location::Dir(to)) = (from, to) {
        return migrate_dirs(from, to, to_engine, out);
    }
    let source = open_source(from)?;
    let target = open_target(to, to_engine)?;
    let copied = waystation_store::transfer(source.store.as_ref(), target.store.as_ref()).map_err(
        |source| StoreSetupError::Store {
            context: format!("copying {} to {}", from.describe(), to.describe()),
            source,
        },
    )?;
    let plugins =
        waystation_wasm::copy_registry(source.registry.as_ref(), target.registry.as_ref())
            .map_err(|source| StoreSetupError::Registry {
                context: format!(
                    "copying the plugin registry of {} to {}",
                    from.describe(),
                    to.describe()
                ),
                source,
            })?;
    let _ = writeln!(
        out,
        "copied {} definition versions, {} instances ({} history entries, {} pending \
         sub-workflow records), {} outbox messages, {} idempotency records, {} tokens, {} \
         schedules and {} plugin components ({} bytes) from {} to {}",
        copied.definitions,
        copied.instances,
        copied.history_entries,
        copied.relays,
        copied.messages,
        copied.idempotency,
        copied.tokens,
        copied.schedules,
        plugins.components,
        plugins.bytes,
        source.what,
        target.what
    );
    Ok(())
}

/// Opens FROM, which must hold a store.
fn open_source(from: &Location) -> Result<Opened, StoreSetupError> {
    match from {
        Location::Dir(data) => {
            let dir = store_dir(data);
            let Some(engine) = Engine::detect(&dir) else {
                return Err(StoreSetupError::NothingToMigrate(
                    data.display().to_string(),
                ));
            };
            let kv = engine.open(&dir).map_err(|source| StoreSetupError::Store {
                context: format!("cannot open the {engine} store in {}", dir.display()),
                source,
            })?;
            Ok(Opened {
                store: std::sync::Arc::new(KvStore::new(kv)),
                registry: dir_registry(&plugin_dir(data))?,
                what: format!("the {engine} store in {}", data.display()),
            })
        }
        Location::Postgres { .. } => open_postgres(from),
    }
}

/// Opens (creating) TO, which must be new or empty.
fn open_target(to: &Location, engine: Engine) -> Result<Opened, StoreSetupError> {
    match to {
        Location::Dir(data) => {
            if is_non_empty(data) {
                return Err(StoreSetupError::TargetNotEmpty(data.display().to_string()));
            }
            let dir = store_dir(data);
            let kv = engine.open(&dir).map_err(|source| StoreSetupError::Store {
                context: format!("cannot create the {engine} store in {}", dir.display()),
                source,
            })?;
            Ok(Opened {
                store: std::sync::Arc::new(KvStore::new(kv)),
                registry: dir_registry(&plugin_dir(data))?,
                what: format!("a {engine} store in {}", data.display()),
            })
        }
        Location::Postgres { .. } => open_postgres(to),
    }
}

fn open_postgres(at: &Location) -> Result<Opened, StoreSetupError> {
    let Location::Postgres { url, schema } = at else {
        unreachable!("called for a database only");
    };
    let options = waystation_store::PgOptions {
        schema: schema.clone(),
        ..waystation_store::PgOptions::new(url.clone())
    };
    let store =
        std::sync::Arc::new(waystation_store::PgStore::open(&options).map_err(|source| {
            StoreSetupError::Store {
                context: format!("cannot open {}", at.describe()),
                source,
            }
        })?);
    let what = format!("{store:?}");
    Ok(Opened {
        registry: Box::new(crate::shared_plugins::PgRegistry::new(store.clone())),
        store,
        what,
    })
}

fn dir_registry(dir: &Path) -> Result<Box<dyn RegistryStorage>, StoreSetupError> {
    let storage =
        waystation_wasm::DirStorage::open(dir).map_err(|source| StoreSetupError::Registry {
            context: format!("cannot open the plugin registry in {}", dir.display()),
            source,
        })?;
    Ok(Box::new(storage))
}

/// Copies one data directory's store key by key onto `to_engine`, and its plugin registry
/// file by file (each synced). TO must be new or empty.
fn migrate_dirs(
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
