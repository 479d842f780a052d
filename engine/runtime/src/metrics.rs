//! Counters and histograms the engine keeps for `/metrics` and benchmarks. Lock-free:
//! every hot-path update is one atomic add.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (ms) of the timer-lag histogram buckets; the last bucket is unbounded.
pub const LAG_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000, 30000];

/// The engine's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Commands applied, by outcome.
    pub commands_ok: AtomicU64,
    /// Commands refused (rejections, not found, conflicts).
    pub commands_refused: AtomicU64,
    /// Stage entries (transitions, including into the start stage).
    pub transitions: AtomicU64,
    /// Timers fired.
    pub timers_fired: AtomicU64,
    /// Plugin calls made.
    pub plugin_calls: AtomicU64,
    /// Plugin calls that failed.
    pub plugin_failures: AtomicU64,
    /// Total plugin call time in microseconds.
    pub plugin_call_us: AtomicU64,
    /// Outbox messages delivered.
    pub messages_delivered: AtomicU64,
    /// Delivery attempts that failed (retried or not).
    pub delivery_failures: AtomicU64,
    /// Outbox messages given up (dead).
    pub messages_dead: AtomicU64,
    /// Timer firings that failed in the engine (panic, definition that no longer compiles,
    /// store error); each is retried later or gives up on its instance.
    pub step_failures: AtomicU64,
    /// Instances failed because a step kept failing in the engine.
    pub steps_abandoned: AtomicU64,
    /// Commands and request handlers that panicked (answered 500; nothing changed).
    pub panics: AtomicU64,
    /// Commands run again because another node changed their instance (or took their
    /// business or idempotency key) first: shared stores only. A steady rate means nodes
    /// compete for the same instances.
    pub command_conflicts: AtomicU64,
    lag: [AtomicU64; LAG_BUCKETS_MS.len() + 1],
    lag_sum_ms: AtomicU64,
}

impl Metrics {
    /// Records how late a timer fired.
    pub fn record_timer_lag(&self, lag_ms: u64) {
        let i = LAG_BUCKETS_MS
            .iter()
            .position(|b| lag_ms <= *b)
            .unwrap_or(LAG_BUCKETS_MS.len());
        self.lag[i].fetch_add(1, Ordering::Relaxed);
        self.lag_sum_ms.fetch_add(lag_ms, Ordering::Relaxed);
        self.timers_fired.fetch_add(1, Ordering::Relaxed);
    }

    /// Timer lag: per-bucket counts (not cumulative) and the sum in ms.
    pub fn timer_lag(&self) -> (Vec<u64>, u64) {
        (
            self.lag.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            self.lag_sum_ms.load(Ordering::Relaxed),
        )
    }
}
