//! Retention: idempotency records expire, finished instances are purged with everything
//! kept for them. A background loop purges in small batches on the blocking pool, each
//! batch its own store batch, so commands go on in between and are never stalled for long.

use crate::{Runtime, RuntimeError};
use chrono::TimeDelta;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long records are kept, and how the purge goes about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long an `Idempotency-Key`'s answer is kept (default 24 hours). A repeat after
    /// that is a new request.
    pub idempotency: TimeDelta,
    /// How long a completed, failed or cancelled instance is kept after it finished
    /// (default 730 days: the playbooks' two-year archive rule).
    pub finished: TimeDelta,
    /// How long report figures are kept (default 730 days): the rollup cells of 15-minute
    /// buckets older than this are deleted, so a report over those periods counts nothing.
    /// Separate from `finished`: figures may outlive the instances they count.
    pub reports: TimeDelta,
    /// How often [`Runtime::run_retention`] purges (default one minute).
    pub every: Duration,
    /// At most this many instances (or 8 times as many idempotency records) per store
    /// batch (default 32).
    pub batch: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            idempotency: TimeDelta::hours(24),
            finished: TimeDelta::days(730),
            reports: TimeDelta::days(730),
            every: Duration::from_secs(60),
            batch: 32,
        }
    }
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Idempotency records looked at (and removed unless their key was used again).
    pub idempotency: usize,
    /// Finished instances looked at (and purged unless a message of theirs is pending).
    pub instances: usize,
    /// Report cells deleted (the embedded stores delete a group's cells of one 15-minute
    /// bucket together and count them as one: see `ReportStore::purge_report_cells`).
    pub report_cells: usize,
}

impl Runtime {
    /// The retention in force.
    pub fn retention(&self) -> Retention {
        *self
            .retention
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the retention (before [`Runtime::run_retention`] starts, typically).
    pub fn set_retention(&self, retention: Retention) {
        *self
            .retention
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = retention;
    }

    /// Purges everything past its retention now, a batch at a time, each batch on the
    /// blocking pool; then waits for a group flush. Returns what it looked at.
    ///
    /// # Errors
    /// Store errors (what was purged before stays purged).
    pub async fn purge_expired(&self) -> Result<Purged, RuntimeError> {
        let retention = self.retention();
        let now = self.now();
        let batch = retention.batch.max(1);
        let mut purged = Purged::default();
        // A retention too long for the calendar keeps everything.
        while let Some(before) = now.checked_sub_signed(retention.idempotency) {
            let store = self.store.clone();
            let n =
                tokio::task::spawn_blocking(move || store.expire_idempotency(before, batch * 8))
                    .await
                    .map_err(|_| RuntimeError::ShuttingDown)??;
            purged.idempotency += n;
            if n < batch * 8 {
                break;
            }
        }
        while let Some(before) = now.checked_sub_signed(retention.finished) {
            let store = self.store.clone();
            let n = tokio::task::spawn_blocking(move || store.purge_finished(before, batch))
                .await
                .map_err(|_| RuntimeError::ShuttingDown)??;
            purged.instances += n;
            if n < batch {
                break;
            }
        }
        while let Some(before) = now.checked_sub_signed(retention.reports) {
            let store = self.store.clone();
            let (bucket, max) = (waystation_core::report::bucket(before), batch * 128);
            let n = tokio::task::spawn_blocking(move || store.purge_report_cells(bucket, max))
                .await
                .map_err(|_| RuntimeError::ShuttingDown)??;
            purged.report_cells += n;
            if n < max {
                break;
            }
        }
        if purged != Purged::default() {
            self.durability.durable().await?;
            tracing::debug!(?purged, "retention purge");
        }
        Ok(purged)
    }

    /// Purges every [`Retention::every`] until `stop` completes.
    pub async fn run_retention(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let every = self.retention().every;
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.purge_expired().await {
                tracing::warn!(error = %e, "retention purge failed; retried next round");
            }
        }
    }
}
