//! The PostgreSQL store (issue 17): every collection trait over tables designed for it
//! (see [`schema`]), so several engine nodes can share one database.
//!
//! **Driver and pool.** The sync `postgres` client (tokio-postgres on a small runtime of its
//! own per connection) in an r2d2 pool of at most [`PgOptions::pool_size`] connections; a
//! caller waits at most [`PgOptions::wait`] for a free one, then gets
//! [`StoreError::Backend`]. Statements are prepared once per connection and cached.
//!
//! **Calling from async code.** The runtime calls some store methods on tokio's worker
//! threads. The client blocks on its own runtime, which tokio forbids on a worker, so each
//! call runs through [`blocking`]: `block_in_place` on a multi-threaded runtime, a scoped
//! thread on a current-thread one (tests), directly elsewhere.
//!
//! **Durability.** Every connection runs with `synchronous_commit = on`, so a commit has
//! returned only once PostgreSQL flushed its WAL: visible and durable in one step.
//! [`Store::flush`](crate::Store::flush) is therefore a no-op here, and the runtime's group
//! flush answers at once (ARCHITECTURE.md, "Shared mode").

mod commit;
mod conn;
mod db_error;
mod meta;
mod outbox;
mod plugins;
mod query;
mod reads;
mod reports;
mod retention;
mod schema;
mod shared;
mod transfer;

use crate::StoreError;
use conn::{Conn, Manager};
use db_error::{db, Db};
use std::time::Duration;

pub use conn::blocking;

/// Longest `/readyz` waits for a pooled connection before answering 503.
pub const PING_WAIT: Duration = Duration::from_secs(1);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A libpq-style URL (`postgres://user@host:5432/db`) or key-value string
    /// (`host=... dbname=...`).
    pub url: String,
    /// The schema holding Waystation's tables (created when missing); `None`: the user's
    /// default (`public`). Lets several stores share one database, as tests do.
    pub schema: Option<String>,
    /// Most connections open at once (default 16).
    pub pool_size: u32,
    /// Longest a call waits for a free connection or a new one (default 5 s).
    pub wait: Duration,
    /// How long an idempotency record holds its key (default 24 h, the server's
    /// `idempotency_hours`): a commit keeping a record under a key whose record is younger
    /// is [`StoreError::Conflict`], so two nodes cannot both answer one key for the first
    /// time.
    pub idempotency_keep: Duration,
    /// Open a store that must already exist, as it is: no schema created, no migration
    /// applied, refused when the schema holds no Waystation store or one of another
    /// version. For the source of `waystation store migrate`, which must not write to what
    /// it copies (a mistyped schema must not become an empty store). Its sessions are named
    /// `waystation-migrate <schema>`, so [`PgStore::connected_servers`] does not count them.
    pub existing_only: bool,
}

impl PgOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            schema: None,
            pool_size: 16,
            wait: Duration::from_secs(5),
            idempotency_keep: Duration::from_secs(24 * 3600),
            existing_only: false,
        }
    }
}

/// The store over one PostgreSQL database (schema).
pub struct PgStore {
    pool: r2d2::Pool<Manager>,
    /// Where the pool's connections point, for messages (the URL without its password).
    target: String,
    /// This node's name in timer and message claims: random per open, so a restarted node
    /// does not take over its former claims before they run out.
    node: String,
    /// See [`PgOptions::idempotency_keep`], in milliseconds.
    idempotency_keep_ms: f64,
    /// The schema, `None` for the user's default: names this store in messages and in the
    /// servers' application name.
    schema: Option<String>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A schema name Waystation accepts: ASCII letters, digits and `_`, not starting with a
/// digit, at most 63 bytes (PostgreSQL's identifier limit), so it needs no quoting.
fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PgStore {
    /// Connects, creates the schema when missing, applies the migrations this database
    /// lacks, and opens the pool.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a bad URL or schema name, a database that cannot be
    /// reached (naming it), or one migrated by a newer release.
    pub fn open(options: &PgOptions) -> Result<PgStore, StoreError> {
        let mut config: postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::backend_from("the store URL is not valid", e))?;
        let target = describe(&config);
        let mut server_options = String::from("-c synchronous_commit=on");
        if let Some(schema) = &options.schema {
            if !valid_schema(schema) {
                return Err(StoreError::backend(format!(
                    "store schema '{schema}': use ASCII letters, digits and _, at most 63, not starting with a digit"
                )));
            }
            server_options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(&server_options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.wait);
        }
        if config.get_application_name().is_none() {
            let name = server_application_name(options.schema.as_deref());
            if options.existing_only {
                config.application_name(&name.replacen("waystation", "waystation-migrate", 1));
            } else {
                config.application_name(&name);
            }
        }
        blocking(|| {
            let mut first = config.connect(postgres::NoTls).map_err(|e| {
                StoreError::backend_from(format!("cannot connect to {target}"), Db(e))
            })?;
            if options.existing_only {
                return schema::check_existing(&mut first, options.schema.as_deref());
            }
            // Nodes starting together: one at a time creates the schema and migrates it
            // (`CREATE SCHEMA IF NOT EXISTS` itself races: two at once can both try to
            // insert it). A session lock, released below or with the connection.
            first
                .batch_execute(&format!("SELECT pg_advisory_lock({})", schema::START_LOCK))
                .map_err(db("waiting for other nodes starting"))?;
            let made = (|| {
                if let Some(schema) = &options.schema {
                    first
                        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                        .map_err(db("creating the schema"))?;
                }
                schema::migrate(&mut first)
            })();
            let _ = first.batch_execute(&format!(
                "SELECT pg_advisory_unlock({})",
                schema::START_LOCK
            ));
            made
        })?;
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.wait)
            // A broken connection is noticed by its failed statement and dropped (see
            // `Manager::has_broken`); no extra round trip per checkout.
            .test_on_check_out(false)
            .build_unchecked(Manager::new(config));
        Ok(PgStore {
            pool,
            target,
            node: node_name(),
            idempotency_keep_ms: options.idempotency_keep.as_secs_f64() * 1000.0,
            schema: options.schema.clone(),
        })
    }

    /// Where this store is, for people: `postgres://user@host:port/db`, and the schema when
    /// one was given. Never the password.
    pub fn describe(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{} (schema {schema})", self.target),
            None => self.target.clone(),
        }
    }

    /// A pooled connection.
    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool.get().map_err(|e| {
            StoreError::backend_from(format!("no database connection to {}", self.target), e)
        })
    }

    /// Runs `f` with a pooled connection, off tokio's workers (see [`blocking`]).
    pub(crate) fn with<R: Send>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        blocking(|| {
            let mut conn = self.conn()?;
            f(&mut conn)
        })
    }

    /// Checks that the database answers (`SELECT 1` on a pooled connection): for `/readyz`.
    /// Waits at most [`PING_WAIT`] for a connection, not the pool's full wait: a load
    /// balancer's health check gives up after a second or two.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when no connection can be had in time or the query fails.
    pub fn ping(&self) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.pool.get_timeout(PING_WAIT).map_err(|e| {
                StoreError::backend_from(format!("no database connection to {}", self.target), e)
            })?;
            conn.ping()
        })
    }

    /// The schema version of the database and the newest this binary knows.
    ///
    /// # Errors
    /// Database errors.
    pub fn schema_version(&self) -> Result<(i32, i32), StoreError> {
        let applied = self.with(|c| {
            let row = c.query_one(
                "SELECT coalesce(max(version), 0) FROM waystation_schema",
                &[],
            )?;
            Ok(row.get::<_, i32>(0))
        })?;
        Ok((applied, schema::newest()))
    }
}

/// The application name a server's sessions carry on this schema: how
/// [`PgStore::connected_servers`] finds them.
/// Cut to 63 bytes, as PostgreSQL keeps it (schema names are ASCII: no split character).
pub(crate) fn server_application_name(schema: Option<&str>) -> String {
    let mut name = format!("waystation {}", schema.unwrap_or("public"));
    name.truncate(63);
    name
}

/// A random node name: host-independent, unique enough for claims (64 random bits).
fn node_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// `user@host:port/db` of `config`, for messages: never the password.
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// A record from a `json` column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::unreadable(what, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_names_that_would_need_quoting_are_refused() {
        assert!(super::valid_schema("ws_test_12"));
        for bad in ["", "1abc", "a-b", "a;drop", "a b", &"x".repeat(64)] {
            assert!(!super::valid_schema(bad), "{bad}");
        }
    }
}
