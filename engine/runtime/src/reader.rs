//! What [`crate::Runtime::store`] hands out: the store's read side only. Every write goes
//! through the runtime, so it is covered by a group flush before anyone is told it happened.

use chrono::{DateTime, Utc};
use waystation_core::definition::Approver;
use waystation_core::{ApprovalTask, HistoryEntry, InstanceState, Status};
use waystation_store::{
    Counts, DueTimer, IdempotencyRecord, InstanceQuery, OutboxRecord, OutboxStatus, Page, Store,
    StoreError, StoredDefinition, TokenRecord,
};

/// The store, for reading. Each method is the store trait method of the same name (see
/// `waystation_store`); all of them read committed (visible) data and may block on disk IO,
/// so async code calls the scanning ones (queries, pages, counts) from the blocking pool.
#[derive(Clone, Copy)]
pub struct StoreReader<'a>(pub(crate) &'a dyn Store);

impl StoreReader<'_> {
    /// Whether the store can serve requests (see `Store::check_ready`): for `/readyz`.
    ///
    /// # Errors
    /// Why it cannot.
    pub fn check_ready(&self) -> Result<(), StoreError> {
        self.0.check_ready()
    }

    /// This node's name in a shared store's claims (see `Store::node_name`); `None` for
    /// an embedded store.
    pub fn node_name(&self) -> Option<String> {
        self.0.node_name()
    }

    /// Version `version` of workflow `id`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn definition(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<StoredDefinition>, StoreError> {
        self.0.definition(id, version)
    }

    /// The newest version of workflow `id`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn latest_definition(&self, id: &str) -> Result<Option<StoredDefinition>, StoreError> {
        self.0.latest_definition(id)
    }

    /// Every workflow id with its newest version.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn list_definitions(&self) -> Result<Vec<(String, u32)>, StoreError> {
        self.0.list_definitions()
    }

    /// Instance `id`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn instance(&self, id: &str) -> Result<Option<InstanceState>, StoreError> {
        self.0.instance(id)
    }

    /// Up to `limit` history entries of `id` from sequence number `from`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn history(
        &self,
        id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, StoreError> {
        self.0.history(id, from, limit)
    }

    /// Up to `limit` timers due at or before `until`, soonest first.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn due_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError> {
        self.0.due_timers(until, limit)
    }

    /// When the soonest timer is due.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn next_due(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        self.0.next_due()
    }

    /// Open approval task `id`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn task(&self, id: &str) -> Result<Option<ApprovalTask>, StoreError> {
        self.0.task(id)
    }

    /// A page of `approver`'s open tasks.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn open_tasks(
        &self,
        approver: &Approver,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApprovalTask>, StoreError> {
        self.0.open_tasks(approver, cursor, limit)
    }

    /// A page of outbox messages with `status`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn outbox(
        &self,
        status: OutboxStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<OutboxRecord>, StoreError> {
        self.0.outbox(status, cursor, limit)
    }

    /// Outbox message `id`, whatever its status.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn outbox_message(&self, id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        self.0.outbox_message(id)
    }

    /// The answer kept under idempotency key `key`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.0.idempotency(key)
    }

    /// A page of instances matching `query`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn query(&self, query: &InstanceQuery) -> Result<Page<InstanceState>, StoreError> {
        self.0.query(query)
    }

    /// Counts by stage and SLA state of `workflow`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn counts(&self, workflow: &str) -> Result<Counts, StoreError> {
        self.0.counts(workflow)
    }

    /// How many instances have `status`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn count_status(&self, status: Status) -> Result<u64, StoreError> {
        self.0.count_status(status)
    }

    /// One bounded step of building the counts; true once built.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn build_counts_step(&self) -> Result<bool, StoreError> {
        self.0.build_counts_step()
    }

    /// The token whose secret hashes to `secret_sha256`.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn token_by_hash(&self, secret_sha256: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.0.token_by_hash(secret_sha256)
    }

    /// The token called `name` (names are unique).
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.0.token_by_name(name)
    }

    /// Every token.
    ///
    /// # Errors
    /// The store's [`StoreError`], unchanged: [`StoreError::Backend`] when it cannot be
    /// read, [`StoreError::Unreadable`] for a record it cannot decode (and for a cursor,
    /// [`StoreError::BadCursor`]), as the store trait's method of the same name says.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.0.tokens()
    }
}
