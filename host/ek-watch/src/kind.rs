//! Watch kinds, the `WatcherType` of check/removeWatches, and the bit sets that say which
//! kinds an event fires.

use ek_types::EventType;
use std::fmt;

/// Identifies whoever receives notifications: one per client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatcherId(pub u64);

/// The kind of one registered watch.
///
/// ZooKeeper keeps data and exist watches in the same table; edgekeeper keeps them apart
/// because `setWatches` treats them differently, and they fire on the same events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    /// One-shot data watch (`getData` or `exists` on an existing node).
    Data,
    /// One-shot exist watch (`exists` on a missing node).
    Exist,
    /// One-shot child watch (`getChildren`, `getChildren2`).
    Child,
    /// `addWatch` mode PERSISTENT (0): data and child watch on the path that stays.
    Persistent,
    /// `addWatch` mode PERSISTENT_RECURSIVE (1): data watch on the path and every descendant
    /// that stays.
    PersistentRecursive,
}

impl WatchKind {
    /// Every kind, in declaration order.
    pub const ALL: [WatchKind; 5] = [
        WatchKind::Data,
        WatchKind::Exist,
        WatchKind::Child,
        WatchKind::Persistent,
        WatchKind::PersistentRecursive,
    ];

    /// The kind for an `AddWatchRequest.mode`: PERSISTENT 0, PERSISTENT_RECURSIVE 1.
    pub fn from_add_watch_mode(mode: i32) -> Option<WatchKind> {
        match mode {
            0 => Some(WatchKind::Persistent),
            1 => Some(WatchKind::PersistentRecursive),
            _ => None,
        }
    }

    /// Whether the watch is removed when it fires.
    pub fn is_one_shot(self) -> bool {
        KindSet::ONE_SHOT.contains(self)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// `WatcherType` of `checkWatches` (17) and `removeWatches` (18), numbered as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum WatcherType {
    /// 1: one-shot child watches.
    Children = 1,
    /// 2: one-shot data and exist watches.
    Data = 2,
    /// 3: every kind, persistent and recursive ones included (as ZooKeeper 3.8 and 3.9 do).
    Any = 3,
    /// 4: persistent watches.
    Persistent = 4,
    /// 5: persistent recursive watches.
    PersistentRecursive = 5,
}

impl WatcherType {
    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The watcher type for a wire value; `None` for an unknown value.
    pub fn from_code(code: i32) -> Option<WatcherType> {
        Some(match code {
            1 => WatcherType::Children,
            2 => WatcherType::Data,
            3 => WatcherType::Any,
            4 => WatcherType::Persistent,
            5 => WatcherType::PersistentRecursive,
            _ => return None,
        })
    }

    /// The kinds this type selects.
    pub(crate) fn kinds(self) -> KindSet {
        match self {
            WatcherType::Children => KindSet::of(&[WatchKind::Child]),
            WatcherType::Data => KindSet::of(&[WatchKind::Data, WatchKind::Exist]),
            WatcherType::Any => KindSet::ALL,
            WatcherType::Persistent => KindSet::of(&[WatchKind::Persistent]),
            WatcherType::PersistentRecursive => KindSet::of(&[WatchKind::PersistentRecursive]),
        }
    }
}

/// A set of watch kinds as a bit mask; one per (watcher, path).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KindSet(u8);

impl KindSet {
    pub(crate) const EMPTY: KindSet = KindSet(0);
    pub(crate) const ALL: KindSet = KindSet(0b1_1111);
    pub(crate) const ONE_SHOT: KindSet = KindSet(0b0_0111);

    pub(crate) fn of(kinds: &[WatchKind]) -> KindSet {
        KindSet(kinds.iter().fold(0, |bits, kind| bits | kind.bit()))
    }

    /// The kinds registered on exactly the event's path that the event fires.
    pub(crate) fn fired_on_path(event: EventType) -> KindSet {
        use WatchKind::*;
        match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                KindSet::of(&[Data, Exist, Persistent, PersistentRecursive])
            }
            EventType::NodeDeleted => KindSet::ALL,
            EventType::NodeChildrenChanged => KindSet::of(&[Child, Persistent]),
            EventType::None => KindSet::EMPTY,
        }
    }

    /// Whether recursive watches on ancestors of the event's path fire.
    pub(crate) fn fires_ancestors(event: EventType) -> bool {
        matches!(
            event,
            EventType::NodeCreated | EventType::NodeDeleted | EventType::NodeDataChanged
        )
    }

    pub(crate) fn contains(self, kind: WatchKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub(crate) fn and(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    pub(crate) fn or(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    pub(crate) fn without(self, other: KindSet) -> KindSet {
        KindSet(self.0 & !other.0)
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = WatchKind> {
        WatchKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
