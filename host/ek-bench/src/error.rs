use std::time::Duration;

use ek_jute::{DecodeError, FrameError};
use ek_types::ErrorCode;

/// Why a bench run failed. Individual request errors during a measurement are not
/// failures: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The flags do not describe a run that can be done.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// The TCP connection to a server could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the session or closed the connection during the handshake.
    #[error("{addr} refused the session: {reason}")]
    Handshake {
        /// The server address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered a reattach with timeout 0: the session is gone.
    #[error("{addr}: session expired")]
    SessionExpired {
        /// The server address.
        addr: String,
    },
    /// Reading or writing the connection failed, or the server closed it.
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost {
        /// The server address.
        addr: String,
        /// The socket error, or "closed by the server".
        reason: String,
    },
    /// The server sent a frame the codec refuses.
    #[error("bad frame from {addr}: {source}")]
    Frame {
        /// The server address.
        addr: String,
        /// The codec's reason.
        #[source]
        source: FrameError,
    },
    /// The server sent a payload the codec cannot decode.
    #[error("bad reply from {addr}: {source}")]
    Decode {
        /// The server address.
        addr: String,
        /// The codec's reason.
        #[source]
        source: DecodeError,
    },
    /// No reply came within the request timeout.
    #[error("{addr}: no reply to {what} within {timeout:?}")]
    Timeout {
        /// The server address.
        addr: String,
        /// The request waited for.
        what: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// A setup or cleanup request failed with a ZooKeeper error.
    #[error("{op} {path} failed: {code} ({})", code.code())]
    Request {
        /// The operation, e.g. `create`.
        op: &'static str,
        /// The znode path.
        path: String,
        /// The ZooKeeper error.
        code: ErrorCode,
    },
    /// A reply carried an error code ZooKeeper does not define.
    #[error("{op} {path} failed with unknown error code {code}")]
    UnknownErrorCode {
        /// The operation, e.g. `create`.
        op: &'static str,
        /// The znode path.
        path: String,
        /// The raw code.
        code: i32,
    },
    /// Failover: no server reported `Mode: leader` (or standalone, for a single server).
    #[error("no leader found: {0}")]
    NoLeader(String),
    /// Failover: killing the leader failed.
    #[error("cannot kill the leader: {0}")]
    Kill(String),
    /// Startup: the server command could not be started.
    #[error("cannot start `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// Startup: the server process exited before it served a read.
    #[error("`{cmd}` exited with {status} before serving a read")]
    ServerExited {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// Startup: the server did not serve a read within the startup timeout.
    #[error("`{cmd}` served no read within {timeout:?}")]
    StartupTimeout {
        /// The command line.
        cmd: String,
        /// The startup timeout.
        timeout: Duration,
    },
    /// A session task panicked or was cancelled.
    #[error("a bench task failed: {0}")]
    Task(String),
    /// Writing the report to stdout failed.
    #[error("cannot write the report: {0}")]
    Output(#[source] std::io::Error),
}
