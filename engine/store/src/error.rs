//! [`StoreError`]: why a store operation failed, keeping the backend's own error as its
//! source.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The backend's own error (an IO error, a sled, fjall, redb or PostgreSQL error). Shared,
/// because a failed group commit hands one error to every command waiting on it.
pub type BackendCause = Arc<dyn Error + Send + Sync + 'static>;

/// Why a store operation failed.
///
/// `Display` and `Error` are written out rather than derived: the backend's error is
/// shared (an [`Arc`]), and [`Error::source`] hands out the error inside it, so callers can
/// downcast it to its own type (`std::io::Error`, `postgres::Error`, ...).
#[derive(Debug, Clone)]
pub enum StoreError {
    /// The backend failed: an IO error, a file locked by another process, a lost database
    /// connection, a statement the database refused. Displays as
    /// `storage backend: <context>: <cause>`.
    Backend {
        /// What the store was doing, e.g. `cannot open the fjall store at data/store`.
        context: String,
        /// The backend's error, when one caused this (none for a store's own refusal,
        /// such as a poisoned lock or a query that returned no row).
        source: Option<BackendCause>,
    },
    /// A stored record could not be decoded: the data is damaged or from an unknown version.
    Corrupt(String),
    /// A pagination cursor that this store did not hand out.
    BadCursor,
    /// Another node changed the record first (shared stores only): the instance is no
    /// longer the `before` a commit was computed from, or a business key is already taken.
    /// Nothing was written; the runtime reads again and retries the command.
    Conflict(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Backend { context, source } => {
                write!(f, "storage backend: {context}")?;
                match source {
                    Some(cause) => write!(f, ": {cause}"),
                    None => Ok(()),
                }
            }
            StoreError::Corrupt(what) => write!(f, "stored data is unreadable: {what}"),
            StoreError::BadCursor => f.write_str("the cursor is not one this server handed out"),
            StoreError::Conflict(what) => write!(f, "changed concurrently: {what}"),
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StoreError::Backend {
                source: Some(cause),
                ..
            } => Some(&**cause),
            _ => None,
        }
    }
}

impl StoreError {
    /// A backend failure of the store's own, with no foreign error behind it.
    pub fn backend(context: impl Into<String>) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            source: None,
        }
    }

    /// A backend failure caused by `source`, while doing `context`.
    pub fn backend_from(
        context: impl Into<String>,
        source: impl Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }
}

/// Equal when the same variant says the same thing (a backend error's cause by its text):
/// what tests and the runtime's retry logic compare.
impl PartialEq for StoreError {
    fn eq(&self, other: &StoreError) -> bool {
        match (self, other) {
            (
                StoreError::Backend { context, source },
                StoreError::Backend {
                    context: other_context,
                    source: other_source,
                },
            ) => {
                context == other_context
                    && source.as_ref().map(ToString::to_string)
                        == other_source.as_ref().map(ToString::to_string)
            }
            (StoreError::Corrupt(a), StoreError::Corrupt(b))
            | (StoreError::Conflict(a), StoreError::Conflict(b)) => a == b,
            (StoreError::BadCursor, StoreError::BadCursor) => true,
            _ => false,
        }
    }
}

impl Eq for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_error_keeps_its_cause_as_source_and_in_its_text() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = StoreError::backend_from("cannot open the fjall store at /data", io);
        assert_eq!(
            e.to_string(),
            "storage backend: cannot open the fjall store at /data: permission denied"
        );
        let source = e.source().expect("the IO error is the source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_refusal_of_the_stores_own_has_no_source() {
        let e = StoreError::backend("definition lock poisoned");
        assert_eq!(e.to_string(), "storage backend: definition lock poisoned");
        assert!(e.source().is_none());
        assert_eq!(e.clone(), e);
    }
}
