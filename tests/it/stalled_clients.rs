//! Clients that open a connection and stop sending do not hold the server: a half-sent
//! request head and an idle kept-alive connection are closed after the head timeout
//! (30 s), a half-sent body gets 408 problem+json after the body deadline (60 s), and a
//! SIGTERM stops the server within the drain deadline (30 s) even while such a client
//! holds a request open. Over real TCP against the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use waystation_tests::server::{Server, ADMIN};

/// Reads from `stream` until the server closes it (or `limit` passes: a failure), and
/// says what it sent and after how long.
fn until_closed(mut stream: TcpStream, limit: Duration) -> (String, Duration) {
    let began = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server still held the connection after {:?} ({e}); it sent {:?}",
                began.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), began.elapsed())
}

fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(&server.addr).unwrap()
}

#[test]
fn clients_that_stop_sending_are_disconnected_and_do_not_hold_a_shutdown() {
    let mut server = Server::start();

    // A request head that never ends.
    let mut half_head = connect(&server);
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A kept-alive connection that answered one request and then sits idle.
    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // A body that was announced as 100 bytes and stops after 5.
    let mut half_body = connect(&server);
    let head = format!(
        "PUT /v1/workflows/stalled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\""
    );
    half_body.write_all(head.as_bytes()).unwrap();

    let heads = std::thread::spawn(move || until_closed(half_head, Duration::from_secs(50)));
    let idles = std::thread::spawn(move || until_closed(idle, Duration::from_secs(50)));
    let bodies = std::thread::spawn(move || until_closed(half_body, Duration::from_secs(80)));

    let (sent, after) = heads.join().unwrap();
    assert_eq!(sent, "", "a half-sent head gets no answer, only a close");
    assert!(
        after >= Duration::from_secs(25),
        "closed after only {after:?}"
    );
    let (sent, _) = idles.join().unwrap();
    assert!(
        sent.starts_with("HTTP/1.1 200"),
        "the first request was answered before the idle close: {sent}"
    );
    let (sent, after) = bodies.join().unwrap();
    assert!(
        sent.starts_with("HTTP/1.1 408"),
        "a stalled body is answered 408: {sent}"
    );
    assert!(sent.contains("application/problem+json"), "{sent}");
    assert!(sent.contains("request-timeout"), "{sent}");
    assert!(
        after >= Duration::from_secs(55),
        "answered after only {after:?}"
    );

    // The server is still itself.
    assert_eq!(server.client(None).get("/healthz").0, 200);

    // A SIGTERM while a client holds a request open (its body stalled) still stops the
    // server, within the drain deadline.
    let mut stalled = connect(&server);
    stalled.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let began = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        began.elapsed() < Duration::from_secs(45),
        "SIGTERM took {:?}",
        began.elapsed()
    );
    drop(stalled);
}
