//! Transport configuration and its LAN defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::NetError;
use crate::wire::PROTOCOL_VERSION;
use crate::PeerId;

/// Where the node's TLS material comes from: the cluster CA certificate (the only trust
/// anchor) and this node's certificate chain and private key, all PEM.
#[derive(Clone)]
pub enum TlsConfig {
    /// PEM files on disk, as written by [`crate::certs::write_node_files`].
    Files {
        /// The cluster CA certificate.
        ca_cert: PathBuf,
        /// This node's certificate (chain), leaf first.
        cert: PathBuf,
        /// This node's private key (PKCS#8, SEC1 or PKCS#1).
        key: PathBuf,
    },
    /// PEM text in memory.
    Pem {
        /// The cluster CA certificate.
        ca_cert_pem: String,
        /// This node's certificate (chain), leaf first.
        cert_pem: String,
        /// This node's private key.
        key_pem: String,
    },
}

impl std::fmt::Debug for TlsConfig {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsConfig::Files { ca_cert, cert, key } => f
                .debug_struct("Files")
                .field("ca_cert", ca_cert)
                .field("cert", cert)
                .field("key", key)
                .finish(),
            TlsConfig::Pem { .. } => f.write_str("Pem { .. }"),
        }
    }
}

/// Configuration of a [`crate::Transport`]. Build it with [`NetConfig::new`] and adjust
/// the public fields; the defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// This node's id; its certificate must name `node-<id>.edgekeeper`.
    pub my_id: PeerId,
    /// The UDP address to listen on (and dial from).
    pub listen: SocketAddr,
    /// Every other member with its peer address. An entry for `my_id` is ignored.
    pub peers: Vec<(PeerId, SocketAddr)>,
    /// TLS material.
    pub tls: TlsConfig,
    /// How often an idle connection sends a keep-alive. Default 200 ms.
    pub keep_alive: Duration,
    /// A connection that hears nothing for this long is dead: this is how a killed peer
    /// (which sends no close) is detected. Must exceed `keep_alive` by a few intervals.
    /// Default 1.5 s; raise it for lossy or slow links.
    pub idle_timeout: Duration,
    /// Bound on the TLS handshake plus the hello exchange. Default 5 s.
    pub handshake_timeout: Duration,
    /// First delay before redialing a lower id. Default 50 ms.
    pub reconnect_backoff_min: Duration,
    /// Cap of the exponential redial delay. Default 2 s.
    pub reconnect_backoff_max: Duration,
    /// Largest message payload, both sent and accepted. A peer sending a larger frame
    /// has its connection closed. Default 16 MiB; use one value cluster-wide.
    pub max_frame_len: u32,
    /// Messages queued per peer and channel while the stream drains; overflowing it
    /// closes the connection (a gap would break FIFO delivery). Default 4096.
    pub send_queue_len: usize,
    /// Capacity of the [`crate::Incoming`] channel; when full, reading from peers pauses
    /// (QUIC flow control pushes back on senders). Default 1024.
    pub incoming_queue_len: usize,
    /// The protocol version announced in the hello; peers must match exactly. Only
    /// tests change it. Default [`PROTOCOL_VERSION`].
    pub protocol_version: u16,
}

impl NetConfig {
    /// A configuration with the LAN defaults documented on each field.
    pub fn new(
        my_id: PeerId,
        listen: SocketAddr,
        peers: Vec<(PeerId, SocketAddr)>,
        tls: TlsConfig,
    ) -> NetConfig {
        NetConfig {
            my_id,
            listen,
            peers,
            tls,
            keep_alive: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(1500),
            handshake_timeout: Duration::from_secs(5),
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(2),
            max_frame_len: 16 << 20,
            send_queue_len: 4096,
            incoming_queue_len: 1024,
            protocol_version: PROTOCOL_VERSION,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), NetError> {
        let invalid = |msg: String| Err(NetError::Config(msg));
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return invalid(format!(
                "keep_alive ({:?}) must be non-zero and below idle_timeout ({:?})",
                self.keep_alive, self.idle_timeout
            ));
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return invalid("reconnect backoff needs 0 < min <= max".to_string());
        }
        if self.max_frame_len == 0 || self.send_queue_len == 0 || self.incoming_queue_len == 0 {
            return invalid("max_frame_len and queue lengths must be non-zero".to_string());
        }
        let mut ids: Vec<PeerId> = self.peers.iter().map(|(id, _)| *id).collect();
        ids.sort();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("{} is listed twice in peers", pair[0]));
        }
        Ok(())
    }
}

/// Exponential backoff with "equal jitter": each delay is uniform in [d/2, d] where d
/// doubles from `min` up to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}
