//! The server side of a tiny HTTP/1.1 receiver, for the tests' webhook endpoints: one
//! request read off a keep-alive connection.

use std::collections::BTreeMap;
use std::io::BufRead;

/// One request as a receiver sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request line, e.g. `POST /hook HTTP/1.1`.
    pub line: String,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body, `content-length` bytes of it.
    pub body: Vec<u8>,
}

/// Reads the next request from `reader`; `None` when the client closed the connection or
/// sent less than it announced.
pub fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        line: line.trim_end().to_owned(),
        headers,
        body,
    })
}
