//! The plugin registry of every node, in the database (issue 17: "a plugin uploaded to one
//! node runs on all"): the registry's index as one document with a revision
//! (`plugin_index`, one row), compared and swapped by its writers, and the component bytes
//! by digest (`plugin_blobs`). The host (`waystation-wasm`) keeps the index cached and
//! compiled artifacts on each node's disk; the server adapts these methods to its
//! `RegistryStorage` trait.

use super::PgStore;
use crate::StoreError;

impl PgStore {
    /// The registry index document and its revision, if one was saved.
    ///
    /// # Errors
    /// [`StoreError::Backend`]: the database cannot be reached or read.
    pub fn plugin_index(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.with(|c| {
            Ok(
                c.query_opt("SELECT revision, document FROM plugin_index", &[])?
                    .map(|r| (revision(r.get(0)), r.get(1))),
            )
        })
    }

    /// The revision of the registry index: 0 when none was saved yet. One small read,
    /// which each node makes at most every half second to notice uploads on other nodes.
    ///
    /// # Errors
    /// As [`PgStore::plugin_index`].
    pub fn plugin_index_revision(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            Ok(c.query_opt("SELECT revision FROM plugin_index", &[])?
                .map_or(0, |r| revision(r.get(0))))
        })
    }

    /// Saves `document` as revision `expected + 1` if the stored revision is `expected`
    /// (0: none stored yet); false when another node saved first. Durable when it returns
    /// (`synchronous_commit = on`).
    ///
    /// # Errors
    /// As [`PgStore::plugin_index`].
    pub fn save_plugin_index(&self, expected: u64, document: &[u8]) -> Result<bool, StoreError> {
        let expected = i64::try_from(expected)
            .map_err(|_| StoreError::Corrupt(format!("plugin index revision {expected}")))?;
        self.with(|c| {
            let mut tx = c.tx()?;
            let changed = if expected == 0 {
                tx.exec(
                    "INSERT INTO plugin_index (id, revision, document) VALUES (true, 1, $1)
                     ON CONFLICT (id) DO NOTHING",
                    &[&document],
                )?
            } else {
                tx.exec(
                    "UPDATE plugin_index SET revision = revision + 1, document = $2
                     WHERE revision = $1",
                    &[&expected, &document],
                )?
            };
            tx.commit()?;
            Ok(changed == 1)
        })
    }

    /// Stores component `bytes` under `digest` unless stored already.
    ///
    /// # Errors
    /// As [`PgStore::plugin_index`].
    pub fn put_plugin_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            tx.exec(
                "INSERT INTO plugin_blobs (digest, bytes) VALUES ($1, $2)
                 ON CONFLICT (digest) DO NOTHING",
                &[&digest, &bytes],
            )?;
            tx.commit()
        })
    }

    /// The component bytes stored under `digest`.
    ///
    /// # Errors
    /// As [`PgStore::plugin_index`].
    pub fn plugin_blob(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT bytes FROM plugin_blobs WHERE digest = $1",
                &[&digest],
            )?
            .map(|r| r.get(0)))
        })
    }

    /// Every digest with stored bytes, in order.
    ///
    /// # Errors
    /// As [`PgStore::plugin_index`].
    pub fn plugin_blobs(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            Ok(
                c.query("SELECT digest FROM plugin_blobs ORDER BY digest", &[])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }
}

/// A stored revision (a `bigint`, never negative: it starts at 1 and counts up).
fn revision(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}
