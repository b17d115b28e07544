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
    /// The stat as clients see it: ZooKeeper reports `ephemeralOwner` 0 for containers and
    /// TTL nodes (`DataNode.getClientEphemeralOwner`); only sessions show.
    pub fn for_client(mut self) -> Stat {
        if !matches!(
            crate::EphemeralKind::from_owner(self.ephemeral_owner),
            crate::EphemeralKind::Session(_)
        ) {
            self.ephemeral_owner = 0;
        }
        self
    }

    /// The session owning this node if it is a plain ephemeral.
    pub fn ephemeral_session(&self) -> Option<SessionId> {
        match crate::EphemeralKind::from_owner(self.ephemeral_owner) {
            crate::EphemeralKind::Session(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EphemeralKind, SessionId, CONTAINER_OWNER};

    #[test]
    fn clients_see_only_session_owners() {
        let with_owner = |owner| Stat {
            ephemeral_owner: owner,
            ..Stat::default()
        };
        assert_eq!(with_owner(CONTAINER_OWNER).for_client().ephemeral_owner, 0);
        let ttl = EphemeralKind::Ttl(600_000).to_owner();
        assert_eq!(with_owner(ttl).for_client().ephemeral_owner, 0);
        assert_eq!(with_owner(0x1234).for_client().ephemeral_owner, 0x1234);
        assert_eq!(
            with_owner(0x1234).ephemeral_session(),
            Some(SessionId(0x1234))
        );
    }
}
