//! What a runtime command can fail with.

use waystation_core::{Rejection, ValidationError};
use waystation_store::StoreError;

/// Why a command was not carried out. Nothing was changed in any case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// No such workflow, instance or task.
    #[error("no {what} '{id}'")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The state machine refused the input.
    #[error("{0}")]
    Rejected(Rejection),
    /// A definition did not validate.
    #[error("the definition is invalid ({} errors)", .0.len())]
    InvalidDefinition(Vec<ValidationError>),
    /// An `Idempotency-Key` reused for a different command.
    #[error("Idempotency-Key '{0}' was already used for a different request")]
    IdempotencyConflict(String),
    /// A start with a business key that a running instance of the workflow already has.
    #[error("instance '{instance}' of workflow '{workflow}' is running with key '{key}'")]
    KeyInUse {
        /// The workflow.
        workflow: String,
        /// The business key.
        key: String,
        /// The running instance that has it.
        instance: String,
    },
    /// The store failed; the command may be retried.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The runtime is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The engine itself failed to carry out the step - a panic in the core, a stored
    /// definition that no longer compiles - not the caller's input nor the workflow's
    /// logic. Nothing was changed; the message is for the log and the instance history.
    #[error("the engine failed {0}")]
    Engine(String),
    /// Caller data over a configured size limit (see [`crate::Limits`]).
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What is too large, e.g. "the event's data".
        what: &'static str,
        /// Where, as a JSON pointer into the request body (`/data`, `/input`, ``).
        pointer: &'static str,
        /// Its size in bytes (serialized JSON).
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The command would take the instance over a configured bound (its variables' size,
    /// its history's length); it was refused and nothing changed.
    #[error("{message}")]
    OverLimit {
        /// Where, as a JSON pointer into the instance (`/vars`, `/history`).
        pointer: &'static str,
        /// What and by how much.
        message: String,
    },
}

impl RuntimeError {
    /// A blocking task that did not finish: a panic becomes [`RuntimeError::Engine`] with
    /// the panic's message and `doing` (e.g. "compiling a definition"); a cancelled task
    /// means the runtime is going away.
    pub fn from_join(doing: &str, e: tokio::task::JoinError) -> RuntimeError {
        match e.try_into_panic() {
            Ok(payload) => RuntimeError::Engine(format!(
                "{doing}: it panicked: {}",
                crate::contain::panic_text(payload.as_ref())
            )),
            Err(_) => RuntimeError::ShuttingDown,
        }
    }
}
