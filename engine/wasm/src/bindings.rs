//! The one place the WIT contract (`plugins/wit`) becomes Rust: host bindings for both
//! worlds, and the `log` import each of them gets from the host.

#![allow(missing_docs)]

use crate::logs::LogLevel;
use crate::state::State;

/// Bindings for the `scorer` world: `score(input) -> result<assessment, string>`.
pub mod scorer {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit",
        world: "scorer",
    });
}

/// Bindings for the `notifier` world: `render(input) -> result<list<message>, string>`.
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit",
        world: "notifier",
    });
}

impl scorer::waystation::plugin::types::Host for State {}
impl notifier::waystation::plugin::types::Host for State {}

impl scorer::ScorerImports for State {
    fn log(&mut self, level: scorer::Level, message: String) {
        use scorer::Level as L;
        let level = match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        };
        self.logs.push(level, message);
    }
}

impl notifier::NotifierImports for State {
    fn log(&mut self, level: notifier::Level, message: String) {
        use notifier::Level as L;
        let level = match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        };
        self.logs.push(level, message);
    }
}
