//! `setWatches` (101) and `setWatches2` (105): restoring a reconnecting client's watches.

use crate::kind::{WatchKind, WatcherId};
use crate::registry::{WatchEvent, WatchRegistry, IMMEDIATE_ZXID};
use ek_types::EventType;
use std::sync::Arc;

/// The path lists of a `SetWatches` / `SetWatches2` request. `SetWatches` (101) has no
/// persistent lists; leave them empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetWatchLists {
    /// Paths with a data watch on the client.
    pub data: Vec<String>,
    /// Paths with an exist watch on the client.
    pub exist: Vec<String>,
    /// Paths with a child watch on the client.
    pub child: Vec<String>,
    /// Paths with a PERSISTENT watch on the client.
    pub persistent: Vec<String>,
    /// Paths with a PERSISTENT_RECURSIVE watch on the client.
    pub persistent_recursive: Vec<String>,
}

/// What `setWatches` needs to know about a node that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeVersionInfo {
    /// `Stat.mzxid`: the zxid that last changed the node's data.
    pub mzxid: i64,
    /// `Stat.pzxid`: the zxid that last changed the node's children.
    pub pzxid: i64,
}

impl WatchRegistry {
    /// Restores the watches a reconnecting client had, given the last zxid it saw.
    ///
    /// A watch whose event the client missed is not registered: its notification is
    /// appended to `out` at once, with zxid [`IMMEDIATE_ZXID`], in list order (data,
    /// exist, child). `lookup` reports a node's versions, or `None` when it does not exist.
    /// Persistent watches are registered without a check.
    pub fn set_watches(
        &mut self,
        watcher: WatcherId,
        relative_zxid: i64,
        lists: &SetWatchLists,
        mut lookup: impl FnMut(&str) -> Option<NodeVersionInfo>,
        out: &mut Vec<WatchEvent>,
    ) {
        for path in &lists.data {
            match lookup(path) {
                None => out.push(immediate(EventType::NodeDeleted, path)),
                Some(node) if node.mzxid > relative_zxid => {
                    out.push(immediate(EventType::NodeDataChanged, path));
                }
                Some(_) => {
                    self.add(watcher, path, WatchKind::Data);
                }
            }
        }
        for path in &lists.exist {
            match lookup(path) {
                Some(_) => out.push(immediate(EventType::NodeCreated, path)),
                None => {
                    self.add(watcher, path, WatchKind::Exist);
                }
            }
        }
        for path in &lists.child {
            match lookup(path) {
                None => out.push(immediate(EventType::NodeDeleted, path)),
                Some(node) if node.pzxid > relative_zxid => {
                    out.push(immediate(EventType::NodeChildrenChanged, path));
                }
                Some(_) => {
                    self.add(watcher, path, WatchKind::Child);
                }
            }
        }
        for path in &lists.persistent {
            self.add(watcher, path, WatchKind::Persistent);
        }
        for path in &lists.persistent_recursive {
            self.add(watcher, path, WatchKind::PersistentRecursive);
        }
    }
}

fn immediate(event: EventType, path: &str) -> WatchEvent {
    WatchEvent {
        event,
        path: Arc::from(path),
        zxid: IMMEDIATE_ZXID,
    }
}
