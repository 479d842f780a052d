//! One call: a fresh store, instantiate from the pre-instantiated component, call the
//! world's export under the limits, convert the result, and classify any failure.

use crate::classify::classify;
use crate::errors::CallError;
use crate::json;
use crate::limits::Limits;
use crate::logs::{truncate_at_char, LogLevel, LogLine};
use crate::registry::PluginInfo;
use crate::sandbox::{LoadedPlugin, Sandbox, WorldPre};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Longest `err` message of a plugin kept, in bytes.
const MAX_ERROR_BYTES: usize = 4096;

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
