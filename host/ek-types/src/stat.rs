use crate::{SessionId, Zxid};
use serde::{Deserialize, Serialize};

/// The metadata of a znode, field for field as ZooKeeper's jute `Stat` (68 bytes on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stat {
    /// Zxid of the txn that created the node.
    pub czxid: Zxid,
    /// Zxid of the txn that last changed the node's data.
    pub mzxid: Zxid,
    /// Creation time, ms since the epoch, as stamped by the leader.
    pub ctime: i64,
    /// Last data change time, ms since the epoch, as stamped by the leader.
    pub mtime: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child creates and deletes.
    pub cversion: i32,
    /// Number of ACL changes.
    pub aversion: i32,
    /// Owning session of an ephemeral node, the container marker, the TTL encoding, or 0.
    pub ephemeral_owner: i64,
    /// Length of the data in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// Zxid of the txn that last created or deleted a child.
    pub pzxid: Zxid,
}

impl Stat {
    /// The session owning this node if it is a plain ephemeral.
    pub fn ephemeral_session(&self) -> Option<SessionId> {
        match crate::EphemeralKind::from_owner(self.ephemeral_owner) {
            crate::EphemeralKind::Session(id) => Some(id),
            _ => None,
        }
    }
}
