//! The end of a run: once converged, every replica must hold the same tree, every
//! acknowledged write must be in the committed history exactly once with the outcome its
//! client was told, and the client history must be linearizable.

use crate::check::Violation;
use crate::client::path;
use crate::linearizability::{self, CheckError, Input, Operation, Output};
use crate::node::outcome;
use crate::sim::Sim;
use ek_types::Txn;
use std::collections::BTreeMap;

/// Search steps per key for the black-box check (unknown outcomes may or may not have
/// happened); beyond it the key counts as inconclusive.
const OPEN_BUDGET: u64 = 200_000;
/// Search steps per key once outcomes are resolved from the committed log.
const RESOLVED_BUDGET: u64 = 2_000_000;

/// What the final checks found besides violations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Keys whose black-box search ran out of budget (neither proved nor refuted).
    pub inconclusive_keys: u64,
    /// Writes with an unknown outcome that the committed history shows took effect.
    pub unknown_applied: u64,
    /// Writes with an unknown outcome that never took effect.
    pub unknown_lost: u64,
}

impl Sim {
    /// Every replica holds the same tree at the same last zxid.
    pub(crate) fn check_replicas(&self) -> Result<(u64, ek_types::Zxid), Violation> {
        let mut expected = None;
        for (id, node) in &self.nodes {
            let state = (node.tree.digest(), node.tree.last_zxid());
            if node.tree.recompute_digest() != state.0 {
                return Err(Violation::new(
                    "§10.12 state-machine equality",
                    format!("node {id}: incremental digest differs from a recomputation"),
                ));
            }
            match expected {
                None => expected = Some(state),
                Some(first) if first != state => {
                    return Err(Violation::new(
                        "§10.12 state-machine equality",
                        format!("after convergence node {id} has (digest {:#x}, {}), another ({:#x}, {})", state.0, state.1, first.0, first.1),
                    ));
                }
                Some(_) => {}
            }
        }
        let (digest, last) = expected.unwrap_or_default();
        if self.checker.delivered().last().copied().unwrap_or_default() != last {
            return Err(Violation::new(
                "§10.11 durability",
                format!(
                    "replicas end at {last}, but {:?} was delivered",
                    self.checker.delivered().last()
                ),
            ));
        }
        Ok((digest, last))
    }

    /// The committed history: (session, cxid) to the outcome of its txn.
    fn committed_outcomes(&self) -> Result<BTreeMap<(i64, i32), Output>, Violation> {
        let mut outcomes = BTreeMap::new();
        for &zxid in self.checker.delivered() {
            let data = self.checker.proposal(zxid).unwrap_or_default();
            let txn: Txn = postcard::from_bytes(data)
                .map_err(|e| Violation::new("§10.1 integrity", format!("{zxid}: {e}")))?;
            let key = (txn.session_id.0, txn.cxid);
            if outcomes.insert(key, outcome(&txn)?).is_some() {
                return Err(Violation::new(
                    "exactly once",
                    format!(
                        "request (session {}, cxid {}) committed twice, again at {zxid}",
                        key.0, key.1
                    ),
                ));
            }
        }
        Ok(outcomes)
    }

    /// §10.11 and §10.14: acknowledged writes are in the history with the outcome their
    /// client saw, nothing was invented, and the history is linearizable.
    pub(crate) fn check_history(&self) -> Result<Verdicts, Violation> {
        let outcomes = self.committed_outcomes()?;
        let invoked: BTreeMap<(i64, i32), usize> = self
            .history
            .iter()
            .enumerate()
            .map(|(index, op)| ((op.session, op.cxid), index))
            .collect();
        if let Some(key) = outcomes.keys().find(|key| !invoked.contains_key(key)) {
            return Err(Violation::new(
                "§10.1 integrity",
                format!(
                    "committed txn for (session {}, cxid {}), never invoked",
                    key.0, key.1
                ),
            ));
        }
        let mut verdicts = Verdicts::default();
        for (index, op) in self.history.iter().enumerate() {
            let committed = outcomes.get(&(op.session, op.cxid));
            match (op.output, committed) {
                (Some(told), Some(&happened)) if told != happened => {
                    return Err(Violation::new(
                        "§10.14 client guarantees",
                        format!("op#{index} was answered {told:?}, its txn says {happened:?}"),
                    ));
                }
                (Some(told), None) => {
                    return Err(Violation::new(
                        "§10.11 durability",
                        format!("op#{index} ({} {:?}) was answered {told:?} but is not in the committed history", path(op.key), op.input),
                    ));
                }
                (None, Some(_)) => verdicts.unknown_applied += 1,
                (None, None) => verdicts.unknown_lost += 1,
                _ => {}
            }
        }
        self.check_linearizable(&outcomes, &mut verdicts)?;
        Ok(verdicts)
    }

    fn final_reads(&self, at: u64) -> Result<Vec<Operation>, Violation> {
        let tree = self.nodes.values().next().map(|node| &node.tree);
        let mut reads = Vec::new();
        for key in 0..self.cfg.keys {
            let value = match tree.and_then(|tree| tree.node(&path(key))) {
                None => None,
                Some(node) => {
                    let bytes: [u8; 8] =
                        node.data().unwrap_or_default().try_into().map_err(|_| {
                            Violation::new(
                                "§10.14 client guarantees",
                                format!("{} holds data no client wrote", path(key)),
                            )
                        })?;
                    Some(u64::from_le_bytes(bytes))
                }
            };
            reads.push(Operation {
                key,
                client: usize::MAX,
                input: Input::Read,
                output: Output::Value(value),
                call: at + 1,
                ret: at + 2,
            });
        }
        Ok(reads)
    }

    /// Two searches: black-box (unknown outcomes may or may not have happened), and with
    /// outcomes resolved from the committed log (a write nobody heard back from either is
    /// in the log, with its outcome, before the end, or never happened).
    fn check_linearizable(
        &self,
        outcomes: &BTreeMap<(i64, i32), Output>,
        verdicts: &mut Verdicts,
    ) -> Result<(), Violation> {
        let end = self.now.as_ms();
        let reads = self.final_reads(end)?;
        let mut open = Vec::new();
        let mut resolved = Vec::new();
        for op in &self.history {
            let mut operation = Operation {
                key: op.key,
                client: op.client,
                input: op.input,
                output: op.output.unwrap_or(Output::Unknown),
                call: op.call_ms,
                ret: op.ret_ms.unwrap_or(u64::MAX),
            };
            open.push(operation);
            if op.output.is_none() {
                let Some(&happened) = outcomes.get(&(op.session, op.cxid)) else {
                    continue;
                };
                operation.output = happened;
                operation.ret = end;
            }
            resolved.push(operation);
        }
        open.extend(&reads);
        resolved.extend(&reads);
        let violation = |error: CheckError, how: &str| {
            Violation::new("§10.14 linearizable writes", format!("{how}: {error}"))
        };
        match linearizability::check(&resolved, RESOLVED_BUDGET) {
            Ok(()) => {}
            Err(CheckError::Inconclusive { .. }) => verdicts.inconclusive_keys += 1,
            Err(error) => return Err(violation(error, "outcomes resolved from the log")),
        }
        match linearizability::check(&open, OPEN_BUDGET) {
            Ok(()) => Ok(()),
            Err(CheckError::Inconclusive { .. }) => {
                verdicts.inconclusive_keys += 1;
                Ok(())
            }
            Err(error) => Err(violation(error, "black-box")),
        }
    }
}
