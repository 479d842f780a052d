//! Per-call limits (time budget, memory cap, output cap) and the store's resource
//! limiter that enforces the memory cap and remembers that it did.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The default time budget of one call.
pub const DEFAULT_TIME_BUDGET_MS: u64 = 100;
/// The default cap on a plugin's linear memory.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// The default cap on the JSON a call may return.
pub const DEFAULT_OUTPUT_BYTES: u64 = 1 << 20;
/// The longest time budget a plugin may be given.
pub const MAX_TIME_BUDGET_MS: u64 = 60_000;

/// What one call of a plugin may use. Configurable per plugin; unset fields take defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Wall-clock budget of instantiation plus call, in milliseconds (epoch deadline).
    pub time_budget_ms: u64,
    /// Largest linear memory the plugin may grow to, in bytes.
    pub memory_bytes: u64,
    /// Largest output, measured as the JSON the host returns, in bytes. Data copied out of
    /// the guest in one go (the result, one log line) is also bounded by a multiple of it.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_budget_ms: DEFAULT_TIME_BUDGET_MS,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            output_bytes: DEFAULT_OUTPUT_BYTES,
        }
    }
}

impl Limits {
    /// The time budget as a duration.
    pub fn time_budget(&self) -> Duration {
        Duration::from_millis(self.time_budget_ms)
    }

    /// Checks the limits against the host's ceiling on memory (`max_memory_bytes`).
    ///
    /// # Errors
    /// A message naming the field out of range.
    pub fn validate(&self, max_memory_bytes: u64) -> Result<(), String> {
        if self.time_budget_ms == 0 || self.time_budget_ms > MAX_TIME_BUDGET_MS {
            return Err(format!(
                "time_budget_ms must be between 1 and {MAX_TIME_BUDGET_MS}, not {}",
                self.time_budget_ms
            ));
        }
        if self.memory_bytes < 65_536 || self.memory_bytes > max_memory_bytes {
            return Err(format!(
                "memory_bytes must be between 65536 (one page) and {max_memory_bytes} \
                 (the host's ceiling), not {}",
                self.memory_bytes
            ));
        }
        if self.output_bytes == 0 || self.output_bytes > max_memory_bytes {
            return Err(format!(
                "output_bytes must be between 1 and {max_memory_bytes}, not {}",
                self.output_bytes
            ));
        }
        Ok(())
    }
}

/// The error a denied memory growth fails the call with.
#[derive(Debug)]
pub(crate) struct MemoryCapExceeded {
    pub(crate) desired: usize,
    pub(crate) cap: u64,
}

impl std::fmt::Display for MemoryCapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory growth to {} bytes exceeds the {}-byte cap",
            self.desired, self.cap
        )
    }
}

impl std::error::Error for MemoryCapExceeded {}

/// Enforces the memory cap. A denied growth fails the call at once (instead of
/// `memory.grow` returning -1) and is remembered, because wasmtime reports it as a plain
/// error rather than a trap: the flag is what classifies the failure as out-of-memory.
pub(crate) struct MemoryLimiter {
    cap: u64,
    pub(crate) exceeded: Option<usize>,
}

impl MemoryLimiter {
    pub(crate) fn new(cap: u64) -> MemoryLimiter {
        MemoryLimiter {
            cap,
            exceeded: None,
        }
    }

    pub(crate) fn cap(&self) -> u64 {
        self.cap
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.cap {
            self.exceeded = Some(desired);
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                desired,
                cap: self.cap,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's `table_elements`.
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let l = Limits::default();
        assert_eq!(l.time_budget(), Duration::from_millis(100));
        assert_eq!(l.memory_bytes, 64 << 20);
        assert!(l.validate(256 << 20).is_ok());
    }

    #[test]
    fn out_of_range_limits_are_refused() {
        let zero_time = Limits {
            time_budget_ms: 0,
            ..Limits::default()
        };
        assert!(zero_time.validate(256 << 20).is_err());
        let too_much_memory = Limits {
            memory_bytes: 1 << 30,
            ..Limits::default()
        };
        assert!(too_much_memory
            .validate(256 << 20)
            .unwrap_err()
            .contains("memory_bytes"));
    }

    #[test]
    fn partial_limits_take_defaults_for_missing_fields() {
        let l: Limits = serde_json::from_str(r#"{"time_budget_ms": 250}"#).unwrap();
        assert_eq!(l.time_budget_ms, 250);
        assert_eq!(l.memory_bytes, DEFAULT_MEMORY_BYTES);
    }
}
