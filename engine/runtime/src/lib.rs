//! The Waystation driver (DESIGN.md section 2): for each command it takes the instance's
//! lock, loops the pure core until the instance rests (running plugin calls in between),
//! writes everything in ONE atomic store commit, waits for a group flush, and only then
//! answers. A scheduler fires timers from the store's due-time index.
//!
//! Guarantees (see ARCHITECTURE.md): an `Ok` means durable; one writer per instance;
//! a timer's effect happens exactly once; an idempotency key replays the first answer.

mod acting;
mod changes;
mod children;
mod commands;
pub mod contain;
mod contention;
pub mod durations;
pub use acting::Acting;
pub use changes::{Change, ChangeKind, CHANGE_BUFFER};
pub use commands::Applied;
mod error;
mod firing;
mod folder;
mod group_commit;
mod ids;
mod locks;
pub mod metrics;
mod once;
mod options;
mod outbox;
mod owned_thread;
mod progress;
mod queries;
mod reader;
mod reports;
mod retention;
mod scheduler;
mod schedules;
mod tokens;
mod workflows;

pub use error::RuntimeError;
/// How many times a command that lost a race with another node runs before the conflict
/// is its answer (shared stores only).
pub const CONFLICT_ATTEMPTS: u32 = contention::ATTEMPTS;
pub use metrics::Metrics;
pub use once::{FirstAnswer, KeyLock, Seen};
pub use options::{Limits, Options, StepRetry};
pub use outbox::{
    Channel, Channels, Delivery, DeliveryError, Outbox, OutboxError, Retried, RetryPolicy,
};
pub use progress::{ProgressLinks, ProgressPage};
pub use reader::StoreReader;
pub use reports::{NotAKeywordField, ReportBy, ReportError};
pub use retention::{Purged, Retention};
pub use schedules::{ScheduleSpec, ScheduleView, MAX_SLOTS_PER_ROUND};
pub use waystation_store::CatchUp;
pub use workflows::DefinitionOutcome;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use waystation_core::{Clock, InstanceState, PluginCatalog, PluginInvoker, SlaState, Status};
use waystation_store::Store;

/// What runs plugins and answers which exist: the wasmtime host, or a fake in tests.
pub trait Plugins: PluginInvoker + PluginCatalog + Send + Sync {}
impl<T: PluginInvoker + PluginCatalog + Send + Sync> Plugins for T {}

/// A plugin host with no plugins: every call fails as not found.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPlugins;

impl PluginInvoker for NoPlugins {
    fn invoke(
        &self,
        plugin: &waystation_core::PluginRef,
        world: waystation_core::World,
        _input: &serde_json::Value,
    ) -> Result<serde_json::Value, waystation_core::PluginFailure> {
        Err(waystation_core::PluginFailure {
            kind: waystation_core::FailureKind::NotFound,
            message: format!("no {world} plugin '{plugin}' is registered"),
        })
    }
}

impl PluginCatalog for NoPlugins {
    fn world_of(&self, _: &waystation_core::PluginRef) -> Option<waystation_core::World> {
        None
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The answer to a command: where the instance stands now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSummary {
    /// Instance id.
    pub id: String,
    /// Workflow id.
    pub workflow: String,
    /// Definition version.
    pub version: u32,
    /// Current stage.
    pub stage: String,
    /// Lifecycle status.
    pub status: Status,
    /// SLA state of the current stage.
    pub sla: SlaState,
    /// The outcome, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The reason, once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The business key, when the definition declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&InstanceState> for InstanceSummary {
    fn from(s: &InstanceState) -> Self {
        InstanceSummary {
            id: s.id.clone(),
            workflow: s.workflow.clone(),
            version: s.version,
            stage: s.stage.clone(),
            status: s.status,
            sla: s.worst_sla().state,
            outcome: s.outcome.clone(),
            failure: s.failure.clone(),
            key: s.key.clone(),
        }
    }
}

/// The engine: store, plugins, clock, and the machinery between them.
pub struct Runtime {
    store: Arc<dyn Store>,
    plugins: Arc<dyn Plugins>,
    clock: Arc<dyn Clock>,
    workflows: workflows::WorkflowCache,
    locks: locks::InstanceLocks,
    durability: group_commit::GroupCommit,
    /// Folds the report rollups' pending records off the commands' threads.
    folder: folder::Folder,
    ids: ids::IdGenerator,
    /// Wakes the scheduler when a timer is armed earlier than it planned to wake.
    timers_changed: Notify,
    /// When the scheduler plans to wake next (ms since the epoch; i64::MAX when idle).
    scheduler_wakes_at: AtomicI64,
    /// Wakes the outbox dispatcher when a commit queues messages.
    outbox_wake: Notify,
    metrics: Metrics,
    durations: durations::Durations,
    options: Options,
    /// Failures so far of timer firings that failed in the engine, by timer id. In memory:
    /// after a restart a failing timer gets its attempts again, at its moved due time.
    step_failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// How long records are kept (std RwLock: read for a copy, never held across an await).
    retention: std::sync::RwLock<Retention>,
    /// One schedule change or slot run at a time: the loop's progress and an
    /// administrator's change never overwrite each other.
    schedule_lock: tokio::sync::Mutex<()>,
    /// Every commit's change, for live pages (see [`changes`]).
    changes: changes::Changes,
    /// The progress links' signing key and page address, once the server set them.
    progress_links: std::sync::OnceLock<Arc<ProgressLinks>>,
}

impl Runtime {
    /// An engine over `store`. Starts the flusher thread; call [`Runtime::run_scheduler`]
    /// to fire timers.
    pub fn new(
        store: Arc<dyn Store>,
        plugins: Arc<dyn Plugins>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Runtime> {
        Runtime::with_options(store, plugins, clock, Options::default())
    }

    /// An engine over `store` with `options` (limits, retries) instead of the defaults.
    pub fn with_options(
        store: Arc<dyn Store>,
        plugins: Arc<dyn Plugins>,
        clock: Arc<dyn Clock>,
        options: Options,
    ) -> Arc<Runtime> {
        Arc::new(Runtime {
            durability: group_commit::GroupCommit::start(store.clone()),
            folder: folder::Folder::start(store.clone()),
            store,
            plugins,
            clock,
            workflows: workflows::WorkflowCache::default(),
            locks: locks::InstanceLocks::new(4096),
            ids: ids::IdGenerator::default(),
            timers_changed: Notify::new(),
            scheduler_wakes_at: AtomicI64::new(i64::MAX),
            outbox_wake: Notify::new(),
            metrics: Metrics::default(),
            durations: durations::Durations::default(),
            options,
            step_failures: std::sync::Mutex::default(),
            retention: std::sync::RwLock::new(Retention::default()),
            schedule_lock: tokio::sync::Mutex::new(()),
            changes: changes::Changes::default(),
            progress_links: std::sync::OnceLock::new(),
        })
    }

    /// The store's read side. Writes go through the runtime's commands, definition and
    /// token methods, which answer only after a group flush covers them.
    pub fn store(&self) -> StoreReader<'_> {
        StoreReader(self.store.as_ref())
    }

    /// The plugin host.
    pub fn plugins(&self) -> &Arc<dyn Plugins> {
        &self.plugins
    }

    /// Changes committed from now on, one per commit that changes an instance; bounded
    /// (see [`CHANGE_BUFFER`]): a receiver that falls behind gets `Lagged` and should read
    /// the instances again.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Counters and histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Histograms of stage response and cycle times, for `/metrics`.
    pub fn durations(&self) -> &durations::Durations {
        &self.durations
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The engine's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn timer_armed(&self, due: DateTime<Utc>) {
        if due.timestamp_millis() < self.scheduler_wakes_at.load(Ordering::Acquire) {
            self.timers_changed.notify_one();
        }
    }
}
