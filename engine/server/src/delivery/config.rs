//! `[outbox]` in the server configuration: the retry policy and the channels. A channel's
//! name is the `channel` notifier plugins put on their messages; its `kind` says how it
//! is delivered, so a plugin's `phone` channel can be a webhook into a call-centre system.
//!
//! ```toml
//! [outbox]
//! max_attempts = 8          # then the message is dead
//! backoff_ms = 5000         # the first wait; doubles each attempt, half of it jittered
//! max_backoff_ms = 3600000
//!
//! [outbox.channels.webhook]
//! kind = "webhook"
//! url = "https://hooks.example.com/waystation"
//! secret_env = "WAYSTATION_WEBHOOK_SECRET"   # or secret = "..."
//! timeout_ms = 10000
//! concurrency = 16
//!
//! [outbox.channels.email]
//! kind = "email"
//! host = "smtp.example.com"
//! tls = "starttls"          # "tls" (implicit, port 465) or "none" (trusted local relays)
//! from = "Order desk <orders@example.com>"
//! username = "orders"
//! password_env = "WAYSTATION_SMTP_PASSWORD"
//!
//! [outbox.channels.task]
//! kind = "log"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;

/// `[outbox]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Attempts in all before a message is dead.
    pub max_attempts: u32,
    /// The wait after the first failed attempt, in ms; it doubles after each further one.
    pub backoff_ms: u64,
    /// The longest wait between attempts, in ms.
    pub max_backoff_ms: u64,
    /// The channels by name. A message for a name not here is dead with that reason.
    pub channels: BTreeMap<String, ChannelConfig>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        let policy = waystation_runtime::RetryPolicy::default();
        OutboxConfig {
            max_attempts: policy.max_attempts,
            backoff_ms: u64::try_from(policy.first_backoff.as_millis()).unwrap_or(u64::MAX),
            max_backoff_ms: u64::try_from(policy.max_backoff.as_millis()).unwrap_or(u64::MAX),
            channels: BTreeMap::new(),
        }
    }
}

/// One channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelConfig {
    /// HTTP POST of the message as JSON, signed with HMAC-SHA256.
    Webhook(WebhookConfig),
    /// SMTP to a relay.
    Email(EmailConfig),
    /// A log line per message, for development.
    Log(LogConfig),
}

/// `kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (`http://` or, with the `tls` feature, `https://`).
    pub url: String,
    /// The shared secret for the signature.
    #[serde(default)]
    pub secret: Option<String>,
    /// An environment variable holding the secret instead (keeps it out of the file).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// An attempt without an answer within this many ms failed.
    #[serde(default = "webhook_timeout")]
    pub timeout_ms: u64,
    /// Attempts in flight at most.
    #[serde(default = "webhook_concurrency")]
    pub concurrency: usize,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plaintext, then STARTTLS, required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// Plaintext only (port 25 by default): for a trusted relay on the same host or network.
    None,
}

/// `kind = "email"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The relay's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port; by default 587, 465 or 25 after `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Connection security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// User name for SMTP AUTH, if the relay wants it.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for SMTP AUTH.
    #[serde(default)]
    pub password: Option<String>,
    /// An environment variable holding the password instead.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The name this server gives in EHLO (default `localhost`).
    #[serde(default)]
    pub hello_name: Option<String>,
    /// An attempt that takes longer than this many ms failed.
    #[serde(default = "email_timeout")]
    pub timeout_ms: u64,
    /// Attempts (SMTP sessions) in flight at most.
    #[serde(default = "email_concurrency")]
    pub concurrency: usize,
}

/// `kind = "log"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {}

fn webhook_timeout() -> u64 {
    10_000
}

fn webhook_concurrency() -> usize {
    16
}

fn email_timeout() -> u64 {
    30_000
}

fn email_concurrency() -> usize {
    4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Wrapper {
        outbox: OutboxConfig,
    }

    #[test]
    fn channels_are_read_by_kind_with_defaults_and_unknown_keys_are_refused() {
        let text = r#"
            [outbox]
            max_attempts = 3
            [outbox.channels.webhook]
            kind = "webhook"
            url = "http://127.0.0.1:9000/hook"
            secret = "s3cret"
            [outbox.channels.email]
            kind = "email"
            host = "127.0.0.1"
            port = 2525
            tls = "none"
            from = "Orders <orders@example.com>"
            [outbox.channels.phone]
            kind = "log"
        "#;
        let config: Wrapper = toml::from_str(text).unwrap();
        let outbox = config.outbox;
        assert_eq!(outbox.max_attempts, 3);
        assert_eq!(outbox.backoff_ms, 5000, "unset keys keep their defaults");
        match &outbox.channels["webhook"] {
            ChannelConfig::Webhook(w) => {
                assert_eq!((w.timeout_ms, w.concurrency), (10_000, 16));
            }
            other => panic!("{other:?}"),
        }
        match &outbox.channels["email"] {
            ChannelConfig::Email(e) => assert_eq!((e.port, e.tls), (Some(2525), SmtpTls::None)),
            other => panic!("{other:?}"),
        }
        assert_eq!(outbox.channels["phone"], ChannelConfig::Log(LogConfig {}));

        let typo =
            "[outbox.channels.webhook]\nkind = \"webhook\"\nurl = \"http://x\"\nsecrt = \"s\"\n";
        let err = toml::from_str::<Wrapper>(typo).unwrap_err().to_string();
        assert!(err.contains("secrt"), "{err}");
        let kind = "[outbox.channels.sms]\nkind = \"carrier-pigeon\"\n";
        let err = toml::from_str::<Wrapper>(kind).unwrap_err().to_string();
        assert!(err.contains("carrier-pigeon"), "{err}");
    }
}
