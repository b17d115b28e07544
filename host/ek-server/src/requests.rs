//! Dispatch of client requests: session-level packets answered at once, writes through
//! prep and the pipeline, reads in the connection's FIFO order.

use crate::client::{ConnId, Phase};
use crate::core::MAX_QUEUED_BYTES;
use crate::core::{now_ms, Core};
use crate::pipeline::Origin;
use crate::replies::{stamp_zxid, Entry};
use ek_jute::{BodyError, DecodedRequest, Request, Response};
use ek_tree::{Caller, PrepContext};
use ek_types::{ErrorCode, Id, OpCode, SessionId, Txn, TxnBody, WriteOp, Zxid};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The xid of pings.
const PING_XID: i32 = -2;

impl Core {
    pub(crate) fn request(&mut self, conn: ConnId, request: DecodedRequest, received: Instant) {
        self.metrics.inc_packets_received();
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        if client.close_requested {
            // Nothing more from a connection the node is closing (a failed auth, a refused
            // resume) may take effect.
            return;
        }
        match client.phase {
            Phase::Handshake => {
                tracing::debug!(peer = %client.peer, "request before ConnectRequest; closing");
                self.close_conn(conn);
                return;
            }
            Phase::Connecting => {
                client.early.push((request, received));
                return;
            }
            Phase::Connected => {}
        }
        client.stats.received += 1;
        let session = self.touch(conn, received).unwrap_or(SessionId::NONE);
        let xid = request.xid;
        let body = match request.body {
            Ok(body) => body,
            Err(BodyError::UnknownOpcode) => {
                tracing::debug!(opcode = request.opcode, "unknown opcode");
                return self.reply_in_order(conn, xid, ErrorCode::Unimplemented, &Response::Empty);
            }
            Err(BodyError::Malformed(err)) => {
                tracing::debug!(opcode = request.opcode, %err, "malformed request body");
                return self.reply_in_order(
                    conn,
                    xid,
                    ErrorCode::MarshallingError,
                    &Response::Empty,
                );
            }
        };
        match body {
            Request::Ping => {
                // Pings bypass the FIFO: clients match them by xid -2 alone.
                self.reply_now(conn, PING_XID, ErrorCode::Ok, &Response::Empty);
            }
            Request::Auth { scheme, auth, .. } => self.auth(conn, xid, &scheme, &auth),
            Request::CloseSession => self.close_session(conn, session, xid, received),
            Request::Write(op) => {
                let op_name = op.opcode().name();
                self.write(conn, session, xid, received, op_name, WriteKind::Single(op));
            }
            Request::Multi(ops) => {
                self.write(conn, session, xid, received, "multi", WriteKind::Multi(ops))
            }
            Request::Reconfig { .. } => {
                self.reply_in_order(conn, xid, ErrorCode::ReconfigDisabled, &Response::Empty)
            }
            Request::Sasl { .. } => {
                // SASL is not configured: like ZooKeeper 3.8 without a SASL server, answer
                // at once (ZooKeeper does so inline, outside its pipeline) with Ok, reply
                // zxid 0 and a SetSASLResponse whose token is null; clients such as kazoo
                // then fail authentication.
                let response = Response::Sasl { token: None };
                self.reply_now_at(conn, xid, Zxid::ZERO, ErrorCode::Ok, &response);
            }
            Request::Sync { path } => {
                // sync completes once everything the leader had proposed when it saw the
                // sync is applied here, so "sync then read" is linearizable on any node.
                self.client_sync(conn, xid, &path);
            }
            read => self.read_in_order(conn, xid, read, received),
        }
    }

    /// Runs a read now if nothing is outstanding on the connection, else after it.
    fn read_in_order(&mut self, conn: ConnId, xid: i32, request: Request, received: Instant) {
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        if client.replies.is_empty() {
            let frame = self.execute_read(conn, xid, &request, received);
            self.push_ready(conn, frame, false);
        } else {
            client.replies.push(Entry::Deferred {
                xid,
                request,
                started: received,
            });
        }
    }

    /// Queues a reply behind the connection's outstanding requests.
    pub(crate) fn reply_in_order(
        &mut self,
        conn: ConnId,
        xid: i32,
        err: ErrorCode,
        response: &Response<'_>,
    ) {
        let mut frame = Vec::new();
        ek_jute::encode_reply(&mut frame, xid, self.tree.last_zxid(), err, response);
        self.push_ready(conn, frame, false);
    }

    pub(crate) fn push_ready(&mut self, conn: ConnId, frame: Vec<u8>, close_after: bool) {
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Ready { frame, close_after });
            self.pump(conn);
        }
    }

    /// Writes a reply immediately, outside the FIFO (pings, auth).
    fn reply_now(&mut self, conn: ConnId, xid: i32, err: ErrorCode, response: &Response<'_>) {
        self.reply_now_at(conn, xid, self.tree.last_zxid(), err, response);
    }

    /// [`Self::reply_now`] with an explicit reply-header zxid.
    fn reply_now_at(
        &mut self,
        conn: ConnId,
        xid: i32,
        zxid: Zxid,
        err: ErrorCode,
        response: &Response<'_>,
    ) {
        if let Some(client) = self.conns.get_mut(&conn) {
            ek_jute::encode_reply(&mut client.out_buf, xid, zxid, err, response);
            client.pending_packets += 1;
            self.dirty.push(conn);
        }
    }

    /// Sends every reply at the head of the connection's FIFO that is ready, running
    /// deferred reads as they reach the head.
    pub(crate) fn pump(&mut self, conn: ConnId) {
        loop {
            let applied = self.tree.last_zxid();
            let Some(client) = self.conns.get_mut(&conn) else {
                return;
            };
            let Some(entry) = client.replies.pop_ready(applied) else {
                break;
            };
            let (mut frame, close_after) = match entry {
                Entry::Ready { frame, close_after } => (frame, close_after),
                Entry::Held { frame, .. } => (frame, false),
                Entry::Deferred {
                    xid,
                    request,
                    started,
                } => (self.execute_read(conn, xid, &request, started), false),
                Entry::Waiting { .. } | Entry::Syncing { .. } => {
                    tracing::error!("reply queue yielded a waiting entry");
                    return;
                }
            };
            let Some(client) = self.conns.get_mut(&conn) else {
                return;
            };
            if !frame.is_empty() {
                stamp_zxid(&mut frame, applied);
                client.out_buf.extend_from_slice(&frame);
                client.pending_packets += 1;
                client.stats.sent += 1;
                self.dirty.push(conn);
            }
            if client.out_buf.len() + client.queued.load(Ordering::Relaxed) > MAX_QUEUED_BYTES {
                tracing::warn!(peer = %client.peer, "client is not reading; closing its connection");
                self.drop_conn(conn);
                return;
            }
            if close_after {
                self.close_conn(conn);
                return;
            }
        }
    }

    /// Queues a reply that must wait until the tree has applied every txn proposed so far.
    fn reply_held(&mut self, conn: ConnId, xid: i32, err: ErrorCode, response: &Response<'_>) {
        let until = self.pipeline.last_proposed();
        if until <= self.tree.last_zxid() {
            return self.reply_in_order(conn, xid, err, response);
        }
        let mut frame = Vec::new();
        ek_jute::encode_reply(&mut frame, xid, self.tree.last_zxid(), err, response);
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Held { until, frame });
            self.held.insert(conn);
        }
    }

    /// addAuth. The reply echoes the request's xid, as ZooKeeper's does: the Java client
    /// sends -4, others (the Rust `zookeeper-client`) a normal xid.
    fn auth(&mut self, conn: ConnId, xid: i32, scheme: &str, auth: &[u8]) {
        let super_digest = self.config.super_digest.clone();
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        if scheme != "digest" {
            tracing::info!(peer = %client.peer, scheme, "auth with an unsupported scheme");
            self.reply_now(conn, xid, ErrorCode::AuthFailed, &Response::Empty);
            self.close_conn(conn);
            return;
        }
        let user_password = String::from_utf8_lossy(auth);
        if !user_password.contains(':') {
            self.reply_now(conn, xid, ErrorCode::AuthFailed, &Response::Empty);
            self.close_conn(conn);
            return;
        }
        let id = ek_tree::acl::digest_id(&user_password);
        if super_digest.as_deref() == Some(id.as_str()) {
            client.ids.push(Id::new("super", ""));
        }
        let digest = Id::new("digest", id);
        if !client.ids.contains(&digest) {
            client.ids.push(digest);
        }
        self.reply_now(conn, xid, ErrorCode::Ok, &Response::Empty);
    }

    fn write(
        &mut self,
        conn: ConnId,
        session: SessionId,
        xid: i32,
        received: Instant,
        op_name: &'static str,
        kind: WriteKind,
    ) {
        if !self.tracker.is_live(session) {
            return self.reply_in_order(conn, xid, ErrorCode::SessionExpired, &Response::Empty);
        }
        if !self.repl.is_leader() {
            return self.forward_write(conn, session, xid, received, op_name, kind);
        }
        let zxid = match self.next_zxid() {
            Ok(zxid) => zxid,
            Err(err) => {
                tracing::warn!(%err, "refusing a write");
                return self.reply_in_order(conn, xid, ErrorCode::SystemError, &Response::Empty);
            }
        };
        let time_ms = now_ms();
        let ctx = PrepContext {
            zxid,
            time_ms,
            max_data_bytes: self.config.max_data_bytes as usize,
        };
        if matches!(&kind, WriteKind::Multi(ops) if ops.is_empty()) {
            return self.reply_in_order(conn, xid, ErrorCode::Ok, &Response::Multi(&[]));
        }
        let Some(client) = self.conns.get(&conn) else {
            return;
        };
        let caller = Caller {
            session_id: session,
            ids: &client.ids,
        };
        let prepped = prep_write(&mut self.prep, &self.tree, &caller, &kind, &ctx);
        let body = match prepped {
            Ok(body) => body,
            Err(PrepFailure::Single(err)) => {
                return self.reply_held(conn, xid, err, &Response::Empty);
            }
            Err(PrepFailure::Multi(results)) => {
                return self.reply_held(conn, xid, ErrorCode::Ok, &Response::Multi(&results));
            }
        };
        let txn = Txn {
            zxid,
            session_id: session,
            cxid: xid,
            time_ms,
            body,
            digest: None,
        };
        let opcodes = kind.opcodes();
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Waiting {
                zxid: Some(zxid),
                xid,
                started: received,
                op: op_name,
                opcodes,
            });
        }
        if !self.propose(txn, Origin::Client(conn)) {
            self.fail_waiting(conn, zxid, xid);
        }
    }

    fn close_session(&mut self, conn: ConnId, session: SessionId, xid: i32, received: Instant) {
        if !self.tracker.is_live(session) {
            let mut frame = Vec::new();
            let zxid = self.tree.last_zxid();
            ek_jute::encode_reply(&mut frame, xid, zxid, ErrorCode::Ok, &Response::Empty);
            return self.push_ready(conn, frame, true);
        }
        if !self.repl.is_leader() {
            return self.forward_close(conn, session, xid, received);
        }
        let Some(zxid) = self.propose_close_session(session, xid, Origin::Close(conn)) else {
            let mut frame = Vec::new();
            let last = self.tree.last_zxid();
            ek_jute::encode_reply(
                &mut frame,
                xid,
                last,
                ErrorCode::SystemError,
                &Response::Empty,
            );
            return self.push_ready(conn, frame, false);
        };
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Waiting {
                zxid: Some(zxid),
                xid,
                started: received,
                op: OpCode::CloseSession.name(),
                opcodes: Vec::new(),
            });
        }
    }

    /// Proposes the txn that ends a session and deletes its ephemerals, returning the zxid
    /// the origin waits for. A session with so many ephemerals that one txn would exceed
    /// the log's record limit is closed by several txns in a row; only the last one
    /// answers the origin, and prep keeps every delete pending until it is applied.
    pub(crate) fn propose_close_session(
        &mut self,
        session: SessionId,
        xid: i32,
        origin: Origin,
    ) -> Option<ek_types::Zxid> {
        let first = self.next_zxid().ok()?;
        self.tracker.set_closing(session);
        let chunks = chunk_paths(self.prep.closing_paths(&self.tree, session));
        let last = (1..chunks.len()).try_fold(first, |zxid, _| zxid.next())?;
        let time_ms = now_ms();
        let ctx = PrepContext {
            zxid: last,
            time_ms,
            max_data_bytes: self.config.max_data_bytes as usize,
        };
        // Recorded under the last zxid, so the deletes stay pending until all are applied.
        let _ = self.prep.close_session(&self.tree, session, &ctx);
        let count = chunks.len();
        let mut zxid = first;
        for (index, paths_to_delete) in chunks.into_iter().enumerate() {
            let is_last = index + 1 == count;
            let txn = Txn {
                zxid,
                session_id: session,
                cxid: if is_last { xid } else { 0 },
                time_ms,
                body: TxnBody::CloseSession { paths_to_delete },
                digest: None,
            };
            let chunk_origin = if is_last { origin } else { Origin::Expiry };
            if !self.propose(txn, chunk_origin) {
                return None;
            }
            zxid = zxid.next()?;
        }
        Some(last)
    }

    /// Answers a write that could not be proposed.
    fn fail_waiting(&mut self, conn: ConnId, zxid: ek_types::Zxid, xid: i32) {
        let mut frame = Vec::new();
        let last = self.tree.last_zxid();
        ek_jute::encode_reply(
            &mut frame,
            xid,
            last,
            ErrorCode::SystemError,
            &Response::Empty,
        );
        if let Some(client) = self.conns.get_mut(&conn) {
            if client
                .replies
                .complete(crate::replies::WaitKey::Zxid(zxid), frame.clone(), false)
                .is_none()
            {
                client.replies.push(Entry::Ready {
                    frame,
                    close_after: false,
                });
            }
        }
        self.pump(conn);
    }

    /// Leader-side reaping of empty containers and expired TTL nodes, through txns.
    pub(crate) fn reap(&mut self) {
        if !self.repl.is_leader() {
            return;
        }
        let now = now_ms();
        for path in self.tree.reap_candidates(now) {
            let Ok(zxid) = self.next_zxid() else {
                return;
            };
            let ctx = PrepContext {
                zxid,
                time_ms: now,
                max_data_bytes: self.config.max_data_bytes as usize,
            };
            let Some(body) = self.prep.reap(&self.tree, &path, now, &ctx) else {
                continue;
            };
            tracing::debug!(path, "reaping");
            let txn = Txn {
                zxid,
                session_id: SessionId::NONE,
                cxid: 0,
                time_ms: now,
                body,
                digest: None,
            };
            if !self.propose(txn, Origin::Reaper) {
                return;
            }
        }
    }
}

/// Most bytes of paths one closeSession txn lists; the log's record limit is far above.
const CLOSE_TXN_PATH_BYTES_MAX: usize = 8 << 20;

/// Splits a closing session's ephemerals into lists that each fit one txn; there is always
/// at least one list (possibly empty), since the last txn also removes the session.
fn chunk_paths(paths: std::collections::BTreeSet<String>) -> Vec<Vec<String>> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0usize;
    for path in paths {
        if bytes + path.len() > CLOSE_TXN_PATH_BYTES_MAX && !chunks[chunks.len() - 1].is_empty() {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += path.len();
        let last = chunks.len() - 1;
        chunks[last].push(path);
    }
    chunks
}

/// A client write as the leader preps it; learners forward it as is.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum WriteKind {
    Single(WriteOp),
    Multi(Vec<WriteOp>),
}

impl WriteKind {
    /// The opcode of each op: a create's reply record depends on it.
    pub(crate) fn opcodes(&self) -> Vec<OpCode> {
        match self {
            WriteKind::Single(op) => vec![op.opcode()],
            WriteKind::Multi(ops) => ops.iter().map(WriteOp::opcode).collect(),
        }
    }
}

/// Why prep refused a write: a single op's error, or a multi's per-op results.
pub(crate) enum PrepFailure {
    Single(ErrorCode),
    Multi(Vec<ek_types::OpResult>),
}

/// Preps a write (a non-empty multi, or a single op) against the tree and pending changes.
pub(crate) fn prep_write(
    prep: &mut ek_tree::Prep,
    tree: &ek_tree::DataTree,
    caller: &Caller<'_>,
    kind: &WriteKind,
    ctx: &PrepContext,
) -> Result<TxnBody, PrepFailure> {
    match kind {
        WriteKind::Single(op) => prep
            .write(tree, caller, op, ctx)
            .map_err(PrepFailure::Single),
        WriteKind::Multi(ops) => prep
            .multi(tree, caller, ops, ctx)
            .map_err(PrepFailure::Multi),
    }
}
