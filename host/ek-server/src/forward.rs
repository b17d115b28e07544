//! Requests a learner forwards to the leader (writes, session creation, session touches),
//! the leader's handling of them, and ZAB syncs.
//!
//! A learner never preps: it forwards each write with the caller's session, xid and auth
//! ids, and answers its client when the txn carrying that session and xid commits here. A
//! refused write comes back the same way, as an error txn in the total order, so a
//! session's replies stay in request order on any node.

use crate::client::{ConnId, Phase};
use crate::core::{now_ms, Core};
use crate::pipeline::Origin;
use crate::replication::SyncWaiter;
use crate::replies::Entry;
use crate::requests::{prep_write, PrepFailure, WriteKind};
use ek_jute::Response;
use ek_tree::{Caller, PrepContext};
use ek_types::{ErrorCode, Id, OpCode, SessionId, Txn, TxnBody};
use ek_zab::ServerId;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What a learner sends its leader, opaque to ZAB.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Forward {
    /// A client write (a single op or a multi) of a session connected to the learner.
    Write {
        session: SessionId,
        xid: i32,
        /// The connection's authenticated ids, for ACL checks.
        ids: Vec<Id>,
        kind: WriteKind,
    },
    /// A client's closeSession.
    Close { session: SessionId, xid: i32 },
    /// A new session the learner assigned an id to.
    CreateSession { session: SessionId, timeout_ms: i32 },
    /// Sessions that showed a sign of life on the learner since its last report.
    Touch { sessions: Vec<SessionId> },
}

impl Core {
    /// Sends `forward` to the leader; false if there is no leader to send it to.
    fn send_forward(&mut self, forward: &Forward) -> bool {
        let payload = match postcard::to_allocvec(forward) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(%err, "cannot encode a forwarded request");
                return false;
            }
        };
        match self.repl.peer.forward(payload) {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(%err, "cannot forward to the leader");
                false
            }
        }
    }

    /// Learner: a client write goes to the leader; the reply waits for its txn.
    pub(crate) fn forward_write(
        &mut self,
        conn: ConnId,
        session: SessionId,
        xid: i32,
        received: Instant,
        op_name: &'static str,
        kind: WriteKind,
    ) {
        let Some(client) = self.conns.get(&conn) else {
            return;
        };
        let ids = client.ids.clone();
        let opcodes = kind.opcodes();
        let forward = Forward::Write {
            session,
            xid,
            ids,
            kind,
        };
        if !self.send_forward(&forward) {
            return self.reply_in_order(conn, xid, ErrorCode::ConnectionLoss, &Response::Empty);
        }
        self.forwarded.insert((session, xid));
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Waiting {
                zxid: None,
                xid,
                started: received,
                op: op_name,
                opcodes,
            });
        }
    }

    /// Learner: a client's closeSession goes to the leader.
    pub(crate) fn forward_close(
        &mut self,
        conn: ConnId,
        session: SessionId,
        xid: i32,
        received: Instant,
    ) {
        if !self.send_forward(&Forward::Close { session, xid }) {
            return self.reply_in_order(conn, xid, ErrorCode::ConnectionLoss, &Response::Empty);
        }
        self.forwarded.insert((session, xid));
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Waiting {
                zxid: None,
                xid,
                started: received,
                op: OpCode::CloseSession.name(),
                opcodes: Vec::new(),
            });
        }
    }

    /// Learner: a new session; the connection gets its ConnectResponse when the
    /// createSession txn commits here.
    pub(crate) fn forward_create_session(&mut self, conn: ConnId, timeout_ms: i32) {
        let session = self.session_ids.next_id();
        if !self.send_forward(&Forward::CreateSession {
            session,
            timeout_ms,
        }) {
            self.close_conn(conn);
            return;
        }
        if let Some(client) = self.conns.get_mut(&conn) {
            client.phase = Phase::Connecting;
            client.session = Some(session);
        }
        self.pending_handshakes.insert(session, conn);
    }

    /// Learner: reports the sessions that were active here since the last report, so the
    /// leader (which owns expiry) keeps them alive.
    pub(crate) fn report_touches(&mut self) {
        if self.repl.is_leader() || self.touched.is_empty() || !self.serving() {
            return;
        }
        let mut sessions: Vec<SessionId> = self.touched.drain().collect();
        sessions.sort();
        self.send_forward(&Forward::Touch { sessions });
    }

    /// Leader: a request a learner forwarded.
    pub(crate) fn on_forwarded(&mut self, from: ServerId, payload: &[u8]) {
        let forward: Forward = match postcard::from_bytes(payload) {
            Ok(forward) => forward,
            Err(err) => {
                tracing::warn!(from, %err, "dropping an undecodable forwarded request");
                return;
            }
        };
        let now = Instant::now();
        match forward {
            Forward::Touch { sessions } => {
                for session in sessions {
                    self.tracker.touch(session, now);
                }
            }
            Forward::CreateSession {
                session,
                timeout_ms,
            } => {
                let Ok(zxid) = self.next_zxid() else {
                    return;
                };
                let txn = Txn {
                    zxid,
                    session_id: session,
                    cxid: 0,
                    time_ms: now_ms(),
                    body: TxnBody::CreateSession { timeout_ms },
                    digest: None,
                };
                if self.propose(txn, Origin::Remote) {
                    // Tracked from the proposal on, as ZooKeeper's leader does: a quorum of
                    // followers may commit it (and the client write through it) before this
                    // leader's own fsync lets it apply the txn.
                    self.tracker.track(session, timeout_ms, now);
                }
            }
            Forward::Close { session, xid } => {
                if !self.tracker.is_live(session) {
                    self.propose_error(session, xid, ErrorCode::Ok, Vec::new());
                    return;
                }
                self.propose_close_session(session, xid, Origin::Remote);
            }
            Forward::Write {
                session,
                xid,
                ids,
                kind,
            } => {
                self.tracker.touch(session, now);
                self.remote_write(session, xid, &ids, &kind);
            }
        }
    }

    /// Leader: preps a forwarded write and proposes its txn, or an error txn.
    fn remote_write(&mut self, session: SessionId, xid: i32, ids: &[Id], kind: &WriteKind) {
        if !self.tracker.is_live(session) {
            return self.propose_error(session, xid, ErrorCode::SessionExpired, Vec::new());
        }
        if matches!(kind, WriteKind::Multi(ops) if ops.is_empty()) {
            return self.propose_error(session, xid, ErrorCode::Ok, Vec::new());
        }
        let Ok(zxid) = self.next_zxid() else {
            return;
        };
        let time_ms = now_ms();
        let ctx = PrepContext {
            zxid,
            time_ms,
            max_data_bytes: self.config.max_data_bytes as usize,
        };
        let caller = Caller {
            session_id: session,
            ids,
        };
        let body = match prep_write(&mut self.prep, &self.tree, &caller, kind, &ctx) {
            Ok(body) => body,
            Err(PrepFailure::Single(code)) => TxnBody::Error {
                code,
                results: Vec::new(),
            },
            Err(PrepFailure::Multi(results)) => TxnBody::Error {
                code: ErrorCode::Ok,
                results,
            },
        };
        let txn = Txn {
            zxid,
            session_id: session,
            cxid: xid,
            time_ms,
            body,
            digest: None,
        };
        self.propose(txn, Origin::Remote);
    }

    /// Leader: a refused forwarded request takes its place in the order as an error txn
    /// (`code` Ok with `results` for a failed multi).
    fn propose_error(
        &mut self,
        session: SessionId,
        xid: i32,
        code: ErrorCode,
        results: Vec<ek_types::OpResult>,
    ) {
        let Ok(zxid) = self.next_zxid() else {
            return;
        };
        let txn = Txn {
            zxid,
            session_id: session,
            cxid: xid,
            time_ms: now_ms(),
            body: TxnBody::Error { code, results },
            digest: None,
        };
        self.propose(txn, Origin::Remote);
    }

    /// A client's `sync`: answered once ZAB reports that everything the leader had proposed
    /// when it saw the sync is applied here.
    pub(crate) fn client_sync(&mut self, conn: ConnId, xid: i32, path: &str) {
        let id = self.repl.next_sync_id();
        if let Err(err) = self.repl.peer.sync(id) {
            tracing::debug!(%err, "sync refused");
            return self.reply_in_order(conn, xid, ErrorCode::ConnectionLoss, &Response::Empty);
        }
        let mut frame = Vec::new();
        let response = Response::Sync { path };
        ek_jute::encode_reply(
            &mut frame,
            xid,
            self.tree.last_zxid(),
            ErrorCode::Ok,
            &response,
        );
        if let Some(client) = self.conns.get_mut(&conn) {
            client.replies.push(Entry::Syncing { id, frame });
        }
        self.repl.syncs.insert(id, SyncWaiter::Client(conn));
    }

    /// Learner: a client resumes a session this node does not know yet (its creation may
    /// not have reached us): catch up with the leader first, then decide.
    pub(crate) fn resume_after_sync(
        &mut self,
        conn: ConnId,
        session: SessionId,
        timeout_ms: i32,
    ) -> bool {
        let id = self.repl.next_sync_id();
        if self.repl.peer.sync(id).is_err() {
            return false;
        }
        if let Some(client) = self.conns.get_mut(&conn) {
            client.phase = Phase::Connecting;
        }
        self.repl.syncs.insert(
            id,
            SyncWaiter::Resume {
                conn,
                session,
                timeout_ms,
            },
        );
        true
    }

    pub(crate) fn sync_done(&mut self, id: u64) {
        match self.repl.syncs.remove(&id) {
            Some(SyncWaiter::Client(conn)) => {
                if let Some(client) = self.conns.get_mut(&conn) {
                    client.replies.sync_done(id);
                }
                self.pump(conn);
            }
            Some(SyncWaiter::Resume {
                conn,
                session,
                timeout_ms,
            }) => self.finish_resume(conn, session, timeout_ms),
            None => {}
        }
    }

    pub(crate) fn sync_failed(&mut self, id: u64) {
        let conn = match self.repl.syncs.remove(&id) {
            Some(SyncWaiter::Client(conn)) | Some(SyncWaiter::Resume { conn, .. }) => conn,
            None => return,
        };
        self.close_conn(conn);
    }
}
