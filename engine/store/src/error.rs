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
    /// A stored record's layout is wrong where no foreign error says why: a key that is not
    /// UTF-8, a version number out of range, an index key naming no instance, a report cell
    /// of the wrong kind. Displays as `stored data is unreadable: <what>`.
    Corrupt(String),
    /// A stored record is not the JSON of its type: the data is damaged or from an unknown
    /// version. Displays as `stored data is unreadable: <what>: <cause>`; the JSON error is
    /// the [`Error::source`] (its line, column and [`serde_json::error::Category`]).
    Unreadable {
        /// Which record, e.g. `idempotency record <key>` or `record at <key>`.
        what: String,
        /// The decoder's error; shared for the same reason as [`StoreError::Backend`]'s.
        source: Arc<serde_json::Error>,
    },
    /// A record could not be encoded to be stored (serde_json refused the value, e.g. a map
    /// whose keys are not strings). Nothing was written. Displays as
    /// `cannot encode <what>: <cause>`; the JSON error is the [`Error::source`].
    Encode {
        /// Which record, e.g. `a record` or `message <id>`.
        what: String,
        /// The encoder's error.
        source: Arc<serde_json::Error>,
    },
    /// A pagination cursor that this store did not hand out.
    BadCursor,
    /// Another node changed the record first (shared stores only): the instance is no
    /// longer the `before` a commit was computed from, or a business key is already taken.
    /// Nothing was written; the runtime reads again and retries the command. Displays as
    /// `changed concurrently: <what>`.
    Conflict {
        /// What was changed first, e.g. `instance 'i-1' was changed by another node`, or the
        /// database's message with its SQLSTATE and the statement's first line.
        what: String,
        /// The database's error when it reported the conflict (a unique violation, a
        /// serialisation failure, a deadlock: a `postgres::Error` whose SQLSTATE says which);
        /// none when the store found the conflict itself (a row count, a version compare).
        source: Option<BackendCause>,
    },
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
            StoreError::Unreadable { what, source } => {
                write!(f, "stored data is unreadable: {what}: {source}")
            }
            StoreError::Encode { what, source } => write!(f, "cannot encode {what}: {source}"),
            StoreError::BadCursor => f.write_str("the cursor is not one this server handed out"),
            StoreError::Conflict { what, .. } => write!(f, "changed concurrently: {what}"),
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StoreError::Backend {
                source: Some(cause),
                ..
            }
            | StoreError::Conflict {
                source: Some(cause),
                ..
            } => Some(&**cause),
            StoreError::Unreadable { source, .. } | StoreError::Encode { source, .. } => {
                Some(&**source)
            }
            StoreError::Backend { source: None, .. }
            | StoreError::Conflict { source: None, .. }
            | StoreError::Corrupt(_)
            | StoreError::BadCursor => None,
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

    /// The stored record `what` did not decode: `source` is serde_json's error.
    pub fn unreadable(what: impl Into<String>, source: serde_json::Error) -> StoreError {
        StoreError::Unreadable {
            what: what.into(),
            source: Arc::new(source),
        }
    }

    /// The record `what` could not be encoded to be stored: `source` is serde_json's error.
    pub fn encode(what: impl Into<String>, source: serde_json::Error) -> StoreError {
        StoreError::Encode {
            what: what.into(),
            source: Arc::new(source),
        }
    }

    /// A conflict the store found itself (a row count, a version compare): `what` says which
    /// record moved on.
    pub fn conflict(what: impl Into<String>) -> StoreError {
        StoreError::Conflict {
            what: what.into(),
            source: None,
        }
    }

    /// A conflict the backend reported as `source` (a unique violation, a serialisation
    /// failure, a deadlock), while doing `what`.
    pub fn conflict_from(
        what: impl Into<String>,
        source: impl Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Conflict {
            what: what.into(),
            source: Some(Arc::new(source)),
        }
    }
}

/// Equal when the same variant says the same thing (a foreign cause by its text): what
/// tests and the runtime's retry logic compare.
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
            (
                StoreError::Conflict { what, source },
                StoreError::Conflict {
                    what: other_what,
                    source: other_source,
                },
            ) => {
                what == other_what
                    && source.as_ref().map(ToString::to_string)
                        == other_source.as_ref().map(ToString::to_string)
            }
            (
                StoreError::Unreadable { what, source },
                StoreError::Unreadable {
                    what: other_what,
                    source: other_source,
                },
            )
            | (
                StoreError::Encode { what, source },
                StoreError::Encode {
                    what: other_what,
                    source: other_source,
                },
            ) => what == other_what && source.to_string() == other_source.to_string(),
            (StoreError::Corrupt(a), StoreError::Corrupt(b)) => a == b,
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

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<u32>("\"not a number\"").expect_err("a string is not a u32")
    }

    #[test]
    fn an_unreadable_record_keeps_the_json_error_as_source() {
        let e = StoreError::unreadable("idempotency record k-1", json_error());
        assert_eq!(
            e.to_string(),
            format!(
                "stored data is unreadable: idempotency record k-1: {}",
                json_error()
            )
        );
        let json = e
            .source()
            .and_then(|s| s.downcast_ref::<serde_json::Error>())
            .expect("the serde_json error is the source");
        assert_eq!(json.classify(), serde_json::error::Category::Data);
        assert_eq!(e.clone(), e);
    }

    #[test]
    fn an_encoding_failure_is_not_filed_as_unreadable_and_keeps_its_source() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        let refused = serde_json::to_vec(&map).expect_err("JSON keys must be strings");
        let e = StoreError::encode("a record", refused);
        assert!(e.to_string().starts_with("cannot encode a record: "), "{e}");
        assert!(e
            .source()
            .is_some_and(|s| s.downcast_ref::<serde_json::Error>().is_some()));
    }

    #[test]
    fn a_conflict_keeps_the_backends_error_when_there_is_one() {
        let io = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "unique violation");
        let e = StoreError::conflict_from("instance 'i-1' exists already", io);
        assert_eq!(
            e.to_string(),
            "changed concurrently: instance 'i-1' exists already"
        );
        let kind = e
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        assert_eq!(kind, Some(std::io::ErrorKind::AlreadyExists));
        let found = StoreError::conflict("instance 'i-1' was changed by another node");
        assert!(found.source().is_none());
        assert_ne!(found, e);
    }
}
