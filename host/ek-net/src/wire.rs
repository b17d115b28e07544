//! Wire format between peers.
//!
//! Every frame is a `u32` big-endian length followed by that many bytes.
//!
//! - Control stream: the dialer opens one bidirectional stream and sends one frame with a
//!   postcard [`Hello`] (`version` first, so any version can decode it); the acceptor
//!   checks it and answers with its own [`Hello`], or closes the connection with one of
//!   the `CLOSE_*` codes and a readable reason.
//! - Message streams: after the hello, each side opens one unidirectional stream per
//!   [`Channel`]. Its first frame is a postcard [`StreamHeader`] with
//!   [`StreamKind::Messages`]; every later frame is one message payload, at most
//!   `max_frame_len` bytes.
//! - Bulk streams: a unidirectional stream whose header says [`StreamKind::Bulk`]; the
//!   rest of the stream is raw bytes up to a FIN. A sender that gives up resets the stream
//!   with [`RESET_ABORTED`], so a truncated transfer is never mistaken for a whole one.

use bytes::Bytes;
use quinn::{RecvStream, SendStream, VarInt};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{Channel, PeerId};

/// The ALPN protocol name of edgekeeper peer connections.
pub const ALPN: &[u8] = b"edgekeeper-peer";

/// The version of this wire protocol, exchanged in the hello; peers must match exactly.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest control frame (hello, stream header).
const CONTROL_FRAME_MAX: u32 = 1024;

/// Connection close: the node is shutting down.
pub(crate) const CLOSE_SHUTDOWN: u32 = 0;
/// Connection close: a newer connection from the same peer replaced this one.
pub(crate) const CLOSE_REPLACED: u32 = 1;
/// Connection close: protocol versions differ.
pub(crate) const CLOSE_VERSION_MISMATCH: u32 = 2;
/// Connection close: the certificate does not name the claimed node, or the node is
/// unknown, or it dialed against the connection rule.
pub(crate) const CLOSE_IDENTITY: u32 = 3;
/// Connection close: malformed control data.
pub(crate) const CLOSE_PROTOCOL: u32 = 4;
/// Connection close: a frame exceeded `max_frame_len`.
pub(crate) const CLOSE_FRAME_TOO_LARGE: u32 = 5;
/// Connection close: a send queue overflowed.
pub(crate) const CLOSE_QUEUE_OVERFLOW: u32 = 6;
/// Stream reset: the bulk sender was dropped before finishing.
pub(crate) const RESET_ABORTED: u32 = 1;

/// Closes `conn` with `code` and a reason that the peer logs.
pub(crate) fn close(conn: &quinn::Connection, code: u32, reason: &str) {
    conn.close(VarInt::from_u32(code), reason.as_bytes());
}

/// The first message on a connection, in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender. Must stay the first field.
    pub(crate) version: u16,
    /// The sender's node id.
    pub(crate) node_id: PeerId,
}

/// What a unidirectional stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StreamKind {
    /// Length-prefixed message frames.
    Messages,
    /// Raw bytes up to FIN.
    Bulk,
}

/// The first frame of every unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamHeader {
    pub(crate) channel: Channel,
    pub(crate) kind: StreamKind,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u32, max: u32 },
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("undecodable control frame: {0}")]
    Decode(#[from] postcard::Error),
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
}

impl From<quinn::ReadExactError> for FrameError {
    fn from(err: quinn::ReadExactError) -> FrameError {
        match err {
            quinn::ReadExactError::FinishedEarly(_) => FrameError::Truncated,
            quinn::ReadExactError::ReadError(err) => FrameError::Read(err),
        }
    }
}

/// The 4-byte length prefix of a frame.
pub(crate) fn frame_prefix(len: usize) -> Bytes {
    let len = u32::try_from(len).expect("frame length checked against max_frame_len");
    Bytes::copy_from_slice(&len.to_be_bytes())
}

/// Reads one frame; `Ok(None)` is a clean end of stream at a frame boundary. The length
/// is checked before any allocation.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    max: u32,
) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let len = u32::from_be_bytes(prefix);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len as usize];
    recv.read_exact(&mut body).await?;
    Ok(Some(Bytes::from(body)))
}

/// Writes one postcard-encoded control frame.
pub(crate) async fn write_control<T: Serialize>(
    send: &mut SendStream,
    value: &T,
) -> Result<(), FrameError> {
    let body = postcard::to_stdvec(value)?;
    let mut chunks = [frame_prefix(body.len()), Bytes::from(body)];
    send.write_all_chunks(&mut chunks).await?;
    Ok(())
}

/// Reads one postcard-encoded control frame.
pub(crate) async fn read_control<T: DeserializeOwned>(
    recv: &mut RecvStream,
) -> Result<T, FrameError> {
    let body = read_frame(recv, CONTROL_FRAME_MAX)
        .await?
        .ok_or(FrameError::Truncated)?;
    Ok(postcard::from_bytes(&body)?)
}
