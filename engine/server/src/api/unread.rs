//! An answer to a request whose body was not read to its end says `connection: close`.
//!
//! Most refusals come before the body is read: 401 and 403 from the access check, 415 for
//! the wrong content type, 413 past the body limit, 404 for an unknown route. hyper then
//! cannot tell where the next request on the connection starts, so it closes the
//! connection after the answer - without saying so when the rest of the body had not
//! arrived yet. A client that keeps connections alive then sends its next request into a
//! closed socket and gets an IO error instead of an answer (CI saw ureq's "Peer
//! disconnected" on the request after a 415). `connection: close` in the answer tells the
//! client not to reuse the connection (RFC 9112, section 9.6); reading the rest of a body
//! nobody wants instead would let any caller make the server read up to the body limit for
//! nothing.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Middleware: runs the rest of the stack and adds `connection: close` to its answer when
/// the request's body was not read to its end. Bodies that are empty from the start (every
/// GET) cost nothing.
pub async fn close_if_unread(req: Request, next: Next) -> Response {
    if req.version() > Version::HTTP_11 || http_body::Body::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(Watched {
            inner,
            finished: finished.clone(),
        })
    });
    let mut response = next.run(req).await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records reaching its end.
struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use crate::api::extract::JsonValue;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    use axum::Router;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};

    /// An answer read off a kept-alive connection: status and lower-case head.
    struct Answer {
        status: u16,
        head: String,
    }

    fn read_answer(reader: &mut BufReader<TcpStream>) -> Answer {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        Answer { status, head }
    }

    async fn serve() -> SocketAddr {
        let app = Router::new()
            .route(
                "/echo",
                post(|JsonValue(v): JsonValue| async move { v.to_string() }),
            )
            .layer(DefaultBodyLimit::max(64))
            .layer(axum::middleware::from_fn(super::close_if_unread));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
        let stream = TcpStream::connect(addr).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        (stream, reader)
    }

    /// Sends `request` on a fresh connection and reads the one answer.
    async fn refused(addr: SocketAddr, request: String) -> Answer {
        tokio::task::spawn_blocking(move || {
            let (mut stream, mut reader) = connect(addr);
            stream.write_all(request.as_bytes()).unwrap();
            read_answer(&mut reader)
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_415_sent_before_the_body_arrived_tells_the_client_to_close_the_connection() {
        // The head only: the body is still on its way when the server refuses.
        let head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n";
        let answer = refused(serve().await, head.to_owned()).await;
        assert_eq!(answer.status, 415, "{}", answer.head);
        assert!(answer.head.contains("connection: close"), "{}", answer.head);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_limit_is_a_413_that_closes_the_connection() {
        // A megabyte announced, its first hundred bytes sent: the server stops reading at
        // the limit, so the rest would be taken for the next request.
        let request = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n\"{}",
            "x".repeat(100)
        );
        let answer = refused(serve().await, request).await;
        assert_eq!(answer.status, 413, "{}", answer.head);
        assert!(answer.head.contains("connection: close"), "{}", answer.head);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_read_to_its_end_keeps_the_connection_for_the_next_request() {
        let addr = serve().await;
        let (first, second) = tokio::task::spawn_blocking(move || {
            let (mut stream, mut reader) = connect(addr);
            let ask = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
            stream.write_all(ask.as_bytes()).unwrap();
            let first = read_answer(&mut reader);
            stream.write_all(ask.as_bytes()).unwrap();
            (first, read_answer(&mut reader))
        })
        .await
        .unwrap();
        assert_eq!(first.status, 200, "{}", first.head);
        assert!(!first.head.contains("connection: close"), "{}", first.head);
        assert_eq!(second.status, 200, "{}", second.head);
    }
}
