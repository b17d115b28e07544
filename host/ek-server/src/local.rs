//! In-process clients of this node. The plugin host and the controllers talk to the node as
//! ZooKeeper clients do, through the same sessions, ACL checks and (ZAB) write path, but
//! without a socket: a [`LocalSession`] is a connection whose frames travel on channels.
//! Two things only an embedded client gets: [`NodeHandle::read_blocking`], a bounded read
//! of the local replica for code that cannot await (a Wasm host function), and
//! [`NodeHandle::subscribe`], the stream of committed changes under some prefixes with an
//! exact start-up snapshot.

use crate::client::{ConnId, Outbound};
use crate::core::{Core, CoreMsg};
use ek_jute::{ConnectRequest, DecodedRequest, OwnedResponse, Request};
use ek_types::{ErrorCode, EventType, Id, OpCode, SessionId, Stat, Zxid};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Connection ids of in-process sessions start here, far above the accept loop's.
const LOCAL_CONN_BASE: u64 = 1 << 62;

/// Why an in-process request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// The node is not serving (no quorum, shutting down, diverged).
    #[error("the node is not serving: {0}")]
    Unavailable(String),
    /// The session is gone (expired or closed); open a new one.
    #[error("the session is closed")]
    Closed,
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node answered with a ZooKeeper error.
    #[error("{0:?}")]
    Code(ErrorCode),
    /// The snapshot of a subscription would hold more nodes than allowed.
    #[error("more than {0} nodes under the subscribed prefixes")]
    TooLarge(usize),
}

/// What the node is doing, as `srvr` reports it.
pub use ek_admin::ServerState;

/// A handle on a running node, for in-process clients. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    core_tx: mpsc::UnboundedSender<CoreMsg>,
    metrics: Arc<ek_admin::Metrics>,
    node_id: u64,
    next_conn: Arc<AtomicU64>,
}

/// A read of the local replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRead {
    /// Data and stat.
    Get(String),
    /// Stat, or none.
    Exists(String),
    /// Child names, sorted.
    Children(String),
}

/// The answer to a [`LocalRead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalReadResult {
    /// Data (null data reads as empty) and stat.
    Data(Vec<u8>, Stat),
    /// The node's stat, or `None` when it does not exist.
    Stat(Option<Stat>),
    /// Child names, sorted.
    Children(Vec<String>),
}

/// What a committed change did to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created (or, in a snapshot, present).
    Created,
    /// Deleted.
    Deleted,
    /// Its data changed.
    DataChanged,
}

/// One committed change to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The node.
    pub path: String,
    /// The txn that did it.
    pub zxid: u64,
    /// The node's stat after the change; `None` when deleted.
    pub stat: Option<Stat>,
}

/// The changes of one committed txn under a subscription's prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// The txn's zxid.
    pub zxid: u64,
    /// In the order the txn made them.
    pub changes: Vec<Change>,
}

/// A stream of committed changes. The channel ends when the subscriber fell too far
/// behind or the node's tree was replaced by a snapshot sync: subscribe again for a new
/// snapshot.
pub struct Subscription {
    /// The zxid the snapshot is exact at; every batch that follows is later.
    pub zxid: u64,
    /// Every node under the prefixes at `zxid`, parents before children.
    pub snapshot: Vec<(String, Stat)>,
    /// The batches after `zxid`, in zxid order.
    pub changes: mpsc::Receiver<ChangeBatch>,
}

pub(crate) struct Subscriber {
    prefixes: Vec<String>,
    tx: mpsc::Sender<ChangeBatch>,
}

type ReadReply = std::sync::mpsc::SyncSender<Result<LocalReadResult, LocalError>>;

/// The core-side messages of in-process clients.
pub(crate) enum LocalMsg {
    SetIds {
        conn: ConnId,
        ids: Vec<Id>,
    },
    Read {
        read: LocalRead,
        ids: Vec<Id>,
        reply: ReadReply,
    },
    Subscribe {
        prefixes: Vec<String>,
        capacity: usize,
        max_nodes: usize,
        reply: oneshot::Sender<Result<Subscription, LocalError>>,
    },
}

/// True when `path` is `prefix` or below it.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl NodeHandle {
    pub(crate) fn new(
        core_tx: mpsc::UnboundedSender<CoreMsg>,
        metrics: Arc<ek_admin::Metrics>,
        node_id: u64,
    ) -> NodeHandle {
        NodeHandle {
            core_tx,
            metrics,
            node_id,
            next_conn: Arc::new(AtomicU64::new(LOCAL_CONN_BASE)),
        }
    }

    /// This node's id (`node_id` in the config).
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// What the node is doing now.
    pub fn state(&self) -> ServerState {
        self.metrics.server_state()
    }

    /// True while the node leads (a standalone node leads itself).
    pub fn is_leader(&self) -> bool {
        matches!(self.state(), ServerState::Leader | ServerState::Standalone)
    }

    /// The node's metrics registry (for embedders that add their own series).
    pub fn metrics(&self) -> &Arc<ek_admin::Metrics> {
        &self.metrics
    }

    /// True once the node has stopped.
    pub fn is_closed(&self) -> bool {
        self.core_tx.is_closed()
    }

    /// Reads the local replica, as `ids`, waiting at most `timeout`. Never touches the
    /// network or the disk; safe to call from a thread that must not await.
    pub fn read_blocking(
        &self,
        read: LocalRead,
        ids: Vec<Id>,
        timeout: Duration,
    ) -> Result<LocalReadResult, LocalError> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        self.send(LocalMsg::Read { read, ids, reply })?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(LocalError::Timeout(timeout)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(shutting_down()),
        }
    }

    /// Subscribes to committed changes under `prefixes`, with the exact snapshot of what
    /// is there now. At most `capacity` batches wait unread before the subscription ends.
    pub async fn subscribe(
        &self,
        prefixes: Vec<String>,
        capacity: usize,
        max_nodes: usize,
    ) -> Result<Subscription, LocalError> {
        let (reply, rx) = oneshot::channel();
        self.send(LocalMsg::Subscribe {
            prefixes,
            capacity: capacity.max(1),
            max_nodes,
            reply,
        })?;
        rx.await.map_err(|_| shutting_down())?
    }

    /// Opens a session as `ids` (the identity its writes are checked and recorded with).
    pub async fn session(&self, ids: Vec<Id>, timeout_ms: u32) -> Result<LocalSession, LocalError> {
        LocalSession::open(self.clone(), ids, timeout_ms).await
    }

    fn send(&self, msg: LocalMsg) -> Result<(), LocalError> {
        self.core_tx
            .send(CoreMsg::Local(msg))
            .map_err(|_| shutting_down())
    }
}

fn shutting_down() -> LocalError {
    LocalError::Unavailable("the node is shutting down".to_owned())
}

type Waiter = oneshot::Sender<Result<(Zxid, OwnedResponse), LocalError>>;

struct Shared {
    pending: Mutex<HashMap<i32, (OpCode, Waiter)>>,
    closed: AtomicBool,
    closed_tx: watch::Sender<bool>,
}

impl Shared {
    fn fail_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closed_tx.send_replace(true);
        let pending = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        for (_, (_, waiter)) in pending {
            let _ = waiter.send(Err(LocalError::Closed));
        }
    }
}

/// A ZooKeeper session of an in-process client. Requests go through the node's normal
/// path (a learner forwards writes to the leader); replies come back in order.
pub struct LocalSession {
    node: NodeHandle,
    conn: ConnId,
    session: SessionId,
    timeout: Duration,
    next_xid: AtomicI32,
    shared: Arc<Shared>,
    closed_rx: watch::Receiver<bool>,
}

impl LocalSession {
    async fn open(
        node: NodeHandle,
        ids: Vec<Id>,
        timeout_ms: u32,
    ) -> Result<LocalSession, LocalError> {
        let conn = ConnId(node.next_conn.fetch_add(1, Ordering::Relaxed));
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let (closer, _closer_rx) = watch::channel(false);
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let send = |msg| node.core_tx.send(msg).map_err(|_| shutting_down());
        send(CoreMsg::Open {
            conn,
            peer,
            out: out_tx,
            queued: queued.clone(),
            closer,
        })?;
        send(CoreMsg::Local(LocalMsg::SetIds { conn, ids }))?;
        send(CoreMsg::Connect {
            conn,
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: Zxid(0),
                timeout_ms: timeout_ms as i32,
                session_id: SessionId(0),
                passwd: vec![0; 16],
                read_only: Some(false),
            },
        })?;
        let wait = Duration::from_secs(10);
        let mut buf = Vec::new();
        let first = tokio::time::timeout(wait, async {
            loop {
                if let Some(frame) = next_frame(&mut buf) {
                    return Ok(frame);
                }
                match out_rx.recv().await {
                    Some(Outbound::Frames(frames)) => {
                        queued.fetch_sub(frames.len(), Ordering::Relaxed);
                        buf.extend_from_slice(&frames);
                    }
                    Some(Outbound::Close) | None => {
                        return Err(LocalError::Unavailable(
                            "the node refused the connection".to_owned(),
                        ))
                    }
                }
            }
        })
        .await
        .map_err(|_| LocalError::Timeout(wait))??;
        let response = ek_jute::decode_connect_response(&first)
            .map_err(|err| LocalError::Unavailable(format!("bad connect response: {err}")))?;
        if response.session_id.0 == 0 || response.timeout_ms <= 0 {
            let _ = node.core_tx.send(CoreMsg::Closed { conn });
            return Err(LocalError::Unavailable(
                "the node refused the session".to_owned(),
            ));
        }
        let (closed_tx, closed_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            closed_tx,
        });
        tokio::spawn(read_replies(out_rx, buf, queued, shared.clone()));
        let timeout = Duration::from_millis(response.timeout_ms as u64);
        let session = LocalSession {
            node,
            conn,
            session: response.session_id,
            timeout,
            next_xid: AtomicI32::new(1),
            shared,
            closed_rx,
        };
        tokio::spawn(ping(
            session.node.core_tx.clone(),
            conn,
            timeout / 3,
            session.closed_rx.clone(),
        ));
        Ok(session)
    }

    /// The session id.
    pub fn id(&self) -> i64 {
        self.session.0
    }

    /// The negotiated session timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True once the node closed the session's connection (the session may have expired).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Completes when the session's connection closes.
    pub async fn closed(&self) {
        let mut rx = self.closed_rx.clone();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Sends a request and waits at most `wait` for its reply: the reply's zxid and body.
    pub async fn request(
        &self,
        request: Request,
        wait: Duration,
    ) -> Result<(Zxid, OwnedResponse), LocalError> {
        if self.is_closed() {
            return Err(LocalError::Closed);
        }
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
        let opcode = request.opcode();
        let (tx, rx) = oneshot::channel();
        match self.shared.pending.lock() {
            Ok(mut pending) => {
                pending.insert(xid, (opcode, tx));
            }
            Err(_) => return Err(LocalError::Closed),
        }
        let msg = CoreMsg::Request {
            conn: self.conn,
            request: DecodedRequest {
                xid,
                opcode: opcode as i32,
                body: Ok(request),
            },
            received: Instant::now(),
        };
        if self.node.core_tx.send(msg).is_err() {
            return Err(shutting_down());
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(LocalError::Closed),
            Err(_) => {
                if let Ok(mut pending) = self.shared.pending.lock() {
                    pending.remove(&xid);
                }
                Err(LocalError::Timeout(wait))
            }
        }
    }

    /// Closes the session: its ephemeral nodes go at once.
    pub async fn close(self) {
        let _ = self
            .request(Request::CloseSession, Duration::from_secs(5))
            .await;
    }
}

impl Drop for LocalSession {
    fn drop(&mut self) {
        self.shared.fail_all();
        let _ = self.node.core_tx.send(CoreMsg::Closed { conn: self.conn });
    }
}

/// Splits the first length-prefixed frame off `buf`.
fn next_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    if buf.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf.len() < 4 + len {
        return None;
    }
    let frame = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Some(frame)
}

async fn read_replies(
    mut out_rx: mpsc::UnboundedReceiver<Outbound>,
    mut buf: Vec<u8>,
    queued: Arc<AtomicUsize>,
    shared: Arc<Shared>,
) {
    loop {
        while let Some(frame) = next_frame(&mut buf) {
            deliver(&frame, &shared);
        }
        match out_rx.recv().await {
            Some(Outbound::Frames(frames)) => {
                queued.fetch_sub(frames.len(), Ordering::Relaxed);
                buf.extend_from_slice(&frames);
            }
            Some(Outbound::Close) | None => break,
        }
    }
    shared.fail_all();
}

fn deliver(frame: &[u8], shared: &Shared) {
    let Ok(header) = ek_jute::decode_reply_header(frame) else {
        return;
    };
    if header.xid < 0 {
        // Pings (-2), notifications (-1), auth (-4): nobody waits for them here.
        return;
    }
    let Some((opcode, waiter)) = shared
        .pending
        .lock()
        .ok()
        .and_then(|mut pending| pending.remove(&header.xid))
    else {
        return;
    };
    let result = match ek_jute::decode_reply(frame, opcode) {
        Ok((header, _)) if header.err != 0 => Err(LocalError::Code(
            header.error_code().unwrap_or(ErrorCode::SystemError),
        )),
        Ok((header, Some(body))) => Ok((header.zxid, body)),
        Ok((header, None)) => Ok((header.zxid, OwnedResponse::Empty)),
        Err(err) => {
            tracing::warn!(%err, "undecodable reply to an in-process request");
            Err(LocalError::Code(ErrorCode::MarshallingError))
        }
    };
    let _ = waiter.send(result);
}

async fn ping(
    core_tx: mpsc::UnboundedSender<CoreMsg>,
    conn: ConnId,
    every: Duration,
    mut closed: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = closed.wait_for(|closed| *closed) => return,
        }
        let msg = CoreMsg::Request {
            conn,
            request: DecodedRequest {
                xid: -2,
                opcode: OpCode::Ping as i32,
                body: Ok(Request::Ping),
            },
            received: Instant::now(),
        };
        if core_tx.send(msg).is_err() {
            return;
        }
    }
}

impl Core {
    pub(crate) fn handle_local(&mut self, msg: LocalMsg) {
        match msg {
            LocalMsg::SetIds { conn, ids } => {
                if let Some(client) = self.conns.get_mut(&conn) {
                    client.ids = ids;
                }
            }
            LocalMsg::Read { read, ids, reply } => {
                let result = self.local_read(&read, &ids);
                let _ = reply.try_send(result);
            }
            LocalMsg::Subscribe {
                prefixes,
                capacity,
                max_nodes,
                reply,
            } => {
                let result = self.subscribe(prefixes, capacity, max_nodes);
                let _ = reply.send(result);
            }
        }
    }

    fn local_read(&self, read: &LocalRead, ids: &[Id]) -> Result<LocalReadResult, LocalError> {
        if !self.serving() {
            return Err(LocalError::Unavailable("not serving".to_owned()));
        }
        let path = match read {
            LocalRead::Get(path) | LocalRead::Exists(path) | LocalRead::Children(path) => path,
        };
        ek_types::path::validate(path).map_err(|_| LocalError::Code(ErrorCode::BadArguments))?;
        let node = self.tree.node(path);
        if let LocalRead::Exists(_) = read {
            return Ok(LocalReadResult::Stat(node.map(|node| node.stat())));
        }
        let node = node.ok_or(LocalError::Code(ErrorCode::NoNode))?;
        if !ek_tree::acl::check(node.acl(), ek_types::perms::READ, ids) {
            return Err(LocalError::Code(ErrorCode::NoAuth));
        }
        Ok(match read {
            LocalRead::Get(_) => LocalReadResult::Data(
                node.data().map(<[u8]>::to_vec).unwrap_or_default(),
                node.stat(),
            ),
            _ => LocalReadResult::Children(
                self.tree
                    .children(path)
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            ),
        })
    }

    fn subscribe(
        &mut self,
        prefixes: Vec<String>,
        capacity: usize,
        max_nodes: usize,
    ) -> Result<Subscription, LocalError> {
        if !self.serving() {
            return Err(LocalError::Unavailable("not serving".to_owned()));
        }
        for prefix in &prefixes {
            ek_types::path::validate(prefix)
                .map_err(|_| LocalError::Code(ErrorCode::BadArguments))?;
        }
        let mut snapshot = Vec::new();
        // Outermost prefixes only, so a node under two of them is listed once.
        let roots: Vec<&String> = prefixes
            .iter()
            .filter(|p| !prefixes.iter().any(|q| q != *p && under_prefix(p, q)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for root in roots {
            if !seen.insert(root.clone()) {
                continue;
            }
            let mut stack = vec![root.clone()];
            while let Some(path) = stack.pop() {
                let Some(node) = self.tree.node(&path) else {
                    continue;
                };
                if snapshot.len() >= max_nodes {
                    return Err(LocalError::TooLarge(max_nodes));
                }
                snapshot.push((path.clone(), node.stat()));
                let children = self.tree.children(&path).unwrap_or_default();
                for child in children.into_iter().rev() {
                    stack.push(if path == "/" {
                        format!("/{child}")
                    } else {
                        format!("{path}/{child}")
                    });
                }
            }
        }
        let (tx, rx) = mpsc::channel(capacity);
        self.subscribers.push(Subscriber { prefixes, tx });
        Ok(Subscription {
            zxid: self.tree.last_zxid().0 as u64,
            snapshot,
            changes: rx,
        })
    }

    /// Sends the changes a committed txn made to every subscriber whose prefixes they fall
    /// under; drops subscribers that do not keep up.
    pub(crate) fn publish_changes(&mut self, zxid: Zxid, events: &[(EventType, String)]) {
        let tree = &self.tree;
        self.subscribers.retain(|sub| {
            if sub.tx.is_closed() {
                return false;
            }
            let changes: Vec<Change> = events
                .iter()
                .filter(|(_, path)| sub.prefixes.iter().any(|p| under_prefix(path, p)))
                .filter_map(|(event, path)| {
                    let kind = match event {
                        EventType::NodeCreated => ChangeKind::Created,
                        EventType::NodeDeleted => ChangeKind::Deleted,
                        EventType::NodeDataChanged => ChangeKind::DataChanged,
                        _ => return None,
                    };
                    Some(Change {
                        kind,
                        path: path.clone(),
                        zxid: zxid.0 as u64,
                        stat: match kind {
                            ChangeKind::Deleted => None,
                            _ => tree.node(path).map(|node| node.stat()),
                        },
                    })
                })
                .collect();
            if changes.is_empty() {
                return true;
            }
            match sub.tx.try_send(ChangeBatch {
                zxid: zxid.0 as u64,
                changes,
            }) {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(%err, "change subscriber fell behind; ending its subscription");
                    false
                }
            }
        });
    }

    /// The tree was replaced wholesale (snapshot sync): subscribers must start over.
    pub(crate) fn reset_subscribers(&mut self) {
        if !self.subscribers.is_empty() {
            tracing::info!(
                count = self.subscribers.len(),
                "tree replaced by a snapshot; ending change subscriptions"
            );
            self.subscribers.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_grant_the_node_and_below_only() {
        assert!(under_prefix("/a", "/a"));
        assert!(under_prefix("/a/b", "/a"));
        assert!(!under_prefix("/ab", "/a"));
        assert!(under_prefix("/anything", "/"));
        assert!(!under_prefix("/", "/a"));
    }

    #[test]
    fn frames_split_on_their_length_prefix() {
        let mut buf = vec![0, 0, 0, 2, 7, 8, 0, 0, 0, 1];
        assert_eq!(next_frame(&mut buf), Some(vec![7, 8]));
        assert_eq!(next_frame(&mut buf), None);
        buf.push(9);
        assert_eq!(next_frame(&mut buf), Some(vec![9]));
        assert!(buf.is_empty());
    }
}
