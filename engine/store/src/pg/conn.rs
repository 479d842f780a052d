//! Pooled connections with their prepared statements, transactions over them, and
//! [`blocking`], which lets the sync client run where tokio would forbid it.

use super::db_error::{db, detail, Db};
use crate::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::collections::HashMap;

/// Runs `f`, which blocks on a database round trip, where that is allowed: the sync client
/// blocks on a runtime of its own, which tokio refuses on its worker threads. On a
/// multi-threaded runtime's worker `f` runs in `block_in_place` (the worker hands its other
/// tasks away meanwhile); on a current-thread runtime (tests) on a scoped thread; outside
/// any runtime, or on the blocking pool, directly.
///
/// # Panics
/// Re-raises a panic of `f`.
pub fn blocking<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let Ok(handle) = Handle::try_current() else {
        return f();
    };
    match handle.runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// Opens connections for the pool.
#[derive(Debug)]
pub(crate) struct Manager {
    config: postgres::Config,
}

impl Manager {
    pub(crate) fn new(config: postgres::Config) -> Self {
        Manager { config }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(postgres::NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// Most statements a connection keeps prepared: the fixed ones and the shapes of instance
/// queries (a few dozen); past it the cache starts over.
const MAX_STATEMENTS: usize = 512;

/// A connection and the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    /// `SELECT 1`.
    pub(crate) fn ping(&mut self) -> Result<(), StoreError> {
        self.client
            .simple_query("SELECT 1")
            .map(|_| ())
            .map_err(db("asking the database"))
    }

    /// Starts a transaction.
    pub(crate) fn tx(&mut self) -> Result<Tx<'_>, StoreError> {
        let tx = self
            .client
            .transaction()
            .map_err(db("starting a transaction"))?;
        Ok(Tx {
            tx,
            statements: &mut self.statements,
        })
    }

    /// One query outside a transaction (its own, implicitly).
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let stmt = prepared(&mut self.statements, sql, |s| self.client.prepare(s))?;
        self.client.query(&stmt, params).map_err(|e| fail(sql, e))
    }

    /// As [`Conn::query`], for at most one row.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// As [`Conn::query`], for exactly one row.
    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::backend(format!("no row from: {sql}")))
    }
}

/// The statement for `sql`, prepared on first use.
fn prepared(
    cache: &mut HashMap<String, Statement>,
    sql: &str,
    prepare: impl FnOnce(&str) -> Result<Statement, postgres::Error>,
) -> Result<Statement, StoreError> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let stmt = prepare(sql).map_err(|e| fail(sql, e))?;
    if cache.len() >= MAX_STATEMENTS {
        cache.clear();
    }
    cache.insert(sql.to_owned(), stmt.clone());
    Ok(stmt)
}

/// A failed statement, with the first line of its SQL. A unique violation, a serialisation
/// failure or a deadlock is [`StoreError::Conflict`]: another node got there first, and the
/// command may be tried again on what it wrote.
fn fail(sql: &str, e: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    let first = sql.trim().lines().next().unwrap_or_default();
    let conflict = e.code().is_some_and(|c| {
        *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
    });
    if conflict {
        StoreError::conflict_from(format!("{} [in: {first}]", detail(&e)), e)
    } else {
        StoreError::backend_from(format!("in: {first}"), Db(e))
    }
}

/// A transaction; dropped without [`Tx::commit`], it rolls back.
pub(crate) struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl Tx<'_> {
    /// Executes `sql`; the number of rows it changed.
    pub(crate) fn exec(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let tx = &mut self.tx;
        let stmt = prepared(self.statements, sql, |s| tx.prepare(s))?;
        self.tx.execute(&stmt, params).map_err(|e| fail(sql, e))
    }

    /// The rows of `sql`.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let tx = &mut self.tx;
        let stmt = prepared(self.statements, sql, |s| tx.prepare(s))?;
        self.tx.query(&stmt, params).map_err(|e| fail(sql, e))
    }

    /// As [`Tx::query`], for at most one row.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Commits.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().map_err(db("committing"))
    }
}
