//! Outbox delivery channels (issue 6): the configuration's `[outbox]` turned into the
//! runtime's dispatcher settings. The dispatcher itself (queues, concurrency, retries, the
//! history) is `waystation_runtime`'s; this module knows HTTP and SMTP.

mod config;
mod email;
mod log;
pub mod webhook;

pub use config::{ChannelConfig, EmailConfig, LogConfig, OutboxConfig, SmtpTls, WebhookConfig};
pub use email::Email;
pub use log::Log;
pub use webhook::Webhook;

use std::sync::Arc;
use std::time::Duration;
use waystation_runtime::{Channels, Outbox, RetryPolicy};

/// A channel the configuration describes but that cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[outbox.channels.{channel}]: {message}")]
pub struct ChannelError {
    /// The channel's name.
    pub channel: String,
    /// What is wrong.
    pub message: String,
}

/// A secret given inline or through an environment variable (looked up with `env`).
fn secret(
    inline: &Option<String>,
    variable: &Option<String>,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match (inline, variable) {
        (Some(_), Some(_)) => Err(format!("give {what} or {what}_env, not both")),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(name)) => env(name)
            .filter(|v| !v.is_empty())
            .map(Some)
            .ok_or_else(|| format!("{what}_env names {name}, which is not set")),
        (None, None) => Ok(None),
    }
}

/// The dispatcher settings for `config`; `env` looks up the `*_env` secrets.
///
/// # Errors
/// The first channel that cannot be set up (bad URL, missing secret, bad sender, ...).
pub fn build(
    config: &OutboxConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Outbox, ChannelError> {
    let mut channels = Channels::new();
    for (name, channel) in &config.channels {
        let fail = |message: String| ChannelError {
            channel: name.clone(),
            message,
        };
        match channel {
            ChannelConfig::Webhook(w) => {
                let key = secret(&w.secret, &w.secret_env, "secret", env)
                    .map_err(fail)?
                    .ok_or_else(|| fail("a webhook needs secret or secret_env".to_owned()))?;
                let timeout = Duration::from_millis(w.timeout_ms);
                let hook = Webhook::new(&w.url, key.into_bytes(), timeout).map_err(fail)?;
                channels.add(name, Arc::new(hook), w.concurrency, timeout);
            }
            ChannelConfig::Email(e) => {
                let password =
                    secret(&e.password, &e.password_env, "password", env).map_err(fail)?;
                let email = Email::new(e, password).map_err(fail)?;
                let timeout = Duration::from_millis(e.timeout_ms);
                channels.add(name, Arc::new(email), e.concurrency, timeout);
            }
            ChannelConfig::Log(LogConfig {}) => {
                channels.add(name, Arc::new(Log), 1, Duration::from_secs(1));
            }
        }
    }
    Ok(Outbox {
        channels,
        policy: RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            first_backoff: Duration::from_millis(config.backoff_ms),
            max_backoff: Duration::from_millis(config.max_backoff_ms.max(config.backoff_ms)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> OutboxConfig {
        #[derive(serde::Deserialize)]
        struct Wrapper {
            outbox: OutboxConfig,
        }
        toml::from_str::<Wrapper>(text).unwrap().outbox
    }

    #[test]
    fn secrets_come_inline_or_from_the_environment_and_are_required_for_webhooks() {
        let env = |k: &str| (k == "HOOK_SECRET").then(|| "from-env".to_owned());
        let ok = parse(
            "[outbox.channels.webhook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nsecret_env = \"HOOK_SECRET\"\n\
             [outbox.channels.task]\nkind = \"log\"\n",
        );
        let outbox = build(&ok, &env).unwrap();
        assert_eq!(outbox.channels.names(), ["task", "webhook"]);

        let missing = parse(
            "[outbox.channels.webhook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nsecret_env = \"NOPE\"\n",
        );
        let err = build(&missing, &env).unwrap_err().to_string();
        assert_eq!(
            err,
            "[outbox.channels.webhook]: secret_env names NOPE, which is not set"
        );
        let none =
            parse("[outbox.channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n");
        assert!(build(&none, &env)
            .unwrap_err()
            .to_string()
            .contains("needs secret"));
        let bad_from = parse(
            "[outbox.channels.email]\nkind = \"email\"\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"nobody\"\n",
        );
        let err = build(&bad_from, &env).unwrap_err().to_string();
        assert!(err.contains("from 'nobody' is not an address"), "{err}");
    }
}
