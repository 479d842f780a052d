//! What one call's `Store` holds: a WASI context that grants nothing, the memory
//! limiter, the log buffer, captured stdio, the call's deadline, and the guard that keeps
//! the epoch ticker ticking while the store exists.

use crate::clocks::{CallClock, CallTime, FrozenWallClock};
use crate::config::HostConfig;
use crate::limits::{Limits, MemoryLimiter};
use crate::logs::LogBuffer;
use crate::ticker::Ticking;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Store data of one call. Never reused: each call gets a fresh one.
pub(crate) struct State {
    /// Built by the call's first WASI import, if it makes one: plugins that import only
    /// `log` (the C and JavaScript examples) never pay for the context and its seeded
    /// random generators.
    wasi: Option<WasiCtx>,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: LogBuffer,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    /// The epoch advances (and the deadline can trap) while this store exists.
    _ticking: Ticking,
}

impl State {
    /// A fresh state for a call of `plugin` under `limits`, starting now.
    pub(crate) fn new(
        config: &HostConfig,
        limits: &Limits,
        plugin: Arc<str>,
        ticking: Ticking,
    ) -> State {
        let started = Instant::now();
        State {
            wasi: None,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            logs: LogBuffer::new(plugin, config.max_log_lines, config.max_log_line_bytes),
            started,
            deadline: started + limits.time_budget(),
            stdout: MemoryOutputPipe::new(config.stdio_capture_bytes),
            stderr: MemoryOutputPipe::new(config.stdio_capture_bytes),
            _ticking: ticking,
        }
    }
}

/// The WASI context of a call: no preopened directories, no environment, no arguments,
/// stdin closed, no sockets or name lookups, a frozen wall clock and a monotonic clock
/// counting from the start of the call; stdout and stderr are captured.
fn wasi_context(stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe, started: Instant) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenWallClock)
        .monotonic_clock(CallClock { started })
        .build()
}

impl CallTime for State {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
    fn started(&self) -> Instant {
        self.started
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self
            .wasi
            .get_or_insert_with(|| wasi_context(&self.stdout, &self.stderr, self.started));
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}
