//! Answers hyper gives by itself, before any handler runs, made problem+json like every
//! other error.
//!
//! hyper refuses a request it cannot parse with a bare status and no body: 414 for a
//! request target over 65,534 bytes (a constant inside hyper), 431 for request headers
//! over its read buffer (about 400 KiB), 400 for a malformed request line or header, 505
//! for an unknown HTTP version. There is no hook for those answers, so the server
//! (`serving.rs`) hands hyper connections ([`ProblemIo`]) whose write side recognises exactly such an answer - a status
//! line with one of those codes and `content-length: 0`, written as one whole head - and
//! writes a problem+json answer in its place. The handlers never answer those codes with an
//! empty body, so nothing they write is touched. hyper closes the connection after a parse
//! error; the replacement says `connection: close`.

use super::error::Problem;
use axum::http::StatusCode;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection that rewrites hyper's own error answers (see the module docs).
pub struct ProblemIo<S> {
    inner: S,
    /// A replacement being written: its bytes, how many are written, and how many bytes
    /// of the caller's buffer it stands for (reported once it is all out).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> ProblemIo<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        ProblemIo {
            inner,
            replacing: None,
        }
    }
}

/// The problem+json answer standing for `head`, when `head` is one of hyper's bare error
/// answers; `None` for anything else.
pub fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))?;
    if !text.ends_with("\r\n\r\n")
        || !text
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let code: u16 = rest.get(..3)?.parse().ok()?;
    let (kind, title, detail) = match code {
        414 => (
            "uri-too-long",
            "The request target is too long",
            "the path and query string are over 65,534 bytes; send fewer or shorter query parameters",
        ),
        431 => (
            "headers-too-large",
            "The request headers are too large",
            "the request's headers are over this server's limit of about 400 KiB in total; send smaller headers",
        ),
        400 => (
            "bad-request",
            "The request cannot be read",
            "the request line or a header is not valid HTTP/1.1",
        ),
        505 => (
            "http-version-not-supported",
            "HTTP version not supported",
            "this server speaks HTTP/1.0 and HTTP/1.1",
        ),
        _ => return None,
    };
    let status = StatusCode::from_u16(code).ok()?;
    let body = Problem::new(status, kind, title, detail).to_json();
    Some(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n{body}",
            reason = status.canonical_reason().unwrap_or(""),
            len = body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> ProblemIo<S> {
    /// Writes the rest of the replacement; ready with the length it stands for.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        while let Some((bytes, written, stands_for)) = &mut self.replacing {
            if *written == bytes.len() {
                let n = *stands_for;
                self.replacing = None;
                return Poll::Ready(Ok(Some(n)));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(None))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match replacement(buf) {
                Some(bytes) => this.replacing = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        match ready!(this.poll_replacement(cx))? {
            Some(n) => Poll::Ready(Ok(n)),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A replacement whose bytes are not all out yet stays owed to the writer: hyper
        // retries the same write, which finishes it.
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each head as one buffer, which is what
    // `replacement` recognises.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn hypers_bare_414_becomes_a_problem_and_an_answer_with_a_body_is_left_alone() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let text = String::from_utf8(replacement(bare).expect("replaced")).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(
            text.contains("content-type: application/problem+json"),
            "{text}"
        );
        assert!(text.ends_with(r#""status":414,"detail":"the path and query string are over 65,534 bytes; send fewer or shorter query parameters"}"#), "{text}");
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(replacement(ours), None);
        assert_eq!(
            replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
    }
}
