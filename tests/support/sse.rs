//! A server-sent-events reader over a plain TCP connection, for the live streams: the
//! HTTP client the other tests use reads whole bodies, and a stream never ends.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One event: its `event:` name and its `data:` (parsed as JSON when it is JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The event's name (`message` when the frame named none).
    pub name: String,
    /// Its data.
    pub data: Value,
}

/// An open stream, or the answer that refused it.
pub struct SseStream {
    reader: BufReader<TcpStream>,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers, names in lower case.
    pub headers: Vec<(String, String)>,
    // Decoded body not yet returned as events.
    pending: String,
}

impl SseStream {
    /// Opens `GET path` on `addr` with `token` and `Accept: text/event-stream` (unless
    /// `accept` says otherwise); reads the status line and headers.
    ///
    /// # Panics
    /// When the server cannot be reached or answers something that is not HTTP.
    pub fn open(addr: &str, path: &str, token: Option<&str>, accept: &str) -> SseStream {
        let mut tcp = TcpStream::connect(addr).expect("connect to the server");
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n{auth}\r\n"
        )
        .expect("send the request");
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a read timeout");
        let mut reader = BufReader::new(tcp);
        let status_line = read_line(&mut reader, Duration::from_secs(10)).expect("a status line");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = read_line(&mut reader, Duration::from_secs(10)).expect("a header line");
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        SseStream {
            reader,
            status,
            headers,
            pending: String::new(),
        }
    }

    /// The header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event within `wait`, or None (also when the stream ended). The body is
    /// chunked (HTTP/1.1): chunks are decoded first, since an event may span two.
    pub fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let until = Instant::now() + wait;
        loop {
            if let Some(cut) = self.pending.find("\n\n") {
                let frame: String = self.pending.drain(..cut + 2).collect();
                let mut name = String::from("message");
                let mut data: Vec<&str> = Vec::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let text = data.join("\n");
                let data = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return Some(SseEvent { name, data });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_chunk(left) {
                return None;
            }
        }
    }

    /// Reads one chunk into `pending`; false at the end of the stream or after `wait`.
    fn read_chunk(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let Some(size) = read_line(&mut self.reader, wait) else {
            return false;
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return false;
        };
        if size == 0 {
            return false;
        }
        let mut bytes = vec![0u8; size + 2];
        let mut got = 0;
        while got < bytes.len() {
            match self.reader.read(&mut bytes[got..]) {
                Ok(0) => return false,
                Ok(n) => got += n,
                Err(e) if is_timeout(&e) && Instant::now() < until + Duration::from_secs(5) => {}
                Err(_) => return false,
            }
        }
        self.pending
            .push_str(&String::from_utf8_lossy(&bytes[..size]).replace("\r\n", "\n"));
        true
    }

    /// True when the server closed the stream within `wait`.
    pub fn ended_within(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let mut buf = [0u8; 512];
        while Instant::now() < until {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// The rest of the body that is there now (for a refusal's problem+json): what
    /// arrives until the connection is quiet for half a second or closes.
    pub fn body(&mut self) -> String {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(500) {
            match self.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    bytes.extend_from_slice(&buf[..n]);
                    quiet_since = Instant::now();
                }
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One line without its line ending, or None at the end of the stream or after `wait`.
fn read_line(reader: &mut BufReader<TcpStream>, wait: Duration) -> Option<String> {
    let until = Instant::now() + wait;
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with('\n') => {
                return Some(line.trim_end_matches(['\r', '\n']).to_owned());
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= until {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}
