//! The transport handle, start-up, the accept loop and the dial loops.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quinn::{Connection, ConnectionError, Endpoint, VarInt};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use crate::config::{Backoff, NetConfig};
use crate::error::{NetError, SendError};
use crate::link::{run_link, Link};
use crate::metrics::{add, Metrics, NetMetrics};
use crate::socket::SilenceableSocket;
use crate::stream::{StreamReader, StreamSender};
use crate::tls::{check_peer_identity, client_config, server_config, TlsMaterial};
use crate::wire::{
    close, read_control, write_control, FrameError, Hello, StreamHeader, StreamKind,
    CLOSE_IDENTITY, CLOSE_PROTOCOL, CLOSE_SHUTDOWN, CLOSE_VERSION_MISMATCH,
};
use crate::{certs, Channel, PeerId};

/// What the transport reports, in one channel for all peers.
#[derive(Debug)]
pub enum Incoming {
    /// A connection to the peer completed its hello; sending to it now works.
    PeerUp(PeerId),
    /// The connection to the peer ended (closed, timed out, or replaced); every message
    /// of that connection was reported before this.
    PeerDown(PeerId),
    /// A message from a peer, in per-channel order.
    Message {
        /// The sender.
        from: PeerId,
        /// The channel it was sent on.
        channel: Channel,
        /// The payload, exactly as sent.
        payload: Bytes,
    },
    /// A peer opened a bulk stream (a snapshot); read it to its end.
    Stream {
        /// The sender.
        from: PeerId,
        /// The channel named by the sender.
        channel: Channel,
        /// The bytes, in chunks as they arrive.
        reader: StreamReader,
    },
}

/// Per-peer state shared by the tasks.
pub(crate) struct PeerSlot {
    pub(crate) id: PeerId,
    pub(crate) addr: SocketAddr,
    /// The live link, if the peer is up.
    pub(crate) link: Mutex<Option<Arc<Link>>>,
    /// Held by a link from before its `PeerUp` to after its `PeerDown`, so that the
    /// events of two connections to the same peer never interleave.
    pub(crate) session: Arc<tokio::sync::Mutex<()>>,
    pub(crate) next_generation: AtomicU64,
    pub(crate) links_established: AtomicU64,
}

/// State shared by the handle and every task.
pub(crate) struct Shared {
    pub(crate) config: NetConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) peers: HashMap<PeerId, Arc<PeerSlot>>,
    pub(crate) events: mpsc::Sender<Incoming>,
    pub(crate) metrics: Metrics,
    /// The last refusal logged per remote address, so that a peer redialing every
    /// backoff interval is warned about once.
    refusals: Mutex<HashMap<SocketAddr, String>>,
    /// Set when the transport shuts down, so no task waits on a full event queue forever.
    closing: watch::Sender<bool>,
    // Read only by the tests' kill switch.
    #[cfg_attr(not(test), allow(dead_code))]
    socket: Arc<SilenceableSocket>,
}

/// The peer transport of one node. See the crate docs for the delivery contract.
///
/// Dropping it closes every connection (peers see a clean close) and stops its tasks;
/// [`Transport::close`] also waits, briefly, for the closes to be delivered.
pub struct Transport {
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("my_id", &self.shared.config.my_id)
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl Transport {
    /// Binds `config.listen` and starts accepting and dialing. Must be called inside a
    /// tokio runtime. Returns the handle and the receiver of every [`Incoming`] event.
    pub fn start(config: NetConfig) -> Result<(Transport, mpsc::Receiver<Incoming>), NetError> {
        let socket = UdpSocket::bind(config.listen).map_err(|source| NetError::Bind {
            addr: config.listen,
            source,
        })?;
        Transport::start_with_socket(config, socket)
    }

    /// Like [`Transport::start`] on an already bound socket (`config.listen` is ignored).
    pub fn start_with_socket(
        config: NetConfig,
        socket: UdpSocket,
    ) -> Result<(Transport, mpsc::Receiver<Incoming>), NetError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::Config(
                "start the transport inside a tokio runtime".into(),
            ));
        }
        let addr = socket.local_addr().map_err(|source| NetError::Bind {
            addr: config.listen,
            source,
        })?;
        let bind_err = |source| NetError::Bind { addr, source };
        let tls = TlsMaterial::load(&config.tls)?;
        let transport_config = Arc::new(quic_transport_config(&config)?);
        let runtime = Arc::new(quinn::TokioRuntime);
        let socket = Arc::new(SilenceableSocket::new(
            quinn::Runtime::wrap_udp_socket(&*runtime, socket).map_err(bind_err)?,
        ));
        let mut endpoint = Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(server_config(&tls, transport_config.clone())?),
            socket.clone(),
            runtime,
        )
        .map_err(bind_err)?;
        endpoint.set_default_client_config(client_config(&tls, transport_config)?);

        let peers = config
            .peers
            .iter()
            .filter(|(id, _)| *id != config.my_id)
            .map(|&(id, addr)| (id, Arc::new(PeerSlot::new(id, addr))))
            .collect::<HashMap<_, _>>();
        let (events, events_rx) = mpsc::channel(config.incoming_queue_len);
        let shared = Arc::new(Shared {
            config,
            endpoint,
            peers,
            events,
            metrics: Metrics::default(),
            refusals: Mutex::new(HashMap::new()),
            closing: watch::Sender::new(false),
            socket,
        });
        let mut tasks = vec![tokio::spawn(accept_loop(shared.clone())).abort_handle()];
        for slot in shared.peers.values() {
            if slot.id < shared.config.my_id {
                tasks.push(tokio::spawn(dial_loop(shared.clone(), slot.clone())).abort_handle());
            }
        }
        info!(node = %shared.config.my_id, %addr, peers = shared.peers.len(), "peer transport started");
        Ok((Transport { shared, tasks }, events_rx))
    }

    /// This node's id.
    pub fn my_id(&self) -> PeerId {
        self.shared.config.my_id
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.shared.endpoint.local_addr()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> NetMetrics {
        self.shared.metrics.snapshot()
    }

    /// Whether the peer is up now.
    pub fn is_up(&self, peer: PeerId) -> bool {
        self.shared
            .peers
            .get(&peer)
            .is_some_and(|slot| slot.current().is_some())
    }

    /// Queues `payload` for `peer` on `channel` without waiting. A message that cannot be
    /// queued is dropped and counted (see [`SendError`]); the caller's protocol
    /// retransmits after the next `PeerUp`.
    pub fn send(&self, peer: PeerId, channel: Channel, payload: Bytes) -> Result<(), SendError> {
        let max = self.shared.config.max_frame_len;
        if payload.len() > max as usize {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let slot = self
            .shared
            .peers
            .get(&peer)
            .ok_or(SendError::UnknownPeer(peer))?;
        let dropped = || add(&self.shared.metrics.messages_dropped, 1);
        let Some(link) = slot.current() else {
            dropped();
            return Err(SendError::PeerDown(peer));
        };
        match link.queues[channel.index()].try_send(payload) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                dropped();
                Err(SendError::PeerDown(peer))
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped();
                warn!(%peer, ?channel, "send queue overflowed; closing the connection");
                close(
                    &link.conn,
                    crate::wire::CLOSE_QUEUE_OVERFLOW,
                    "send queue overflowed",
                );
                Err(SendError::QueueFull(peer))
            }
        }
    }

    /// Opens a bulk stream to `peer` (for a snapshot), named `channel`. Its order with
    /// respect to messages is not defined: announce it with a message if it matters.
    pub async fn send_stream(
        &self,
        peer: PeerId,
        channel: Channel,
    ) -> Result<StreamSender, SendError> {
        let slot = self
            .shared
            .peers
            .get(&peer)
            .ok_or(SendError::UnknownPeer(peer))?;
        let link = slot.current().ok_or(SendError::PeerDown(peer))?;
        let mut send = link
            .conn
            .open_uni()
            .await
            .map_err(|_| SendError::PeerDown(peer))?;
        write_control(
            &mut send,
            &StreamHeader {
                channel,
                kind: StreamKind::Bulk,
            },
        )
        .await
        .map_err(|_| SendError::PeerDown(peer))?;
        add(&self.shared.metrics.streams_sent, 1);
        Ok(StreamSender::new(peer, channel, send))
    }

    /// Closes every connection and waits (at most `idle_timeout`) for peers to be told.
    pub async fn close(mut self) {
        self.shutdown();
        let _ = timeout(
            self.shared.config.idle_timeout,
            self.shared.endpoint.wait_idle(),
        )
        .await;
    }

    /// Makes this node vanish without a word, like `kill -9`: nothing more is sent or
    /// received, then everything is dropped.
    #[cfg(test)]
    pub(crate) fn kill(mut self) {
        self.shared.socket.silence();
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.closing.send_replace(true);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.shared
            .endpoint
            .close(VarInt::from_u32(CLOSE_SHUTDOWN), b"node shutting down");
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl PeerSlot {
    fn new(id: PeerId, addr: SocketAddr) -> PeerSlot {
        PeerSlot {
            id,
            addr,
            link: Mutex::new(None),
            session: Arc::new(tokio::sync::Mutex::new(())),
            next_generation: AtomicU64::new(0),
            links_established: AtomicU64::new(0),
        }
    }

    pub(crate) fn current(&self) -> Option<Arc<Link>> {
        self.link
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

fn quic_transport_config(config: &NetConfig) -> Result<quinn::TransportConfig, NetError> {
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(config.keep_alive));
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| NetError::Config("idle_timeout is too large".to_string()))?;
    transport.max_idle_timeout(Some(idle));
    // One control stream; three message streams per direction plus concurrent bulk ones.
    transport.max_concurrent_bidi_streams(VarInt::from_u32(1));
    transport.max_concurrent_uni_streams(VarInt::from_u32(64));
    Ok(transport)
}

/// Accepts connections until the endpoint closes.
async fn accept_loop(shared: Arc<Shared>) {
    while let Some(incoming) = shared.endpoint.accept().await {
        tokio::spawn(accept_one(shared.clone(), incoming));
    }
}

async fn accept_one(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let handshake_timeout = shared.config.handshake_timeout;
    let conn = match timeout(handshake_timeout, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return shared.refused(remote, &err.to_string()),
        Err(_) => return shared.refused(remote, "TLS handshake timed out"),
    };
    match timeout(handshake_timeout, accept_hello(&shared, &conn)).await {
        Ok(Ok(slot)) => {
            lock_map(&shared.refusals).remove(&remote);
            run_link(shared, slot, conn).await
        }
        Ok(Err(Refusal { code, reason })) => {
            close(&conn, code, &reason);
            shared.refused(remote, &reason);
        }
        Err(_) => {
            close(&conn, CLOSE_PROTOCOL, "hello timed out");
            shared.refused(remote, "hello timed out");
        }
    }
}

fn lock_map<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    map.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Shared {
    /// Reports an event, waiting while the queue is full unless the transport shuts
    /// down. Returns false if the event could not be delivered.
    pub(crate) async fn emit(&self, event: Incoming) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(event)) => {
                let mut closing = self.closing.subscribe();
                tokio::select! {
                    sent = self.events.send(event) => sent.is_ok(),
                    _ = closing.wait_for(|closing| *closing) => false,
                }
            }
        }
    }

    /// Counts and logs a refused inbound connection, warning once per remote and reason.
    fn refused(&self, remote: SocketAddr, reason: &str) {
        add(&self.metrics.handshake_failures, 1);
        let mut refusals = lock_map(&self.refusals);
        if refusals.get(&remote).is_some_and(|last| last == reason) {
            debug!(%remote, "refused an inbound peer connection again: {reason}");
            return;
        }
        warn!(%remote, "refused an inbound peer connection: {reason}");
        if refusals.len() >= 1024 {
            refusals.clear(); // bounded; at worst a warning repeats
        }
        refusals.insert(remote, reason.to_string());
    }
}

/// Why a hello was refused: the close code and the reason sent to the peer.
struct Refusal {
    code: u32,
    reason: String,
}

impl Refusal {
    fn new(code: u32, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// The acceptor's half of the hello: version, a known higher id, and a certificate that
/// names it.
async fn accept_hello(shared: &Shared, conn: &Connection) -> Result<Arc<PeerSlot>, Refusal> {
    let protocol =
        |err: &dyn std::fmt::Display| Refusal::new(CLOSE_PROTOCOL, format!("bad hello: {err}"));
    let (mut send, mut recv) = conn.accept_bi().await.map_err(|err| protocol(&err))?;
    let hello: Hello = read_control(&mut recv)
        .await
        .map_err(|err| protocol(&err))?;
    let my_id = shared.config.my_id;
    let ours = shared.config.protocol_version;
    if hello.version != ours {
        return Err(Refusal::new(
            CLOSE_VERSION_MISMATCH,
            format!(
                "protocol version mismatch: {my_id} speaks version {ours}, {} speaks version {}",
                hello.node_id, hello.version
            ),
        ));
    }
    let peer = hello.node_id;
    let slot = shared.peers.get(&peer).ok_or_else(|| {
        Refusal::new(
            CLOSE_IDENTITY,
            format!("{peer} is not a member known to {my_id}"),
        )
    })?;
    if peer < my_id {
        return Err(Refusal::new(
            CLOSE_IDENTITY,
            format!("{peer} dialed {my_id}, but only higher ids dial lower ones"),
        ));
    }
    check_peer_identity(conn, peer).map_err(|err| Refusal::new(CLOSE_IDENTITY, err))?;
    let welcome = Hello {
        version: ours,
        node_id: my_id,
    };
    write_control(&mut send, &welcome)
        .await
        .map_err(|err| protocol(&err))?;
    let _ = send.finish();
    Ok(slot.clone())
}

/// Keeps a connection to a lower id: dial, run the link until it ends, back off, redial.
async fn dial_loop(shared: Arc<Shared>, slot: Arc<PeerSlot>) {
    let config = &shared.config;
    let mut backoff = Backoff::new(config.reconnect_backoff_min, config.reconnect_backoff_max);
    // A refusal repeats on every redial; say it once until something changes.
    let mut last_refusal = String::new();
    loop {
        match timeout(config.handshake_timeout, dial_once(&shared, &slot)).await {
            Ok(Ok(conn)) => {
                backoff.reset();
                last_refusal.clear();
                run_link(shared.clone(), slot.clone(), conn).await;
            }
            Ok(Err(err)) => {
                add(&shared.metrics.dial_failures, 1);
                if err.is_refusal() {
                    add(&shared.metrics.handshake_failures, 1);
                    let message = err.to_string();
                    if message != last_refusal {
                        warn!(peer = %slot.id, addr = %slot.addr, "peer connection refused: {message}");
                        last_refusal = message;
                    } else {
                        debug!(peer = %slot.id, addr = %slot.addr, "peer connection refused again: {message}");
                    }
                } else {
                    debug!(peer = %slot.id, addr = %slot.addr, "dial failed: {err}");
                }
            }
            Err(_) => {
                add(&shared.metrics.dial_failures, 1);
                debug!(peer = %slot.id, addr = %slot.addr, "dial timed out");
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("{0}")]
    Connection(#[from] ConnectionError),
    #[error("hello failed: {0}")]
    Hello(#[from] FrameError),
    #[error("{0}")]
    Refused(String),
}

impl DialError {
    /// A refusal by either side's checks (TLS, identity, version), as opposed to the peer
    /// being unreachable.
    fn is_refusal(&self) -> bool {
        let refused_conn = |err: &ConnectionError| {
            matches!(
                err,
                ConnectionError::TransportError(_)
                    | ConnectionError::ConnectionClosed(_)
                    | ConnectionError::ApplicationClosed(_)
                    | ConnectionError::VersionMismatch
            )
        };
        match self {
            DialError::Connect(_) => false,
            DialError::Connection(err) => refused_conn(err),
            DialError::Hello(FrameError::Read(quinn::ReadError::ConnectionLost(err)))
            | DialError::Hello(FrameError::Write(quinn::WriteError::ConnectionLost(err)))
            | DialError::Hello(FrameError::Connection(err)) => refused_conn(err),
            DialError::Hello(_) => false,
            DialError::Refused(_) => true,
        }
    }
}

/// The dialer's half: TLS (the server certificate must name the peer), then the hello.
async fn dial_once(shared: &Shared, slot: &PeerSlot) -> Result<Connection, DialError> {
    let server_name = certs::node_dns_name(slot.id);
    let conn = shared.endpoint.connect(slot.addr, &server_name)?.await?;
    match dial_hello(shared, slot, &conn).await {
        Ok(()) => Ok(conn),
        // The peer's close reason says more than the stream error it caused.
        Err(err) => Err(conn.close_reason().map_or(err, DialError::Connection)),
    }
}

async fn dial_hello(shared: &Shared, slot: &PeerSlot, conn: &Connection) -> Result<(), DialError> {
    let ours = shared.config.protocol_version;
    let (mut send, mut recv) = conn.open_bi().await?;
    let hello = Hello {
        version: ours,
        node_id: shared.config.my_id,
    };
    write_control(&mut send, &hello).await?;
    let _ = send.finish();
    let welcome: Hello = read_control(&mut recv).await?;
    let refused = if welcome.version != ours {
        Some((
            CLOSE_VERSION_MISMATCH,
            format!(
                "protocol version mismatch: {} speaks version {ours}, {} speaks version {}",
                shared.config.my_id, slot.id, welcome.version
            ),
        ))
    } else if welcome.node_id != slot.id {
        Some((
            CLOSE_IDENTITY,
            format!("expected {} but {} answered", slot.id, welcome.node_id),
        ))
    } else {
        None
    };
    if let Some((code, reason)) = refused {
        close(conn, code, &reason);
        return Err(DialError::Refused(reason));
    }
    Ok(())
}
