//! Durable storage for Waystation.
//!
//! A trait per collection (definitions, instances, history, timers, approvals, outbox,
//! idempotency records, query indexes) and [`Store::commit`], which writes everything one
//! command changed as one atomic batch. [`KvStore`] implements them all once, over an
//! ordered key-value [`Kv`] backend: [`MemoryKv`] for fast logic tests and three embedded
//! engines on disk, [`FjallKv`] (the default), [`SledKv`] and [`RedbKv`], chosen by
//! [`Engine`] ([`DiskStore`] is whichever of them is open). A PostgreSQL store would
//! implement the collection traits directly (ARCHITECTURE.md says what it must guarantee).
//!
//! Visibility and durability are separate steps: a committed batch is visible at once and
//! durable after the next [`Store::flush`], so a driver can batch flushes across concurrent
//! commands (group commit) and still acknowledge nothing before it is on disk.

mod commit;
pub mod conformance;
mod engine;
mod error;
mod fjall_kv;
mod index;
pub mod keys;
mod kv;
mod kv_store;
mod memory;
pub mod pg;
pub mod query;
pub mod records;
mod redb_kv;
mod retention;
mod rollups;
mod schedules;
mod search;
mod sled_kv;
mod tally;
mod timer_floor;
mod tokens;
mod transfer;

pub use commit::Commit;
pub use engine::{copy, AnyKv, Copied, Engine};
pub use error::{BackendCause, StoreError};
pub use fjall_kv::FjallKv;
pub use kv::{Kv, Mutation};
pub use kv_store::KvStore;
pub use memory::MemoryKv;
pub use pg::{PgOptions, PgStore};
pub use query::{Bound, Counts, FieldFilter, FieldTest, InstanceQuery, Page, SortBy};
pub use records::{
    DeliveryUpdate, DueMessage, DueTimer, IdempotencyRecord, OutboxRecord, OutboxStatus,
    PutDefinition, StoredDefinition,
};
pub use redb_kv::RedbKv;
pub use rollups::Rebuilt;
pub use rollups::FOLD_AT as REPORT_FOLD_AT;
pub use rollups::{Bucket as ReportBucket, BucketError as ReportBucketError};
pub use schedules::{CatchUp, ScheduleRecord, ScheduleSpec, ScheduleStore};
pub use sled_kv::SledKv;
pub use tokens::{TokenRecord, TokenStore};
pub use transfer::{transfer, TransferStore, Transferred};

use chrono::{DateTime, Utc};
use serde_json::Value;
use waystation_core::definition::Approver;
use waystation_core::{ApprovalTask, HistoryEntry, InstanceState};

/// The in-memory store.
pub type MemoryStore = KvStore<MemoryKv>;
/// The sled store.
pub type SledStore = KvStore<SledKv>;
/// The fjall store.
pub type FjallStore = KvStore<FjallKv>;
/// The redb store.
pub type RedbStore = KvStore<RedbKv>;
/// The store of whichever embedded engine is open.
pub type DiskStore = KvStore<AnyKv>;

/// Workflow definitions, versioned.
pub trait DefinitionStore {
    /// Stores `definition` as the newest version of `id`, unless it equals the newest.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then.
    /// [`StoreError::Conflict`] (shared stores) when another node wrote the same record
    /// first; nothing was written then either.
    fn put_definition(
        &self,
        id: &str,
        definition: &Value,
        now: DateTime<Utc>,
        uploaded_by: Option<&waystation_core::Actor>,
    ) -> Result<PutDefinition, StoreError>;
    /// Version `version` of `id`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn definition(&self, id: &str, version: u32) -> Result<Option<StoredDefinition>, StoreError>;
    /// The newest version of `id`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn latest_definition(&self, id: &str) -> Result<Option<StoredDefinition>, StoreError>;
    /// Every workflow id with its newest version.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn list_definitions(&self) -> Result<Vec<(String, u32)>, StoreError>;
}

/// Instance states.
pub trait InstanceStore {
    /// The instance `id`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn instance(&self, id: &str) -> Result<Option<InstanceState>, StoreError>;
}

/// Instance histories, append-only.
pub trait HistoryStore {
    /// Up to `limit` entries of instance `id` from sequence number `from`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn history(
        &self,
        id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, StoreError>;
}

/// The durable timer index, ordered by due time.
pub trait TimerStore {
    /// Up to `limit` timers due at or before `until`, soonest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn due_timers(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<DueTimer>, StoreError>;
    /// When the soonest timer is due (in a shared store: can next be claimed).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read.
    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// The timers this node is to fire now: up to `limit` due at or before `until`,
    /// soonest first. A shared store claims them for `lease` (no other node is handed them
    /// until it runs out, so a node that dies leaves them to the others after `lease`);
    /// an embedded store has one node and hands out [`TimerStore::due_timers`]. A claim is
    /// only a division of work: the commit's version check is what makes a firing happen
    /// once.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the claim cannot be written; nothing is claimed then.
    fn claim_due_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let _ = lease;
        self.due_timers(until, limit)
    }
}

/// Open approval tasks.
pub trait ApprovalStore {
    /// The open task `id`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn task(&self, id: &str) -> Result<Option<ApprovalTask>, StoreError>;
    /// Open tasks for `approver`, a page at a time.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read; [`StoreError::BadCursor`] for a
    /// cursor this store did not hand out; [`StoreError::Unreadable`] for a record that cannot
    /// be decoded.
    fn open_tasks(
        &self,
        approver: &Approver,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApprovalTask>, StoreError>;
}

/// Messages to deliver.
pub trait OutboxStore {
    /// Messages with `status`, a page at a time: pending ones by when their next attempt is
    /// due, delivered and dead ones by when they got there, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read; [`StoreError::BadCursor`] for a
    /// cursor this store did not hand out; [`StoreError::Unreadable`] for a record that cannot
    /// be decoded.
    fn outbox(
        &self,
        status: OutboxStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<OutboxRecord>, StoreError>;
    /// The message `id`, whatever its status.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn outbox_message(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError>;
    /// Visits pending messages due at or before `until`, soonest first, starting after
    /// `after` (a message visited before) when given, until `visit` returns false. `visit`
    /// must not write to the store.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read; [`StoreError::Corrupt`] for a
    /// damaged queue key.
    fn due_messages(
        &self,
        until: DateTime<Utc>,
        after: Option<&DueMessage>,
        visit: &mut dyn FnMut(DueMessage) -> bool,
    ) -> Result<(), StoreError>;
    /// When the soonest pending message is due (in a shared store: can next be claimed).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read.
    fn next_message_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Claims pending message `id` for one delivery attempt by this node for `lease`:
    /// false when another node holds an unexpired claim (or it is no longer pending). A
    /// shared store leaves claimed messages out of [`OutboxStore::due_messages`] of other
    /// nodes until the claim runs out or the attempt's outcome is written; an embedded
    /// store has one dispatcher and always answers true.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the claim cannot be written; the message is not claimed then.
    fn claim_message(&self, id: &str, lease: std::time::Duration) -> Result<bool, StoreError> {
        let _ = (id, lease);
        Ok(true)
    }
    /// Writes one message's change and its history atomically. The caller holds the
    /// instance's lock and changes nothing of the instance but `history_len`.
    /// Durable after [`Store::flush`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then.
    fn update_message(&self, update: &DeliveryUpdate<'_>) -> Result<(), StoreError>;
}

/// Answers to commands sent with an `Idempotency-Key`.
pub trait IdempotencyStore {
    /// The record kept under `key`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Keeps `record` under `key`, for answers that are not an instance commit (a stored
    /// definition, an uploaded plugin); durable after the next flush. The caller holds the
    /// key's lock from its check to this write.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then.
    /// [`StoreError::Conflict`] (shared stores) when another node wrote the same record
    /// first; nothing was written then either.
    fn put_idempotency(&self, key: &str, record: &IdempotencyRecord) -> Result<(), StoreError>;
}

/// Instance queries on the secondary indexes.
pub trait QueryStore {
    /// Instances matching `query`, a page at a time.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read; [`StoreError::BadCursor`] for a
    /// cursor this store did not hand out; [`StoreError::Unreadable`] for a record that cannot
    /// be decoded.
    fn query(&self, query: &InstanceQuery) -> Result<Page<InstanceState>, StoreError>;
    /// Counts by stage and SLA state for `workflow`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read (an IO error, a lost database
    /// connection); [`StoreError::Unreadable`] when a stored record cannot be decoded.
    fn counts(&self, workflow: &str) -> Result<Counts, StoreError>;
    /// The running instance of `workflow` with business key `key`, if any (there is at
    /// most one: the runtime checks under the key's lock before a start commits).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read.
    fn running_with_key(&self, workflow: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// How many instances have `status`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read.
    fn count_status(&self, status: waystation_core::Status) -> Result<u64, StoreError>;
    /// One bounded step of building the counts that [`QueryStore::counts`] and
    /// [`QueryStore::count_status`] answer from (built on first use otherwise); true once
    /// they are built. Lets a server build them in the background after it starts, and
    /// stop in between steps.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails; the counts built so far stay and the
    /// next step goes on from them.
    fn build_counts_step(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Retention: what is removed once it is old enough. Each call does a bounded amount of
/// work (at most `max` records) as one batch, so a caller purging a large backlog
/// interleaves with commands instead of stalling them. Durable after [`Store::flush`].
pub trait RetentionStore {
    /// Removes up to `max` idempotency records kept before `before` (records without a
    /// keeping time are never removed); returns how many were looked at (fewer than `max`:
    /// nothing older is left).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails; nothing was removed then.
    fn expire_idempotency(&self, before: DateTime<Utc>, max: usize) -> Result<usize, StoreError>;

    /// Purges up to `max` instances that finished (completed, failed or were cancelled)
    /// before `before`: the state, its whole history, its timers, tasks and inbox entries,
    /// its index entries and counts, and its outbox messages with their queue entries. An
    /// instance with a message still pending is left for a later call. Returns how many
    /// were looked at (fewer than `max`: nothing older is left). Instances finished before
    /// the retention queue existed are not in it and are kept.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails; nothing was removed then.
    fn purge_finished(&self, before: DateTime<Utc>, max: usize) -> Result<usize, StoreError>;

    /// Removes up to `max` report cells of the 15-minute buckets before `before` (see
    /// [`waystation_core::report::bucket`]); returns how many (fewer than `max`: nothing
    /// older is left). Reports over those periods then count nothing there. The embedded
    /// stores keep a group's cells of one bucket together (one bucket value, see the
    /// `rollups` module) and remove and count them as one.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails; nothing was removed then.
    fn purge_report_cells(&self, before: i64, max: usize) -> Result<usize, StoreError>;
}

/// What [`ReportStore::report_cells`] calls per cell: `(bucket, group value, figure, cell)`.
pub type CellVisitor<'a> =
    dyn FnMut(i64, &str, &str, waystation_core::report::Cell) -> Result<(), StoreError> + 'a;

/// Report rollups (issue 15): cells per workflow, group, 15-minute UTC bucket and figure.
/// [`Store::commit`] writes what a change moves as a delta record in the same batch as the
/// change; folds add the records into the cells (see `rollups.rs`).
pub trait ReportStore {
    /// Visits the cells of `workflow` grouped by `dim` (a keyword field; empty for all
    /// instances) in buckets `buckets.0..buckets.1`, in bucket order, as
    /// `visit(bucket, group value, figure, cell)`. Folds the pending delta records first,
    /// so every commit applied before the call is counted.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails, [`StoreError::Corrupt`] for an unreadable
    /// cell, or the error `visit` returns.
    fn report_cells(
        &self,
        workflow: &str,
        dim: &str,
        buckets: (i64, i64),
        visit: &mut CellVisitor<'_>,
    ) -> Result<(), StoreError>;

    /// True when the rollups cover every stored instance: a rebuild ran, or the store held
    /// no instance when it was first asked (it is then marked, so it stays true). False for
    /// a store upgraded from a version without rollups: its running instances would leave
    /// their start month's `running` count when they end; run a rebuild.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read or the marker cannot be written.
    fn reports_current(&self) -> Result<bool, StoreError>;

    /// Folds every pending delta record into the cells now, and says how many it folded.
    /// The runtime's report folder calls it on its own thread every [`REPORT_FOLD_AT`]
    /// records; report reads fold first; commits fold themselves only past a large backlog.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails, or [`StoreError::Unreadable`] /
    /// [`StoreError::Corrupt`] for an unreadable record or cell; the records of the failing
    /// batch stay pending.
    fn fold_reports(&self) -> Result<usize, StoreError>;

    /// About how many report delta records wait to be folded (those written since the last
    /// fold began). The runtime's report folder folds when this reaches
    /// [`REPORT_FOLD_AT`]. 0 for a store that keeps no such records (PostgreSQL moves its
    /// cells in the commit).
    fn reports_pending(&self) -> usize {
        0
    }

    /// Throws the rollups away and computes them again from every stored instance and its
    /// history; for an upgrade, on a store no server has open. Durable when it returns.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails, [`StoreError::Unreadable`] for an
    /// unreadable record, [`StoreError::Corrupt`] for an unreadable cell; the rollups may be
    /// partial then (run it again).
    fn rebuild_reports(&self) -> Result<Rebuilt, StoreError>;
}

/// Everything a driver needs.
pub trait Store:
    DefinitionStore
    + InstanceStore
    + HistoryStore
    + TimerStore
    + ApprovalStore
    + OutboxStore
    + IdempotencyStore
    + QueryStore
    + TokenStore
    + ScheduleStore
    + RetentionStore
    + ReportStore
    + TransferStore
    + Send
    + Sync
{
    /// Applies one command's changes atomically. Visible at once; durable after
    /// [`Store::flush`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then. [`StoreError::Conflict`] (shared stores) when another
    /// node wrote the same instance (it is no longer the `before` the commit was computed from) or
    /// took the business key first; nothing was written then either.
    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError>;

    /// Applies several commands' changes, each to a different instance, as one atomic
    /// batch: all of them or none. For the scheduler, which fires the due timers of many
    /// instances at once: one batch (one journal append, one lock round) instead of one
    /// per timer. Visible at once; durable after [`Store::flush`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (an IO error, a full disk, a lost database
    /// connection); nothing was written then.
    /// [`StoreError::Conflict`] (shared stores) when another node wrote one of the same instances
    /// first; nothing was written then either.
    fn commit_all(&self, commits: &[Commit<'_>]) -> Result<(), StoreError>;

    /// Makes every commit so far durable.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the data cannot be synced (fsync failed, the disk is full):
    /// what was committed since the last successful flush may then not survive a crash.
    fn flush(&self) -> Result<(), StoreError>;

    /// True when [`Store::flush`] keeps commits from applying while it waits for the disk
    /// (see [`Kv::flush_holds_commits`]); false for the stores whose flush does not
    /// (fjall, memory, PostgreSQL, where a commit is durable when it returns).
    fn flush_holds_commits(&self) -> bool {
        false
    }

    /// Checks that the store can serve requests, for `/readyz`: a round trip to the
    /// database for a shared store; an embedded store that opened is always ready.
    ///
    /// # Errors
    /// Why it cannot (the database is unreachable, no pooled connection is free).
    fn check_ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// True when other nodes may write the same store: the scheduler and the dispatcher
    /// then poll (their wake-ups only hear this node's commits), and commands retry on
    /// [`StoreError::Conflict`].
    fn shared(&self) -> bool {
        false
    }

    /// This node's name in a shared store's claims (the `claimed_by` of timers and the
    /// `lease_owner` of messages), random per open; `None` for an embedded store. Shown on
    /// `/metrics` so an operator can tell whose claims a row holds.
    fn node_name(&self) -> Option<String> {
        None
    }
}
