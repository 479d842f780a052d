//! Outbox delivery (issue 6). Messages rendered by notifier plugins are written to the
//! outbox in the same commit as the transition that caused them; the dispatcher here
//! delivers them in the background, at least once:
//!
//! - each channel (`webhook`, `email`, `log`, ... as configured) has its own concurrency
//!   limit, so a slow SMTP relay does not hold up webhooks;
//! - a failed attempt is retried with exponential backoff and jitter ([`RetryPolicy`]), and
//!   the message is dead after the configured number of attempts, or at once when the
//!   failure is one no retry can fix (an unconfigured channel, a recipient that is not an
//!   address);
//! - every attempt and its outcome go into the instance history in the same atomic write
//!   that moves the message between the status queues, under the instance's lock;
//! - an operator puts a dead message back in the queue ([`crate::Runtime::retry_message`]).
//!
//! A crash between an accepted delivery and the write of its outcome sends the message
//! again after the restart: receivers drop duplicates by the message id.

mod delivery_error;
mod dispatcher;
mod policy;
mod retry;

pub use delivery_error::DeliveryError;
pub use policy::RetryPolicy;
pub use retry::{OutboxError, Retried};

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use waystation_core::OutboundMessage;

/// What a channel's delivery returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// A way to deliver messages: an HTTP endpoint, an SMTP relay, the log.
pub trait Channel: Send + Sync + 'static {
    /// Delivers `message`; `attempt` counts from 1. `Ok` means the receiver accepted it.
    fn deliver<'a>(&'a self, message: &'a OutboundMessage, attempt: u32) -> Delivery<'a>;
}

/// A configured channel with its limits.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) channel: Arc<dyn Channel>,
    /// Attempts in flight at most.
    pub(crate) concurrency: usize,
    /// An attempt that takes longer failed (transiently).
    pub(crate) timeout: Duration,
}

/// The channels by name (the `channel` of a message).
#[derive(Clone, Default)]
pub struct Channels {
    slots: BTreeMap<String, Slot>,
}

impl Channels {
    /// No channels: every message is dead as unconfigured.
    pub fn new() -> Self {
        Channels::default()
    }

    /// Adds (or replaces) channel `name`: at most `concurrency` attempts at once (at least
    /// one), each failing after `timeout`.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        channel: Arc<dyn Channel>,
        concurrency: usize,
        timeout: Duration,
    ) -> &mut Self {
        self.slots.insert(
            name.into(),
            Slot {
                channel,
                concurrency: concurrency.max(1),
                timeout,
            },
        );
        self
    }

    /// The configured channel names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.slots.keys().map(String::as_str).collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    /// Why a message for `name` cannot be delivered when no such channel is configured.
    pub(crate) fn unconfigured(&self, name: &str) -> DeliveryError {
        let known = self.names();
        DeliveryError::permanent(if known.is_empty() {
            format!(
                "channel '{name}' is not configured on this server: no channels are \
                 (see [outbox.channels] in the configuration)"
            )
        } else {
            format!(
                "channel '{name}' is not configured on this server (configured: {}); \
                 add it under [outbox.channels] and retry the message",
                known.join(", ")
            )
        })
    }
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.slots.iter().map(|(name, slot)| {
                (
                    name,
                    format!(
                        "concurrency {}, timeout {:?}",
                        slot.concurrency, slot.timeout
                    ),
                )
            }))
            .finish()
    }
}

/// Everything the dispatcher needs: the channels and the retry policy.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    /// Where messages go.
    pub channels: Channels,
    /// When failed attempts are retried, and when a message is given up.
    pub policy: RetryPolicy,
}
