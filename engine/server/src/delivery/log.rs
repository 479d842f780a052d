//! The `log` channel, for development: each message becomes an `info` line of the
//! `waystation::outbox` target and counts as delivered.

use waystation_core::OutboundMessage;
use waystation_runtime::{Channel, Delivery};

/// Writes messages to the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct Log;

impl Channel for Log {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage, attempt: u32) -> Delivery<'a> {
        tracing::info!(
            target: "waystation::outbox",
            message = %message.id,
            instance = %message.instance_id,
            channel = %message.channel,
            recipient = %message.recipient,
            subject = %message.subject,
            body = %message.body,
            attempt,
            "message"
        );
        Box::pin(std::future::ready(Ok(())))
    }
}
