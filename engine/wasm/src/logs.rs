//! Guest log lines: collected per call (for the instance history) and emitted through
//! `tracing` (for the server log), both bounded.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Severity of a guest log line (the WIT `level` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}

/// One line a plugin logged during a call, through `log` or on stdout / stderr
/// (those arrive as `info` / `warn` lines prefixed `[stdout] ` / `[stderr] `).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The text, truncated to the host's per-line cap.
    pub message: String,
}

/// The tracing target guest lines are emitted under.
pub const TRACING_TARGET: &str = "waystation::plugin";

/// The lines of one call, capped in number and length.
pub(crate) struct LogBuffer {
    plugin: Arc<str>,
    lines: Vec<LogLine>,
    dropped: usize,
    max_lines: usize,
    max_line_bytes: usize,
}

impl LogBuffer {
    pub(crate) fn new(plugin: Arc<str>, max_lines: usize, max_line_bytes: usize) -> LogBuffer {
        LogBuffer {
            plugin,
            lines: Vec::new(),
            dropped: 0,
            max_lines,
            max_line_bytes,
        }
    }

    /// Records a line (or counts it as dropped past the cap) and emits it via `tracing`.
    pub(crate) fn push(&mut self, level: LogLevel, mut message: String) {
        if self.lines.len() >= self.max_lines {
            self.dropped += 1;
            return;
        }
        truncate_at_char(&mut message, self.max_line_bytes);
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(target: TRACING_TARGET, plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: TRACING_TARGET, plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: TRACING_TARGET, plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: TRACING_TARGET, plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: TRACING_TARGET, plugin, "{message}"),
        }
        self.lines.push(LogLine { level, message });
    }

    /// Adds each non-empty line of captured stdio output.
    pub(crate) fn push_stdio(&mut self, stream: &str, level: LogLevel, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            if !line.trim().is_empty() {
                self.push(level, format!("[{stream}] {line}"));
            }
        }
    }

    /// The collected lines, with a closing note when some were dropped.
    pub(crate) fn finish(mut self) -> Vec<LogLine> {
        if self.dropped > 0 {
            self.lines.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "{} more log lines dropped (at most {} per call)",
                    self.dropped, self.max_lines
                ),
            });
        }
        self.lines
    }
}

/// Shortens `text` to at most `max` bytes, on a character boundary, marking the cut.
pub(crate) fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_cap_are_counted_not_kept() {
        let mut logs = LogBuffer::new("p".into(), 2, 5);
        logs.push(LogLevel::Info, "one".into());
        logs.push(LogLevel::Warn, "two and more".into());
        logs.push(LogLevel::Error, "three".into());
        let lines = logs.finish();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].message, "two a…");
        assert!(lines[2].message.starts_with("1 more log lines dropped"));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let mut s = "héllo".to_owned();
        truncate_at_char(&mut s, 2);
        assert_eq!(s, "h…");
    }
}
