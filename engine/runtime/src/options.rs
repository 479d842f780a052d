//! What the runtime is configured with: the bounds on what an instance may hold, and how a
//! step that fails in the engine is retried before the instance is given up on.

use std::time::Duration;

/// Bounds on caller data and on what one instance may grow to. Each is answered with a
/// clear error at the bound (ARCHITECTURE.md, "Limits and what happens at them").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest workflow definition, as serialized JSON, in bytes: `PUT /v1/workflows/{id}`
    /// and `POST /v1/workflows/validate` answer 413 beyond it. Default 512 KiB.
    pub definition_bytes: usize,
    /// Largest data a caller sends into an instance - an event's `data`, a start's
    /// `input` - as serialized JSON, in bytes: 413 beyond it, naming `/data` or `/input`.
    /// It is kept in the history, so it bounds what each entry costs. Default 64 KiB.
    pub event_data_bytes: usize,
    /// Largest `vars` an instance may hold after a step, as serialized JSON, in bytes. A
    /// command that would exceed it is refused (422 naming `/vars`); a timer or plugin
    /// result that would exceed it fails the instance with the reason. Default 256 KiB.
    pub vars_bytes: usize,
    /// Most history entries one instance may have. A command that would go beyond it is
    /// refused (422 naming `/history`) - except cancel, which always may end an instance;
    /// a timer that would go beyond it fails the instance. Default 10,000.
    pub history_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            definition_bytes: 512 << 10,
            event_data_bytes: 64 << 10,
            vars_bytes: 256 << 10,
            history_entries: 10_000,
        }
    }
}

/// How a timer firing that fails in the engine (a panic, a definition that no longer
/// compiles, a store error) is retried: the timer is moved `backoff(n)` into the future
/// after the n-th failure, and after `attempts` failures the instance is failed with the
/// reason. Never a hot loop: the backoff starts at `first_backoff` and doubles up to
/// `max_backoff`; a restart finds the timer at its moved time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRetry {
    /// Failures after which the instance is failed. Default 5.
    pub attempts: u32,
    /// Delay after the first failure. Default 1 s.
    pub first_backoff: Duration,
    /// Longest delay. Default 5 min.
    pub max_backoff: Duration,
}

impl Default for StepRetry {
    fn default() -> Self {
        StepRetry {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl StepRetry {
    /// The delay after the `failures`-th failure (1-based): `first_backoff * 2^(failures-1)`,
    /// at most `max_backoff`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Everything [`crate::Runtime::with_options`] takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Bounds on caller data and instances.
    pub limits: Limits,
    /// Retries of timer firings that fail in the engine.
    pub step_retry: StepRetry,
}

#[cfg(test)]
mod tests {
    use super::StepRetry;
    use std::time::Duration;

    #[test]
    fn the_backoff_doubles_from_the_first_delay_and_stops_at_the_cap() {
        let retry = StepRetry {
            attempts: 40,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=6).map(|n| retry.backoff(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(retry.backoff(40), Duration::from_secs(1));
    }
}
