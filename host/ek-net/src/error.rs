//! Typed errors of the transport and the certificate helpers.

use std::io;
use std::path::PathBuf;

use crate::PeerId;

/// Why a [`crate::Transport`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration is inconsistent.
    #[error("invalid transport config: {0}")]
    Config(String),
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The TLS material is unusable (bad PEM, no key, key and cert mismatch, ...).
    #[error("invalid TLS material: {0}")]
    Tls(String),
    /// The UDP socket could not be bound or set up.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The listen address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
}

/// Why a message or stream was not handed to a peer. From [`crate::Transport::send`],
/// `PeerDown` and `QueueFull` count as dropped messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The id is not a configured peer.
    #[error("{0} is not a configured peer")]
    UnknownPeer(PeerId),
    /// The payload exceeds `max_frame_len`; nothing was sent.
    #[error("payload of {len} bytes exceeds the frame limit of {max} bytes")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The configured limit.
        max: u32,
    },
    /// No connection to the peer right now; the message was dropped.
    #[error("{0} is down")]
    PeerDown(PeerId),
    /// The peer's send queue overflowed; the message was dropped and the connection is
    /// being closed so that the channel never has a gap.
    #[error("send queue to {0} overflowed; reconnecting")]
    QueueFull(PeerId),
}

/// Why a certificate operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Refusing to overwrite an existing CA or key file.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// rcgen failed to generate or sign.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The CA files do not belong together or were not made by [`crate::certs::init_ca`].
    #[error("invalid CA: {0}")]
    InvalidCa(String),
}
