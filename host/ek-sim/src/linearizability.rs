//! A Porcupine-style linearizability checker (Wing & Gong's search with Lowe's memoisation,
//! as in anishathalye/porcupine) for the simulator's client histories.
//!
//! The model is one znode per key, written with create / setData / delete (version -1) and
//! read once at the end. Keys are independent, so a history is linearizable iff each key's
//! sub-history is (P-compositionality) and each key is checked alone. An operation whose
//! client gave up has an unknown result and returns at infinity: it may take effect at any
//! point after its call, or never (it is then linearized after everything it could affect).

use std::collections::BTreeSet;
use std::fmt;

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// create the node with this value.
    Create(u64),
    /// setData to this value (any version).
    Set(u64),
    /// delete the node (any version).
    Delete,
    /// Read the node: the final state, observed after the run converged.
    Read,
}

/// What the client was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The write succeeded.
    Ok,
    /// create found the node present.
    NodeExists,
    /// setData or delete found the node absent.
    NoNode,
    /// A read saw this value (`None`: absent).
    Value(Option<u64>),
    /// No reply: the write may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The key (independent register).
    pub key: usize,
    /// The client that issued it (for messages only).
    pub client: usize,
    /// The request.
    pub input: Input,
    /// The reply.
    pub output: Output,
    /// Invocation time.
    pub call: u64,
    /// Reply time; ignored (infinity) when `output` is `Unknown`.
    pub ret: u64,
}

/// The model: the node's value, or `None` when absent. Returns the state after `input` if
/// `output` is what the model answers (any answer is fine for an unknown one).
pub fn step(state: Option<u64>, input: Input, output: Output) -> Option<Option<u64>> {
    let (expected, next) = match input {
        Input::Create(value) if state.is_none() => (Output::Ok, Some(value)),
        Input::Create(_) => (Output::NodeExists, state),
        Input::Set(value) if state.is_some() => (Output::Ok, Some(value)),
        Input::Set(_) => (Output::NoNode, state),
        Input::Delete if state.is_some() => (Output::Ok, None),
        Input::Delete => (Output::NoNode, state),
        Input::Read => (Output::Value(state), state),
    };
    (output == Output::Unknown || output == expected).then_some(next)
}

/// Why a history is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// No linearization exists for this key.
    NotLinearizable {
        /// The key.
        key: usize,
        /// Its operations, by call time.
        ops: Vec<Operation>,
    },
    /// The search gave up after its step budget (neither proved nor refuted).
    Inconclusive {
        /// The key.
        key: usize,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotLinearizable { key, ops } => {
                writeln!(f, "key /k{key} has no linearization; its history:")?;
                for op in ops {
                    let ret = if op.output == Output::Unknown {
                        "∞".to_string()
                    } else {
                        op.ret.to_string()
                    };
                    writeln!(
                        f,
                        "  client {} [{}, {ret}] {:?} -> {:?}",
                        op.client, op.call, op.input, op.output
                    )?;
                }
                Ok(())
            }
            CheckError::Inconclusive { key } => {
                write!(f, "key /k{key}: search budget exhausted")
            }
        }
    }
}

/// Checks every key of `history` (each starts absent) with at most `budget` search steps
/// per key. A key without linearization wins over one whose search ran out of budget.
pub fn check(history: &[Operation], budget: u64) -> Result<(), CheckError> {
    let keys: BTreeSet<usize> = history.iter().map(|op| op.key).collect();
    let mut inconclusive = None;
    for key in keys {
        let mut ops: Vec<Operation> = history.iter().filter(|op| op.key == key).copied().collect();
        ops.sort_by_key(|op| op.call);
        match check_key(&ops, budget) {
            Some(true) => {}
            Some(false) => return Err(CheckError::NotLinearizable { key, ops }),
            None => inconclusive = inconclusive.or(Some(CheckError::Inconclusive { key })),
        }
    }
    inconclusive.map_or(Ok(()), Err)
}

const NIL: usize = usize::MAX;

/// The history as Porcupine's doubly linked list of call and return events; index 0 is
/// the head sentinel.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For a call event: its return event. For a return event: NIL.
    matching: Vec<usize>,
    /// The operation of each event.
    op: Vec<usize>,
}

impl Events {
    fn new(ops: &[Operation]) -> Events {
        // (time, return?, op): calls sort before returns at equal times, so operations
        // that touch at one instant count as concurrent (the permissive reading).
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (index, op) in ops.iter().enumerate() {
            let ret = if op.output == Output::Unknown {
                u64::MAX
            } else {
                op.ret.max(op.call)
            };
            order.push((op.call, false, index));
            order.push((ret, true, index));
        }
        order.sort();
        let len = order.len() + 1;
        let mut events = Events {
            next: vec![NIL; len],
            prev: vec![NIL; len],
            matching: vec![NIL; len],
            op: vec![NIL; len],
        };
        let mut call_of = vec![NIL; ops.len()];
        for (position, &(_, is_return, index)) in order.iter().enumerate() {
            let event = position + 1;
            events.prev[event] = position;
            events.next[position] = event;
            events.op[event] = index;
            if is_return {
                events.matching[call_of[index]] = event;
            } else {
                call_of[index] = event;
            }
        }
        events
    }

    fn is_call(&self, event: usize) -> bool {
        self.matching[event] != NIL
    }

    fn unlink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = event;
        if next != NIL {
            self.prev[next] = event;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.matching[call]);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.matching[call]);
        self.relink(call);
    }
}

/// Porcupine's `checkSingle`: `Some(true)` if linearizable, `Some(false)` if not, `None` if
/// the budget ran out.
fn check_key(ops: &[Operation], budget: u64) -> Option<bool> {
    let mut events = Events::new(ops);
    let words = ops.len().div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: BTreeSet<(Vec<u64>, Option<u64>)> = BTreeSet::new();
    let mut calls: Vec<(usize, Option<u64>)> = Vec::new();
    let mut state: Option<u64> = None;
    let mut entry = events.next[0];
    let mut steps = 0u64;
    while events.next[0] != NIL {
        steps += 1;
        if steps > budget {
            return None;
        }
        if events.is_call(entry) {
            let index = events.op[entry];
            let op = &ops[index];
            if let Some(next_state) = step(state, op.input, op.output) {
                linearized[index / 64] |= 1 << (index % 64);
                if cache.insert((linearized.clone(), next_state)) {
                    calls.push((entry, state));
                    state = next_state;
                    events.lift(entry);
                    entry = events.next[0];
                    continue;
                }
                linearized[index / 64] &= !(1 << (index % 64));
            }
            entry = events.next[entry];
        } else {
            // A return whose call cannot be linearized before it: backtrack.
            let Some((call, previous)) = calls.pop() else {
                return Some(false);
            };
            let index = events.op[call];
            linearized[index / 64] &= !(1 << (index % 64));
            state = previous;
            events.unlift(call);
            entry = events.next[call];
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests;
