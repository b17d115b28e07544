//! This leader's proposals between "handed to ZAB" and "applied to the tree", with who
//! waits for each. ZAB delivers committed txns in zxid order, so the pipeline's front is
//! the next to commit; txns ZAB delivers that are not here (a learner's, or an earlier
//! leader's) carry no local waiter.

use crate::client::ConnId;
use ek_types::{Txn, Zxid};
use std::collections::VecDeque;

/// Who waits for a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client write: its connection has a `Waiting` reply entry for the zxid.
    Client(ConnId),
    /// A new session: the connection gets its ConnectResponse on commit.
    Handshake(ConnId),
    /// An explicit closeSession: reply, then close the connection.
    Close(ConnId),
    /// The tracker expired the session.
    Expiry,
    /// Leader: a learner's request; the learner answers its client.
    Remote,
    /// A txn this node did not propose: matched to a local client by session and xid.
    Replicated,
    /// The reaper removes an empty container or an expired TTL node.
    Reaper,
}

pub(crate) struct Proposal {
    pub(crate) txn: Txn,
    pub(crate) origin: Origin,
    /// Encoded size in the log.
    pub(crate) size: usize,
}

/// Why a proposal was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProposeError {
    /// The log failed earlier; nothing more is acknowledged.
    #[error("the txn log has failed")]
    LogFailed,
    /// ZAB cannot propose (not the leader, not established, counter exhausted).
    #[error(transparent)]
    Zab(ek_zab::ProposeError),
}

/// The ordered proposals not yet applied.
pub(crate) struct Pipeline {
    proposals: VecDeque<Proposal>,
    /// Encoded bytes of the proposals in flight.
    bytes: usize,
    last_proposed: Zxid,
    failed: bool,
}

impl Pipeline {
    /// Empty, with `last` as the last proposed zxid.
    pub(crate) fn new(last: Zxid) -> Pipeline {
        Pipeline {
            proposals: VecDeque::new(),
            bytes: 0,
            last_proposed: last,
            failed: false,
        }
    }

    /// Records a proposal ZAB accepted with its txn's zxid, encoding to `size` bytes.
    pub(crate) fn push(&mut self, proposal: Proposal) {
        self.last_proposed = proposal.txn.zxid;
        self.bytes += proposal.size;
        self.proposals.push_back(proposal);
    }

    /// Encoded bytes in flight.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes the proposals up to and including `zxid`, in order.
    pub(crate) fn take_through(&mut self, zxid: Zxid) -> Vec<Proposal> {
        let count = self
            .proposals
            .iter()
            .take_while(|proposal| proposal.txn.zxid <= zxid)
            .count();
        let taken: Vec<Proposal> = self.proposals.drain(..count).collect();
        self.bytes -= taken.iter().map(|proposal| proposal.size).sum::<usize>();
        taken
    }

    /// Takes the proposal of `zxid` if it is at the front, dropping any older ones (they
    /// can no longer commit under this leader's watch).
    pub(crate) fn take_front(&mut self, zxid: Zxid) -> Option<Proposal> {
        while let Some(front) = self.proposals.front() {
            if front.txn.zxid > zxid {
                return None;
            }
            let proposal = self.proposals.pop_front()?;
            self.bytes -= proposal.size;
            if proposal.txn.zxid == zxid {
                return Some(proposal);
            }
        }
        None
    }

    pub(crate) fn len(&self) -> usize {
        self.proposals.len()
    }

    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    pub(crate) fn has_failed(&self) -> bool {
        self.failed
    }

    pub(crate) fn last_proposed(&self) -> Zxid {
        self.last_proposed
    }
}
