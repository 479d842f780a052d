//! Records the stores keep besides instance states.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use waystation_core::OutboundMessage;

/// A stored definition version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDefinition {
    /// Workflow id.
    pub id: String,
    /// Version, from 1.
    pub version: u32,
    /// The definition JSON as uploaded.
    pub definition: Value,
    /// When this version was stored.
    #[serde(with = "waystation_core::timestamp")]
    pub stored_at: DateTime<Utc>,
    /// Who uploaded it (the token behind the request); `None` for versions stored before
    /// uploads recorded it, and for uploads by the engine's own tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<waystation_core::Actor>,
}

/// Outcome of storing a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutDefinition {
    /// The version the definition has now.
    pub version: u32,
    /// True when this upload made a new version; false when it equals the newest.
    pub created: bool,
}

/// A timer that is due, from the due-time index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    /// When it is due.
    pub due: DateTime<Utc>,
    /// Its id.
    pub timer_id: String,
    /// Its instance.
    pub instance_id: String,
}

/// Where an outbox message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up after the configured attempts.
    Dead,
}

impl OutboxStatus {
    /// The name used in keys and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }
}

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The message.
    pub message: OutboundMessage,
    /// Delivery status.
    pub status: OutboxStatus,
    /// Attempts made since it was queued (or last put back by an operator).
    pub attempts: u32,
    /// When it was queued.
    #[serde(with = "waystation_core::timestamp")]
    pub enqueued_at: DateTime<Utc>,
    /// The last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// While pending: when the next attempt is due (`None`: at once, from `enqueued_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "waystation_core::timestamp::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the last attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "waystation_core::timestamp::option")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered or given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "waystation_core::timestamp::option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times an operator put it back in the queue after it died.
    #[serde(default)]
    pub retries: u32,
}

impl OutboxRecord {
    /// A message just queued at `now`: pending, due at once.
    pub fn queued(message: OutboundMessage, now: DateTime<Utc>) -> Self {
        OutboxRecord {
            message,
            status: OutboxStatus::Pending,
            attempts: 0,
            enqueued_at: now,
            last_error: None,
            next_attempt_at: None,
            last_attempt_at: None,
            finished_at: None,
            retries: 0,
        }
    }

    /// The time in its status queue key: when the next attempt is due while pending, when
    /// it was delivered or given up otherwise. Pending messages are thus ordered by due time.
    pub fn queue_time(&self) -> DateTime<Utc> {
        match self.status {
            OutboxStatus::Pending => self.next_attempt_at.unwrap_or(self.enqueued_at),
            OutboxStatus::Delivered | OutboxStatus::Dead => {
                self.finished_at.unwrap_or(self.enqueued_at)
            }
        }
    }
}

/// A pending message that is due, from the due-time queue: enough to pick a channel
/// without reading the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMessage {
    /// When its next attempt is due.
    pub due: DateTime<Utc>,
    /// The message id.
    pub id: String,
    /// Its channel.
    pub channel: String,
}

/// A change of one outbox message, written as one atomic batch with the history entries
/// it causes: the record moves between status queues, the instance's history grows.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryUpdate<'a> {
    /// The record as read (its queue key is removed).
    pub before: &'a OutboxRecord,
    /// The record to write (its queue key is added).
    pub after: &'a OutboxRecord,
    /// The instance with its `history_len` already raised by `history.len()`, when it
    /// exists; `None` writes no history.
    pub instance: Option<&'a waystation_core::InstanceState>,
    /// History entries for the instance, in order.
    pub history: &'a [waystation_core::HistoryEntry],
    /// The idempotency record of the command that made the change, under its key.
    pub idempotency: Option<(&'a str, &'a IdempotencyRecord)>,
}

/// What a command with an `Idempotency-Key` answered the first time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// What the command was (kind, target, body digest): a key reused for another
    /// command is an error, not a silent replay.
    pub fingerprint: String,
    /// The first answer.
    pub response: Value,
    /// When it was kept; it expires a configured time later (records written before
    /// expiry existed have none and are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "waystation_core::timestamp::option")]
    pub at: Option<DateTime<Utc>>,
}
