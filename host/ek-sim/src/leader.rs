//! The leader side of a simulated server: ZooKeeper's `PrepRequestProcessor` in front of
//! `Peer::propose`. An established leader whose tree holds the initial history of its
//! epoch turns queued client writes into `ek_types::Txn`s with [`Prep`], encodes them with
//! postcard as the real server does, and proposes them.

use crate::check::Violation;
use crate::node::outcome;
use crate::sim::Sim;
use crate::trace::TraceEvent;
use ek_tree::{Caller, DataTree, Prep, PrepContext};
use ek_types::{ErrorCode, SessionId, TreeDigest, Txn, TxnBody, WriteOp, Zxid};
use ek_zab::{Role, ServerId};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A client write as a follower forwards it to the leader (the `Peer::forward` payload).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SimRequest {
    pub(crate) session: i64,
    pub(crate) cxid: i32,
    pub(crate) op: WriteOp,
}

/// What a server keeps while it is an established leader.
pub(crate) struct Leading {
    pub(crate) epoch: u32,
    /// The end of the initial history of the epoch: the tree must have applied it before
    /// prep validates against the tree.
    pub(crate) base: Zxid,
    pub(crate) prep: Prep,
    pub(crate) queue: VecDeque<SimRequest>,
}

/// Prep refusals the workload can cause (flat keys under `/`, version -1).
fn expected_refusal(op: &WriteOp, code: ErrorCode) -> bool {
    matches!(
        (op, code),
        (WriteOp::Create { .. }, ErrorCode::NodeExists)
            | (WriteOp::SetData { .. }, ErrorCode::NoNode)
            | (WriteOp::Delete { .. }, ErrorCode::NoNode)
    )
}

/// Preps `request` as the txn `zxid`. A refused write still takes its place in the order,
/// as an error txn, so that its reply comes after everything proposed before it.
fn prep_txn(
    leading: &mut Leading,
    tree: &DataTree,
    zxid: Zxid,
    time_ms: i64,
    request: &SimRequest,
) -> Result<Txn, Violation> {
    let caller = Caller {
        session_id: SessionId(request.session),
        ids: &[],
    };
    let ctx = PrepContext {
        zxid,
        time_ms,
        max_data_bytes: 1 << 20,
    };
    let body = match leading.prep.write(tree, &caller, &request.op, &ctx) {
        Ok(body) => body,
        Err(code) if expected_refusal(&request.op, code) => TxnBody::Error {
            code,
            results: Vec::new(),
        },
        Err(code) => {
            return Err(Violation::new(
                "simulated server",
                format!("prep refused {:?} with {code:?}", request.op),
            ))
        }
    };
    Ok(Txn {
        zxid,
        session_id: caller.session_id,
        cxid: request.cxid,
        time_ms,
        body,
        digest: Some(TreeDigest {
            zxid: tree.last_zxid(),
            value: tree.digest(),
        }),
    })
}

impl Sim {
    pub(crate) fn on_established(&mut self, id: ServerId, epoch: u32) -> Result<(), Violation> {
        let node = self.node_mut(id);
        let Some(peer) = node.peer.as_ref() else {
            return Ok(());
        };
        if peer.current_epoch() != epoch {
            return Err(Violation::new(
                "§10.8 epoch monotonicity",
                format!(
                    "leader {id} established epoch {epoch} with currentEpoch {}",
                    peer.current_epoch()
                ),
            ));
        }
        let base = peer.last_logged();
        self.checker.on_established(id, epoch, base)?;
        let node = self.node_mut(id);
        node.leading = Some(Leading {
            epoch,
            base,
            prep: Prep::new(),
            queue: VecDeque::new(),
        });
        self.stats.epochs += 1;
        Ok(())
    }

    /// An established leader whose tree holds its initial history preps and proposes the
    /// queued writes. Returns whether it proposed anything.
    ///
    /// The zxid is predicted before prep (prep records pending changes under it): the
    /// txn after the last logged one in this epoch, `(epoch, 1)` for the first. ek-zab's
    /// `propose` assigns exactly that (`last_proposed.next()`, with `last_proposed` starting
    /// at `(epoch, 0)` and every proposal appended to the log), and the prediction is
    /// checked against what `propose` returns.
    pub(crate) fn leader_pump(&mut self, id: ServerId) -> Result<bool, Violation> {
        let now_ms = self.now.as_ms();
        let node = self
            .nodes
            .get_mut(&id)
            .expect("server ids come from the node map");
        let (Some(peer), Some(leading)) = (node.peer.as_mut(), node.leading.as_mut()) else {
            return Ok(false);
        };
        if peer.role() != Role::Leading
            || !peer.is_established()
            || node.tree.last_zxid() < leading.base
        {
            return Ok(false);
        }
        let mut proposed = Vec::new();
        while let Some(request) = leading.queue.pop_front() {
            let zxid = Zxid::new(leading.epoch, 0)
                .max(peer.last_logged())
                .next()
                .ok_or_else(|| Violation::new("simulated server", "zxid counter exhausted"))?;
            let txn = prep_txn(leading, &node.tree, zxid, now_ms as i64, &request)?;
            let data = postcard::to_allocvec(&txn)
                .map_err(|e| Violation::new("simulated server", format!("encode: {e}")))?;
            self.checker
                .on_propose(id, leading.epoch, zxid, &data, node.tree.last_zxid())?;
            let assigned = peer.propose(data).map_err(|e| {
                Violation::new(
                    "simulated server",
                    format!("leader {id} cannot propose: {e}"),
                )
            })?;
            if assigned != zxid {
                return Err(Violation::new(
                    "zxid prediction",
                    format!("leader {id} predicted {zxid}, propose assigned {assigned}"),
                ));
            }
            let key = (request.session, request.cxid);
            let early = if self.cfg.knobs.reply_before_commit {
                node.waiting.remove(&key)
            } else {
                None
            };
            proposed.push((zxid, key, early, outcome(&txn)?));
        }
        let any = !proposed.is_empty();
        for (zxid, (session, cxid), early, output) in proposed {
            self.stats.proposed += 1;
            self.record(TraceEvent::Propose(id, zxid, session, cxid));
            if let Some(op) = early {
                self.complete(op, output);
            }
        }
        Ok(any)
    }
}
