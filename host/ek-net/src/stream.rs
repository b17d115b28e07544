//! Bulk streams (snapshots): chunked, backpressured, never buffered whole.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use quinn::{RecvStream, SendStream, VarInt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire::RESET_ABORTED;
use crate::{Channel, PeerId};

/// The sending half of a bulk stream, from [`crate::Transport::send_stream`].
///
/// Write with [`tokio::io::AsyncWriteExt`]; each write waits for flow-control credit, so
/// at most a stream window of data is buffered. End with [`StreamSender::finish`] (or
/// `shutdown`). Dropping it unfinished resets the stream, and the reader sees an error
/// instead of a clean end.
pub struct StreamSender {
    peer: PeerId,
    channel: Channel,
    send: SendStream,
    finished: bool,
}

impl StreamSender {
    pub(crate) fn new(peer: PeerId, channel: Channel, send: SendStream) -> StreamSender {
        StreamSender {
            peer,
            channel,
            send,
            finished: false,
        }
    }

    /// The receiving peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The channel named in the stream header.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// Ends the stream and waits until the peer has received all of it (or stopped it,
    /// or the connection was lost, which are errors).
    pub async fn finish(mut self) -> io::Result<()> {
        self.finished = true;
        self.send
            .finish()
            .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))?;
        match self.send.stopped().await {
            Ok(None) => Ok(()),
            Ok(Some(code)) => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("peer stopped the stream with code {code}"),
            )),
            Err(err) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, err)),
        }
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        if !self.finished {
            // Quinn would finish a dropped stream; a reset tells the reader it is partial.
            let _ = self.send.reset(VarInt::from_u32(RESET_ABORTED));
        }
    }
}

impl fmt::Debug for StreamSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("peer", &self.peer)
            .field("channel", &self.channel)
            .field("finished", &self.finished)
            .finish()
    }
}

impl AsyncWrite for StreamSender {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.finished = true;
        AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx)
    }
}

/// The receiving half of a bulk stream, delivered in [`crate::Incoming::Stream`].
///
/// Read with [`tokio::io::AsyncReadExt`] until end of stream; a sender that gave up, or a
/// lost connection, surfaces as an error, never as a short clean read. Dropping it stops
/// the stream.
pub struct StreamReader {
    peer: PeerId,
    channel: Channel,
    recv: RecvStream,
}

impl StreamReader {
    pub(crate) fn new(peer: PeerId, channel: Channel, recv: RecvStream) -> StreamReader {
        StreamReader {
            peer,
            channel,
            recv,
        }
    }

    /// The sending peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The channel named in the stream header.
    pub fn channel(&self) -> Channel {
        self.channel
    }
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("peer", &self.peer)
            .field("channel", &self.channel)
            .finish()
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        AsyncRead::poll_read(Pin::new(&mut self.recv), cx, buf)
    }
}
