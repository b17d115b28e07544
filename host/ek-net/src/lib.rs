//! Peer transport of edgekeeper: moves opaque messages between node ids over QUIC.
//!
//! Every pair of nodes shares one QUIC connection (quinn + rustls, TLS 1.3 with the `ring`
//! provider), authenticated both ways against the cluster CA only: a node's identity is the
//! DNS name `node-<id>.edgekeeper` in its certificate (see [`certs`]), checked by each side
//! against the id it expects. Inside a connection each [`Channel`] has one long-lived
//! unidirectional stream per direction carrying length-prefixed frames, so delivery is FIFO
//! per channel and a slow snapshot never blocks an election message. Bulk transfers
//! (snapshots) get a stream of their own, read and written in chunks through
//! [`StreamSender`] and [`StreamReader`].
//!
//! Delivery contract: while a peer is up (between [`Incoming::PeerUp`] and
//! [`Incoming::PeerDown`]) the messages of one channel arrive in order and without gaps: a
//! message that cannot be delivered tears the connection down instead of leaving a hole.
//! Messages sent while a peer is down are dropped and counted, never queued for later:
//! ZAB resynchronises after every `PeerUp`. Events of one peer come in order: `PeerUp`,
//! its messages and streams, then `PeerDown`, and only then a later `PeerUp`.
//!
//! Connection rule: only the node with the higher id dials (ZooKeeper's
//! QuorumCnxManager keeps the connection initiated by the higher id; dialing only that way
//! gives the same outcome without duplicate connections to resolve). A node therefore
//! waits for higher ids to dial it and redials lower ids with exponential backoff and
//! jitter. A new connection from a peer replaces the old one (the peer restarted).
//!
//! This crate knows nothing of ZAB, never decodes payloads, never blocks in
//! [`Transport::send`], and never panics on what a peer sends.
#![warn(missing_docs)]

pub mod certs;
mod config;
mod error;
mod link;
mod metrics;
mod socket;
mod stream;
mod tls;
mod transport;
mod wire;

pub use crate::config::{NetConfig, TlsConfig};
pub use crate::error::{CertError, NetError, SendError};
pub use crate::metrics::NetMetrics;
pub use crate::stream::{StreamReader, StreamSender};
pub use crate::transport::{Incoming, Transport};
pub use crate::wire::{ALPN, PROTOCOL_VERSION};

use serde::{Deserialize, Serialize};

/// The id of an edgekeeper node (ZooKeeper's `myid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node-{}", self.0)
    }
}

/// The purpose of a message; each channel is its own FIFO stream inside a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    /// Leader election votes and notifications.
    Election,
    /// Discovery, synchronisation and broadcast (proposals, acks, commits, pings).
    Replication,
    /// Snapshot control messages; snapshot bytes go through [`Transport::send_stream`].
    Snapshot,
}

impl Channel {
    /// Every channel, in index order.
    pub const ALL: [Channel; 3] = [Channel::Election, Channel::Replication, Channel::Snapshot];

    /// A dense index for per-channel tables.
    pub(crate) fn index(self) -> usize {
        match self {
            Channel::Election => 0,
            Channel::Replication => 1,
            Channel::Snapshot => 2,
        }
    }
}

#[cfg(test)]
mod tests;
