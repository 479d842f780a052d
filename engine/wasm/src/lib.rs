//! The wasmtime component host of Waystation.
//!
//! Plugins are WebAssembly components implementing a world of `plugins/wit`
//! (`waystation:plugin@0.1.0`: `scorer` or `notifier`). This crate
//!
//! - runs them sandboxed ([`Sandbox`]): one engine per process with a pooling allocator,
//!   pre-instantiated components, a fresh store per call, an epoch-deadline time budget,
//!   a memory cap and an output cap per call ([`Limits`]), and WASI p2 linked with a
//!   context that grants nothing (no files, network, environment; a frozen wall clock);
//! - keeps a registry on disk ([`PluginHost`]): bytes checked and stored by SHA-256,
//!   named versions, compiled once with the artifact cached by digest and engine build
//!   and mapped again after a restart;
//! - reports each call as output JSON or a typed [`CallError`] (mapped onto the core's
//!   `FailureKind`), with the guest's log lines ([`CallReport`]).
//!
//! ```no_run
//! use waystation_wasm::{HostConfig, PluginHost, Sandbox};
//! use waystation_core::{PluginRef, World};
//!
//! let sandbox = Sandbox::new(HostConfig::default())?;
//! let host = PluginHost::open("data/plugins", sandbox)?;
//! let info = host.add("order-priority", &std::fs::read("order-priority.wasm")?)?;
//! let report = host.invoke_with_logs(
//!     &PluginRef::parse("order-priority")?,
//!     World::Scorer,
//!     &serde_json::json!({"order": {"total": 120}}),
//! );
//! println!("{info:?} -> {:?} in {:?}", report.result, report.duration);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bindings;
mod cache;
mod classify;
mod clocks;
mod config;
mod errors;
mod host;
mod inspect;
mod invoke;
mod json;
mod limits;
mod logs;
mod registry;
mod sandbox;
mod state;
mod storage;
mod ticker;

pub use config::{HostConfig, DEFAULT_MAX_PLUGIN_BYTES};
pub use errors::{AddError, CallError, Cause, HostError};
pub use host::{HostStats, PluginHost};
pub use inspect::{check_header, digest, Inspection};
pub use invoke::CallReport;
pub use limits::{
    Limits, DEFAULT_MEMORY_BYTES, DEFAULT_OUTPUT_BYTES, DEFAULT_TIME_BUDGET_MS, MAX_TIME_BUDGET_MS,
};
pub use logs::{LogLevel, LogLine, TRACING_TARGET};
pub use registry::PluginInfo;
pub use sandbox::{LoadedPlugin, Sandbox};
pub use storage::{copy_registry, CopiedRegistry, DirStorage, RegistryStorage, StoredIndex};
