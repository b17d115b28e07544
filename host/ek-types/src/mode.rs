use crate::SessionId;
use serde::{Deserialize, Serialize};

/// `ephemeralOwner` of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;

/// The largest TTL ZooKeeper accepts: 2^40 - 1 ms.
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// ZooKeeper's `CreateMode`, numbered as its wire `flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreateMode {
    /// 0: a plain node.
    Persistent,
    /// 1: deleted when its session ends.
    Ephemeral,
    /// 2: a plain node with a `%010d` suffix.
    PersistentSequential,
    /// 3: an ephemeral with a `%010d` suffix.
    EphemeralSequential,
    /// 4: deleted by the leader once it had children and has none left.
    Container,
    /// 5: deleted by the leader after `ttl` ms without change or children.
    PersistentWithTtl,
    /// 6: a TTL node with a `%010d` suffix.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// The mode for a wire flag, or `None` (BadArguments) for any other value.
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// The wire flag.
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }

    /// Whether the node gets a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node belongs to a session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the node has a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// What a node's `ephemeralOwner` says about it (ZooKeeper's `EphemeralType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EphemeralKind {
    /// 0: a persistent node.
    Persistent,
    /// A plain ephemeral owned by this session.
    Session(SessionId),
    /// `0x8000000000000000`: a container.
    Container,
    /// `0xFF00_0000_0000_0000 | ttl`: a TTL node with this TTL in ms.
    Ttl(i64),
}

impl EphemeralKind {
    /// Decodes an `ephemeralOwner` value.
    pub fn from_owner(owner: i64) -> EphemeralKind {
        const TTL_MASK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
        const TTL_RESERVED: i64 = 0x00FF_FF00_0000_0000;
        if owner == 0 {
            EphemeralKind::Persistent
        } else if owner == CONTAINER_OWNER {
            EphemeralKind::Container
        } else if owner & TTL_MASK == TTL_MASK && owner & TTL_RESERVED == 0 {
            EphemeralKind::Ttl(owner & TTL_MAX_MS)
        } else {
            EphemeralKind::Session(SessionId(owner))
        }
    }

    /// Encodes the `ephemeralOwner` value.
    pub fn to_owner(self) -> i64 {
        match self {
            EphemeralKind::Persistent => 0,
            EphemeralKind::Session(id) => id.0,
            EphemeralKind::Container => CONTAINER_OWNER,
            EphemeralKind::Ttl(ttl) => (0xFF00_0000_0000_0000_u64 as i64) | (ttl & TTL_MAX_MS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for flags in 0..7 {
            let mode = CreateMode::from_flags(flags).expect("valid flag");
            assert_eq!(mode.flags(), flags);
        }
        assert_eq!(CreateMode::from_flags(7), None);
        assert_eq!(CreateMode::from_flags(-1), None);
    }

    #[test]
    fn owner_kinds_round_trip() {
        for kind in [
            EphemeralKind::Persistent,
            EphemeralKind::Container,
            EphemeralKind::Ttl(1),
            EphemeralKind::Ttl(TTL_MAX_MS),
            EphemeralKind::Session(SessionId(0x0100_0000_0000_0001)),
        ] {
            assert_eq!(EphemeralKind::from_owner(kind.to_owner()), kind);
        }
    }
}
