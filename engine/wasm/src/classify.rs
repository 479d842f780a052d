//! Why a call or an instantiation failed, from the wasmtime error and what the call's
//! store saw (the memory limiter's flag, the deadline, the guest's stderr). Used for calls
//! and for the trial instantiation of an upload.

use crate::errors::CallError;
use crate::state::State;
use wasmtime::{Trap, WasmBacktrace};

/// How much of the guest's stderr a trap message quotes, in bytes.
const STDERR_TAIL_BYTES: usize = 1024;

/// Turns a wasmtime error from instantiation or a call into a typed failure.
///
/// Order matters: a denied memory growth surfaces as a plain error (not a `Trap`), so the
/// limiter's flag is checked first; an epoch interrupt is a timeout; too much data copied
/// out of the guest is bad output; everything else is a trap with the guest's message.
pub(crate) fn classify(error: wasmtime::Error, state: &State) -> CallError {
    if let Some(desired) = state.limiter.exceeded {
        return CallError::OutOfMemory {
            desired: desired as u64,
            cap: state.limiter.cap(),
        };
    }
    if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        let budget = state.deadline.saturating_duration_since(state.started);
        return CallError::Timeout {
            budget_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
        };
    }
    if error
        .chain()
        .any(|cause| cause.to_string().contains("fuel allocated for hostcalls"))
    {
        return CallError::BadOutput {
            reason: "the plugin handed the host more data in one go than its output cap allows"
                .into(),
        };
    }
    let mut message = if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        format!("the plugin exited with status {}", exit.0)
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        let place = error
            .downcast_ref::<WasmBacktrace>()
            .and_then(|bt| bt.frames().iter().find_map(|f| f.func_name()))
            .map(|name| format!(" in `{name}`"))
            .unwrap_or_default();
        format!("{trap}{place}")
    } else {
        format!("{error:#}")
    };
    let stderr = state.stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        let mut start = stderr.len().saturating_sub(STDERR_TAIL_BYTES);
        while !stderr.is_char_boundary(start) {
            start += 1;
        }
        message.push_str("; stderr: ");
        message.push_str(&stderr[start..]);
    }
    CallError::Trap { message }
}
