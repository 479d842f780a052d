//! Retention as bounded deletes: idempotency records by keeping time, finished instances by
//! when they finished (their history, timers, tasks, field rows and messages go with them
//! by `ON DELETE CASCADE`). Rows another node is purging are skipped, not waited for.

use super::PgStore;
use crate::{RetentionStore, StoreError};
use chrono::{DateTime, Utc};

impl RetentionStore for PgStore {
    fn expire_idempotency(&self, before: DateTime<Utc>, max: usize) -> Result<usize, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut tx = c.tx()?;
            let n = tx.exec(
                "DELETE FROM idempotency WHERE key IN (
                    SELECT key FROM idempotency WHERE kept_at < $1
                    ORDER BY kept_at, key LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before, &max],
            )?;
            tx.commit()?;
            Ok(n as usize)
        })
    }

    fn purge_report_cells(&self, before: i64, max: usize) -> Result<usize, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut tx = c.tx()?;
            let n = tx.exec(
                "DELETE FROM report_cells WHERE ctid IN (
                    SELECT ctid FROM report_cells WHERE bucket < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before, &max],
            )?;
            tx.commit()?;
            Ok(n as usize)
        })
    }

    fn purge_finished(&self, before: DateTime<Utc>, max: usize) -> Result<usize, StoreError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut tx = c.tx()?;
            let ids: Vec<String> = tx
                .query(
                    "SELECT id FROM instances WHERE finished_at < $1
                     ORDER BY finished_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&before, &max],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            // One with a message still pending stays: its history may still grow.
            tx.exec(
                "DELETE FROM instances i WHERE i.id = ANY($1) AND NOT EXISTS (
                    SELECT 1 FROM outbox o WHERE o.instance_id = i.id AND o.status = 'pending')",
                &[&ids],
            )?;
            tx.commit()?;
            Ok(ids.len())
        })
    }
}
