//! The failure of one delivery attempt, in a module of its own: the outbox, its dispatcher
//! and the retry policy all name it, and none of them should need another for it.

/// The library error behind a [`DeliveryError`] (SMTP, HTTP, encoding), shared so that the
/// error stays `Clone`.
pub type DeliveryCause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Why a delivery attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What went wrong, for operators (recorded in the history and shown by the API).
    pub message: String,
    /// True when retrying cannot help: the message is dead at once.
    pub permanent: bool,
    /// The library's error, when one caused it (`None` for an HTTP status the receiver
    /// answered, or a channel that is not configured).
    #[source]
    pub cause: Option<DeliveryCause>,
}

/// Two failures are alike when they say the same and are both permanent or not (the
/// library errors behind them have no equality).
impl PartialEq for DeliveryError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message && self.permanent == other.permanent
    }
}

impl Eq for DeliveryError {}

impl DeliveryError {
    /// A failure that may pass (a timeout, a 503, a refused connection).
    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: false,
            cause: None,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: true,
            cause: None,
        }
    }

    /// The same failure, keeping the library error `cause` that made it.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(std::sync::Arc::new(cause));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryError;
    use std::error::Error;

    #[test]
    fn a_delivery_failure_keeps_the_library_error_that_caused_it() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = DeliveryError::transient("POST http://x: refused").caused_by(io);
        let source = e.source().expect("the cause is the source");
        assert_eq!(source.to_string(), "refused");
        assert_eq!(e, DeliveryError::transient("POST http://x: refused"));
    }
}
