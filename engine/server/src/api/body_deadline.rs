//! A request body must arrive within [`BODY_DEADLINE`] of its request reaching the
//! handlers.
//!
//! Why: the head has hyper's timeout (`HEADER_READ_TIMEOUT` in `serving.rs`), the body
//! none. A client that declared `Content-Length: 100` and sent five bytes held the handler
//! reading it, the connection and its memory for as long as it kept the socket open. Past
//! the deadline the read fails, the route answers 408 `request-timeout` problem+json, and
//! the connection closes (the body was not read to its end, see `unread.rs`).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The longest a request body may take to arrive, from when its request reached the
/// router: a megabyte plugin or definition over a slow link fits; a stalled client does
/// not hold the server.
pub const BODY_DEADLINE: Duration = Duration::from_secs(60);

/// The error a body read past [`BODY_DEADLINE`] fails with; the extractors answer it with
/// 408 (see `extract.rs`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", BODY_DEADLINE.as_secs())]
pub struct BodyTimedOut;

/// Middleware: gives the request's body (when it has one) the deadline.
pub async fn limit(req: Request, next: Next) -> Response {
    if http_body::Body::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let req = req.map(|inner| {
        Body::new(Deadlined {
            inner,
            deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
        })
    });
    next.run(req).await
}

/// A request body that fails with [`BodyTimedOut`] once its deadline passes.
struct Deadlined {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl http_body::Body for Deadlined {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// True when `e` (or an error it wraps) is [`BodyTimedOut`].
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        at = e.source();
    }
    false
}
