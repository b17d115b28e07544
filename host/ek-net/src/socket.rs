//! The UDP socket under the endpoint, with a switch that silences it.
//!
//! Silencing drops every datagram in both directions, so a test can make a node vanish
//! the way a `kill -9` or a pulled cable does: no CONNECTION_CLOSE ever leaves.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

pub(crate) struct SilenceableSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    silenced: AtomicBool,
}

impl SilenceableSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>) -> SilenceableSocket {
        SilenceableSocket {
            inner,
            silenced: AtomicBool::new(false),
        }
    }

    /// From now on, send nothing and discard everything received.
    #[cfg(test)]
    pub(crate) fn silence(&self) {
        self.silenced.store(true, Ordering::SeqCst);
    }

    fn is_silenced(&self) -> bool {
        self.silenced.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for SilenceableSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SilenceableSocket")
            .field("inner", &self.inner)
            .field("silenced", &self.is_silenced())
            .finish()
    }
}

impl AsyncUdpSocket for SilenceableSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        if self.is_silenced() {
            return Ok(());
        }
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let received = ready!(self.inner.poll_recv(cx, bufs, meta));
            // Discarding keeps polling until the inner socket registers the waker.
            if received.is_err() || !self.is_silenced() {
                return Poll::Ready(received);
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
