//! One task per client connection: it recognises four-letter words, splits the byte stream
//! into frames, decodes them, and hands them to the core; it writes what the core sends
//! back. A bad frame closes this connection only.

use crate::client::{ConnId, Outbound};
use crate::core::CoreMsg;
use bytes::BytesMut;
use ek_jute::FrameDecoder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a dropped connection may still take to write what was queued for it.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long a connection may take to send its first four bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct ConnParams {
    pub(crate) max_frame_bytes: u32,
    pub(crate) metrics: Arc<ek_admin::Metrics>,
    /// True while the node's pipeline is full: read no more requests.
    pub(crate) throttle: watch::Receiver<bool>,
}

/// Serves one client connection until either side closes it.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    core: mpsc::UnboundedSender<CoreMsg>,
    params: ConnParams,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    // A four-letter word is the first four bytes of a connection, with no frame.
    let first = tokio::time::timeout(FIRST_BYTES_TIMEOUT, async {
        while buf.len() < 4 {
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        true
    })
    .await;
    if first != Ok(true) {
        return;
    }
    if let Some(word) = ek_jute::four_letter_word(&buf[..4]) {
        let (reply, text) = oneshot::channel();
        if core.send(CoreMsg::FourLetter { word, reply }).is_ok() {
            if let Ok(text) = text.await {
                let _ = writer.write_all(text.as_bytes()).await;
            }
        }
        let _ = writer.shutdown().await;
        return;
    }
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let (closer, mut closed) = watch::channel(false);
    if core
        .send(CoreMsg::Open {
            conn,
            peer,
            out: out_tx,
            queued: queued.clone(),
            closer,
        })
        .is_err()
    {
        return;
    }
    let mut decoder = FrameDecoder::new(params.max_frame_bytes as usize);
    let mut connected = false;
    let mut throttle = params.throttle.clone();
    let reason = loop {
        match drain_frames(&mut decoder, &mut buf, &mut connected, conn, &core) {
            Ok(()) => {}
            Err(reason) => {
                params.metrics.inc_bad_frames();
                break reason;
            }
        }
        let paused = *throttle.borrow_and_update();
        tokio::select! {
            _ = throttle.changed(), if paused => {}
            read = reader.read_buf(&mut buf), if !paused => match read {
                Ok(0) => break "client closed the connection".to_owned(),
                Ok(_) => {}
                Err(err) => break format!("read failed: {err}"),
            },
            out = out_rx.recv() => match out {
                Some(Outbound::Frames(frames)) => {
                    tokio::select! {
                        written = writer.write_all(&frames) => if let Err(err) = written {
                            break format!("write failed: {err}");
                        },
                        // Once the core has dropped this connection, a client that does
                        // not read gets a short grace for its last replies, then is cut off.
                        _ = closing(&mut closed) => break "client stopped reading".to_owned(),
                    }
                    queued.fetch_sub(frames.len(), Ordering::Relaxed);
                }
                Some(Outbound::Close) | None => {
                    let _ = writer.shutdown().await;
                    break "closed by the server".to_owned();
                }
            },
        }
    };
    tracing::debug!(%peer, reason, "connection closed");
    let _ = core.send(CoreMsg::Closed { conn });
}

/// Completes a grace period after the core has dropped the connection.
async fn closing(closed: &mut watch::Receiver<bool>) {
    if closed.wait_for(|closed| *closed).await.is_err() {
        // The core is gone: the node is shutting down.
    }
    tokio::time::sleep(CLOSE_GRACE).await;
}

/// Decodes every complete frame in `buf` and sends it to the core.
fn drain_frames(
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    connected: &mut bool,
    conn: ConnId,
    core: &mpsc::UnboundedSender<CoreMsg>,
) -> Result<(), String> {
    loop {
        let frame = match decoder.decode(buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(err) => {
                tracing::warn!(?conn, %err, "bad frame; closing the connection");
                return Err(format!("bad frame: {err}"));
            }
        };
        let msg = if *connected {
            match ek_jute::decode_request(&frame) {
                Ok(request) => CoreMsg::Request {
                    conn,
                    request,
                    received: Instant::now(),
                },
                Err(err) => {
                    tracing::warn!(?conn, %err, "undecodable request header; closing");
                    return Err(format!("bad request: {err}"));
                }
            }
        } else {
            match ek_jute::decode_connect_request(&frame) {
                Ok(request) => {
                    *connected = true;
                    CoreMsg::Connect { conn, request }
                }
                Err(err) => {
                    tracing::warn!(?conn, %err, "undecodable ConnectRequest; closing");
                    return Err(format!("bad ConnectRequest: {err}"));
                }
            }
        };
        if core.send(msg).is_err() {
            return Err("the node is shutting down".to_owned());
        }
    }
}
