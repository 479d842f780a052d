//! An operator puts a dead message back in the queue: pending again, due at once, with a
//! fresh budget of attempts. The retry and who asked for it go into the instance history.

use crate::ids::fnv1a;
use crate::{Runtime, RuntimeError};
use chrono::{DateTime, Utc};
use waystation_core::{HistoryEntry, HistoryEvent};
use waystation_store::{IdempotencyRecord, OutboxRecord, OutboxStatus, StoreError};

/// Why a retry was refused. Nothing was changed in any case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutboxError {
    /// No message has this id.
    #[error("no outbox message '{0}'")]
    NotFound(String),
    /// Only dead messages are retried: a pending one is retried anyway, a delivered one
    /// needs nothing.
    #[error("{}", not_dead(id, *status, *next_attempt_at))]
    NotDead {
        /// The message.
        id: String,
        /// Its status.
        status: OutboxStatus,
        /// When its next attempt is due, if pending.
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// The runtime or the store failed, or an `Idempotency-Key` was reused.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

fn not_dead(id: &str, status: OutboxStatus, next: Option<DateTime<Utc>>) -> String {
    match (status, next) {
        (OutboxStatus::Pending, Some(t)) => format!(
            "message '{id}' is pending: its next attempt is due at {}; only dead messages are retried",
            t.to_rfc3339()
        ),
        (OutboxStatus::Pending, None) => {
            format!("message '{id}' is pending and due now; only dead messages are retried")
        }
        _ => format!(
            "message '{id}' is {}; only dead messages are retried",
            status.as_str()
        ),
    }
}

impl From<StoreError> for OutboxError {
    fn from(e: StoreError) -> Self {
        OutboxError::Runtime(RuntimeError::Store(e))
    }
}

/// The answer to a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retried {
    /// The message after the retry.
    pub record: OutboxRecord,
    /// True when this is the stored answer to an earlier request with the same
    /// `Idempotency-Key`; nothing was changed again.
    pub replayed: bool,
}

impl Runtime {
    /// Puts dead message `id` back in the queue, due at once, with a fresh budget of
    /// attempts; `by` is recorded in the history. Durable when it returns.
    ///
    /// # Errors
    /// [`OutboxError::NotFound`]; [`OutboxError::NotDead`] when it is pending or delivered;
    /// [`RuntimeError::IdempotencyConflict`] for a key used for another request; store
    /// errors.
    pub async fn retry_message(
        &self,
        id: &str,
        by: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Retried, OutboxError> {
        self.retry_message_by(id, by, None, idempotency_key).await
    }

    /// As [`Runtime::retry_message`], recording `actor` (the token behind the request) on
    /// the history entry.
    ///
    /// # Errors
    /// As [`Runtime::retry_message`].
    pub(crate) async fn retry_message_by(
        &self,
        id: &str,
        by: &str,
        actor: Option<&waystation_core::Actor>,
        idempotency_key: Option<&str>,
    ) -> Result<Retried, OutboxError> {
        let found = self
            .store
            .outbox_message(id)?
            .ok_or_else(|| OutboxError::NotFound(id.to_owned()))?;
        let fp = format!("retry:{id}:{:016x}", fnv1a(by.as_bytes()));
        let key_lock = idempotency_key.map(crate::commands::idempotency_lock);
        let record = {
            // The key's lock too: one key is checked and recorded by one request at a
            // time, whatever it targets (an instance command, another message).
            let names: Vec<&str> = std::iter::once(found.message.instance_id.as_str())
                .chain(key_lock.as_deref())
                .collect();
            let _guards = self.locks.lock_all(&names).await;
            if let Some(key) = idempotency_key {
                if let Some(seen) = self.store.idempotency(key)? {
                    drop(_guards);
                    return self.replay_retry(key, &fp, seen).await;
                }
            }
            self.put_back(id, by, actor, idempotency_key.map(|k| (k, fp.as_str())))?
        };
        self.outbox_wake.notify_one();
        self.durability
            .durable()
            .await
            .map_err(RuntimeError::from)?;
        tracing::info!(message = %id, by, "outbox: dead message put back in the queue");
        Ok(Retried {
            record,
            replayed: false,
        })
    }

    /// Under the message's instance lock: dead message `id` pending again, due now, with no
    /// attempts spent, written with its history entry and, under `idempotency` (`(key,
    /// fingerprint)`), the answer kept for a repeat. Visible at once, durable after a flush.
    ///
    /// # Errors
    /// [`OutboxError::NotFound`], [`OutboxError::NotDead`], or the store's error.
    fn put_back(
        &self,
        id: &str,
        by: &str,
        actor: Option<&waystation_core::Actor>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<OutboxRecord, OutboxError> {
        let current = self
            .store
            .outbox_message(id)?
            .ok_or_else(|| OutboxError::NotFound(id.to_owned()))?;
        if current.status != OutboxStatus::Dead {
            return Err(OutboxError::NotDead {
                id: id.to_owned(),
                status: current.status,
                next_attempt_at: current.next_attempt_at,
            });
        }
        let now = self.now();
        let after = OutboxRecord {
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            finished_at: None,
            retries: current.retries + 1,
            ..current.clone()
        };
        let entry = HistoryEntry {
            at: now,
            event: HistoryEvent::DeliveryRetried {
                message_id: id.to_owned(),
                by: by.to_owned(),
            },
            actor: actor.cloned(),
        };
        let idempotency = match idempotency {
            None => None,
            Some((k, fp)) => Some((k, retry_answer(k, fp, &after, now)?)),
        };
        self.write_message(
            &current,
            &after,
            entry,
            idempotency.as_ref().map(|(k, r)| (*k, r)),
        )?;
        Ok(after)
    }

    async fn replay_retry(
        &self,
        key: &str,
        fp: &str,
        seen: IdempotencyRecord,
    ) -> Result<Retried, OutboxError> {
        if seen.fingerprint != fp {
            return Err(RuntimeError::IdempotencyConflict(key.to_owned()).into());
        }
        let record = serde_json::from_value(seen.response)
            .map_err(|e| StoreError::unreadable(format!("idempotency record {key}"), e))?;
        self.durability
            .durable()
            .await
            .map_err(RuntimeError::from)?;
        Ok(Retried {
            record,
            replayed: true,
        })
    }
}

/// The idempotency record of a retry answered with `after`, kept under `key` from `now`.
///
/// # Errors
/// [`StoreError::Encode`] when the answer cannot be encoded.
fn retry_answer(
    key: &str,
    fingerprint: &str,
    after: &OutboxRecord,
    now: DateTime<Utc>,
) -> Result<IdempotencyRecord, StoreError> {
    Ok(IdempotencyRecord {
        fingerprint: fingerprint.to_owned(),
        response: serde_json::to_value(after)
            .map_err(|e| StoreError::encode(format!("the answer to keep under {key}"), e))?,
        at: Some(now),
    })
}
