//! Typed errors: why a component was refused ([`AddError`]), why a call produced no
//! output ([`CallError`], mapped onto the core's [`FailureKind`]), and why the host or its
//! registry could not be opened or changed ([`HostError`]).

use std::path::PathBuf;
use thiserror::Error;
use waystation_core::{FailureKind, PluginFailure, World};

/// A foreign error kept as the source of an [`AddError`] or a [`HostError`]: wasmtime's
/// (boxed as the error it wraps, so it downcasts to that type), wasmparser's, the OS's.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// wasmtime's error as a message with its causes, as `{:#}` shows them (what the API and
/// the CLI print), and as the source to keep.
pub(crate) fn wasmtime_cause(e: wasmtime::Error) -> (String, Cause) {
    (format!("{e:#}"), e.into_boxed_dyn_error())
}

/// Why a component was refused by `add`, `check` or `load`.
#[derive(Debug, Error)]
pub enum AddError {
    /// Zero bytes.
    #[error("the file is empty: a plugin is a WebAssembly component")]
    Empty,
    /// Not WebAssembly at all.
    #[error(
        "not WebAssembly: the bytes do not start with the `\\0asm` header \
         (text .wat must be assembled first, e.g. `wasm-tools parse`)"
    )]
    NotWasm,
    /// A core module rather than a component.
    #[error(
        "a core WebAssembly module, not a component: \
         wrap it with `wasm-tools component new` against plugins/wit"
    )]
    NotAComponent,
    /// Over the size ceiling.
    #[error("the component is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The ceiling.
        max: u64,
    },
    /// The registry name is malformed.
    #[error("bad plugin name '{name}': lowercase letters, digits and '-', at most 63")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// The bytes claim to be a component but do not validate or compile.
    #[error("not a valid component: {message}")]
    Invalid {
        /// The validator's or compiler's message.
        message: String,
        /// The parser's or wasmtime's error (e.g. a `wasmparser::BinaryReaderError`, with
        /// its byte offset); none for a refusal of the sandbox's own (an unknown version).
        source: Option<Cause>,
    },
    /// Exports neither `score` nor `render`.
    #[error(
        "implements no known world: a scorer exports `score`, a notifier exports `render`; \
         this component exports {}",
        list_or_nothing(.exports)
    )]
    UnknownWorld {
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// Has a world's export, but not with the world's type.
    #[error("does not match the {world} world of waystation:plugin@0.1.0: {message}")]
    WrongWorld {
        /// The world it resembles.
        world: World,
        /// The type checker's message.
        message: String,
        /// wasmtime's error; none when the component reads as another world than the one
        /// it was registered with.
        source: Option<Cause>,
    },
    /// Imports something the sandbox does not provide.
    #[error("imports what the sandbox does not provide: {message}")]
    Imports {
        /// The linker's message.
        message: String,
        /// wasmtime's error.
        source: Option<Cause>,
    },
    /// Fails at instantiation (start function trap, pool limits, memory over the cap).
    #[error("fails to instantiate in the sandbox: {message}")]
    Instantiate {
        /// The failure as a call would report it (the trap and where, or wasmtime's
        /// message, with the tail of the guest's stderr).
        message: String,
    },
    /// Declares more than the sandbox can ever give: an initial memory or table over the
    /// pool's ceiling. Every call would fail, so the upload is refused.
    #[error("declares more than the sandbox allows: {message}")]
    OverLimits {
        /// Which memory or table, what it declares, and the limit it passes.
        message: String,
    },
    /// Storing the bytes, the artifact or the index failed.
    #[error("plugin storage: {0}")]
    Storage(#[from] HostError),
}

impl AddError {
    /// A stable snake_case code for APIs and scripts, e.g. `not_a_component`.
    pub fn code(&self) -> &'static str {
        match self {
            AddError::Empty => "empty",
            AddError::NotWasm => "not_wasm",
            AddError::NotAComponent => "not_a_component",
            AddError::TooLarge { .. } => "too_large",
            AddError::BadName { .. } => "bad_name",
            AddError::Invalid { .. } => "invalid",
            AddError::UnknownWorld { .. } => "unknown_world",
            AddError::WrongWorld { .. } => "wrong_world",
            AddError::Imports { .. } => "unsupported_imports",
            AddError::Instantiate { .. } => "instantiation_failed",
            AddError::OverLimits { .. } => "over_limits",
            AddError::Storage(_) => "storage",
        }
    }

    /// Whether the uploaded bytes are at fault (as opposed to the server's storage).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AddError::Storage(_))
    }
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a call produced no usable output.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// Ran past its time budget and was interrupted.
    #[error("ran past its {budget_ms} ms time budget and was stopped")]
    Timeout {
        /// The budget.
        budget_ms: u64,
    },
    /// Tried to grow its memory past the cap.
    #[error("tried to grow its memory to {desired} bytes, past its {cap} byte cap")]
    OutOfMemory {
        /// The size it asked for.
        desired: u64,
        /// The cap.
        cap: u64,
    },
    /// Trapped: `unreachable`, a panic, an out-of-bounds access, `exit`, a stack overflow.
    #[error("trapped: {message}")]
    Trap {
        /// The trap and what the guest wrote to stderr before it.
        message: String,
    },
    /// Returned something the contract does not allow, or too much of it.
    #[error("returned bad output: {reason}")]
    BadOutput {
        /// What is wrong with it.
        reason: String,
    },
    /// Returned its own `err`.
    #[error("returned an error: {message}")]
    PluginError {
        /// The plugin's message.
        message: String,
    },
    /// No such plugin, not that world, or its stored bytes could not be loaded.
    #[error("{message}")]
    NotFound {
        /// Which reference and why.
        message: String,
    },
}

impl CallError {
    /// The core's classification of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            CallError::Timeout { .. } => FailureKind::Timeout,
            CallError::OutOfMemory { .. } => FailureKind::OutOfMemory,
            CallError::Trap { .. } => FailureKind::Trap,
            CallError::BadOutput { .. } => FailureKind::BadOutput,
            CallError::PluginError { .. } => FailureKind::PluginError,
            CallError::NotFound { .. } => FailureKind::NotFound,
        }
    }
}

impl From<CallError> for PluginFailure {
    fn from(e: CallError) -> PluginFailure {
        let kind = e.kind();
        let message = match e {
            CallError::Trap { message }
            | CallError::PluginError { message }
            | CallError::NotFound { message } => message,
            CallError::BadOutput { reason } => reason,
            other => other.to_string(),
        };
        PluginFailure { kind, message }
    }
}

/// Why the host, its engine or its registry could not be set up or changed.
#[derive(Debug, Error)]
pub enum HostError {
    /// The configuration does not hold together, or the engine rejected it.
    #[error("plugin host configuration: {message}")]
    Config {
        /// What is wrong (with wasmtime's message and its causes when wasmtime refused).
        message: String,
        /// wasmtime's or the OS's error; none for a setting the host checks itself.
        source: Option<Cause>,
    },
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "writing".
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The registry index does not parse: damaged, or written by a newer release.
    #[error("the plugin index in {location} is corrupt: {source}")]
    CorruptIndex {
        /// Where the index is: its directory, or the database holding it.
        location: String,
        /// The parser's error: what is wrong, its line and column, and its
        /// [`serde_json::error::Category`] (syntax, data of the wrong shape, cut short).
        source: serde_json::Error,
    },
    /// The registry index could not be encoded to be saved (serde_json refused it); nothing
    /// was saved.
    #[error("cannot encode the plugin index in {location}: {source}")]
    EncodeIndex {
        /// Where the index is: its directory, or the database holding it.
        location: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// A shared registry storage (a database) failed.
    #[error("{action} the plugin registry in {location}: {source}")]
    Storage {
        /// What was being done, e.g. "saving the index of".
        action: &'static str,
        /// Where the registry is (a database, without password).
        location: String,
        /// The storage's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another node changed the shared registry index at every attempt to save it; nothing
    /// was saved, the upload can be retried.
    #[error("the plugin registry in {location} changed concurrently {attempts} times; nothing was saved")]
    Contended {
        /// Where the registry is.
        location: String,
        /// How many times saving was tried.
        attempts: u32,
    },
    /// A compiled artifact could not be produced or loaded.
    #[error("compiled artifact for {digest}: {message}")]
    Artifact {
        /// Which component.
        digest: String,
        /// wasmtime's message for the artifact it could not map (a damaged file, or one
        /// from another engine build).
        message: String,
        /// wasmtime's error (boxed as the error it wraps, e.g. the OS's).
        source: Cause,
    },
    /// No plugin of that name.
    #[error("no plugin named '{0}' is registered")]
    UnknownPlugin(String),
    /// Limits out of range.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
}

impl HostError {
    /// A setting the host refuses itself, with no foreign error behind it.
    pub(crate) fn config(message: impl Into<String>) -> Self {
        HostError::Config {
            message: message.into(),
            source: None,
        }
    }

    /// wasmtime refused the configuration: building the engine (`doing` none) or something
    /// the host was `doing` with it, e.g. `linking scorer`.
    pub(crate) fn engine(doing: Option<&str>, e: wasmtime::Error) -> Self {
        let (text, source) = wasmtime_cause(e);
        HostError::Config {
            message: match doing {
                Some(doing) => format!("{doing}: {text}"),
                None => text,
            },
            source: Some(source),
        }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        HostError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_map_onto_the_core_failure_kinds() {
        let f: PluginFailure = CallError::Trap {
            message: "boom".into(),
        }
        .into();
        assert_eq!(f.kind, FailureKind::Trap);
        assert_eq!(f.message, "boom");
        let f: PluginFailure = CallError::Timeout { budget_ms: 100 }.into();
        assert_eq!(f.kind, FailureKind::Timeout);
        assert!(f.message.contains("100 ms"));
    }

    #[test]
    fn a_configuration_wasmtime_refused_keeps_wasmtimes_error_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::OutOfMemory, "no room for the pool");
        let e = HostError::engine(Some("linking scorer"), wasmtime::Error::from(io));
        assert_eq!(
            e.to_string(),
            "plugin host configuration: linking scorer: no room for the pool"
        );
        let kind = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        assert_eq!(kind, Some(std::io::ErrorKind::OutOfMemory));
        assert!(
            std::error::Error::source(&HostError::config("epoch_tick must be positive")).is_none()
        );
    }

    #[test]
    fn unknown_world_lists_what_the_component_exports() {
        let e = AddError::UnknownWorld {
            exports: vec!["run".into()],
        };
        assert!(e.to_string().contains("exports `run`"));
        assert_eq!(
            AddError::UnknownWorld { exports: vec![] }.code(),
            "unknown_world"
        );
    }
}
