//! Commit: apply committed txns to the tree in zxid order, fire watches, answer the clients
//! that wait for them, and take snapshots as the log grows.

use crate::client::ConnId;
use crate::core::Core;
use crate::pipeline::{Origin, Proposal};
use crate::replies::WaitKey;
use ek_jute::Response;
use ek_types::{ErrorCode, OpCode, OpResult, TxnBody, Zxid};

impl Core {
    /// After a round of commits: replies held for what just applied go out, and a snapshot
    /// starts if the log has grown enough.
    pub(crate) fn after_commits(&mut self) {
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

    /// Who waits here for a txn this node did not propose: the session's connection, if
    /// it has a forwarded request with the txn's xid.
    fn forwarded_waiter(&self, txn: &ek_types::Txn) -> Option<(ConnId, WaitKey, bool)> {
        let conn = *self.session_conn.get(&txn.session_id)?;
        let key = WaitKey::Forwarded(txn.cxid);
        self.conns.get(&conn)?.replies.waiting(key)?;
        let close_after = matches!(txn.body, TxnBody::CloseSession { .. });
        Some((conn, key, close_after))
    }

    /// Applies a committed txn to the tree, fires its watches and answers who waits.
    pub(crate) fn apply(&mut self, proposal: Proposal) {
        let Proposal { txn, origin, .. } = proposal;
        let zxid = txn.zxid;
        let waiter = match origin {
            Origin::Client(conn) => Some((conn, WaitKey::Zxid(zxid), false)),
            Origin::Close(conn) => Some((conn, WaitKey::Zxid(zxid), true)),
            Origin::Handshake(_) | Origin::Expiry | Origin::Reaper => None,
            Origin::Remote | Origin::Replicated => {
                if !self.forwarded.is_empty() {
                    self.forwarded.remove(&(txn.session_id, txn.cxid));
                }
                self.forwarded_waiter(&txn)
            }
        };
        let applied = match self.tree.apply(&txn) {
            Ok(applied) => applied,
            Err(err) => {
                // Prep validated this txn against the same state, so this is a bug or a
                // corrupt tree: refuse to serve divergent data.
                self.prep.applied(zxid);
                self.answer(waiter, Err(ErrorCode::SystemError));
                self.diverge(&format!("committed txn {zxid} does not apply: {err}"));
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
        if !self.subscribers.is_empty() {
            self.publish_changes(zxid, &applied.events);
        }
        match &txn.body {
            TxnBody::CloseSession { .. } => {
                self.tracker.remove(txn.session_id);
                self.touched.remove(&txn.session_id);
                if let Some(conn) = self.session_conn.remove(&txn.session_id) {
                    if waiter.map(|(c, _, _)| c) != Some(conn) {
                        self.close_conn(conn);
                    }
                }
            }
            TxnBody::CreateSession { timeout_ms } => {
                let handshake = match origin {
                    Origin::Handshake(conn) => Some(conn),
                    _ => self.pending_handshakes.remove(&txn.session_id),
                };
                match handshake {
                    Some(conn) => self.session_created(conn, txn.session_id, *timeout_ms),
                    None => {
                        self.tracker
                            .track(txn.session_id, *timeout_ms, std::time::Instant::now())
                    }
                }
                return;
            }
            TxnBody::Error { code, results } => {
                let result = if *code == ErrorCode::Ok {
                    Ok((true, results.clone()))
                } else {
                    Err(*code)
                };
                self.answer(waiter, result);
                return;
            }
            _ => {}
        }
        let is_multi = matches!(txn.body, TxnBody::Multi(_));
        self.answer(waiter, Ok((is_multi, applied.results)));
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

    /// Completes the reply entry of `waiter` (a connection, how its entry is found, and
    /// whether the connection closes after the reply).
    fn answer(
        &mut self,
        waiter: Option<(ConnId, WaitKey, bool)>,
        result: Result<(bool, Vec<OpResult>), ErrorCode>,
    ) {
        let Some((conn, key, close_after)) = waiter else {
            return;
        };
        let last = self.tree.last_zxid();
        let Some(client) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut frame = Vec::new();
        let Some((xid, opcodes)) = client.replies.waiting(key) else {
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
        if let Some((xid, started, op)) = client.replies.complete(key, frame, close_after) {
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
