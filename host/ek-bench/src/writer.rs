//! A failover writer: one session issuing setData at a fixed rate, reattaching its session
//! on the next server whenever the connection fails, and noting when each write succeeded.

use std::time::Duration;

use ek_jute::Request;
use ek_types::{ErrorCode, WriteOp, Zxid};
use hdrhistogram::Histogram;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::conn::{Conn, Session};
use crate::stats::{new_histogram, record};
use crate::BenchError;

/// Pause after a failed connect before trying the next server.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// What all writers share.
#[derive(Debug)]
pub(crate) struct WriterPlan {
    /// The servers, tried in turn from the writer's own.
    pub(crate) servers: Vec<String>,
    /// The path each writer writes: `{key_prefix}{index}`.
    pub(crate) key_prefix: String,
    /// The value written.
    pub(crate) value: Vec<u8>,
    /// Time between two writes of one writer.
    pub(crate) interval: Duration,
    /// Writers in all (to stagger their first writes).
    pub(crate) writers: usize,
    /// When writing starts.
    pub(crate) start: Instant,
    /// When writing stops.
    pub(crate) end: Instant,
    /// Session timeout asked for.
    pub(crate) session_timeout: Duration,
    /// How long a write may wait for its reply before the connection counts as lost.
    pub(crate) request_timeout: Duration,
    /// How long a TCP connect plus handshake may take.
    pub(crate) connect_timeout: Duration,
}

/// What one writer saw.
#[derive(Debug)]
pub(crate) struct WriterResult {
    /// When each successful write was sent and when its reply arrived, in order.
    pub(crate) successes: Vec<(Instant, Instant)>,
    /// Latency of the successful writes, µs.
    pub(crate) latency_us: Histogram<u64>,
    /// Writes that failed: an error code, a lost connection or no reply in time.
    pub(crate) errors: u64,
    /// Connections opened after the first one.
    pub(crate) reconnects: u64,
    /// Times the session had expired and a new one was opened.
    pub(crate) expired_sessions: u64,
}

/// The writer's connection state across reconnects.
struct Link {
    conn: Option<Conn>,
    server: usize,
    session: Option<Session>,
    last_zxid: Zxid,
    connects: u64,
}

/// Runs writer `index` from `plan.start` to `plan.end`.
pub(crate) async fn run_writer(plan: std::sync::Arc<WriterPlan>, index: usize) -> WriterResult {
    let path = format!("{}{index}", plan.key_prefix);
    let mut result = WriterResult {
        successes: Vec::new(),
        latency_us: new_histogram(),
        errors: 0,
        reconnects: 0,
        expired_sessions: 0,
    };
    let mut link = Link {
        conn: None,
        server: index % plan.servers.len(),
        session: None,
        last_zxid: Zxid::ZERO,
        connects: 0,
    };
    let stagger = plan
        .interval
        .mul_f64(index as f64 / plan.writers.max(1) as f64);
    let mut next_write = plan.start + stagger;
    while Instant::now() < plan.end {
        let Some(conn) = link.conn.as_mut() else {
            connect(&plan, &mut link, &mut result).await;
            continue;
        };
        let idle = idle_until(conn, next_write.min(plan.end)).await;
        if Instant::now() >= plan.end {
            break;
        }
        next_write = (next_write + plan.interval).max(Instant::now());
        let outcome = match idle {
            Ok(()) => write_once(conn, &path, &plan.value, plan.request_timeout).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok((0, sent_at, received_at)) => {
                record(&mut result.latency_us, received_at - sent_at);
                result.successes.push((sent_at, received_at));
            }
            Ok((code, _, _)) => {
                result.errors += 1;
                if is_session_level(code) {
                    link.drop_conn(plan.servers.len());
                }
            }
            Err(_) => {
                result.errors += 1;
                link.drop_conn(plan.servers.len());
            }
        }
    }
    if let Some(conn) = link.conn.take() {
        conn.close(Duration::from_millis(500)).await;
    }
    result.reconnects = link.connects.saturating_sub(1);
    result
}

impl Link {
    /// Forgets the connection (keeping the session to reattach) and moves to the next
    /// server.
    fn drop_conn(&mut self, servers: usize) {
        if let Some(conn) = self.conn.take() {
            self.last_zxid = self.last_zxid.max(conn.last_zxid());
            self.session = Some(conn.session().clone());
        }
        self.server = (self.server + 1) % servers;
    }
}

/// One attempt to connect to the current server: reattaches the session, or opens a new
/// one when it expired. On failure moves to the next server after a short pause.
async fn connect(plan: &WriterPlan, link: &mut Link, result: &mut WriterResult) {
    let addr = &plan.servers[link.server];
    let attempt = Conn::connect(
        addr,
        link.session.as_ref(),
        link.last_zxid,
        plan.session_timeout,
        plan.connect_timeout,
    )
    .await;
    match attempt {
        Ok(conn) => {
            link.session = Some(conn.session().clone());
            link.conn = Some(conn);
            link.connects += 1;
        }
        Err(BenchError::SessionExpired { .. }) => {
            result.expired_sessions += 1;
            link.session = None;
        }
        Err(_) => {
            link.server = (link.server + 1) % plan.servers.len();
            sleep(RECONNECT_BACKOFF).await;
        }
    }
}

/// Error codes after which the session must move: the server lost its quorum or the
/// session is gone.
fn is_session_level(code: i32) -> bool {
    matches!(
        ErrorCode::from_code(code),
        Some(
            ErrorCode::ConnectionLoss
                | ErrorCode::SessionExpired
                | ErrorCode::SessionMoved
                | ErrorCode::NotReadOnly
                | ErrorCode::UnknownSession
        )
    )
}

/// Waits until `when`, pinging whenever a third of the session timeout passes without a
/// frame sent, so that slow writers keep their session.
async fn idle_until(conn: &mut Conn, when: Instant) -> Result<(), BenchError> {
    let timeout_ms = u64::try_from(conn.session().timeout_ms.max(3)).unwrap_or(3);
    let ping_every = Duration::from_millis(timeout_ms / 3);
    loop {
        let now = Instant::now();
        if now >= when {
            return Ok(());
        }
        let ping_at = conn.last_send() + ping_every;
        if ping_at <= now {
            conn.queue_ping();
            conn.flush().await?;
            continue;
        }
        sleep_until(when.min(ping_at)).await;
    }
}

/// One setData; returns its error code, when it was sent and when the reply arrived.
async fn write_once(
    conn: &mut Conn,
    path: &str,
    value: &[u8],
    wait: Duration,
) -> Result<(i32, Instant, Instant), BenchError> {
    let request = Request::Write(WriteOp::SetData {
        path: path.to_owned(),
        data: Some(value.to_vec()),
        version: -1,
    });
    let sent_at = Instant::now();
    let xid = conn.queue(&request);
    conn.flush().await?;
    let reply = timeout(wait, async {
        loop {
            let reply = conn.next_reply().await?;
            if reply.header.xid == xid {
                return Ok::<_, BenchError>(reply);
            }
        }
    })
    .await
    .map_err(|_| BenchError::Timeout {
        addr: conn.addr().to_owned(),
        what: "setData".to_owned(),
        timeout: wait,
    })??;
    Ok((reply.header.err, sent_at, reply.received_at))
}
