//! The failure of one delivery attempt, in a module of its own: the outbox, its dispatcher
//! and the retry policy all name it, and none of them should need another for it.

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What went wrong, for operators (recorded in the history and shown by the API).
    pub message: String,
    /// True when retrying cannot help: the message is dead at once.
    pub permanent: bool,
}

impl DeliveryError {
    /// A failure that may pass (a timeout, a 503, a refused connection).
    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: true,
        }
    }
}
