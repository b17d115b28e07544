//! Counters of the transport.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the transport's counters, all monotonic since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetMetrics {
    /// Messages written to a peer's stream.
    pub messages_sent: u64,
    /// Messages received from peers.
    pub messages_received: u64,
    /// Messages dropped: peer down, queue overflow, or lost with a closing connection.
    pub messages_dropped: u64,
    /// Payload bytes of sent messages.
    pub bytes_sent: u64,
    /// Payload bytes of received messages.
    pub bytes_received: u64,
    /// Connections that completed the hello (each reported as `PeerUp`).
    pub peer_ups: u64,
    /// Connections that ended (each reported as `PeerDown`).
    pub peer_downs: u64,
    /// `PeerUp`s of a peer that had been up before.
    pub reconnects: u64,
    /// Outbound dials that failed for any reason (including refusals).
    pub dial_failures: u64,
    /// Connections refused in either direction: TLS (unknown CA, wrong name), identity,
    /// or protocol version.
    pub handshake_failures: u64,
    /// Frames from peers that exceeded `max_frame_len` (each closed its connection).
    pub oversize_frames: u64,
    /// Bulk streams opened to peers.
    pub streams_sent: u64,
    /// Bulk streams received from peers.
    pub streams_received: u64,
}

/// The live counters; one per transport.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) peer_ups: AtomicU64,
    pub(crate) peer_downs: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) oversize_frames: AtomicU64,
    pub(crate) streams_sent: AtomicU64,
    pub(crate) streams_received: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn snapshot(&self) -> NetMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetMetrics {
            messages_sent: get(&self.messages_sent),
            messages_received: get(&self.messages_received),
            messages_dropped: get(&self.messages_dropped),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            peer_ups: get(&self.peer_ups),
            peer_downs: get(&self.peer_downs),
            reconnects: get(&self.reconnects),
            dial_failures: get(&self.dial_failures),
            handshake_failures: get(&self.handshake_failures),
            oversize_frames: get(&self.oversize_frames),
            streams_sent: get(&self.streams_sent),
            streams_received: get(&self.streams_received),
        }
    }
}
