//! One established connection to a peer: its send queues, writer and reader tasks, and
//! the `PeerUp`/`PeerDown` bracket around them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use quinn::{Connection, RecvStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::metrics::add;
use crate::stream::StreamReader;
use crate::transport::{Incoming, PeerSlot, Shared};
use crate::wire::{
    close, frame_prefix, read_control, read_frame, write_control, FrameError, StreamHeader,
    StreamKind, CLOSE_FRAME_TOO_LARGE, CLOSE_PROTOCOL, CLOSE_REPLACED,
};
use crate::{Channel, PeerId};

/// Most messages written in one batch.
const WRITE_BATCH_MAX: usize = 64;

/// A live connection as [`crate::Transport::send`] sees it.
pub(crate) struct Link {
    pub(crate) generation: u64,
    pub(crate) conn: Connection,
    /// One queue per channel, indexed by [`Channel::index`].
    pub(crate) queues: [mpsc::Sender<Bytes>; 3],
}

/// Runs an established, verified connection until it ends: replaces any older link of
/// the peer, reports `PeerUp`, pumps the streams, and reports `PeerDown` once every
/// message of this connection has been reported.
pub(crate) async fn run_link(shared: Arc<Shared>, slot: Arc<PeerSlot>, conn: Connection) {
    let peer = slot.id;
    if let Some(old) = lock(&slot).take() {
        close(&old.conn, CLOSE_REPLACED, "replaced by a newer connection");
    }
    let session = slot.session.clone().lock_owned().await;
    let generation = slot.next_generation.fetch_add(1, Ordering::Relaxed);
    let mut tasks = JoinSet::new();
    let queues = Channel::ALL.map(|channel| {
        let (queue, queued) = mpsc::channel(shared.config.send_queue_len);
        tasks.spawn(write_messages(
            shared.clone(),
            conn.clone(),
            channel,
            queued,
        ));
        queue
    });
    {
        let mut current = lock(&slot);
        if let Some(old) = current.take() {
            // A link installed while we waited for the session is older than this one.
            close(&old.conn, CLOSE_REPLACED, "replaced by a newer connection");
        }
        *current = Some(Arc::new(Link {
            generation,
            conn: conn.clone(),
            queues,
        }));
    }
    if slot.links_established.fetch_add(1, Ordering::Relaxed) > 0 {
        add(&shared.metrics.reconnects, 1);
    }
    add(&shared.metrics.peer_ups, 1);
    info!(%peer, remote = %conn.remote_address(), "peer up");
    shared.emit(Incoming::PeerUp(peer)).await;

    let reason = loop {
        match conn.accept_uni().await {
            Ok(recv) => {
                tasks.spawn(read_stream(shared.clone(), peer, conn.clone(), recv));
            }
            Err(err) => break err,
        }
    };
    {
        let mut current = lock(&slot);
        if current
            .as_ref()
            .is_some_and(|link| link.generation == generation)
        {
            *current = None;
        }
    }
    while tasks.join_next().await.is_some() {}
    add(&shared.metrics.peer_downs, 1);
    info!(%peer, "peer down: {reason}");
    shared.emit(Incoming::PeerDown(peer)).await;
    drop(session);
}

fn lock(slot: &PeerSlot) -> std::sync::MutexGuard<'_, Option<Arc<Link>>> {
    slot.link
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

/// Drains one channel's queue into its stream, in batches; counts what it could not send.
async fn write_messages(
    shared: Arc<Shared>,
    conn: Connection,
    channel: Channel,
    mut queued: mpsc::Receiver<Bytes>,
) {
    let metrics = &shared.metrics;
    let opened = async {
        let mut send = conn.open_uni().await?;
        write_control(
            &mut send,
            &StreamHeader {
                channel,
                kind: StreamKind::Messages,
            },
        )
        .await?;
        Ok::<_, FrameError>(send)
    };
    let mut send = match opened.await {
        Ok(send) => Some(send),
        Err(err) => {
            debug!(?channel, "cannot open message stream: {err}");
            None
        }
    };
    let mut chunks: Vec<Bytes> = Vec::with_capacity(2 * WRITE_BATCH_MAX);
    while let Some(stream) = send.as_mut() {
        let first = tokio::select! {
            message = queued.recv() => message,
            _ = conn.closed() => None,
        };
        let Some(first) = first else { break };
        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut message = Some(first);
        while let Some(payload) = message.take() {
            count += 1;
            bytes += payload.len() as u64;
            chunks.push(frame_prefix(payload.len()));
            chunks.push(payload);
            if chunks.len() < 2 * WRITE_BATCH_MAX {
                message = queued.try_recv().ok();
            }
        }
        match stream.write_all_chunks(&mut chunks).await {
            Ok(()) => {
                add(&metrics.messages_sent, count);
                add(&metrics.bytes_sent, bytes);
            }
            Err(err) => {
                debug!(?channel, "message stream failed: {err}");
                add(&metrics.messages_dropped, count);
                send = None;
            }
        }
        chunks.clear();
    }
    queued.close();
    let mut lost = 0;
    while queued.try_recv().is_ok() {
        lost += 1;
    }
    add(&metrics.messages_dropped, lost);
}

/// Reads one stream opened by the peer: a message stream until it ends, or hands a bulk
/// stream to the application.
async fn read_stream(shared: Arc<Shared>, peer: PeerId, conn: Connection, mut recv: RecvStream) {
    let header: StreamHeader = match read_control(&mut recv).await {
        Ok(header) => header,
        Err(FrameError::Read(err)) => {
            debug!(%peer, "stream lost before its header: {err}");
            return;
        }
        Err(err) => {
            warn!(%peer, "bad stream header: {err}; closing the connection");
            close(&conn, CLOSE_PROTOCOL, "bad stream header");
            return;
        }
    };
    let channel = header.channel;
    if header.kind == StreamKind::Bulk {
        add(&shared.metrics.streams_received, 1);
        let reader = StreamReader::new(peer, channel, recv);
        shared
            .emit(Incoming::Stream {
                from: peer,
                channel,
                reader,
            })
            .await;
        return;
    }
    let metrics = &shared.metrics;
    loop {
        match read_frame(&mut recv, shared.config.max_frame_len).await {
            Ok(Some(payload)) => {
                add(&metrics.messages_received, 1);
                add(&metrics.bytes_received, payload.len() as u64);
                let message = Incoming::Message {
                    from: peer,
                    channel,
                    payload,
                };
                if !shared.emit(message).await {
                    return;
                }
            }
            Ok(None) => return,
            Err(FrameError::TooLarge { len, max }) => {
                add(&metrics.oversize_frames, 1);
                warn!(%peer, ?channel, len, max, "oversize frame; closing the connection");
                let reason = format!("frame of {len} bytes exceeds the limit of {max} bytes");
                close(&conn, CLOSE_FRAME_TOO_LARGE, &reason);
                return;
            }
            Err(err) => {
                debug!(%peer, ?channel, "message stream ended: {err}");
                return;
            }
        }
    }
}
