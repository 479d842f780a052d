//! What a runtime command can fail with.

use std::sync::Arc;
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
    /// The engine could not encode a value as JSON (to measure it against a limit, to keep
    /// the answer under an idempotency key): serde_json refused it, e.g. a map whose keys
    /// are not strings. Not the caller's input; nothing was changed. Displays like
    /// [`RuntimeError::Engine`] (`the engine failed <doing>: <cause>`) and the API answers
    /// it the same way (500); serde_json's error is in the [`std::error::Error::source`]
    /// chain.
    #[error("the engine failed {doing}: {source}")]
    Encode {
        /// What the engine was doing, e.g. `recording the answer to key 'k-1'`.
        doing: String,
        /// serde_json's error.
        #[source]
        source: JsonError,
    },
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

/// A serde_json error that a [`RuntimeError`] can carry and still be `Clone` and
/// `PartialEq`: shared (an [`Arc`]), equal by its text. Displays as serde_json's error,
/// which is its [`std::error::Error::source`], so a walk down the source chain finds the
/// `serde_json::Error` itself (its [`serde_json::error::Category`], line and column).
#[derive(Debug, Clone)]
pub struct JsonError(Arc<serde_json::Error>);

impl JsonError {
    /// serde_json's error.
    pub fn json(&self) -> &serde_json::Error {
        &self.0
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError(Arc::new(e))
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for JsonError {
    fn eq(&self, other: &JsonError) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl RuntimeError {
    /// A value that did not encode as JSON while the engine was `doing` something.
    pub fn encode(doing: impl Into<String>, source: serde_json::Error) -> RuntimeError {
        RuntimeError::Encode {
            doing: doing.into(),
            source: source.into(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn an_encoding_failure_keeps_serde_jsons_error_in_its_source_chain() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        let refused = serde_json::to_value(&map).expect_err("JSON keys must be strings");
        let text = refused.to_string();
        let e = RuntimeError::encode("recording an answer", refused);
        assert_eq!(
            e.to_string(),
            format!("the engine failed recording an answer: {text}")
        );
        let json = std::iter::successors(e.source(), |&s| s.source())
            .find_map(|s| s.downcast_ref::<serde_json::Error>())
            .expect("serde_json's error is in the chain");
        assert_eq!(json.to_string(), text);
        assert_eq!(e.clone(), e);
    }
}
