//! What copying a whole store needs of PostgreSQL (see `crate::transfer`): instance ids and
//! idempotency records in key order, and a message written as it is.

use super::commit::enqueue;
use super::{from_json, PgStore};
use crate::records::{DueTimer, IdempotencyRecord, OutboxRecord};
use crate::{StoreError, TransferStore};

impl TransferStore for PgStore {
    fn instance_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            Ok(c.query(
                "SELECT id FROM instances WHERE $1::text IS NULL OR id > $1
                 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn idempotency_records(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, IdempotencyRecord)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(|c| {
            c.query(
                "SELECT key, record FROM idempotency WHERE $1::text IS NULL OR key > $1
                 ORDER BY key LIMIT $2",
                &[&after, &limit],
            )
        })?;
        rows.iter()
            .map(|r| {
                let key: String = r.get(0);
                let record = from_json(&format!("idempotency record {key}"), r.get(1))?;
                Ok((key, record))
            })
            .collect()
    }

    fn restore_timer(&self, timer: &DueTimer) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            // As the commit writes such a row: none for an instance no longer stored.
            tx.exec(
                "INSERT INTO timers (instance_id, timer_id, due)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM instances WHERE id = $1)
                 ON CONFLICT (instance_id, timer_id) DO NOTHING",
                &[&timer.instance_id, &timer.timer_id, &timer.due],
            )?;
            tx.commit()
        })
    }

    fn restore_message(&self, record: &OutboxRecord) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            enqueue(&mut tx, record)?;
            tx.commit()
        })
    }
}
