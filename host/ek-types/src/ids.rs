use serde::{Deserialize, Serialize};
use std::fmt;

/// A ZooKeeper transaction id: epoch in the high 32 bits, counter in the low 32 bits.
///
/// Compared as a signed 64-bit integer, exactly as ZooKeeper compares its `long` zxids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Zxid(pub i64);

impl Zxid {
    /// The zxid before any txn: epoch 0, counter 0.
    pub const ZERO: Zxid = Zxid(0);

    /// Builds a zxid from an epoch and a counter.
    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }

    /// The epoch: the high 32 bits.
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The counter within the epoch: the low 32 bits.
    pub fn counter(self) -> u32 {
        (self.0 & 0xffff_ffff) as u32
    }

    /// The next zxid in the same epoch, or `None` when the counter would reach `0xffffffff`
    /// (the leader must then abdicate, ZOOKEEPER-1277).
    pub fn next(self) -> Option<Zxid> {
        let counter = self.counter();
        if counter >= 0xffff_fffe {
            return None;
        }
        Some(Zxid::new(self.epoch(), counter + 1))
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A client session id. The top byte is the id of the server that created it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct SessionId(pub i64);

impl SessionId {
    /// "No session": used by txns that no client issued (the leader's reaper).
    pub const NONE: SessionId = SessionId(0);
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_parts_round_trip() {
        let zxid = Zxid::new(3, 7);
        assert_eq!(zxid.0, 0x3_0000_0007);
        assert_eq!((zxid.epoch(), zxid.counter()), (3, 7));
        assert_eq!(format!("{zxid}"), "0x300000007");
        assert_eq!(zxid.next(), Some(Zxid::new(3, 8)));
        assert_eq!(Zxid::new(1, 0xffff_fffe).next(), None);
    }
}
