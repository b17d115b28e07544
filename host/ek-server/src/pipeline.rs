//! Proposals between "appended to the log" and "applied to the tree". With a quorum of one
//! a proposal commits when the local log reports it durable; ZAB will replace that rule
//! with a quorum of acks, keeping the rest of the path.

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
    /// The epoch's counter is exhausted.
    #[error("zxid counter exhausted in this epoch")]
    ZxidExhausted,
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
    /// Starts proposing after `last`: the first zxid handed out is `last.next()`.
    pub(crate) fn new(last: Zxid) -> Pipeline {
        Pipeline {
            proposals: VecDeque::new(),
            bytes: 0,
            last_proposed: last,
            failed: false,
        }
    }

    /// The zxid the next proposal will get.
    pub(crate) fn next_zxid(&self) -> Result<Zxid, ProposeError> {
        if self.failed {
            return Err(ProposeError::LogFailed);
        }
        self.last_proposed.next().ok_or(ProposeError::ZxidExhausted)
    }

    /// Records a proposal whose txn has the zxid from `next_zxid` and encodes to `size`
    /// bytes.
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
