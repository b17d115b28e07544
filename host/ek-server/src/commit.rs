//! Commit: apply committed txns to the tree in zxid order, fire watches, answer the clients
//! that wait for them, and take snapshots as the log grows.

use crate::client::ConnId;
use crate::core::Core;
use crate::pipeline::{Origin, Proposal};
use ek_jute::Response;
use ek_types::{ErrorCode, OpCode, OpResult, TxnBody, Zxid};

impl Core {
    /// Everything up to `zxid` is durable: with a quorum of one, that commits it.
    pub(crate) fn commit_through(&mut self, zxid: Zxid) {
        for proposal in self.pipeline.take_through(zxid) {
            if self.pipeline.has_failed() {
                // Later txns were prepped on the assumption that the failed one applied.
                self.answer(
                    proposal.origin,
                    proposal.txn.zxid,
                    Err(ErrorCode::SystemError),
                );
                continue;
            }
            self.apply(proposal);
        }
        let held: Vec<ConnId> = self.held.iter().copied().collect();
        for conn in held {
            self.pump(conn);
            let still_held = self
                .conns
                .get(&conn)
                .is_some_and(|client| client.replies.has_held());
            if !still_held {
                self.held.remove(&conn);
            }
        }
        self.maybe_snapshot();
    }

    fn apply(&mut self, proposal: Proposal) {
        let Proposal { txn, origin, .. } = proposal;
        let zxid = txn.zxid;
        let applied = match self.tree.apply(&txn) {
            Ok(applied) => applied,
            Err(err) => {
                // Prep validated this txn against the same state, so this is a bug or a
                // corrupt tree: refuse to serve divergent data.
                tracing::error!(%zxid, %err, "a committed txn does not apply; stopping writes");
                self.prep.applied(zxid);
                self.log_failed(&format!("txn {zxid} failed to apply: {err}"));
                self.answer(origin, zxid, Err(ErrorCode::SystemError));
                return;
            }
        };
        self.prep.applied(zxid);
        self.snapshots.txns_since += 1;
        let mut fired = Vec::new();
        for (event, path) in &applied.events {
            self.watches.trigger(zxid.0, *event, path, &mut fired);
        }
        for (watcher, event) in fired {
            self.notify(ConnId(watcher.0), &event);
        }
        if let TxnBody::CloseSession { .. } = txn.body {
            self.tracker.remove(txn.session_id);
            if let Some(conn) = self.session_conn.remove(&txn.session_id) {
                if !matches!(origin, Origin::Close(c) if c == conn) {
                    self.close_conn(conn);
                }
            }
        }
        if let TxnBody::CreateSession { timeout_ms } = txn.body {
            if let Origin::Handshake(conn) = origin {
                self.session_created(conn, txn.session_id, timeout_ms);
            } else {
                self.tracker
                    .track(txn.session_id, timeout_ms, std::time::Instant::now());
            }
            return;
        }
        let is_multi = matches!(txn.body, TxnBody::Multi(_));
        self.answer(origin, zxid, Ok((is_multi, applied.results)));
    }

    /// Writes a watch notification (xid -1) to a connection, ahead of any reply that
    /// follows it in this round.
    pub(crate) fn notify(&mut self, conn: ConnId, event: &ek_watch::WatchEvent) {
        if let Some(client) = self.conns.get_mut(&conn) {
            ek_jute::encode_notification(
                &mut client.out_buf,
                Zxid(event.zxid),
                event.event,
                ek_types::STATE_SYNC_CONNECTED,
                &event.path,
            );
            client.pending_packets += 1;
            self.dirty.push(conn);
        }
    }

    /// Completes the reply entry that waits for `zxid`.
    fn answer(
        &mut self,
        origin: Origin,
        zxid: Zxid,
        result: Result<(bool, Vec<OpResult>), ErrorCode>,
    ) {
        let (conn, close_after) = match origin {
            Origin::Client(conn) => (conn, false),
            Origin::Close(conn) => (conn, true),
            Origin::Handshake(conn) => {
                self.close_conn(conn);
                return;
            }
            Origin::Expiry | Origin::Reaper => return,
        };
        let last = self.tree.last_zxid();
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut frame = Vec::new();
        let Some((xid, opcodes)) = client.replies.waiting(zxid) else {
            return;
        };
        let result = result.map(|(is_multi, mut results)| {
            // The tree does not know which create opcode a client used; the request does.
            for (result, opcode) in results.iter_mut().zip(opcodes) {
                match result {
                    OpResult::Create {
                        opcode: created,
                        stat,
                        ..
                    } => {
                        *created = *opcode;
                        *stat = stat.for_client();
                    }
                    OpResult::SetData { stat } | OpResult::SetAcl { stat } => {
                        *stat = stat.for_client();
                    }
                    _ => {}
                }
            }
            (is_multi, results)
        });
        match &result {
            Ok((true, results)) => {
                let response = Response::Multi(results);
                ek_jute::encode_reply(&mut frame, xid, last, ErrorCode::Ok, &response)
            }
            Ok((false, results)) => {
                let response = single_response(results);
                ek_jute::encode_reply(&mut frame, xid, last, ErrorCode::Ok, &response)
            }
            Err(err) => ek_jute::encode_reply(&mut frame, xid, last, *err, &Response::Empty),
        };
        if let Some((xid, started, op)) = client.replies.complete(zxid, frame, close_after) {
            let elapsed = started.elapsed();
            client.stats.record(op, xid, last.0, elapsed);
            self.metrics.observe_request(op, elapsed);
        }
        self.pump(conn);
    }
}

/// The reply record of a single-op write.
fn single_response(results: &[OpResult]) -> Response<'_> {
    match results.first() {
        Some(OpResult::Create { opcode, path, stat }) => {
            if *opcode == OpCode::Create {
                Response::Create { path }
            } else {
                Response::Create2 { path, stat: *stat }
            }
        }
        Some(OpResult::SetData { stat }) | Some(OpResult::SetAcl { stat }) => Response::Stat(*stat),
        _ => Response::Empty,
    }
}
