//! End-to-end: a real server on 127.0.0.1:0 and a raw HTTP/1.1 client over TcpStream.

use super::*;
use crate::expo;
use crate::metrics::{Gauges, ZabGauges};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bounds every wait in these tests, so a hang fails instead of stalling CI.
const TEST_DEADLINE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    state: Arc<AdminState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(state: AdminState, config: AdminConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_with_config(
            listener,
            Arc::clone(&state),
            config,
            shutdown,
        ));
        Server {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    async fn default() -> Server {
        Server::start(
            AdminState::new(Arc::new(Metrics::new())),
            AdminConfig::default(),
        )
        .await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
        let result = tokio::time::timeout(TEST_DEADLINE, self.task).await;
        result
            .expect("server stops in time")
            .expect("no panic")
            .expect("serve ok");
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self
            .headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))?;
        Some(value)
    }
}

/// Reads until the server closes the connection, or fails the test at the deadline.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(TEST_DEADLINE, stream.read_to_end(&mut bytes));
    match read.await.expect("server closes the connection in time") {
        Ok(_) => bytes,
        // A server that closes with unread input sends a reset; what came before counts.
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => bytes,
        Err(error) => panic!("read: {error}"),
    }
}

fn parse_reply(bytes: &[u8]) -> Reply {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .map(|line| {
            let (key, value) = line.split_once(':').expect("header colon");
            (key.to_string(), value.trim().to_string())
        })
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends one request with `Connection: close` and returns the whole reply.
async fn send(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let reply = parse_reply(&read_to_close(&mut stream).await);
    if method != "HEAD" {
        let length: usize = reply
            .header("content-length")
            .expect("length")
            .parse()
            .expect("number");
        assert_eq!(length, reply.body.len());
    }
    reply
}

#[tokio::test]
async fn healthz_follows_the_health_flag() {
    let server = Server::default().await;
    let reply = send(server.addr, "GET", "/healthz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));
    server.state.set_healthy(false);
    let reply = send(server.addr, "GET", "/healthz").await;
    assert_eq!(reply.status, 503);
    server.state.set_healthy(true);
    assert_eq!(send(server.addr, "GET", "/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn readyz_needs_ready_and_healthy() {
    let server = Server::default().await;
    let reply = send(server.addr, "GET", "/readyz").await;
    assert_eq!((reply.status, reply.body.as_str()), (503, "not ready\n"));
    server.state.set_ready(true);
    let reply = send(server.addr, "GET", "/readyz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ready\n"));
    server.state.set_healthy(false);
    let reply = send(server.addr, "GET", "/readyz?verbose=1").await;
    assert_eq!((reply.status, reply.body.as_str()), (503, "not ready\n"));
    server.stop().await;
}

#[tokio::test]
async fn metrics_refreshes_then_renders_the_exposition_format() {
    let metrics = Arc::new(Metrics::new());
    metrics.observe_request("getData", Duration::from_micros(70));
    metrics.set_zab(&ZabGauges {
        leader_id: 3,
        ..ZabGauges::default()
    });
    let refreshes = Arc::new(AtomicU64::new(0));
    let state = AdminState::new(Arc::clone(&metrics)).with_refresh({
        let metrics = Arc::clone(&metrics);
        let refreshes = Arc::clone(&refreshes);
        move || {
            let count = refreshes.fetch_add(1, Relaxed) + 1;
            metrics.set_gauges(&Gauges {
                znode_count: 100 + count,
                ..Gauges::default()
            });
        }
    });
    let server = Server::start(state, AdminConfig::default()).await;
    for scrape in 1..=2u64 {
        let reply = send(server.addr, "GET", "/metrics").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let families = expo::parse(&reply.body).expect("valid exposition format");
        let znodes = families
            .iter()
            .find(|f| f.name == "znode_count")
            .expect("znode_count");
        assert_eq!(znodes.samples[0].value, (100 + scrape) as f64);
        assert!(families
            .iter()
            .any(|f| f.name == "request_latency_seconds" && !f.samples.is_empty()));
        let leader = families
            .iter()
            .find(|f| f.name == "zab_leader_id")
            .expect("zab_leader_id");
        assert_eq!(leader.samples[0].value, 3.0);
    }
    assert_eq!(refreshes.load(Relaxed), 2);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let server = Server::default().await;
    let reply = send(server.addr, "GET", "/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(send(server.addr, "POST", "/nope").await.status, 404);
    for (method, path) in [
        ("POST", "/metrics"),
        ("PUT", "/healthz"),
        ("DELETE", "/readyz"),
    ] {
        let reply = send(server.addr, method, path).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    let reply = send(server.addr, "HEAD", "/healthz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = Server::default().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let requests = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    stream.write_all(requests.as_bytes()).await.expect("write");
    let text = String::from_utf8(read_to_close(&mut stream).await).expect("utf-8");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    assert!(
        text.contains("ok\n") && text.contains("not ready\n"),
        "{text}"
    );
    server.stop().await;
}

fn short_config() -> AdminConfig {
    AdminConfig {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 2,
        max_connection_age: Duration::from_secs(3),
        shutdown_grace: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn a_slow_client_is_cut_off_and_does_not_block_others() {
    let server = Server::start(AdminState::new(Arc::new(Metrics::new())), short_config()).await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: sl")
        .await
        .expect("write");
    // Served meanwhile, on its own task.
    assert_eq!(send(server.addr, "GET", "/healthz").await.status, 200);
    read_to_close(&mut slow).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let server = Server::start(AdminState::new(Arc::new(Metrics::new())), short_config()).await;
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let reply = parse_reply(&read_to_close(&mut idle).await);
    assert_eq!(reply.status, 200);
    // The header timeout also covers the wait for the next request: well before the
    // 3 s age limit.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_on_accept() {
    let server = Server::start(AdminState::new(Arc::new(Metrics::new())), short_config()).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        // A partial head keeps the connection open until the header timeout.
        stream
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut refused = TcpStream::connect(server.addr).await.expect("connect");
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert!(read_to_close(&mut refused).await.is_empty());
    // Once the held ones time out, their slots are free again.
    for mut stream in held {
        read_to_close(&mut stream).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(send(server.addr, "GET", "/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_connections_and_stops_listening() {
    let server = Server::default().await;
    let addr = server.addr;
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.expect("reply");
    assert_eq!(&head, b"HTTP/1.1 200");
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    read_to_close(&mut idle).await;
    assert!(TcpStream::connect(addr).await.is_err());
}
