//! The `email` channel: SMTP to a relay through `lettre`. The message id becomes the
//! `Message-ID` header (`<{id}@{sender's domain}>`), the same on every attempt, so a
//! mailbox or relay can drop duplicates. Replies 5xx from the relay (no such mailbox, a
//! refused sender) are permanent; anything else (4xx, timeouts, refused connections) is
//! retried. A recipient that is not an address is permanent too.

use super::config::{EmailConfig, SmtpTls};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use waystation_core::OutboundMessage;
use waystation_runtime::{Channel, Delivery, DeliveryError};

/// An SMTP relay and the sender.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of `Message-ID`s.
    domain: String,
}

impl Email {
    /// A channel for `config`, with the SMTP password already looked up.
    ///
    /// # Errors
    /// A sender that is not an address; TLS asked for in a build without it.
    pub fn new(config: &EmailConfig, password: Option<String>) -> Result<Email, String> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("from '{}' is not an address: {e}", config.from))?;
        let port = config.port.unwrap_or(match config.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(port)
            .timeout(Some(Duration::from_millis(config.timeout_ms)));
        builder = with_tls(builder, config)?;
        if let Some(name) = &config.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        match (&config.username, password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (Some(_), None) => {
                return Err("username is set but neither password nor password_env".to_owned())
            }
            (None, Some(_)) => return Err("a password is set but no username".to_owned()),
            (None, None) => {}
        }
        let domain = from.email.domain().to_owned();
        Ok(Email {
            transport: builder.build(),
            from,
            domain,
        })
    }

    async fn send(&self, message: &OutboundMessage) -> Result<(), DeliveryError> {
        let to: Mailbox = message.recipient.parse().map_err(|e| {
            DeliveryError::permanent(format!(
                "recipient '{}' is not an email address: {e}",
                message.recipient
            ))
            .caused_by(e)
        })?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}@{}>", message.id, self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| {
                DeliveryError::permanent(format!("cannot build the email: {e}")).caused_by(e)
            })?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => {
                Err(DeliveryError::permanent(format!("SMTP: {e}")).caused_by(e))
            }
            Err(e) => Err(DeliveryError::transient(format!("SMTP: {e}")).caused_by(e)),
        }
    }
}

#[cfg(feature = "tls")]
fn with_tls(
    builder: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    config: &EmailConfig,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, String> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let parameters = || {
        TlsParameters::new(config.host.clone())
            .map_err(|e| format!("cannot set up TLS for {}: {e}", config.host))
    };
    Ok(builder.tls(match config.tls {
        SmtpTls::Starttls => Tls::Required(parameters()?),
        SmtpTls::Tls => Tls::Wrapper(parameters()?),
        SmtpTls::None => Tls::None,
    }))
}

#[cfg(not(feature = "tls"))]
fn with_tls(
    builder: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    config: &EmailConfig,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, String> {
    match config.tls {
        SmtpTls::None => Ok(builder),
        _ => Err(
            "tls is starttls or tls, but this build has no TLS (set tls = \"none\" for a \
             trusted local relay, or build with the `tls` feature)"
                .to_owned(),
        ),
    }
}

impl Channel for Email {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage, _attempt: u32) -> Delivery<'a> {
        Box::pin(self.send(message))
    }
}
