//! Durable txn log and snapshot files of an edgekeeper node.
//!
//! A data dir holds `LOCK` (an exclusive lock held while a [`Log`] or its writer lives),
//! `log/log.<first zxid>` segments of crc32c-framed records, `snapshot/snapshot.<zxid>`
//! files with a checksummed trailer, and small metadata files written atomically
//! (`acceptedEpoch`, `currentEpoch`). [`Log::open`] locks the dir and recovers it; the
//! [`LogWriter`] appends on one thread with group commit: one fdatasync covers every
//! record queued meanwhile, and [`WriterHooks::on_durable`] reports the highest durable
//! zxid only after it.
//!
//! Segment headers carry `first` and `prev` zxids, chaining each segment to the record
//! before it (or to the snapshot a reset log restarted after). Recovery replays the
//! records above a snapshot only if the snapshot lies on that chain; a newest snapshot off
//! it was installed from the leader by a [`Log::write_snapshot`] whose
//! [`LogWriter::reset`] a crash prevented (or is past a torn tail), and recovery completes
//! the install by discarding the log. The module doc of `recovery.rs` gives the cases.
//! Every multi-file change (truncation, reset, retention, recovery) removes files in an
//! order, each removal durable before the next, that a crash at any point leaves
//! recoverable.
//!
//! Records and snapshots are opaque bytes keyed by zxid: this crate never decodes a txn,
//! never decides what to acknowledge, never uses async I/O, and never panics on what it
//! reads from disk. Damage that a crash can explain (a torn tail of the last segment) is
//! cut off with a warning; any other damage is a [`LogError::Corrupt`] naming the file
//! and offset, never silently skipped.
#![warn(missing_docs)]

mod error;
mod format;
mod fsutil;
mod log;
mod recovery;
mod segment;
mod snapshot;
mod writer;

pub use crate::error::{Corruption, LogError};
pub use crate::format::RECORD_PAYLOAD_MAX;
pub use crate::log::{Log, LogOptions};
pub use crate::recovery::{Recovered, RecoveredSnapshot};
pub use crate::writer::{LogCounters, LogWriter, WriterHooks};

#[cfg(test)]
mod tests;
