//! What several nodes on one database need beyond the commit's version check: claims that
//! divide due timers and messages between the nodes' schedulers and dispatchers.
//!
//! A claim is a lease in the row (`claimed_by`/`claimed_until` on timers,
//! `lease_owner`/`lease_until` on messages) measured on the database's clock, so the
//! nodes' clocks need not agree. A node that dies holds its claims until they run out; then
//! any node takes the work. A claim never decides *whether* work happens: a timer fires in
//! the commit that deletes its row, a message's outcome is written only while it is still
//! pending, so a claim that runs out mid-work costs at most a repeated delivery attempt
//! (at least once, with the message's stable id), never a second firing.

use super::PgStore;
use crate::records::DueTimer;
use crate::StoreError;
use chrono::{DateTime, Utc};
use std::time::Duration;

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl PgStore {
    /// See [`crate::TimerStore::claim_due_timers`].
    pub(crate) fn claim_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(|c| {
            let mut tx = c.tx()?;
            let rows = tx.query(
                "UPDATE timers t SET claimed_by = $3,
                    claimed_until = now() + $4::float8 * interval '1 millisecond'
                 FROM (SELECT instance_id, timer_id FROM timers
                       WHERE due <= $1
                         AND (claimed_until IS NULL OR claimed_until <= now() OR claimed_by = $3)
                       ORDER BY due, timer_id LIMIT $2
                       FOR UPDATE SKIP LOCKED) AS free
                 WHERE (t.instance_id, t.timer_id) = (free.instance_id, free.timer_id)
                 RETURNING t.due, t.timer_id, t.instance_id",
                &[&until, &limit, &self.node, &millis(lease)],
            )?;
            tx.commit()?;
            Ok(rows)
        })?;
        let mut due: Vec<DueTimer> = rows
            .iter()
            .map(|r| DueTimer {
                due: r.get(0),
                timer_id: r.get(1),
                instance_id: r.get(2),
            })
            .collect();
        due.sort_by(|a, b| (a.due, &a.timer_id).cmp(&(b.due, &b.timer_id)));
        Ok(due)
    }

    /// When the soonest timer can be claimed by this node: its due time, or when another
    /// node's claim on it runs out.
    pub(crate) fn next_claimable_timer(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.with(|c| {
            Ok(c.query_one(
                "SELECT min(CASE WHEN claimed_by IS DISTINCT FROM $1 AND claimed_until > now()
                                 THEN greatest(due, claimed_until) ELSE due END)
                 FROM timers",
                &[&self.node],
            )?
            .get(0))
        })
    }

    /// See [`crate::OutboxStore::claim_message`].
    pub(crate) fn claim(&self, id: &str, lease: Duration) -> Result<bool, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            let n = tx.exec(
                "UPDATE outbox SET lease_owner = $2,
                    lease_until = now() + $3::float8 * interval '1 millisecond'
                 WHERE id = $1 AND status = 'pending'
                   AND (lease_until IS NULL OR lease_until <= now() OR lease_owner = $2)",
                &[&id, &self.node, &millis(lease)],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    /// This node's name in claims.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }
}
