use crate::{Acl, ErrorCode, OpResult, SessionId, Zxid};
use serde::{Deserialize, Serialize};

/// A transaction: one committed change, with everything needed to apply it
/// deterministically. The leader fixes the zxid, the time, session ids, sequence suffixes
/// and the list of ephemerals a closing session deletes, so `DataTree::apply` reads no
/// clock and makes no choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Position in the total order.
    pub zxid: Zxid,
    /// Session that issued it (`SessionId::NONE` for the leader's own reaping).
    pub session_id: SessionId,
    /// The client's xid of the request, for matching replies.
    pub cxid: i32,
    /// Leader's wall clock in ms since the Unix epoch when it made the txn.
    pub time_ms: i64,
    /// What changes.
    pub body: TxnBody,
    /// The leader's tree digest after it applied an earlier txn, stamped when it made this
    /// one. A replica that applied the same txn compares its own digest at that zxid and
    /// stops serving on a mismatch, rather than serve divergent data.
    pub digest: Option<TreeDigest>,
}

/// The digest of a whole data tree right after applying the txn `zxid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeDigest {
    /// The last txn the tree had applied.
    pub zxid: Zxid,
    /// `DataTree::digest()` at that point.
    pub value: u64,
}

/// What a txn changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnBody {
    /// A new session with its negotiated timeout; the id is `Txn::session_id`.
    CreateSession {
        /// Negotiated session timeout in ms.
        timeout_ms: i32,
    },
    /// A session ends: its ephemerals (listed by the leader) are deleted, then it is forgotten.
    CloseSession {
        /// Ephemeral nodes to delete, in order.
        paths_to_delete: Vec<String>,
    },
    /// A node is created under an existing parent.
    Create {
        /// Final path, with any sequence suffix.
        path: String,
        /// Initial data; `None` is null data, distinct from empty.
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        /// ACL, with `auth` entries already expanded.
        acl: Vec<Acl>,
        /// `ephemeralOwner`: 0, the owning session, the container marker or the TTL encoding.
        ephemeral_owner: i64,
    },
    /// A node without children is deleted (client delete, container or TTL reaping).
    Delete {
        /// Node to delete.
        path: String,
    },
    /// A node's data is replaced.
    SetData {
        /// Node to change.
        path: String,
        /// New data; `None` is null data, distinct from empty.
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        /// The node's version after the change.
        version: i32,
    },
    /// A node's ACL is replaced.
    SetAcl {
        /// Node to change.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// The node's ACL version after the change.
        version: i32,
    },
    /// A version check inside a multi; changes nothing.
    Check {
        /// Node checked.
        path: String,
    },
    /// Several ops applied atomically under one zxid.
    Multi(Vec<TxnBody>),
    /// A request the leader refused: it changes nothing, but it takes its place in the
    /// total order so that the server that forwarded the request answers it in order.
    Error {
        /// The error of a single-op request (`Ok` for a failed multi, whose per-op errors
        /// are in `results`).
        code: ErrorCode,
        /// A failed multi's results in ZooKeeper's layout; empty for a single op.
        results: Vec<OpResult>,
    },
}
