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
    /// A `--from` or `--to` that is neither a data directory nor a PostgreSQL URL.
    #[error("{0}")]
    BadLocation(String),
    /// Servers are using the store to copy.
    #[error("{0}")]
    InUse(String),
    /// The progress link key could not be read or written.
    #[error("the progress link key: {0}")]
    Key(String),
    /// A copy failed part way: the target holds part of it, marked unfinished.
    #[error("{source}. The target now holds part of the copy and is marked unfinished (servers refuse to start on it): remove it with `{cleanup}` and run the migration again")]
    Unfinished {
        /// Why the copy failed.
        #[source]
        source: Box<StoreSetupError>,
        /// The command that removes the partial copy.
        cleanup: String,
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

/// The file that marks a data directory a copy is being written into: a server refuses to
/// start there, and the copy removes it as its last step.
pub const UNFINISHED_FILE: &str = "MIGRATION-UNFINISHED";
/// The same marker in a PostgreSQL store's `meta` table.
pub const UNFINISHED_META: &str = "migration_unfinished";

/// One side of `waystation store migrate`: a data directory (an embedded store and the
/// plugin registry under it) or a PostgreSQL database (store and registry in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A data directory.
    Dir(PathBuf),
    /// A database: its URL and the schema holding Waystation's tables (`None`: the
    /// user's default, usually `public`).
    Postgres {
        /// `postgres://...` or `postgresql://...`.
        url: String,
        /// The schema, as `[store] schema`.
        schema: Option<String>,
    },
}

impl Location {
    /// `text` as a location: a `postgres://` or `postgresql://` URL is a database (in
    /// `schema`), a path a data directory.
    ///
    /// # Errors
    /// [`StoreSetupError::BadLocation`]: another scheme (`mysql://...`), a malformed
    /// PostgreSQL URL (`postgres:/host`), or a schema given for a directory.
    pub fn parse(text: &str, schema: Option<String>) -> Result<Location, StoreSetupError> {
        let bad = |why: String| StoreSetupError::BadLocation(why);
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres {
                url: text.to_owned(),
                schema,
            });
        }
        // `scheme:` at the start: meant as a URL, never a directory name.
        let scheme = text.split_once(':').map(|(head, _)| head).filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        if let Some(scheme) = scheme {
            return Err(bad(format!(
                "'{text}' looks like a {scheme}: URL: only postgres:// and postgresql:// databases, or a data directory path, can be copied from or to"
            )));
        }
        if schema.is_some() {
            return Err(bad(format!(
                "a schema was given for the data directory '{text}': schemas are for postgres:// locations"
            )));
        }
        Ok(Location::Dir(PathBuf::from(text)))
    }

    fn describe(&self) -> String {
        match self {
            Location::Dir(dir) => dir.display().to_string(),
            Location::Postgres { schema, .. } => describe_database(schema.as_deref()),
        }
    }

    /// What to remove when a copy into here failed.
    fn cleanup(&self) -> String {
        match self {
            Location::Dir(dir) => format!("rm -r {}", dir.display()),
            Location::Postgres { schema, .. } => format!(
                "psql -c 'DROP SCHEMA {} CASCADE'",
                schema.as_deref().unwrap_or("public")
            ),
        }
    }
}

impl StoreSetupError {
    /// This error, said of a copy into `to` that stopped part way.
    fn unfinished(self, to: &Location) -> Self {
        StoreSetupError::Unfinished {
            source: Box::new(self),
            cleanup: to.cleanup(),
        }
    }
}

/// A store opened for copying, with its plugin registry.
struct Opened {
    store: std::sync::Arc<dyn Store>,
    registry: Box<dyn RegistryStorage>,
    /// The database, for the progress link key and the unfinished marker.
    pg: Option<std::sync::Arc<waystation_store::PgStore>>,
    what: String,
}

/// `waystation store migrate --from FROM --to TO [--engine E]`: copies everything of FROM
/// (definitions, versions, instances with their history, timers, tasks, outbox messages,
/// idempotency records, tokens, schedules, the progress link key and the plugin registry)
/// into TO, which must be new or empty. Between two data directories the store is copied
/// key by key (batches of 1,024, then one flush) onto `to_engine`; when either side is
/// PostgreSQL it is copied record by record through the store traits (see
/// `waystation_store::transfer`) and the report rollups are recomputed on TO. FROM is only
/// read: a PostgreSQL FROM must already hold a store of this release, and no server may be
/// connected to it. TO is marked unfinished until the copy is whole (servers refuse to
/// start on it meanwhile). Prints what it copied.
///
/// # Errors
/// [`StoreSetupError`]: no store in FROM, servers on FROM, TO not empty, IO, store and
/// registry errors (TO then holds part of a copy, marked unfinished; the message says how
/// to remove it).
pub fn migrate(
    from: &Location,
    to: &Location,
    to_engine: Option<Engine>,
    out: &mut dyn Write,
) -> Result<(), StoreSetupError> {
    if let (Location::Postgres { .. }, Some(engine)) = (to, to_engine) {
        return Err(StoreSetupError::BadLocation(format!(
            "--engine {engine} is for a data directory; the target is a PostgreSQL database"
        )));
    }
    let to_engine = to_engine.unwrap_or(Engine::DEFAULT);
    if let (Location::Dir(from), Location::Dir(to)) = (from, to) {
        return migrate_dirs(from, to, to_engine, out);
    }
    let source = open_source(from)?;
    let target = open_target(to, to_engine)?;
    mark_unfinished(to, &target, from)?;
    let copied = copy_all(from, to, &source, &target).map_err(|e| e.unfinished(to))?;
    clear_unfinished(to, &target)?;
    let (copied, plugins) = copied;
    let _ = writeln!(
        out,
        "copied {} definition versions, {} instances ({} history entries, {} pending \
         sub-workflow records), {} outbox messages, {} idempotency records, {} tokens, {} \
         schedules, the progress link key and {} plugin components ({} bytes) from {} to {}",
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

/// The store, the progress link key and the plugin registry, in that order.
fn copy_all(
    from: &Location,
    to: &Location,
    source: &Opened,
    target: &Opened,
) -> Result<
    (
        waystation_store::Transferred,
        waystation_wasm::CopiedRegistry,
    ),
    StoreSetupError,
> {
    let copied = waystation_store::transfer(source.store.as_ref(), target.store.as_ref()).map_err(
        |source| StoreSetupError::Store {
            context: format!("copying {} to {}", from.describe(), to.describe()),
            source,
        },
    )?;
    copy_progress_key(from, source, to, target)?;
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
    Ok((copied, plugins))
}

/// The key that signs progress links, so links given to customers keep working.
fn copy_progress_key(
    from: &Location,
    source: &Opened,
    to: &Location,
    target: &Opened,
) -> Result<(), StoreSetupError> {
    let key_error = |e: anyhow::Error| StoreSetupError::Key(format!("{e:#}"));
    let hex = match (from, &source.pg) {
        (_, Some(pg)) => {
            pg.meta(crate::progress_key::META_KEY)
                .map_err(|source| StoreSetupError::Store {
                    context: "reading the progress link key".into(),
                    source,
                })?
        }
        (Location::Dir(data), None) => {
            crate::progress_key::read_hex(&data.join("progress-link.key")).map_err(key_error)?
        }
        (Location::Postgres { .. }, None) => None,
    };
    let Some(hex) = hex else {
        return Ok(()); // no link was ever made there: the first start makes a key
    };
    match (to, &target.pg) {
        (_, Some(pg)) => pg
            .set_meta(crate::progress_key::META_KEY, &hex)
            .map_err(|source| StoreSetupError::Store {
                context: "writing the progress link key".into(),
                source,
            }),
        (Location::Dir(data), None) => {
            crate::progress_key::write_hex(&data.join("progress-link.key"), &hex).map_err(key_error)
        }
        (Location::Postgres { .. }, None) => Ok(()),
    }
}

fn mark_unfinished(to: &Location, target: &Opened, from: &Location) -> Result<(), StoreSetupError> {
    let what = format!("copy from {} begun", from.describe());
    match (to, &target.pg) {
        (_, Some(pg)) => {
            pg.set_meta(UNFINISHED_META, &what)
                .map_err(|source| StoreSetupError::Store {
                    context: "marking the target unfinished".into(),
                    source,
                })
        }
        (Location::Dir(data), None) => {
            let file = data.join(UNFINISHED_FILE);
            std::fs::write(&file, format!("{what}\n"))
                .and_then(|()| std::fs::File::open(&file)?.sync_all())
                .map_err(io(format!("cannot write {}", file.display())))?;
            sync_dir(data)
        }
        (Location::Postgres { .. }, None) => Ok(()),
    }
}

fn clear_unfinished(to: &Location, target: &Opened) -> Result<(), StoreSetupError> {
    match (to, &target.pg) {
        (_, Some(pg)) => pg
            .delete_meta(UNFINISHED_META)
            .map_err(|source| StoreSetupError::Store {
                context: "clearing the unfinished mark".into(),
                source,
            }),
        (Location::Dir(data), None) => {
            let file = data.join(UNFINISHED_FILE);
            std::fs::remove_file(&file).map_err(io(format!("cannot remove {}", file.display())))?;
            sync_dir(data)
        }
        (Location::Postgres { .. }, None) => Ok(()),
    }
}

/// Opens FROM, which must hold a store no server is using; nothing is written to it.
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
                context: format!(
                    "cannot open the {engine} store in {} (is a server running on it? stop it first)",
                    dir.display()
                ),
                source,
            })?;
            dir_opened(
                kv,
                data,
                format!("the {engine} store in {}", data.display()),
            )
        }
        Location::Postgres { url, schema } => {
            let pg = open_postgres(url, schema.as_deref(), true)?;
            let sessions = pg
                .connected_servers()
                .map_err(|source| StoreSetupError::Store {
                    context: format!("cannot check {} for running servers", from.describe()),
                    source,
                })?;
            if sessions > 0 {
                return Err(StoreSetupError::InUse(format!(
                    "{} has {sessions} database sessions of running servers: stop every node on it first, then copy",
                    pg.describe()
                )));
            }
            Ok(pg_opened(pg))
        }
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
            dir_opened(kv, data, format!("a {engine} store in {}", data.display()))
        }
        Location::Postgres { url, schema } => {
            let pg = open_postgres(url, schema.as_deref(), false)?;
            let unfinished = pg
                .meta(UNFINISHED_META)
                .map_err(|source| StoreSetupError::Store {
                    context: format!("cannot read {}", to.describe()),
                    source,
                })?;
            if let Some(what) = unfinished {
                return Err(StoreSetupError::TargetNotEmpty(format!(
                    "{} (it holds an unfinished copy: {what}; remove it with `{}`)",
                    pg.describe(),
                    to.cleanup()
                )));
            }
            Ok(pg_opened(pg))
        }
    }
}

/// How a database location is named in messages: by its schema (`public` when none is
/// given), never by its URL, which may hold a password.
fn describe_database(schema: Option<&str>) -> String {
    format!(
        "the PostgreSQL database (schema {})",
        schema.unwrap_or("public")
    )
}

/// Opens the store in the database at `url`, in `schema`; with `existing_only` (the source
/// of a copy), only a store that is already there, unchanged.
fn open_postgres(
    url: &str,
    schema: Option<&str>,
    existing_only: bool,
) -> Result<std::sync::Arc<waystation_store::PgStore>, StoreSetupError> {
    let options = waystation_store::PgOptions {
        schema: schema.map(str::to_owned),
        pool_size: 2,
        existing_only,
        ..waystation_store::PgOptions::new(url.to_owned())
    };
    let store =
        waystation_store::PgStore::open(&options).map_err(|source| StoreSetupError::Store {
            context: format!("cannot open {}", describe_database(schema)),
            source,
        })?;
    Ok(std::sync::Arc::new(store))
}

/// A database side: its store, and the plugin registry kept in it.
fn pg_opened(store: std::sync::Arc<waystation_store::PgStore>) -> Opened {
    Opened {
        registry: Box::new(crate::shared_plugins::PgRegistry::new(store.clone())),
        store: store.clone(),
        what: store.describe(),
        pg: Some(store),
    }
}

/// A data directory side: the store `kv` opened in it (described as `what`), and the
/// plugin registry beside it.
fn dir_opened(kv: AnyKv, data: &Path, what: String) -> Result<Opened, StoreSetupError> {
    let store = KvStore::opened(kv).map_err(|source| StoreSetupError::Store {
        context: format!("cannot upgrade the layout of {what}"),
        source,
    })?;
    Ok(Opened {
        store: std::sync::Arc::new(store),
        registry: dir_registry(&plugin_dir(data))?,
        pg: None,
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
                "cannot open the {from_engine} store in {} (is a server running on it? stop it first)",
                from_dir.display()
            ),
            source,
        })?;
    let unfinished = Location::Dir(to.to_path_buf());
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    let marker = to.join(UNFINISHED_FILE);
    std::fs::write(&marker, format!("copy from {} begun\n", from.display()))
        .and_then(|()| std::fs::File::open(&marker)?.sync_all())
        .map_err(io(format!("cannot write {}", marker.display())))?;
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
    let copy = || -> Result<(waystation_store::Copied, u64), StoreSetupError> {
        let copied = waystation_store::copy(&source, &target, BATCH_KEYS).map_err(|source| {
            StoreSetupError::Store {
                context: format!("copying {} to {}", from_dir.display(), to_dir.display()),
                source,
            }
        })?;
        let plugins = copy_tree(&plugin_dir(from), &plugin_dir(to))?;
        let key = crate::progress_key::read_hex(&from.join("progress-link.key"))
            .map_err(|e| StoreSetupError::Key(format!("{e:#}")))?;
        if let Some(hex) = key {
            crate::progress_key::write_hex(&to.join("progress-link.key"), &hex)
                .map_err(|e| StoreSetupError::Key(format!("{e:#}")))?;
        }
        Ok((copied, plugins))
    };
    let (copied, plugins) = copy().map_err(|e| e.unfinished(&unfinished))?;
    std::fs::remove_file(&marker).map_err(io(format!("cannot remove {}", marker.display())))?;
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
