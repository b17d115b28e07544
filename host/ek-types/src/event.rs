use serde::{Deserialize, Serialize};

/// A watch event type (`Watcher.Event.EventType`), numbered as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i32)]
pub enum EventType {
    /// -1: a session state change (never sent for nodes).
    None = -1,
    /// 1.
    NodeCreated = 1,
    /// 2.
    NodeDeleted = 2,
    /// 3.
    NodeDataChanged = 3,
    /// 4.
    NodeChildrenChanged = 4,
}

impl EventType {
    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The event type for a wire value.
    pub fn from_code(code: i32) -> Option<EventType> {
        Some(match code {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            _ => return None,
        })
    }
}

/// `KeeperState.SyncConnected`: the only state a server puts in a notification.
pub const STATE_SYNC_CONNECTED: i32 = 3;
