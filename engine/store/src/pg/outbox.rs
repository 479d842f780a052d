//! The outbox table: messages by status and queue time (pending ones by when their next
//! attempt is due), read a page or a chunk at a time.

use super::query::{cursor_in, page, page_size, parse_time, time_position};
use super::{from_json, PgStore};
use crate::records::{DeliveryUpdate, DueMessage, OutboxRecord, OutboxStatus};
use crate::{OutboxStore, StoreError};
use chrono::{DateTime, Utc};

/// Due messages read per round trip.
const CHUNK: i64 = 256;

impl OutboxStore for PgStore {
    fn outbox(
        &self,
        status: OutboxStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<OutboxRecord>, StoreError> {
        let scope = format!("outbox/{}", status.as_str());
        let limit = page_size(limit);
        let n = limit as i64 + 1;
        let position = cursor_in(cursor, &scope)?;
        let rows = match position {
            None => self.with(|c| {
                c.query(
                    "SELECT id, queue_time, record FROM outbox WHERE status = $1
                     ORDER BY queue_time, id LIMIT $2",
                    &[&status.as_str(), &n],
                )
            })?,
            Some(p) => {
                let (t, id) = p.split_once('\0').ok_or(StoreError::BadCursor)?;
                let t = parse_time(t)?;
                self.with(|c| {
                    c.query(
                        "SELECT id, queue_time, record FROM outbox WHERE status = $1
                           AND (queue_time, id) > ($2, $3)
                         ORDER BY queue_time, id LIMIT $4",
                        &[&status.as_str(), &t, &id, &n],
                    )
                })?
            }
        };
        let items = rows
            .into_iter()
            .map(|r| {
                let at: DateTime<Utc> = r.get(1);
                let position = format!("{}\0{}", time_position(at), r.get::<_, &str>(0));
                Ok((position, from_json("an outbox record", r.get(2))?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(items, limit, &scope))
    }

    fn outbox_message(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        self.with(|c| {
            c.query_opt("SELECT record FROM outbox WHERE id = $1", &[&id])?
                .map(|r| from_json(&format!("outbox record {id}"), r.get(0)))
                .transpose()
        })
    }

    fn due_messages(
        &self,
        until: DateTime<Utc>,
        after: Option<&DueMessage>,
        visit: &mut dyn FnMut(DueMessage) -> bool,
    ) -> Result<(), StoreError> {
        // Read a chunk at a time, so no connection is held while `visit` runs.
        let mut from: Option<(DateTime<Utc>, String)> = after.map(|m| (m.due, m.id.clone()));
        loop {
            let rows = match &from {
                None => self.with(|c| {
                    c.query(
                        "SELECT queue_time, id, channel FROM outbox
                         WHERE status = 'pending' AND queue_time <= $1
                           AND (lease_until IS NULL OR lease_until <= now() OR lease_owner = $3)
                         ORDER BY queue_time, id LIMIT $2",
                        &[&until, &CHUNK, &self.node()],
                    )
                })?,
                Some((t, id)) => self.with(|c| {
                    c.query(
                        "SELECT queue_time, id, channel FROM outbox
                         WHERE status = 'pending' AND queue_time <= $1
                           AND (queue_time, id) > ($2, $3)
                           AND (lease_until IS NULL OR lease_until <= now() OR lease_owner = $5)
                         ORDER BY queue_time, id LIMIT $4",
                        &[&until, t, id, &CHUNK, &self.node()],
                    )
                })?,
            };
            let exhausted = (rows.len() as i64) < CHUNK;
            for r in rows {
                let m = DueMessage {
                    due: r.get(0),
                    id: r.get(1),
                    channel: r.get(2),
                };
                from = Some((m.due, m.id.clone()));
                if !visit(m) {
                    return Ok(());
                }
            }
            if exhausted {
                return Ok(());
            }
        }
    }

    fn next_message_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.with(|c| {
            Ok(c.query_one(
                "SELECT min(CASE WHEN lease_owner IS DISTINCT FROM $1 AND lease_until > now()
                                     THEN greatest(queue_time, lease_until) ELSE queue_time END)
                     FROM outbox WHERE status = 'pending'",
                &[&self.node()],
            )?
            .get(0))
        })
    }

    fn update_message(&self, update: &DeliveryUpdate<'_>) -> Result<(), StoreError> {
        self.update_message_tx(update)
    }

    fn claim_message(&self, id: &str, lease: std::time::Duration) -> Result<bool, StoreError> {
        self.claim(id, lease)
    }
}

use crate::query::Page;
