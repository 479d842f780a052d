//! Changes as they commit, for live pages: every commit that changes an instance (a
//! command, a timer, a delivery attempt) publishes one [`Change`] on a bounded broadcast
//! channel, which the server's event streams relay.
//!
//! Why a broadcast and not a store scan: a page wants to know within a second that a card
//! turned red, and a change is already in hand at the commit. The channel holds the last
//! [`CHANGE_BUFFER`] changes; a receiver that falls further behind loses the oldest and is
//! told so ([`tokio::sync::broadcast::error::RecvError::Lagged`]), so a slow reader never
//! holds memory or slows a commit (sending never waits). A change is published after its
//! batch is applied - as visible as any query answer, a few milliseconds before its flush
//! makes it durable - so it says "look again", never "this is final".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use waystation_core::{InstanceState, SlaState, Status};

/// Changes the channel keeps for a receiver that has not read them yet.
pub const CHANGE_BUFFER: usize = 1024;

/// What changed on one instance, in one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The instance.
    pub instance: String,
    /// Its workflow.
    pub workflow: String,
    /// The version it runs on.
    pub version: u32,
    /// The stage it is in after the commit.
    pub stage: String,
    /// Its status after the commit.
    pub status: Status,
    /// Its SLA state after the commit.
    pub sla: SlaState,
    /// Its history length after the commit: a page that has read this many entries has
    /// seen the change.
    pub history_len: u64,
    /// What changed: `state` (a command or timer moved the instance) or `delivery` (a
    /// message to it was attempted; its stage and status are unchanged).
    pub kind: ChangeKind,
    /// When it was committed.
    pub at: DateTime<Utc>,
}

/// The kind of a [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A command or timer changed the instance.
    State,
    /// A delivery attempt of one of its messages was recorded.
    Delivery,
}

/// The sending side, owned by the runtime.
pub(crate) struct Changes {
    // `broadcast`: every stream sees every change; `send` never blocks.
    sender: broadcast::Sender<Change>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            sender: broadcast::channel(CHANGE_BUFFER).0,
        }
    }
}

impl Changes {
    /// Publishes what `state` is after a commit at `at`. Without receivers, nothing.
    pub(crate) fn publish(&self, state: &InstanceState, kind: ChangeKind, at: DateTime<Utc>) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        // An error only means every receiver left since the count: nothing to do.
        let _ = self.sender.send(Change {
            instance: state.id.clone(),
            workflow: state.workflow.clone(),
            version: state.version,
            stage: state.stage.clone(),
            status: state.status,
            sla: state.sla.state,
            history_len: state.history_len,
            kind,
            at,
        });
    }

    /// A new receiver, seeing changes published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}
