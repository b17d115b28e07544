use crate::{Acl, ErrorCode, Stat};
use serde::{Deserialize, Serialize};

/// Client opcodes (`ZooDefs.OpCode`), with their wire numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i32)]
pub enum OpCode {
    /// 0: internal.
    Notification = 0,
    /// 1.
    Create = 1,
    /// 2.
    Delete = 2,
    /// 3.
    Exists = 3,
    /// 4.
    GetData = 4,
    /// 5.
    SetData = 5,
    /// 6.
    GetAcl = 6,
    /// 7.
    SetAcl = 7,
    /// 8.
    GetChildren = 8,
    /// 9.
    Sync = 9,
    /// 11.
    Ping = 11,
    /// 12.
    GetChildren2 = 12,
    /// 13.
    Check = 13,
    /// 14.
    Multi = 14,
    /// 15.
    Create2 = 15,
    /// 16.
    Reconfig = 16,
    /// 17.
    CheckWatches = 17,
    /// 18.
    RemoveWatches = 18,
    /// 19.
    CreateContainer = 19,
    /// 20: server-internal.
    DeleteContainer = 20,
    /// 21.
    CreateTtl = 21,
    /// 22.
    MultiRead = 22,
    /// 100.
    Auth = 100,
    /// 101.
    SetWatches = 101,
    /// 102.
    Sasl = 102,
    /// 103.
    GetEphemerals = 103,
    /// 104.
    GetAllChildrenNumber = 104,
    /// 105.
    SetWatches2 = 105,
    /// 106.
    AddWatch = 106,
    /// 107.
    WhoAmI = 107,
    /// -10: the handshake's txn.
    CreateSession = -10,
    /// -11.
    CloseSession = -11,
    /// -1: error txn / error result in multi.
    Error = -1,
}

impl OpCode {
    const ALL: [OpCode; 33] = [
        OpCode::Notification,
        OpCode::Create,
        OpCode::Delete,
        OpCode::Exists,
        OpCode::GetData,
        OpCode::SetData,
        OpCode::GetAcl,
        OpCode::SetAcl,
        OpCode::GetChildren,
        OpCode::Sync,
        OpCode::Ping,
        OpCode::GetChildren2,
        OpCode::Check,
        OpCode::Multi,
        OpCode::Create2,
        OpCode::Reconfig,
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::CreateContainer,
        OpCode::DeleteContainer,
        OpCode::CreateTtl,
        OpCode::MultiRead,
        OpCode::Auth,
        OpCode::SetWatches,
        OpCode::Sasl,
        OpCode::GetEphemerals,
        OpCode::GetAllChildrenNumber,
        OpCode::SetWatches2,
        OpCode::AddWatch,
        OpCode::WhoAmI,
        OpCode::CreateSession,
        OpCode::CloseSession,
        OpCode::Error,
    ];

    /// The wire number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The opcode for a wire number, if ZooKeeper defines one.
    pub fn from_code(code: i32) -> Option<OpCode> {
        OpCode::ALL.iter().copied().find(|op| op.code() == code)
    }

    /// A short lower-case name, as ZooKeeper's metrics and logs spell it.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Notification => "notification",
            OpCode::Create => "create",
            OpCode::Delete => "delete",
            OpCode::Exists => "exists",
            OpCode::GetData => "getData",
            OpCode::SetData => "setData",
            OpCode::GetAcl => "getACL",
            OpCode::SetAcl => "setACL",
            OpCode::GetChildren => "getChildren",
            OpCode::Sync => "sync",
            OpCode::Ping => "ping",
            OpCode::GetChildren2 => "getChildren2",
            OpCode::Check => "check",
            OpCode::Multi => "multi",
            OpCode::Create2 => "create2",
            OpCode::Reconfig => "reconfig",
            OpCode::CheckWatches => "checkWatches",
            OpCode::RemoveWatches => "removeWatches",
            OpCode::CreateContainer => "createContainer",
            OpCode::DeleteContainer => "deleteContainer",
            OpCode::CreateTtl => "createTTL",
            OpCode::MultiRead => "multiRead",
            OpCode::Auth => "auth",
            OpCode::SetWatches => "setWatches",
            OpCode::Sasl => "sasl",
            OpCode::GetEphemerals => "getEphemerals",
            OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
            OpCode::SetWatches2 => "setWatches2",
            OpCode::AddWatch => "addWatch",
            OpCode::WhoAmI => "whoAmI",
            OpCode::CreateSession => "createSession",
            OpCode::CloseSession => "closeSession",
            OpCode::Error => "error",
        }
    }
}

/// A client write, as decoded from the wire and before validation. Prep turns it into a
/// [`crate::TxnBody`] or an error code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    /// create (1), create2 (15), createContainer (19) or createTTL (21).
    Create {
        /// Which of the four create opcodes carried it; decides the reply record.
        opcode: OpCode,
        /// Requested path; sequential modes append the suffix.
        path: String,
        /// Initial data; `None` is ZooKeeper's null data (wire length -1), distinct from empty.
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        /// Requested ACL (may contain `auth` entries to expand).
        acl: Vec<Acl>,
        /// Raw `CreateMode` flags, validated by prep.
        flags: i32,
        /// TTL in ms for createTTL, else 0.
        ttl_ms: i64,
    },
    /// delete (2).
    Delete {
        /// Node to delete.
        path: String,
        /// Expected version, -1 for any.
        version: i32,
    },
    /// setData (5).
    SetData {
        /// Node to change.
        path: String,
        /// New data; `None` is null data (wire length -1), distinct from empty.
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        /// Expected version, -1 for any.
        version: i32,
    },
    /// setACL (7).
    SetAcl {
        /// Node to change.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// Expected ACL version, -1 for any.
        version: i32,
    },
    /// check (13), in multi or alone.
    Check {
        /// Node to check.
        path: String,
        /// Expected version, -1 for any.
        version: i32,
    },
}

impl WriteOp {
    /// The path the op names.
    pub fn path(&self) -> &str {
        match self {
            WriteOp::Create { path, .. }
            | WriteOp::Delete { path, .. }
            | WriteOp::SetData { path, .. }
            | WriteOp::SetAcl { path, .. }
            | WriteOp::Check { path, .. } => path,
        }
    }

    /// The opcode the op carries on the wire.
    pub fn opcode(&self) -> OpCode {
        match self {
            WriteOp::Create { opcode, .. } => *opcode,
            WriteOp::Delete { .. } => OpCode::Delete,
            WriteOp::SetData { .. } => OpCode::SetData,
            WriteOp::SetAcl { .. } => OpCode::SetAcl,
            WriteOp::Check { .. } => OpCode::Check,
        }
    }
}

/// The result of one write op, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// The node was created at `path` (with its sequence suffix).
    Create {
        /// The opcode of the request: create (1) answers with the path only.
        opcode: OpCode,
        /// Actual path.
        path: String,
        /// Stat of the new node.
        stat: Stat,
    },
    /// The node was deleted.
    Delete,
    /// The data was set.
    SetData {
        /// Stat after the change.
        stat: Stat,
    },
    /// The ACL was set.
    SetAcl {
        /// Stat after the change.
        stat: Stat,
    },
    /// The version check passed.
    Check,
    /// The op failed (in multi: `0` before the failing op, the code, then
    /// RuntimeInconsistency after it).
    Error(ErrorCode),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_round_trip() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_code(op.code()), Some(op));
        }
        assert_eq!(OpCode::from_code(4242), None);
        assert_eq!(OpCode::from_code(10), None);
    }
}
