use ek_types::Zxid;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log and snapshot files.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another process, or another [`crate::Log`] in this process, holds the data dir's
    /// `LOCK` file.
    #[error("data dir is locked by another log: {0}")]
    Locked(PathBuf),
    /// A file system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "fdatasync".
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file holds bytes this crate did not write (or wrote only partly) at a place
    /// where a torn tail is impossible.
    #[error("corrupt {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged header, record or trailer.
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
    /// An append whose zxid is not above the last appended one.
    #[error("zxid {zxid} is not above the last appended zxid {last}")]
    NotIncreasing {
        /// The rejected zxid.
        zxid: Zxid,
        /// The last zxid appended (or recovered).
        last: Zxid,
    },
    /// An append whose payload exceeds [`crate::RECORD_PAYLOAD_MAX`].
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Neither a valid snapshot nor the log can rebuild the state.
    #[error("cannot recover {dir}: {reason}")]
    Unrecoverable {
        /// The data dir.
        dir: PathBuf,
        /// Why, in words.
        reason: String,
    },
    /// `truncate_after` asked for a zxid older than the start of the retained log.
    #[error("cannot truncate after {zxid}: the retained log starts after {log_start}")]
    TruncateBelowLog {
        /// The requested zxid.
        zxid: Zxid,
        /// The zxid the oldest retained segment continues from.
        log_start: Zxid,
    },
    /// `reset` asked to restart the log after a zxid that has no snapshot file.
    #[error("cannot reset the log after {zxid}: there is no snapshot at that zxid")]
    ResetWithoutSnapshot {
        /// The requested zxid.
        zxid: Zxid,
    },
    /// The writer thread hit an error and no longer accepts work.
    #[error("the log writer has stopped: {reason}")]
    WriterStopped {
        /// The error that stopped it, in words.
        reason: String,
    },
    /// [`crate::Log::start_writer`] was called twice.
    #[error("the log writer was already started")]
    WriterAlreadyStarted,
    /// A metadata name that is empty, reserved, or not `[A-Za-z0-9_.-]`.
    #[error("invalid metadata file name {0:?}")]
    InvalidMetadataName(String),
}

/// What is wrong with a damaged header, record or snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// The file ends inside its header.
    #[error("file of {len} bytes ends inside the header")]
    TruncatedHeader {
        /// The file length.
        len: u64,
    },
    /// The magic bytes are wrong.
    #[error("bad magic bytes")]
    BadMagic,
    /// The header checksum does not match.
    #[error("header crc32c mismatch")]
    HeaderCrcMismatch,
    /// A format version this build does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u32),
    /// The zxid in the file name differs from the one in the header.
    #[error("file name says zxid {name} but the header says {header}")]
    NameMismatch {
        /// From the name.
        name: Zxid,
        /// From the header.
        header: Zxid,
    },
    /// A segment does not continue where the previous one ended.
    #[error("segment continues from zxid {found} but the previous segment ends at {expected}")]
    ChainBreak {
        /// Last zxid of the previous segment.
        expected: Zxid,
        /// The `prev` zxid in this segment's header.
        found: Zxid,
    },
    /// The first record's zxid differs from the header's first zxid.
    #[error("first record has zxid {record} but the header says {header}")]
    FirstZxidMismatch {
        /// From the header.
        header: Zxid,
        /// From the record.
        record: Zxid,
    },
    /// The file ends inside a record.
    #[error("record extends past the end of the file")]
    TruncatedRecord,
    /// A record length above [`crate::RECORD_PAYLOAD_MAX`].
    #[error("record length {0} exceeds the limit")]
    RecordTooLarge(u64),
    /// A checksum over a record or snapshot body does not match.
    #[error("crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The checksum on disk.
        stored: u32,
        /// The checksum of the bytes on disk.
        computed: u32,
    },
    /// A zxid not above its predecessor.
    #[error("zxid {zxid} is not above the preceding zxid {prev}")]
    ZxidNotIncreasing {
        /// The offending zxid.
        zxid: Zxid,
        /// Its predecessor.
        prev: Zxid,
    },
    /// A snapshot trailer's body length differs from the body on disk.
    #[error("trailer says {stored} body bytes but the file holds {actual}")]
    LengthMismatch {
        /// From the trailer.
        stored: u64,
        /// On disk.
        actual: u64,
    },
}

/// Builds a `map_err` closure turning an `io::Error` into [`LogError::Io`].
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> LogError {
    let path = path.into();
    move |source| LogError::Io { op, path, source }
}
