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
}
