//! Small named settings every node shares, in the `meta` table: the key that signs progress
//! links (one key for all nodes, so a link made on one verifies on another), and the marker
//! of a copy into this database that has not finished (`waystation store migrate`).

use super::PgStore;
use crate::StoreError;

impl PgStore {
    /// The value stored under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`]: the database cannot be reached or read.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(
                c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
                    .map(|r| r.get(0)),
            )
        })
    }

    /// The value under `key`: the one stored, or `value`, stored now when there was none.
    /// Nodes starting together all get the one value the first of them stored.
    ///
    /// # Errors
    /// As [`PgStore::meta`].
    pub fn meta_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            tx.exec(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )?;
            let row = tx.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?;
            tx.commit()?;
            row.map(|r| r.get(0))
                .ok_or_else(|| StoreError::backend(format!("meta '{key}' vanished")))
        })
    }

    /// Stores `value` under `key`, replacing any.
    ///
    /// # Errors
    /// As [`PgStore::meta`].
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            tx.exec(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )?;
            tx.commit()
        })
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// As [`PgStore::meta`].
    pub fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            tx.exec("DELETE FROM meta WHERE key = $1", &[&key])?;
            tx.commit()
        })
    }

    /// Sessions of servers connected to this database and schema right now, from `pg_stat_activity`
    /// by the application name every server's session sets (`waystation <schema>`, see
    /// [`PgStore::open`]); a session of `waystation store migrate` is named otherwise and
    /// not counted. For the migration, which must not copy a store nodes are changing.
    ///
    /// # Errors
    /// As [`PgStore::meta`].
    pub fn connected_servers(&self) -> Result<i64, StoreError> {
        let name = super::server_application_name(self.schema.as_deref());
        self.with(|c| {
            Ok(c.query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = $1",
                &[&name],
            )?
            .get(0))
        })
    }
}
