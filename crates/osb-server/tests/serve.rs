//! `Server`: slow and idle connections are closed, the connection limit holds, normal requests
//! are served throughout, shutdown is graceful.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use osb_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound for "closed by a timeout of a fraction of a second" on a busy machine;
/// without the timeouts these connections would stay open forever.
const SLACK: Duration = Duration::from_secs(15);

async fn start(server: Server) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let app = Router::new().route("/ping", get(|| async { "pong" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop, task)
}

/// One complete request on a fresh connection; the reply's status line and body.
async fn ping(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: broker\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply
}

/// Reads one reply on a kept-alive connection (the handler's body is 4 bytes).
async fn ping_on(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: broker\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.ends_with(b"pong") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the reply");
        reply.extend_from_slice(&buf[..n]);
    }
    assert!(reply.starts_with(b"HTTP/1.1 200"));
}

/// Waits until the server closes `stream` (end of file or reset); `false` if it is still open
/// after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The soft limit on open files of this process (Linux), to size the test to it.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_are_closed_and_normal_requests_served_throughout() {
    // Each slow connection costs two descriptors here (client and server side).
    let wanted = 2000;
    let slow = match open_files_limit() {
        Some(limit) if limit < 2 * wanted + 200 => {
            let n = (limit.saturating_sub(200)) / 2;
            eprintln!(
                "the open-files limit is {limit}: testing {n} slow connections, not {wanted}"
            );
            n
        }
        _ => wanted,
    };
    let header_timeout = Duration::from_secs(1);
    let server = Server::new()
        .header_read_timeout(header_timeout)
        .max_connections(slow + 100);
    let (addr, _stop, _task) = start(server).await;

    let mut connections = Vec::with_capacity(slow);
    for _ in 0..slow {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: broker\r\nX-Slow: aaaa")
            .await
            .unwrap();
        connections.push(stream);
    }
    // While they hang, requests are answered.
    for _ in 0..20 {
        let reply = ping(addr).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("pong"), "{reply}");
    }
    // All checks start now, so each bound counts from the same moment.
    let checks: Vec<_> = connections
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move { closed_within(&mut stream, header_timeout + SLACK).await })
        })
        .collect();
    let mut open = 0;
    for check in checks {
        if !check.await.unwrap() {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} of {slow} slow connections are still open");
    let reply = ping(addr).await;
    assert!(reply.ends_with("pong"), "{reply}");
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_not_the_header_timeout() {
    let server = Server::new()
        .header_read_timeout(Duration::from_millis(200))
        .idle_timeout(Duration::from_secs(3));
    let (addr, _stop, _task) = start(server).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    ping_on(&mut stream).await;
    // Idle for five header timeouts: still open, and still serving.
    assert!(!closed_within(&mut stream, Duration::from_secs(1)).await);
    ping_on(&mut stream).await;
    assert!(closed_within(&mut stream, Duration::from_secs(3) + SLACK).await);
}

#[tokio::test]
async fn a_partial_second_request_gets_the_header_timeout() {
    let server = Server::new()
        .header_read_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_secs(600));
    let (addr, _stop, _task) = start(server).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    ping_on(&mut stream).await;
    stream.write_all(b"GET /ping HTTP/1.1\r\nHo").await.unwrap();
    assert!(closed_within(&mut stream, SLACK).await);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_gets_the_header_timeout() {
    let server = Server::new()
        .header_read_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_secs(600));
    let (addr, _stop, _task) = start(server).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut stream, SLACK).await);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let server = Server::new()
        .max_connections(2)
        .header_read_timeout(Duration::from_secs(600));
    let (addr, _stop, _task) = start(server).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    ping_on(&mut first).await;
    let mut second = TcpStream::connect(addr).await.unwrap();
    ping_on(&mut second).await;
    let third = tokio::spawn(ping(addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    drop(first);
    let reply = tokio::time::timeout(SLACK, third).await.unwrap().unwrap();
    assert!(reply.ends_with("pong"), "{reply}");
    drop(second);
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let (addr, stop, task) = start(Server::new()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    ping_on(&mut stream).await;
    stop.send(()).unwrap();
    assert!(closed_within(&mut stream, SLACK).await);
    tokio::time::timeout(SLACK, task).await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}
