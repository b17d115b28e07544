//! One ZooKeeper client connection over tokio TCP, speaking the wire protocol through
//! `ek-jute`: the connect handshake, then pipelined requests.
//!
//! A reader task owns the read half: it splits frames, stamps each with the time its bytes
//! arrived, and hands them over a channel, so latency does not include the time the
//! session loop takes to notice a reply, and a writer blocked on a full socket can never
//! stop replies from being read.

use std::time::Duration;

use bytes::BytesMut;
use ek_jute::{
    decode_connect_response, decode_reply, decode_reply_header, encode_connect_request,
    encode_request, ConnectRequest, FrameDecoder, OwnedResponse, ReplyHeader, Request,
};
use ek_types::{OpCode, SessionId, Zxid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use crate::BenchError;

/// The largest reply accepted. Larger than ZooKeeper's default `jute.maxbuffer` so a big
/// getChildren during cleanup is read rather than refused.
const MAX_REPLY_BYTES: usize = 64 << 20;
/// The xid ZooKeeper uses for pings and their replies.
const PING_XID: i32 = -2;
/// The xid of watch notifications.
const NOTIFICATION_XID: i32 = -1;
/// A new session's password: 16 zero bytes.
const NEW_SESSION_PASSWD: [u8; 16] = [0; 16];

/// A session as the server granted it; enough to reattach it on another server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    /// The session id.
    pub(crate) id: SessionId,
    /// The session password.
    pub(crate) passwd: Vec<u8>,
    /// The negotiated timeout, ms.
    pub(crate) timeout_ms: i32,
}

/// One reply frame, its header decoded.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The reply header (xid, zxid, error code).
    pub(crate) header: ReplyHeader,
    /// The whole payload, header included, for [`decode_reply`].
    pub(crate) payload: BytesMut,
    /// When the bytes that completed this frame were read.
    pub(crate) received_at: Instant,
}

/// An open connection with an established session.
#[derive(Debug)]
pub(crate) struct Conn {
    addr: String,
    writer: OwnedWriteHalf,
    replies: mpsc::UnboundedReceiver<Result<Reply, BenchError>>,
    reader: JoinHandle<()>,
    /// Frames queued by [`Conn::queue`] and not yet written.
    out: BytesMut,
    next_xid: i32,
    session: Session,
    /// The highest zxid seen in a reply, sent when reattaching the session elsewhere.
    last_zxid: Zxid,
    /// When the last frame was written, for pings.
    last_send: Instant,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Connects to `addr` and opens a new session (`resume` = `None`) or reattaches one.
    /// `last_zxid` is the highest zxid the client has seen; a server behind it refuses.
    pub(crate) async fn connect(
        addr: &str,
        resume: Option<&Session>,
        last_zxid: Zxid,
        session_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Conn, BenchError> {
        let stream = match timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(BenchError::Connect {
                    addr: addr.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(BenchError::Timeout {
                    addr: addr.to_owned(),
                    what: "TCP connect".to_owned(),
                    timeout: connect_timeout,
                })
            }
        };
        // Requests are small and latency is what is measured: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let handshake = handshake(addr, stream, resume, last_zxid, session_timeout);
        let (stream, session, leftover) = match timeout(connect_timeout, handshake).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(BenchError::Timeout {
                    addr: addr.to_owned(),
                    what: "ConnectRequest".to_owned(),
                    timeout: connect_timeout,
                })
            }
        };
        let (read, writer) = stream.into_split();
        let (sender, replies) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(addr.to_owned(), read, leftover, sender));
        Ok(Conn {
            addr: addr.to_owned(),
            writer,
            replies,
            reader,
            out: BytesMut::with_capacity(4096),
            next_xid: 1,
            session,
            last_zxid,
            last_send: Instant::now(),
        })
    }

    /// The server address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The session.
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// The highest zxid seen in a reply so far.
    pub(crate) fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// When a frame was last written.
    pub(crate) fn last_send(&self) -> Instant {
        self.last_send
    }

    /// Queues `request` with a fresh xid and returns the xid; [`Conn::flush`] sends it.
    pub(crate) fn queue(&mut self, request: &Request) -> i32 {
        let xid = self.next_xid;
        // Positive xids only: the negative ones are reserved (ping, auth, notifications).
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        encode_request(&mut self.out, xid, request);
        xid
    }

    /// Queues a ping (xid -2); its reply is dropped by [`Conn::next_reply`].
    pub(crate) fn queue_ping(&mut self) {
        encode_request(&mut self.out, PING_XID, &Request::Ping);
    }

    /// Writes every queued frame.
    pub(crate) async fn flush(&mut self) -> Result<(), BenchError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.writer.write_all(&self.out).await;
        self.out.clear();
        self.last_send = Instant::now();
        result.map_err(|error| BenchError::ConnectionLost {
            addr: self.addr.clone(),
            reason: error.to_string(),
        })
    }

    /// The next reply to a request of ours; ping replies and notifications are skipped.
    /// Fails when the connection is lost or a frame is bad.
    pub(crate) async fn next_reply(&mut self) -> Result<Reply, BenchError> {
        loop {
            let reply = match self.replies.recv().await {
                Some(reply) => reply?,
                None => {
                    return Err(BenchError::ConnectionLost {
                        addr: self.addr.clone(),
                        reason: "reader stopped".to_owned(),
                    })
                }
            };
            if reply.header.xid == PING_XID || reply.header.xid == NOTIFICATION_XID {
                continue;
            }
            if reply.header.zxid > self.last_zxid {
                self.last_zxid = reply.header.zxid;
            }
            return Ok(reply);
        }
    }

    /// Sends `request` alone and waits up to `wait` for its reply; other replies that
    /// arrive first are dropped. Returns the header and, when it is 0, the decoded body.
    pub(crate) async fn call(
        &mut self,
        request: &Request,
        wait: Duration,
    ) -> Result<(ReplyHeader, Option<OwnedResponse>), BenchError> {
        let xid = self.queue(request);
        self.flush().await?;
        let reply = timeout(wait, async {
            loop {
                let reply = self.next_reply().await?;
                if reply.header.xid == xid {
                    return Ok::<Reply, BenchError>(reply);
                }
            }
        })
        .await
        .map_err(|_| BenchError::Timeout {
            addr: self.addr.clone(),
            what: format!("{:?}", request.opcode()),
            timeout: wait,
        })??;
        self.decode(&reply, request.opcode())
    }

    /// Decodes a reply's body as the answer to `opcode`.
    pub(crate) fn decode(
        &self,
        reply: &Reply,
        opcode: OpCode,
    ) -> Result<(ReplyHeader, Option<OwnedResponse>), BenchError> {
        decode_reply(&reply.payload, opcode).map_err(|source| BenchError::Decode {
            addr: self.addr.clone(),
            source,
        })
    }

    /// Closes the session (closeSession, waiting briefly for the answer), so the server
    /// frees it now rather than after the session timeout. Errors are ignored.
    pub(crate) async fn close(mut self, wait: Duration) {
        let _ = self.call(&Request::CloseSession, wait).await;
    }
}

/// Sends the ConnectRequest and reads the ConnectResponse. Returns the stream, the session
/// and any bytes read past the response.
async fn handshake(
    addr: &str,
    mut stream: TcpStream,
    resume: Option<&Session>,
    last_zxid: Zxid,
    session_timeout: Duration,
) -> Result<(TcpStream, Session, BytesMut), BenchError> {
    let lost = |reason: String| BenchError::Handshake {
        addr: addr.to_owned(),
        reason,
    };
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: last_zxid,
        timeout_ms: i32::try_from(session_timeout.as_millis()).unwrap_or(i32::MAX),
        session_id: resume.map_or(SessionId(0), |session| session.id),
        passwd: resume.map_or(NEW_SESSION_PASSWD.to_vec(), |session| {
            session.passwd.clone()
        }),
        read_only: Some(false),
    };
    let mut out = BytesMut::new();
    encode_connect_request(&mut out, &request);
    stream
        .write_all(&out)
        .await
        .map_err(|error| lost(error.to_string()))?;
    let mut buf = BytesMut::with_capacity(4096);
    let mut decoder = FrameDecoder::new(MAX_REPLY_BYTES);
    let payload = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(payload)) => break payload,
            Ok(None) => {}
            Err(error) => return Err(lost(error.to_string())),
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Err(lost("connection closed (server not serving?)".to_owned())),
            Ok(_) => {}
            Err(error) => return Err(lost(error.to_string())),
        }
    };
    let response = decode_connect_response(&payload).map_err(|source| BenchError::Decode {
        addr: addr.to_owned(),
        source,
    })?;
    if response.timeout_ms <= 0 {
        return Err(BenchError::SessionExpired {
            addr: addr.to_owned(),
        });
    }
    let session = Session {
        id: response.session_id,
        passwd: response.passwd,
        timeout_ms: response.timeout_ms,
    };
    Ok((stream, session, buf))
}

/// The reader task: frames off the socket, each sent with its arrival time, until the
/// connection ends (reported as one error) or the [`Conn`] is dropped.
async fn read_frames(
    addr: String,
    mut read: OwnedReadHalf,
    mut buf: BytesMut,
    sender: mpsc::UnboundedSender<Result<Reply, BenchError>>,
) {
    let mut decoder = FrameDecoder::new(MAX_REPLY_BYTES);
    let mut received_at = Instant::now();
    loop {
        loop {
            let payload = match decoder.decode(&mut buf) {
                Ok(Some(payload)) => payload,
                Ok(None) => break,
                Err(source) => {
                    let _ = sender.send(Err(BenchError::Frame { addr, source }));
                    return;
                }
            };
            let reply = match decode_reply_header(&payload) {
                Ok(header) => Ok(Reply {
                    header,
                    payload,
                    received_at,
                }),
                Err(source) => Err(BenchError::Decode {
                    addr: addr.clone(),
                    source,
                }),
            };
            let failed = reply.is_err();
            if sender.send(reply).is_err() || failed {
                return;
            }
        }
        let reason = match read.read_buf(&mut buf).await {
            Ok(0) => "closed by the server".to_owned(),
            Ok(_) => {
                received_at = Instant::now();
                continue;
            }
            Err(error) => error.to_string(),
        };
        let _ = sender.send(Err(BenchError::ConnectionLost { addr, reason }));
        return;
    }
}

/// Sends a four-letter word (e.g. `srvr`) to `addr` and returns the whole answer.
pub(crate) async fn four_letter_word(
    addr: &str,
    word: &str,
    wait: Duration,
) -> Result<String, BenchError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|source| BenchError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let lost = |error: std::io::Error| BenchError::ConnectionLost {
            addr: addr.to_owned(),
            reason: error.to_string(),
        };
        stream.write_all(word.as_bytes()).await.map_err(lost)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(lost)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    timeout(wait, exchange)
        .await
        .map_err(|_| BenchError::Timeout {
            addr: addr.to_owned(),
            what: word.to_owned(),
            timeout: wait,
        })?
}

/// The value of the `Mode:` line of a `srvr` answer (`leader`, `follower`, `standalone`,
/// `observer`), if there is one.
pub(crate) fn srvr_mode(answer: &str) -> Option<&str> {
    srvr_field(answer, "Mode:")
}

/// The value of the first line of `answer` starting with `key`, trimmed.
pub(crate) fn srvr_field<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .map(str::trim)
}
