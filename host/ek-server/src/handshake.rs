//! The session handshake (zk-wire.md §3): new sessions go through the log; resumed ones are
//! checked against the replicated session table and the tracker.

use crate::client::{ConnId, Phase};
use crate::core::{now_ms, Core};
use crate::pipeline::Origin;
use crate::session::{password, PASSWORD_LEN};
use ek_jute::{ConnectRequest, ConnectResponse};
use ek_types::{SessionId, Txn, TxnBody};
use std::time::Instant;

impl Core {
    pub(crate) fn connect(&mut self, conn: ConnId, request: ConnectRequest) {
        let last_applied = self.tree.last_zxid();
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        if client.phase != Phase::Handshake {
            return;
        }
        client.read_only_field = request.read_only;
        if request.last_zxid_seen > last_applied {
            // Never let a client go back in time: it moves on to another server.
            tracing::info!(
                peer = %client.peer,
                client_zxid = %request.last_zxid_seen,
                our_zxid = %last_applied,
                "refusing a client that has seen a newer zxid than this node"
            );
            self.close_conn(conn);
            return;
        }
        let max_ms = i64::from(self.config.max_session_timeout_ms).min(i64::from(i32::MAX));
        let min_ms = i64::from(self.config.min_session_timeout_ms).min(max_ms);
        let timeout_ms = i64::from(request.timeout_ms).clamp(min_ms, max_ms) as i32;
        client.timeout_ms = timeout_ms;
        if request.session_id == SessionId::NONE {
            self.create_session(conn, timeout_ms);
        } else {
            self.resume_session(conn, request.session_id, &request.passwd, timeout_ms);
        }
    }

    fn create_session(&mut self, conn: ConnId, timeout_ms: i32) {
        if !self.repl.is_leader() {
            return self.forward_create_session(conn, timeout_ms);
        }
        let zxid = match self.next_zxid() {
            Ok(zxid) => zxid,
            Err(err) => {
                tracing::warn!(%err, "cannot create a session");
                self.close_conn(conn);
                return;
            }
        };
        let session = self.session_ids.next_id();
        let txn = Txn {
            zxid,
            session_id: session,
            cxid: 0,
            time_ms: now_ms(),
            body: TxnBody::CreateSession { timeout_ms },
            digest: None,
        };
        if let Some(client) = self.conns.get_mut(&conn) {
            client.phase = Phase::Connecting;
            client.session = Some(session);
        }
        if !self.propose(txn, Origin::Handshake(conn)) {
            self.close_conn(conn);
            return;
        }
        self.tracker.track(session, timeout_ms, Instant::now());
    }

    fn resume_session(&mut self, conn: ConnId, session: SessionId, passwd: &[u8], timeout_ms: i32) {
        if passwd != password(session).as_slice() {
            tracing::info!(%session, "a client tried to resume a session with a wrong password");
            self.send_connect_response(conn, SessionId::NONE, 0);
            self.close_conn(conn);
            return;
        }
        let known = self.tree.session_timeout(session).is_some() && self.tracker.is_live(session);
        if !known && !self.repl.is_leader() && self.resume_after_sync(conn, session, timeout_ms) {
            // The session may have been created through another node moments ago.
            return;
        }
        self.finish_resume(conn, session, timeout_ms);
    }

    /// Accepts a resumed session if it is live, else tells the client it expired.
    pub(crate) fn finish_resume(&mut self, conn: ConnId, session: SessionId, timeout_ms: i32) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let valid = self.tree.session_timeout(session).is_some() && self.tracker.is_live(session);
        if !valid {
            tracing::info!(%session, "a client tried to resume an expired or unknown session");
            self.send_connect_response(conn, SessionId::NONE, 0);
            self.close_conn(conn);
            return;
        }
        if let Some(old) = self.session_conn.insert(session, conn) {
            if old != conn {
                tracing::info!(%session, "session moved to a new connection; closing the old one");
                if let Some(old_client) = self.conns.get_mut(&old) {
                    old_client.session = None;
                }
                self.close_conn(old);
            }
        }
        // The session now lives by the timeout negotiated on this connection, as the
        // ConnectResponse tells the client.
        self.tracker.track(session, timeout_ms, Instant::now());
        self.touched.insert(session);
        let in_flight = self.pipeline.last_proposed();
        let applied = self.tree.last_zxid();
        if let Some(client) = self.conns.get_mut(&conn) {
            client.session = Some(session);
            client.phase = Phase::Connected;
            if in_flight > applied {
                // The session may have writes in flight from its old connection: its reads
                // here must wait for them (FIFO per session, not per connection).
                client.replies.push(crate::replies::Entry::Held {
                    until: in_flight,
                    frame: Vec::new(),
                });
                self.held.insert(conn);
            }
        }
        self.send_connect_response(conn, session, timeout_ms);
        self.replay_early(conn);
    }

    /// The createSession txn of this connection committed.
    pub(crate) fn session_created(&mut self, conn: ConnId, session: SessionId, timeout_ms: i32) {
        self.tracker.track(session, timeout_ms, Instant::now());
        let Some(client) = self.conns.get_mut(&conn) else {
            // The client left before its session existed; the session expires on its own.
            return;
        };
        client.phase = Phase::Connected;
        self.session_conn.insert(session, conn);
        self.send_connect_response(conn, session, timeout_ms);
        self.replay_early(conn);
    }

    fn send_connect_response(&mut self, conn: ConnId, session: SessionId, timeout_ms: i32) {
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        let passwd = if session == SessionId::NONE {
            vec![0u8; PASSWORD_LEN]
        } else {
            password(session).to_vec()
        };
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id: session,
            passwd,
            read_only: client.read_only_field.map(|_| false),
        };
        ek_jute::encode_connect_response(&mut client.out_buf, &response);
        client.pending_packets += 1;
        self.dirty.push(conn);
    }

    /// Runs the requests a client sent before its ConnectResponse.
    fn replay_early(&mut self, conn: ConnId) {
        let early = match self.conns.get_mut(&conn) {
            Some(client) => std::mem::take(&mut client.early),
            None => return,
        };
        for (request, received) in early {
            self.request(conn, request, received);
        }
    }
}
