use serde::{Deserialize, Serialize};

/// ZooKeeper's `KeeperException` codes, as carried in `ReplyHeader.err`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[repr(i32)]
pub enum ErrorCode {
    /// Everything went fine.
    #[error("ok")]
    Ok = 0,
    /// A server-side failure without a more specific code.
    #[error("system error")]
    SystemError = -1,
    /// Ops after the failing op of a multi.
    #[error("runtime inconsistency")]
    RuntimeInconsistency = -2,
    /// Replicas disagree.
    #[error("data inconsistency")]
    DataInconsistency = -3,
    /// Client-local: the connection was lost.
    #[error("connection loss")]
    ConnectionLoss = -4,
    /// The request could not be decoded.
    #[error("marshalling error")]
    MarshallingError = -5,
    /// Unknown or unsupported operation.
    #[error("unimplemented")]
    Unimplemented = -6,
    /// Client-local: the operation timed out.
    #[error("operation timeout")]
    OperationTimeout = -7,
    /// Bad path, bad flags, bad TTL.
    #[error("bad arguments")]
    BadArguments = -8,
    /// The session is not known.
    #[error("unknown session")]
    UnknownSession = -12,
    /// Reconfig: the new configuration has no quorum.
    #[error("new config no quorum")]
    NewConfigNoQuorum = -13,
    /// Reconfig: another reconfig is in progress.
    #[error("reconfig in progress")]
    ReconfigInProgress = -14,
    /// Base of the API errors; never sent.
    #[error("api error")]
    ApiError = -100,
    /// The node does not exist.
    #[error("no node")]
    NoNode = -101,
    /// The ACL check failed.
    #[error("not authorized")]
    NoAuth = -102,
    /// The expected version did not match.
    #[error("bad version")]
    BadVersion = -103,
    /// Ephemeral nodes may not have children.
    #[error("ephemerals cannot have children")]
    NoChildrenForEphemerals = -108,
    /// The node already exists.
    #[error("node exists")]
    NodeExists = -110,
    /// The node has children.
    #[error("directory not empty")]
    NotEmpty = -111,
    /// The session has expired or is closing.
    #[error("session expired")]
    SessionExpired = -112,
    /// Invalid callback.
    #[error("invalid callback")]
    InvalidCallback = -113,
    /// The ACL is empty or malformed.
    #[error("invalid ACL")]
    InvalidAcl = -114,
    /// Authentication failed.
    #[error("auth failed")]
    AuthFailed = -115,
    /// The session moved to another server.
    #[error("session moved")]
    SessionMoved = -118,
    /// A write on a read-only server.
    #[error("not a read-only call")]
    NotReadOnly = -119,
    /// An ephemeral on a local session.
    #[error("ephemeral on local session")]
    EphemeralOnLocalSession = -120,
    /// No watcher of that kind on the path.
    #[error("no watcher")]
    NoWatcher = -121,
    /// The request timed out on the server.
    #[error("request timeout")]
    RequestTimeout = -122,
    /// Reconfig is disabled.
    #[error("reconfig disabled")]
    ReconfigDisabled = -123,
    /// The session was closed because SASL auth is required.
    #[error("session closed, SASL auth required")]
    SessionClosedRequireSaslAuth = -124,
    /// A hard quota was exceeded.
    #[error("quota exceeded")]
    QuotaExceeded = -125,
    /// The server throttled the op.
    #[error("throttled op")]
    ThrottledOp = -127,
}

impl ErrorCode {
    /// Every code, for lookups and tests.
    pub const ALL: [ErrorCode; 32] = [
        ErrorCode::Ok,
        ErrorCode::SystemError,
        ErrorCode::RuntimeInconsistency,
        ErrorCode::DataInconsistency,
        ErrorCode::ConnectionLoss,
        ErrorCode::MarshallingError,
        ErrorCode::Unimplemented,
        ErrorCode::OperationTimeout,
        ErrorCode::BadArguments,
        ErrorCode::UnknownSession,
        ErrorCode::NewConfigNoQuorum,
        ErrorCode::ReconfigInProgress,
        ErrorCode::ApiError,
        ErrorCode::NoNode,
        ErrorCode::NoAuth,
        ErrorCode::BadVersion,
        ErrorCode::NoChildrenForEphemerals,
        ErrorCode::NodeExists,
        ErrorCode::NotEmpty,
        ErrorCode::SessionExpired,
        ErrorCode::InvalidCallback,
        ErrorCode::InvalidAcl,
        ErrorCode::AuthFailed,
        ErrorCode::SessionMoved,
        ErrorCode::NotReadOnly,
        ErrorCode::EphemeralOnLocalSession,
        ErrorCode::NoWatcher,
        ErrorCode::RequestTimeout,
        ErrorCode::ReconfigDisabled,
        ErrorCode::SessionClosedRequireSaslAuth,
        ErrorCode::QuotaExceeded,
        ErrorCode::ThrottledOp,
    ];

    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code for a wire value, if it is one ZooKeeper defines.
    pub fn from_code(code: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(ErrorCode::from_code(-9999), None);
    }
}
