//! Tests of the transport on loopback and of the certificate helpers. Every wait is
//! bounded by a generous timeout; nothing asserts on timing.

mod certs;
mod failures;
mod messaging;
mod security;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use crate::certs::CertificateAuthority;
use crate::{Channel, Incoming, NetConfig, NetMetrics, PeerId, TlsConfig, Transport};

/// The bound on any single wait for an event.
const WAIT: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate().expect("CA")
}

/// TLS for node `id`: a certificate from `issuer`, trusting `trusted`.
fn tls_for(trusted: &CertificateAuthority, issuer: &CertificateAuthority, id: u64) -> TlsConfig {
    let node = issuer
        .issue(PeerId(id), &["127.0.0.1".to_string()])
        .expect("issue");
    TlsConfig::Pem {
        ca_cert_pem: trusted.cert_pem().to_string(),
        cert_pem: node.cert_pem,
        key_pem: node.key_pem,
    }
}

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind loopback")
}

/// A node under test: its socket (until started), config and running transport.
struct Node {
    config: NetConfig,
    transport: Option<Transport>,
    events: Option<mpsc::Receiver<Incoming>>,
}

/// Configs for nodes `ids`, all peers of each other, with the given TLS per node. The
/// sockets are bound first so every address is known before anything starts.
fn configs(ids: &[u64], tls: impl Fn(u64) -> TlsConfig) -> Vec<(NetConfig, UdpSocket)> {
    let sockets: Vec<UdpSocket> = ids.iter().map(|_| bind()).collect();
    let addrs: Vec<(PeerId, SocketAddr)> = ids
        .iter()
        .zip(&sockets)
        .map(|(id, socket)| (PeerId(*id), socket.local_addr().unwrap()))
        .collect();
    ids.iter()
        .zip(sockets)
        .map(|(id, socket)| {
            let listen = socket.local_addr().unwrap();
            let mut config = NetConfig::new(PeerId(*id), listen, addrs.clone(), tls(*id));
            config.reconnect_backoff_min = Duration::from_millis(20);
            config.reconnect_backoff_max = Duration::from_millis(300);
            // Above the 1.5 s default so a loaded CI box never drops a connection mid-test;
            // the kill tests still wait on this timeout.
            config.idle_timeout = Duration::from_secs(3);
            (config, socket)
        })
        .collect()
}

fn start_all(configs: Vec<(NetConfig, UdpSocket)>) -> Vec<Node> {
    configs
        .into_iter()
        .map(|(config, socket)| {
            let (transport, events) =
                Transport::start_with_socket(config.clone(), socket).expect("start transport");
            Node {
                config,
                transport: Some(transport),
                events: Some(events),
            }
        })
        .collect()
}

/// A cluster of `ids` with correct certificates from one CA.
fn cluster(ids: &[u64]) -> Vec<Node> {
    init_tracing();
    let ca = ca();
    start_all(configs(ids, |id| tls_for(&ca, &ca, id)))
}

impl Node {
    fn id(&self) -> PeerId {
        self.config.my_id
    }

    fn transport(&self) -> &Transport {
        self.transport.as_ref().expect("node is running")
    }

    fn metrics(&self) -> NetMetrics {
        self.transport().metrics()
    }

    fn events(&mut self) -> &mut mpsc::Receiver<Incoming> {
        self.events.as_mut().expect("node is running")
    }

    fn send(&self, to: PeerId, channel: Channel, payload: impl Into<Bytes>) {
        self.transport()
            .send(to, channel, payload.into())
            .expect("send");
    }

    /// Waits for the first event that `wanted` accepts, skipping others.
    async fn expect(&mut self, what: &str, mut wanted: impl FnMut(&Incoming) -> bool) -> Incoming {
        let node = self.id();
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.events().recv(),
            )
            .await
            {
                Ok(Some(event)) if wanted(&event) => return event,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{node}: event channel closed while waiting for {what}"),
                Err(_) => panic!("{node}: no {what} within {WAIT:?}"),
            }
        }
    }

    async fn expect_up(&mut self, peer: PeerId) {
        self.expect(
            &format!("PeerUp({peer})"),
            |e| matches!(e, Incoming::PeerUp(p) if *p == peer),
        )
        .await;
    }

    async fn expect_down(&mut self, peer: PeerId) {
        self.expect(
            &format!("PeerDown({peer})"),
            |e| matches!(e, Incoming::PeerDown(p) if *p == peer),
        )
        .await;
    }

    /// Restarts the node on the same address after a clean close.
    async fn restart(&mut self) {
        self.transport.take().expect("running").close().await;
        self.events = None;
        let deadline = Instant::now() + WAIT;
        // The old socket is released once quinn's endpoint driver winds down.
        let socket = loop {
            match UdpSocket::bind(self.config.listen) {
                Ok(socket) => break socket,
                Err(err) if Instant::now() < deadline => {
                    tracing::debug!("rebind {}: {err}", self.config.listen);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("cannot rebind {}: {err}", self.config.listen),
            }
        };
        let (transport, events) =
            Transport::start_with_socket(self.config.clone(), socket).expect("restart");
        self.transport = Some(transport);
        self.events = Some(events);
    }
}

/// Waits until every node has seen every other one up (other events are skipped).
async fn all_up(nodes: &mut [Node]) {
    let ids: Vec<PeerId> = nodes.iter().map(Node::id).collect();
    for node in nodes.iter_mut() {
        let mut waiting: Vec<PeerId> = ids.iter().copied().filter(|&id| id != node.id()).collect();
        while !waiting.is_empty() {
            let what = format!("PeerUp of {waiting:?}");
            let event = node
                .expect(&what, |e| matches!(e, Incoming::PeerUp(_)))
                .await;
            let Incoming::PeerUp(peer) = event else {
                unreachable!()
            };
            waiting.retain(|&id| id != peer);
        }
    }
}

/// Polls `check` until it holds, or panics after [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that no event in the next `window` is a `PeerUp`.
async fn assert_no_peer_up(node: &mut Node, window: Duration) {
    let id = node.id();
    let deadline = Instant::now() + window;
    while let Ok(event) = timeout(
        deadline.saturating_duration_since(Instant::now()),
        node.events().recv(),
    )
    .await
    {
        match event {
            Some(Incoming::PeerUp(peer)) => panic!("{id}: unexpected PeerUp({peer})"),
            Some(_) => {}
            None => return,
        }
    }
}

/// A message payload that names its sender, channel and sequence number.
fn payload(from: PeerId, channel: Channel, seq: u32) -> Bytes {
    Bytes::from(format!("{}:{:?}:{seq}", from.0, channel))
}
