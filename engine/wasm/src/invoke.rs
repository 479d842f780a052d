//! One call: a fresh store, instantiate from the pre-instantiated component, call the
//! world's export under the limits, convert the result, and classify any failure.

use crate::errors::CallError;
use crate::json;
use crate::limits::Limits;
use crate::logs::{truncate_at_char, LogLevel, LogLine};
use crate::registry::PluginInfo;
use crate::sandbox::{LoadedPlugin, Sandbox, WorldPre};
use crate::state::State;
use serde_json::Value;
use std::time::{Duration, Instant};
use wasmtime::{Trap, WasmBacktrace};

/// Longest `err` message of a plugin kept, in bytes.
const MAX_ERROR_BYTES: usize = 4096;
/// How much of the guest's stderr a trap message quotes, in bytes.
const STDERR_TAIL_BYTES: usize = 1024;

/// Everything one call produced: the output or typed failure, the guest's log lines, and
/// what it cost. Drivers put `logs` into the instance history.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// The output JSON, or why there is none.
    pub result: Result<Value, CallError>,
    /// Lines the guest logged (`log` import, then stdout and stderr).
    pub logs: Vec<LogLine>,
    /// Wall-clock time of instantiation plus call.
    pub duration: Duration,
    /// Epoch ticks that passed during the call (one per `epoch_tick`).
    pub epoch_ticks: u64,
    /// The limits the call ran under.
    pub limits: Limits,
    /// The registered plugin that ran, when called through the registry.
    pub plugin: Option<PluginInfo>,
}

impl CallReport {
    /// A report for a call that never started.
    pub(crate) fn failed(error: CallError, limits: Limits) -> CallReport {
        CallReport {
            result: Err(error),
            logs: Vec::new(),
            duration: Duration::ZERO,
            epoch_ticks: 0,
            limits,
            plugin: None,
        }
    }
}

enum Raw {
    Assessment(Result<crate::bindings::scorer::Assessment, String>),
    Messages(Result<Vec<crate::bindings::notifier::Message>, String>),
}

impl Sandbox {
    /// Runs `plugin` on `input` in a fresh instance under `limits`. Blocks the calling
    /// thread (call it from a blocking thread, not an async task) and waits first when
    /// `max_running_calls` calls are already running; the time budget starts after that.
    pub fn call(&self, plugin: &LoadedPlugin, input: &Value, limits: &Limits) -> CallReport {
        // Straight into one buffer: `Value::to_string` goes through `fmt::Display`, a
        // formatter call per token, and cost a tenth of a small plugin's call.
        let input = serde_json::to_string(input).expect("a JSON value always serializes");
        let slot = self.acquire_slot();
        let ticks_before = self.epoch_ticks();
        let started = Instant::now();
        let mut store = self.store(limits, plugin.label.clone());
        let raw = match &plugin.pre {
            WorldPre::Scorer(pre) => pre
                .instantiate(&mut store)
                .and_then(|bound| bound.call_score(&mut store, &input))
                .map(Raw::Assessment),
            WorldPre::Notifier(pre) => pre
                .instantiate(&mut store)
                .and_then(|bound| bound.call_render(&mut store, &input))
                .map(Raw::Messages),
        };
        let duration = started.elapsed();
        let result = match raw {
            Ok(Raw::Assessment(Ok(a))) => json::assessment(a),
            Ok(Raw::Messages(Ok(m))) => json::messages(m),
            Ok(Raw::Assessment(Err(mut message)) | Raw::Messages(Err(mut message))) => {
                truncate_at_char(&mut message, MAX_ERROR_BYTES);
                Err(CallError::PluginError { message })
            }
            Err(e) => Err(classify(e, store.data())),
        }
        .and_then(|v| json::within_cap(v, limits.output_bytes));
        let epoch_ticks = self.epoch_ticks().saturating_sub(ticks_before);
        let state = store.into_data();
        drop(slot);

        let stdout = state.stdout.contents();
        let stderr = state.stderr.contents();
        let mut logs = state.logs;
        logs.push_stdio("stdout", LogLevel::Info, &stdout);
        logs.push_stdio("stderr", LogLevel::Warn, &stderr);
        match &result {
            Ok(_) => tracing::debug!(plugin = %plugin.label, ?duration, "plugin call succeeded"),
            Err(e) => tracing::warn!(plugin = %plugin.label, ?duration, "plugin call failed: {e}"),
        }
        CallReport {
            result,
            logs: logs.finish(),
            duration,
            epoch_ticks,
            limits: *limits,
            plugin: None,
        }
    }
}

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
