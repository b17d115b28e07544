//! The core's view of one client connection.

use crate::replies::ReplyQueue;
use ek_jute::DecodedRequest;
use ek_types::{Id, SessionId};
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// A connection's id, unique for the life of the process; also its watcher id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// What the core sends a connection task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Encoded frames to write, in order.
    Frames(Vec<u8>),
    /// Write what was sent before, then close.
    Close,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the ConnectRequest.
    Handshake,
    /// The createSession txn is in flight.
    Connecting,
    /// The session is established.
    Connected,
}

/// Per-connection counters for `cons` and `stat`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnStats {
    pub(crate) received: u64,
    pub(crate) sent: u64,
    pub(crate) established_ms: i64,
    pub(crate) last_op: &'static str,
    pub(crate) last_cxid: i32,
    pub(crate) last_zxid: i64,
    pub(crate) last_response_ms: i64,
    pub(crate) last_latency_ms: u64,
    pub(crate) min_latency_ms: u64,
    pub(crate) max_latency_ms: u64,
    pub(crate) total_latency_ms: u64,
    pub(crate) replies: u64,
}

impl ConnStats {
    pub(crate) fn record(&mut self, op: &'static str, xid: i32, zxid: i64, elapsed: Duration) {
        let latency_ms = elapsed.as_millis() as u64;
        self.last_op = op;
        self.last_cxid = xid;
        self.last_zxid = zxid;
        self.last_response_ms = crate::core::now_ms();
        self.last_latency_ms = latency_ms;
        self.min_latency_ms = if self.replies == 0 {
            latency_ms
        } else {
            self.min_latency_ms.min(latency_ms)
        };
        self.max_latency_ms = self.max_latency_ms.max(latency_ms);
        self.total_latency_ms += latency_ms;
        self.replies += 1;
    }
}

pub(crate) struct Client {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) out: mpsc::UnboundedSender<Outbound>,
    /// Bytes sent to the connection task and not yet written to the socket.
    pub(crate) queued: Arc<AtomicUsize>,
    /// Tells the connection task to give up on a client that does not read.
    pub(crate) closer: watch::Sender<bool>,
    /// Frames encoded this round, sent to the connection task at the end of the round.
    pub(crate) out_buf: Vec<u8>,
    pub(crate) pending_packets: u64,
    pub(crate) close_requested: bool,
    pub(crate) phase: Phase,
    pub(crate) session: Option<SessionId>,
    pub(crate) timeout_ms: i32,
    /// Whether the ConnectRequest carried the readOnly flag (the reply must mirror it).
    pub(crate) read_only_field: Option<bool>,
    /// The identities this connection authenticated as, starting with `ip:<addr>`.
    pub(crate) ids: Vec<Id>,
    pub(crate) replies: ReplyQueue,
    /// Requests that arrived before the session was established.
    pub(crate) early: Vec<(DecodedRequest, Instant)>,
    pub(crate) stats: ConnStats,
}

impl Client {
    pub(crate) fn new(
        id: ConnId,
        peer: SocketAddr,
        out: mpsc::UnboundedSender<Outbound>,
        queued: Arc<AtomicUsize>,
        closer: watch::Sender<bool>,
        now_ms: i64,
    ) -> Client {
        Client {
            id,
            peer,
            out,
            queued,
            closer,
            out_buf: Vec::new(),
            pending_packets: 0,
            close_requested: false,
            phase: Phase::Handshake,
            session: None,
            timeout_ms: 0,
            read_only_field: None,
            ids: vec![Id::new("ip", peer.ip().to_string())],
            replies: ReplyQueue::default(),
            early: Vec::new(),
            stats: ConnStats {
                established_ms: now_ms,
                ..ConnStats::default()
            },
        }
    }
}
