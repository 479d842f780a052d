//! Host-wide configuration and the one wasmtime `Engine` built from it: pooling allocator
//! sized for the server, epoch interruption, and a cache key naming the engine's build.

use crate::errors::HostError;
use crate::limits::Limits;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::time::Duration;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

/// The default ceiling on uploaded component bytes.
pub const DEFAULT_MAX_PLUGIN_BYTES: u64 = 50 << 20;

/// Host-wide settings. [`Default`] suits a server; tests may shrink the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// How many instances the pool holds at once. Sizes the pool.
    pub max_concurrent_calls: u32,
    /// How many calls may run at once (at most `max_concurrent_calls`); callers beyond it
    /// wait for a slot, and a call's time budget starts when it gets one. The number of
    /// cores by default, so a call's budget is spent running, not waiting for a core: with
    /// 16 calls let run on 2 cores, 991 of 1,000 concurrent calls of a 51 ms plugin ran
    /// out of a 100 ms budget that they would each have met alone.
    pub max_running_calls: u32,
    /// Ceiling on any plugin's memory cap, in bytes (the pool's slot size).
    pub max_memory_bytes: u64,
    /// Limits for plugins with none of their own.
    pub default_limits: Limits,
    /// Largest component accepted by `add`, in bytes.
    pub max_plugin_bytes: u64,
    /// Interval of the epoch ticker: the granularity of time budgets.
    pub epoch_tick: Duration,
    /// Most log lines kept per call (further lines are counted).
    pub max_log_lines: usize,
    /// Longest log line kept, in bytes (longer lines are truncated).
    pub max_log_line_bytes: usize,
    /// Bytes of guest stdout and of stderr captured per call (each).
    pub stdio_capture_bytes: usize,
    /// Most core instances one component may contain (interpreters link many modules).
    pub max_core_instances_per_component: u32,
    /// Most linear memories one component may contain.
    pub max_memories_per_component: u32,
    /// Most tables one component may contain.
    pub max_tables_per_component: u32,
    /// Most elements of any one table.
    pub max_table_elements: usize,
    /// How much of each linear memory and table a finished call leaves resident in its
    /// pool slot, in bytes, when the kernel offers `PAGEMAP_SCAN` (Linux 6.7 and later).
    /// There the pool finds the pages the call wrote and copies their original contents
    /// back (up to this much), instead of discarding the whole slot with `madvise`, whose
    /// TLB shootdown interrupts every core and was half the cost of a small plugin's call.
    /// Without `PAGEMAP_SCAN`, or at 0, slots are discarded with `madvise` as before.
    /// Bounds the memory an idle warm slot keeps.
    pub keep_resident_bytes: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HostConfig {
            max_concurrent_calls: u32::try_from((cores * 4).max(16)).unwrap_or(16),
            max_running_calls: u32::try_from(cores).unwrap_or(2),
            max_memory_bytes: 256 << 20,
            default_limits: Limits::default(),
            max_plugin_bytes: DEFAULT_MAX_PLUGIN_BYTES,
            epoch_tick: Duration::from_millis(1),
            max_log_lines: 200,
            max_log_line_bytes: 4096,
            stdio_capture_bytes: 64 << 10,
            max_core_instances_per_component: 64,
            max_memories_per_component: 4,
            max_tables_per_component: 32,
            max_table_elements: 100_000,
            keep_resident_bytes: 8 << 20,
        }
    }
}

impl HostConfig {
    /// Checks the settings fit together.
    ///
    /// # Errors
    /// [`HostError::Config`] naming the problem.
    pub fn validate(&self) -> Result<(), HostError> {
        if self.max_running_calls == 0 {
            return Err(HostError::config("max_running_calls must be at least 1"));
        }
        if self.max_concurrent_calls == 0 {
            return Err(HostError::config("max_concurrent_calls must be at least 1"));
        }
        if self.epoch_tick.is_zero() {
            return Err(HostError::config("epoch_tick must be positive"));
        }
        self.default_limits
            .validate(self.max_memory_bytes)
            .map_err(|e| HostError::config(format!("default_limits: {e}")))
    }

    /// Builds the engine: Cranelift, component model, epoch interruption, and a pooling
    /// allocator with room for `max_concurrent_calls` component instances.
    ///
    /// A slot keeps what its last call wrote (at most `keep_resident_bytes` per memory and
    /// table) only once the call is over and its pages are restored to the component's
    /// initial image, so no state survives from one call to the next; the pool reuses a
    /// plugin's own warm slots first, so idle residency grows with each plugin's peak
    /// concurrency, not with the pool's size.
    pub(crate) fn engine(&self) -> Result<Engine, HostError> {
        self.validate()?;
        let n = self.max_concurrent_calls;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .max_core_instances_per_component(self.max_core_instances_per_component)
            .total_core_instances(n.saturating_mul(self.max_core_instances_per_component))
            .max_memories_per_component(self.max_memories_per_component)
            .total_memories(n.saturating_mul(self.max_memories_per_component))
            .max_tables_per_component(self.max_tables_per_component)
            .total_tables(n.saturating_mul(self.max_tables_per_component))
            .max_tables_per_module(4)
            .table_elements(self.max_table_elements)
            .max_memory_size(usize::try_from(self.max_memory_bytes).unwrap_or(usize::MAX));
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(self.keep_resident_bytes)
                .table_keep_resident(self.keep_resident_bytes);
        }

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Engine::new(&config).map_err(|e| HostError::engine(None, e))
    }
}

/// A short stable name for everything that makes a compiled artifact loadable by
/// `engine`: wasmtime version, compiler target and flags, tunables, features.
pub(crate) fn engine_key(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
