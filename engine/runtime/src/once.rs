//! `Idempotency-Key` for requests that are not instance commands - creating a token,
//! storing a definition, uploading a plugin. Keys are one namespace with the commands':
//! the same lock stripe (`idempotency:<key>`) and the same records, so a key used for a
//! start cannot be replayed as a token, and two requests sharing a key are checked and
//! recorded one at a time whatever they target.

use crate::ids::fnv1a;
use crate::{Runtime, RuntimeError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::MutexGuard;
use waystation_store::IdempotencyRecord;

/// The first answer to a request, kept under its key and given again to a verbatim retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstAnswer {
    /// Its HTTP status.
    pub status: u16,
    /// Its JSON body.
    pub body: Value,
}

/// Holds a key's lock from the check to the record; dropping it lets the next request with
/// the key in.
pub struct KeyLock<'a> {
    _guard: MutexGuard<'a, ()>,
    key: String,
    fingerprint: String,
    // When the request came: the record's place in the expiry queue.
    at: chrono::DateTime<chrono::Utc>,
}

/// What a key says about a request.
pub enum Seen<'a> {
    /// First time: carry it out, then [`KeyLock::record`] the answer.
    New(KeyLock<'a>),
    /// A verbatim retry: this is the first answer; do nothing again.
    Replay(FirstAnswer),
}

impl KeyLock<'_> {
    /// The record to keep for `answer` (for stores that write it in the same batch as the
    /// request's own change, such as a new token).
    ///
    /// # Errors
    /// [`RuntimeError::Encode`] if the answer cannot be serialized.
    pub fn record_of(
        &self,
        answer: &FirstAnswer,
    ) -> Result<(&str, IdempotencyRecord), RuntimeError> {
        let response = serde_json::to_value(answer)
            .map_err(|e| RuntimeError::encode("recording an answer", e))?;
        Ok((
            &self.key,
            IdempotencyRecord {
                fingerprint: self.fingerprint.clone(),
                response,
                at: Some(self.at),
            },
        ))
    }

    /// Keeps `answer` under the key, durable when it returns.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the record cannot be written or synced: the answer is
    /// then not kept for the key.
    pub async fn record(self, runtime: &Runtime, answer: &FirstAnswer) -> Result<(), RuntimeError> {
        let (key, record) = self.record_of(answer)?;
        runtime.store.put_idempotency(key, &record)?;
        runtime.durability.durable().await?;
        Ok(())
    }
}

impl Runtime {
    /// Takes `key`'s lock and looks it up for request `kind` on `target` with body `body`:
    /// new, or the first answer to the same request.
    ///
    /// # Errors
    /// [`RuntimeError::IdempotencyConflict`] when the key was used for a different request
    /// (another kind, target or body, or an instance command); store errors.
    pub async fn idempotent(
        &self,
        key: &str,
        kind: &str,
        target: &str,
        body: &[u8],
    ) -> Result<Seen<'_>, RuntimeError> {
        let fingerprint = format!("{kind}:{target}:{:016x}", fnv1a(body));
        let guard = self
            .locks
            .lock(&crate::commands::idempotency_lock(key))
            .await;
        match self.store.idempotency(key)? {
            None => Ok(Seen::New(KeyLock {
                _guard: guard,
                key: key.to_owned(),
                fingerprint,
                at: self.now(),
            })),
            Some(record) if record.fingerprint != fingerprint => {
                Err(RuntimeError::IdempotencyConflict(key.to_owned()))
            }
            Some(record) => {
                let answer = serde_json::from_value(record.response).map_err(|e| {
                    waystation_store::StoreError::unreadable(format!("idempotency record {key}"), e)
                })?;
                drop(guard);
                self.durability.durable().await?;
                Ok(Seen::Replay(answer))
            }
        }
    }

    /// Waits until everything written so far is on disk (the group flush).
    ///
    /// # Errors
    /// Store errors from the flush.
    pub async fn durable(&self) -> Result<(), RuntimeError> {
        self.durability.durable().await?;
        Ok(())
    }
}
