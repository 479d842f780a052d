//! The `webhook` channel: an HTTP POST of the message as JSON, signed.
//!
//! Headers of every attempt:
//!
//! | header | value |
//! | --- | --- |
//! | `Content-Type` | `application/json` |
//! | `Waystation-Message-Id` | the message id: the same on every attempt, to drop duplicates |
//! | `Waystation-Attempt` | 1 for the first attempt |
//! | `Waystation-Timestamp` | Unix seconds when the attempt was signed |
//! | `Waystation-Signature` | `v1=` and the lowercase hex HMAC-SHA256, keyed with the shared secret, of `{timestamp}.{body}` |
//!
//! A receiver recomputes the signature over the raw body, compares in constant time, and
//! rejects a timestamp more than a few minutes from its clock (a replayed request); then it
//! drops message ids it has already seen. [`verify`] does all but the last. Any 2xx answer
//! is a delivery; anything else, a timeout or a refused connection is retried.

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use waystation_core::OutboundMessage;
use waystation_runtime::{Channel, Delivery, DeliveryError};

use axum::body::Bytes;
use axum::http::{header, Request, Uri};

/// The signature header.
pub const SIGNATURE: &str = "waystation-signature";
/// The timestamp header.
pub const TIMESTAMP: &str = "waystation-timestamp";
/// The message id header.
pub const MESSAGE_ID: &str = "waystation-message-id";
/// The attempt header.
pub const ATTEMPT: &str = "waystation-attempt";

#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = HttpConnector;

/// A webhook endpoint with its secret and a pooled HTTP client.
pub struct Webhook {
    url: Uri,
    secret: Vec<u8>,
    // Keeps connections to the receiver alive between attempts.
    client: Client<Connector, Full<Bytes>>,
}

/// `v1=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 64);
    out.push_str("v1=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Why a receiver refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp header is not a number of seconds.
    #[error("the timestamp is not Unix seconds")]
    BadTimestamp,
    /// Too far from the receiver's clock: possibly a replay.
    #[error("the timestamp is {0} s away from now")]
    Stale(u64),
    /// The signature does not match the body.
    #[error("the signature does not match")]
    BadSignature,
}

/// What a receiver checks: `signature` is [`sign`] of `body` at `timestamp` under `secret`,
/// and `timestamp` is within `tolerance` of `now` (Unix seconds).
///
/// # Errors
/// [`VerifyError`] says which check failed.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now.abs_diff(ts);
    if skew > tolerance.as_secs() {
        return Err(VerifyError::Stale(skew));
    }
    let expected = sign(secret, ts, body);
    // Constant time: every byte is compared whatever the first difference.
    let (a, b) = (expected.as_bytes(), signature.trim().as_bytes());
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Webhook {
    /// A channel posting to `url`, signing with `secret`; connections give up after
    /// `connect_timeout`.
    ///
    /// # Errors
    /// A URL that is not `http://` (or, with the `tls` feature, `https://`) with a host.
    pub fn new(url: &str, secret: Vec<u8>, connect_timeout: Duration) -> Result<Webhook, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("url '{url}' is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") if cfg!(feature = "tls") => {}
            Some("https") => {
                return Err(format!(
                    "url '{url}' is https, but this build has no TLS (build with the `tls` feature)"
                ))
            }
            _ => return Err(format!("url '{url}' must start with http:// or https://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("url '{url}' has no host"));
        }
        if secret.is_empty() {
            return Err("the secret is empty".to_owned());
        }
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        #[cfg(feature = "tls")]
        let connector = {
            http.enforce_http(false);
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        };
        #[cfg(not(feature = "tls"))]
        let connector = http;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Webhook {
            url: uri,
            secret,
            client,
        })
    }

    async fn post(&self, message: &OutboundMessage, attempt: u32) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(message).map_err(|e| {
            DeliveryError::permanent(format!("cannot encode the message: {e}")).caused_by(e)
        })?;
        let timestamp = unix_now();
        let signature = sign(&self.secret, timestamp, &body);
        let request = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("waystation/", env!("CARGO_PKG_VERSION")),
            )
            .header(MESSAGE_ID, &message.id)
            .header(ATTEMPT, attempt)
            .header(TIMESTAMP, timestamp)
            .header(SIGNATURE, signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| {
                DeliveryError::permanent(format!("cannot build the request: {e}")).caused_by(e)
            })?;
        let response = self.client.request(request).await.map_err(|e| {
            // The chain of sources says what actually failed (refused, reset, DNS, TLS).
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            DeliveryError::transient(format!("POST {}: {text}", self.url)).caused_by(e)
        })?;
        let status = response.status();
        // Read (a bounded part of) the answer, so the connection can be reused and a
        // failure can say what the receiver said.
        let answer = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        let text = text.trim();
        Err(DeliveryError::transient(if text.is_empty() {
            format!("POST {}: HTTP {status}", self.url)
        } else {
            format!("POST {}: HTTP {status}: {text}", self.url)
        }))
    }
}

impl Channel for Webhook {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage, attempt: u32) -> Delivery<'a> {
        Box::pin(self.post(message, attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Our framing: the timestamp, a dot, the body.
        let signed = sign(b"Jefe", 1_715_000_000, b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1715000000.{}");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signed, format!("v1={expected}"));
    }

    #[test]
    fn receivers_refuse_wrong_signatures_and_stale_timestamps() {
        let body = br#"{"id":"i1.m1"}"#;
        let sig = sign(b"secret", 1000, body);
        let five_min = Duration::from_secs(300);
        assert_eq!(
            verify(b"secret", "1000", &sig, body, 1100, five_min),
            Ok(())
        );
        assert_eq!(
            verify(b"other", "1000", &sig, body, 1100, five_min),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(b"secret", "1000", &sig, b"{}", 1100, five_min),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(b"secret", "1000", &sig, body, 2000, five_min),
            Err(VerifyError::Stale(1000))
        );
        assert_eq!(
            verify(b"secret", "soon", &sig, body, 1000, five_min),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn only_http_urls_with_a_host_and_a_secret_are_accepted() {
        let ok = |url: &str| Webhook::new(url, b"s".to_vec(), Duration::from_secs(1)).map(|_| ());
        assert!(ok("http://127.0.0.1:9000/hook").is_ok());
        assert!(ok("ftp://example.com/").unwrap_err().contains("http://"));
        assert!(ok("not a url").is_err());
        assert!(Webhook::new("http://x/", Vec::new(), Duration::from_secs(1)).is_err());
    }
}
