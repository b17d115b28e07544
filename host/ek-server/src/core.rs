//! The node's core: one task that owns the data tree, prep, the watch registry, the session
//! tracker and the proposal pipeline. Connection tasks decode frames and feed it messages;
//! it answers by appending encoded frames to each connection's output buffer, which it
//! flushes once per batch of messages (so replies to pipelined requests share a syscall).
//!
//! The write path is the one ZAB will replicate: prep → propose (assign zxid, append to the
//! log) → durable (the log's fsync; with a quorum of one that is the commit) → apply →
//! watch events → replies.

use crate::client::{Client, ConnId, Outbound, Phase};
use crate::pipeline::{Origin, Pipeline};
use crate::session::{SessionIds, SessionTracker};
use crate::storage::SnapshotJob;
use crate::Config;
use ek_admin::Metrics;
use ek_jute::{ConnectRequest, DecodedRequest, FourLetterWord};
use ek_log::LogWriter;
use ek_tree::{DataTree, Prep};
use ek_types::{SessionId, Zxid};
use ek_watch::{WatchRegistry, WatcherId};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// Most bytes of replies and events a connection may have waiting for its socket.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Proposals in flight at which connections stop reading requests (ZooKeeper's
/// `globalOutstandingLimit`); reading resumes at half.
const MAX_OUTSTANDING_PROPOSALS: usize = 1000;

/// Bytes of proposals in flight at which connections stop reading requests.
const MAX_OUTSTANDING_BYTES: usize = 32 << 20;

/// What the core is fed.
pub(crate) enum CoreMsg {
    /// A connection finished its four-letter-word check and wants to speak the protocol.
    Open {
        conn: ConnId,
        peer: SocketAddr,
        out: mpsc::UnboundedSender<Outbound>,
        /// Bytes handed to the connection task and not yet written to the socket.
        queued: Arc<AtomicUsize>,
        /// Set when the core drops the connection, to end a write the client never reads.
        closer: watch::Sender<bool>,
    },
    /// The connection's first frame.
    Connect {
        conn: ConnId,
        request: ConnectRequest,
    },
    /// Any later frame.
    Request {
        conn: ConnId,
        request: DecodedRequest,
        received: Instant,
    },
    /// The connection is gone (EOF, error or a bad frame).
    Closed { conn: ConnId },
    /// A four-letter word; the text goes back on the channel.
    FourLetter {
        word: FourLetterWord,
        reply: oneshot::Sender<String>,
    },
    /// The log made everything up to this zxid durable.
    Durable(Zxid),
    /// Every durable report the log sent before a truncation has been received.
    LogFence,
    /// An event of the peer transport.
    Net(ek_net::Incoming),
    /// A snapshot streamed by a leader is staged on disk.
    SnapshotStaged {
        from: u64,
        zxid: Zxid,
        path: std::path::PathBuf,
    },
    /// The log failed: stop acknowledging writes.
    LogFailed(String),
    /// A snapshot finished (or failed).
    SnapshotDone(Result<SnapshotJob, String>),
    /// An in-process client's read, subscription or identity.
    Local(crate::local::LocalMsg),
}

pub(crate) struct Core {
    pub(crate) config: Config,
    pub(crate) tree: DataTree,
    pub(crate) prep: Prep,
    pub(crate) watches: WatchRegistry,
    pub(crate) tracker: SessionTracker,
    pub(crate) session_ids: SessionIds,
    /// ZAB and the peer transport.
    pub(crate) repl: crate::replication::Replication,
    /// Learner: connections whose createSession was forwarded, by session.
    pub(crate) pending_handshakes: HashMap<SessionId, ConnId>,
    /// Learner: sessions active since the last report to the leader.
    pub(crate) touched: HashSet<SessionId>,
    /// Learner: forwarded requests whose txn has not been applied yet, by session and xid.
    pub(crate) forwarded: HashSet<(SessionId, i32)>,
    pub(crate) conns: HashMap<ConnId, Client>,
    pub(crate) session_conn: HashMap<SessionId, ConnId>,
    pub(crate) pipeline: Pipeline,
    pub(crate) log: LogWriter,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) admin: Arc<ek_admin::AdminState>,
    pub(crate) dirty: Vec<ConnId>,
    /// Connections with held replies, pumped after each commit.
    pub(crate) held: HashSet<ConnId>,
    pub(crate) started: Instant,
    pub(crate) snapshots: crate::storage::Snapshots,
    pub(crate) core_tx: mpsc::UnboundedSender<CoreMsg>,
    /// True while connections must not read more requests (the pipeline is full).
    pub(crate) throttle: watch::Sender<bool>,
    /// In-process subscribers to committed changes.
    pub(crate) subscribers: Vec<crate::local::Subscriber>,
}

/// Wall-clock time in ms since the Unix epoch, as the leader stamps into txns.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: Config,
        tree: DataTree,
        log: LogWriter,
        snapshots: crate::storage::Snapshots,
        repl: crate::replication::Replication,
        metrics: Arc<Metrics>,
        admin: Arc<ek_admin::AdminState>,
        core_tx: mpsc::UnboundedSender<CoreMsg>,
        throttle: watch::Sender<bool>,
        started: Instant,
    ) -> Core {
        let now = Instant::now();
        let mut tracker = SessionTracker::new(Duration::from_millis(u64::from(config.tick_ms)));
        // Sessions survive a restart; each gets a full timeout to come back, as a new
        // ZooKeeper leader grants.
        for (session, timeout_ms) in tree.sessions() {
            tracker.track(session, timeout_ms, now);
        }
        let first = tree.last_zxid();
        Core {
            session_ids: SessionIds::new(config.node_id, now_ms()),
            repl,
            pending_handshakes: HashMap::new(),
            touched: HashSet::new(),
            forwarded: HashSet::new(),
            prep: Prep::new(),
            watches: WatchRegistry::new(),
            tracker,
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            pipeline: Pipeline::new(first),
            log,
            metrics,
            admin,
            dirty: Vec::new(),
            held: HashSet::new(),
            started,
            snapshots,
            core_tx,
            throttle,
            subscribers: Vec::new(),
            tree,
            config,
        }
    }

    /// Runs until the channel closes or `shutdown` fires.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<CoreMsg>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let tick = Duration::from_millis(u64::from(self.config.tick_ms.max(2) / 2));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reap_every = Duration::from_millis(u64::from(self.config.reaper_interval_ms.max(1)));
        let mut reaper = tokio::time::interval(reap_every);
        reaper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.drive();
        loop {
            let zab_deadline = self
                .repl
                .deadline()
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                // ZAB's timers first, so a flood of client messages never delays a ping or
                // the detection of a dead peer; then messages (a tick must not expire a
                // session whose ping is queued).
                biased;
                _ = tokio::time::sleep_until(zab_deadline) => self.zab_timeout(),
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.handle(msg);
                    // Drain what else is queued so one flush (and one log batch) covers it.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(msg) => self.handle(msg),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => self.on_tick(Instant::now()),
                _ = reaper.tick() => self.reap(),
                _ = &mut shutdown => break,
            }
            self.drive();
            self.flush();
            self.update_throttle();
            self.publish_gauges();
        }
        for client in self.conns.values() {
            let _ = client.out.send(Outbound::Close);
        }
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Open {
                conn,
                peer,
                out,
                queued,
                closer,
            } => self.open(conn, peer, out, queued, closer),
            CoreMsg::Connect { conn, request } => self.connect(conn, request),
            CoreMsg::Request {
                conn,
                request,
                received,
            } => self.request(conn, request, received),
            CoreMsg::Closed { conn } => self.drop_conn(conn),
            CoreMsg::FourLetter { word, reply } => {
                let text = crate::fourlw::render(self, word);
                let _ = reply.send(text);
            }
            CoreMsg::Durable(zxid) => self.on_durable(zxid),
            CoreMsg::LogFence => self.on_log_fence(),
            CoreMsg::Net(event) => self.on_net(event),
            CoreMsg::SnapshotStaged { from, zxid, path } => self.snapshot_staged(from, zxid, path),
            CoreMsg::LogFailed(reason) => self.log_failed(&reason),
            CoreMsg::SnapshotDone(result) => self.snapshot_done(result),
            CoreMsg::Local(msg) => self.handle_local(msg),
        }
    }

    fn open(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        out: mpsc::UnboundedSender<Outbound>,
        queued: Arc<AtomicUsize>,
        closer: watch::Sender<bool>,
    ) {
        if !self.serving() {
            // A node that cannot log, has no leader or diverged serves nobody: clients
            // move to another server.
            let _ = out.send(Outbound::Close);
            return;
        }
        let limit = self.config.max_client_connections as usize;
        if limit > 0 {
            let from_peer = self
                .conns
                .values()
                .filter(|client| client.peer.ip() == peer.ip())
                .count();
            if from_peer >= limit {
                tracing::warn!(%peer, limit, "too many connections from this address; refusing");
                self.metrics.inc_connection_rejected();
                let _ = out.send(Outbound::Close);
                return;
            }
        }
        self.conns
            .insert(conn, Client::new(conn, peer, out, queued, closer, now_ms()));
    }

    /// Forgets a connection. Its session lives on until it expires or a client resumes it.
    pub(crate) fn drop_conn(&mut self, conn: ConnId) {
        let Some(client) = self.conns.remove(&conn) else {
            return;
        };
        let _ = client.out.send(Outbound::Close);
        let _ = client.closer.send(true);
        self.watches.remove_watcher(WatcherId(conn.0));
        if let Some(session) = client.session {
            if self.session_conn.get(&session) == Some(&conn) {
                self.session_conn.remove(&session);
            }
        }
    }

    /// Closes a connection after what is already buffered for it has been sent.
    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        if let Some(client) = self.conns.get_mut(&conn) {
            client.close_requested = true;
            self.dirty.push(conn);
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.report_touches();
        if !self.repl.is_leader() {
            // The leader owns expiry; learners report activity to it.
            return;
        }
        for session in self.tracker.expire(now) {
            tracing::info!(%session, "session expired");
            if let Some(conn) = self.session_conn.remove(&session) {
                self.close_conn(conn);
            }
            self.propose_close_session(session, 0, Origin::Expiry);
        }
    }

    /// The log can no longer make txns durable: nothing in flight will commit. Every
    /// waiting client gets an error and every connection closes, so clients move to a
    /// server that works; new connections are refused.
    pub(crate) fn log_failed(&mut self, reason: &str) {
        if self.pipeline.has_failed() {
            return;
        }
        tracing::error!(reason, "the txn log failed; this node stops serving");
        self.admin.set_healthy(false);
        self.pipeline.fail();
        let _ = self.pipeline.take_through(Zxid(i64::MAX));
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            let last = self.tree.last_zxid();
            if let Some(client) = self.conns.get_mut(&conn) {
                for entry in client.replies.drain() {
                    if let crate::replies::Entry::Waiting { xid, .. } = entry {
                        ek_jute::encode_reply(
                            &mut client.out_buf,
                            xid,
                            last,
                            ek_types::ErrorCode::SystemError,
                            &ek_jute::Response::Empty,
                        );
                    }
                }
            }
            self.close_conn(conn);
        }
    }

    /// Writes each dirty connection's buffered frames to its task in one piece.
    fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for conn in dirty {
            let Some(client) = self.conns.get_mut(&conn) else {
                continue;
            };
            if !client.out_buf.is_empty() {
                let frames = std::mem::take(&mut client.out_buf);
                let queued = client.queued.fetch_add(frames.len(), Ordering::Relaxed);
                if queued + frames.len() > MAX_QUEUED_BYTES {
                    // A client that does not read its replies and events must not make
                    // the node hold unbounded memory for it.
                    tracing::warn!(
                        peer = %client.peer,
                        queued,
                        "client is not reading; closing its connection"
                    );
                    self.drop_conn(conn);
                    continue;
                }
                self.metrics.add_packets_sent(client.pending_packets);
                client.pending_packets = 0;
                let _ = client.out.send(Outbound::Frames(frames));
            }
            if client.close_requested {
                self.drop_conn(conn);
            }
        }
    }

    /// Backpressure: while the log is behind, clients' sockets are not read, so memory in
    /// flight stays bounded; the log drains the pipeline on its own and reading resumes.
    fn update_throttle(&self) {
        // A learner's forwarded writes count like a leader's proposals.
        let len = self.pipeline.len() + self.forwarded.len();
        let bytes = self.pipeline.bytes();
        let paused = *self.throttle.borrow();
        let pause = len >= MAX_OUTSTANDING_PROPOSALS || bytes >= MAX_OUTSTANDING_BYTES;
        let resume = len <= MAX_OUTSTANDING_PROPOSALS / 2 && bytes <= MAX_OUTSTANDING_BYTES / 2;
        if !paused && pause {
            tracing::debug!(len, bytes, "pipeline full: pausing client reads");
            self.throttle.send_replace(true);
        } else if paused && resume {
            self.throttle.send_replace(false);
        }
    }

    fn publish_gauges(&self) {
        self.metrics.set_gauges(&ek_admin::Gauges {
            znode_count: self.tree.node_count() as u64,
            watch_count: self.watches.watch_count() as u64,
            global_sessions: self.tracker.len() as u64,
            num_alive_connections: self.conns.len() as u64,
            outstanding_requests: self.pipeline.len() as u64,
            ephemerals_count: self.tree.ephemeral_count() as u64,
            approximate_data_size: self.tree.approximate_data_size(),
            last_processed_zxid: self.tree.last_zxid().0 as u64,
        });
    }

    /// The session a connection speaks for, touching it; `None` if it has none yet.
    pub(crate) fn touch(&mut self, conn: ConnId, now: Instant) -> Option<SessionId> {
        let session = self.conns.get(&conn)?.session?;
        if self.conns.get(&conn).map(|c| c.phase) == Some(Phase::Connected) {
            self.tracker.touch(session, now);
            self.touched.insert(session);
        }
        Some(session)
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
