//! What one call's `Store` holds: a WASI context that grants nothing, the memory
//! limiter, the log buffer, captured stdio, and the call's deadline.

use crate::clocks::{CallClock, FrozenWallClock};
use crate::config::HostConfig;
use crate::limits::{Limits, MemoryLimiter};
use crate::logs::LogBuffer;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Store data of one call. Never reused: each call gets a fresh one.
pub(crate) struct State {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: LogBuffer,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl State {
    /// A fresh state for a call of `plugin` under `limits`, starting now.
    pub(crate) fn new(config: &HostConfig, limits: &Limits, plugin: Arc<str>) -> State {
        let started = Instant::now();
        let stdout = MemoryOutputPipe::new(config.stdio_capture_bytes);
        let stderr = MemoryOutputPipe::new(config.stdio_capture_bytes);
        // No preopened directories, no environment, no arguments, stdin closed, no
        // sockets or name lookups, a frozen wall clock; stdout and stderr are captured.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(FrozenWallClock)
            .monotonic_clock(CallClock { started })
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            logs: LogBuffer::new(plugin, config.max_log_lines, config.max_log_line_bytes),
            started,
            deadline: started + limits.time_budget(),
            stdout,
            stderr,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
