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
    pub stored_at: DateTime<Utc>,
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
    /// Attempts made.
    pub attempts: u32,
    /// When it was queued.
    pub enqueued_at: DateTime<Utc>,
    /// The last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a command with an `Idempotency-Key` answered the first time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// What the command was (kind, target, body digest): a key reused for another
    /// command is an error, not a silent replay.
    pub fingerprint: String,
    /// The first answer.
    pub response: Value,
}
