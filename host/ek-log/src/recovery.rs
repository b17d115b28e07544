//! Start-up recovery: repair a torn tail, pick the newest usable snapshot, replay the log.
//!
//! # Which logged records continue a snapshot
//!
//! Records above a snapshot's zxid `z` are replayed on top of it only when the snapshot
//! lies on the log's chain: `z` is the zxid of a logged record, or the `prev` of a
//! segment. A zxid names one txn in the whole ensemble and a learner's log is synced to
//! its leader's history before it logs anything new, so a log holding record `z` holds the
//! history that led to the state at `z`, and its records above `z` continue that state. A
//! segment whose `prev` is `z` continues `z` by construction: it is either the successor
//! of a segment whose last record was `z` (perhaps purged since), or the first segment of
//! a log that [`crate::LogWriter::reset`] restarted after `z`.
//!
//! Every legitimate snapshot is on the chain:
//! - a snapshot taken locally after applying `z`: `z` is a logged record, or the `prev`
//!   of the next segment once [`crate::Log::purge`] removed the segment ending at `z`;
//! - a snapshot installed from the leader and followed by `reset(z)`: `z` is the `prev`
//!   of the restarted log (or the log is still empty);
//! - after `truncate_after(y)`: records at or below `y` stay, and snapshots above `y`
//!   are removed *before* the log is cut, so no snapshot outlives the records under it.
//!
//! The newest snapshot file is off the chain only after a crash in the middle of
//! installing a snapshot (`write_snapshot(z)` done, `reset(z)` not), or when it is past
//! the log's last record. The old log is then from another history, or ends below `z`;
//! either way replaying it on `z` would be wrong, so recovery completes the install:
//! it durably removes every segment, as `reset(z)` would, and returns no txns.
//!
//! A snapshot past the log's last record is legitimate: a learner may apply a committed
//! txn before its own log made it durable (the leader's quorum did), snapshot it, and
//! lose the log's tail in a crash. The snapshot still holds committed state that includes
//! every record left in the log, so restarting the log after it loses nothing. The only
//! other way to get there, an interrupted `truncate_after` whose snapshot above the cut
//! survived, cannot happen: truncation removes those snapshots first.
//!
//! An older snapshot stands in for a corrupt newer one only when it is on the chain of a
//! non-empty log: falling back to an older state without the records that lead from it
//! to the newer one would silently lose txns. Snapshot files off the chain of the
//! recovered log (left by an interrupted install that recovery rolled back to a newer
//! snapshot of the old history, or by a log restart) are removed, so that a later
//! `truncate_after` can never make one of them the newest and have it taken for an
//! interrupted install.

use crate::error::LogError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::fsutil::{fsync_dir, remove_file};
use crate::segment::{
    remove_segments, scan_file, truncate_segment, ScanEnd, SegmentInfo, SEGMENT_PREFIX,
};
use crate::snapshot;
use ek_types::Zxid;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
/// What recovery found on disk: the state to rebuild, in order.
#[derive(Debug)]
pub struct Recovered {
    /// The snapshot to rebuild from: the newest snapshot file if its checksums verify
    /// (after a log restart if the log did not continue it), else the newest older one
    /// that verifies and that the log continues; `None` when the log starts at zxid 0
    /// and no snapshot is usable.
    pub snapshot: Option<RecoveredSnapshot>,
    /// Logged txns after the snapshot's zxid (or all of them without one), oldest first.
    pub txns: Vec<(Zxid, Vec<u8>)>,
    /// The highest zxid in the snapshot or the log; [`Zxid::ZERO`] for an empty dir.
    pub last_zxid: Zxid,
}

/// A verified snapshot.
#[derive(Debug)]
pub struct RecoveredSnapshot {
    /// The zxid of the last txn the snapshot includes.
    pub zxid: Zxid,
    /// The body bytes, as given to [`crate::Log::write_snapshot`].
    pub data: Vec<u8>,
    /// The file it came from.
    pub path: PathBuf,
}

/// Where the writer continues after recovery.
#[derive(Debug)]
pub(crate) struct Tail {
    /// The last segment and its valid length, appended to until it fills up.
    pub(crate) active: Option<(PathBuf, u64)>,
    /// `prev` for the next new segment: the last logged zxid, or the log's start.
    pub(crate) chain: Zxid,
    /// Appends must be above this.
    pub(crate) last: Zxid,
}

/// Recovers the data dir whose log and snapshot dirs are given.
pub(crate) fn recover(
    dir: &Path,
    log_dir: &Path,
    snap_dir: &Path,
) -> Result<(Recovered, Tail), LogError> {
    let snapshots = snapshot::list(snap_dir)?;
    let (segments, mut on_chain) = repair_log(log_dir, &snapshots)?;
    let log_start = segments.first().map(|s| s.header.prev);
    let unrecoverable = |reason: String| LogError::Unrecoverable {
        dir: dir.to_path_buf(),
        reason,
    };
    let (snapshot, segments) = match choose_snapshot(&snapshots, &on_chain, segments.is_empty())? {
        Base::Continued(snapshot) => (Some(snapshot), segments),
        Base::Restart(snapshot) => {
            restart_log(log_dir, &segments, &snapshot)?;
            on_chain.clear();
            (Some(snapshot), Vec::new())
        }
        Base::None => {
            if let Some(start) = log_start.filter(|start| *start != Zxid::ZERO) {
                let reason = format!("no usable snapshot, and the log starts after zxid {start}");
                return Err(unrecoverable(reason));
            }
            if segments.is_empty() && !snapshots.is_empty() {
                return Err(unrecoverable("no usable snapshot and no log".to_string()));
            }
            (None, segments)
        }
    };
    let floor = snapshot.as_ref().map(|s| s.zxid);
    let keep = |zxid: Zxid| floor == Some(zxid) || on_chain.contains(&zxid);
    remove_off_chain_snapshots(snap_dir, &snapshots, keep)?;
    let txns = replay(&segments, floor)?;
    let log_last = segments.last().map(|s| s.last);
    let last = floor
        .into_iter()
        .chain(log_last)
        .max()
        .unwrap_or(Zxid::ZERO);
    let tail = Tail {
        active: segments.last().map(|s| (s.path.clone(), s.len)),
        chain: log_last.unwrap_or(last),
        last,
    };
    Ok((
        Recovered {
            snapshot,
            txns,
            last_zxid: last,
        },
        tail,
    ))
}

/// Scans every segment, cuts a torn tail off the last one, and returns what remains with
/// the zxids on its chain that name snapshots: logged records and segment `prev`s.
fn repair_log(
    log_dir: &Path,
    snapshots: &[(Zxid, PathBuf)],
) -> Result<(Vec<SegmentInfo>, BTreeSet<Zxid>), LogError> {
    let files = crate::fsutil::list_by_zxid(log_dir, SEGMENT_PREFIX)?;
    let wanted: BTreeSet<Zxid> = snapshots.iter().map(|(zxid, _)| *zxid).collect();
    let mut on_chain = BTreeSet::new();
    let mut segments: Vec<SegmentInfo> = Vec::with_capacity(files.len());
    for (index, (_, path)) in files.iter().enumerate() {
        let is_last = index + 1 == files.len();
        let expected_prev = segments.last().map(|s| s.last);
        // Only records before a torn tail are reported, so a cut-off record never counts.
        let mut note = |zxid: Zxid, _: &[u8], _: u64| {
            if wanted.contains(&zxid) {
                on_chain.insert(zxid);
            }
        };
        let (info, end) = scan_file(path, expected_prev, is_last, &mut note)?;
        if let ScanEnd::Torn { offset, reason } = end {
            tracing::warn!(
                file = %path.display(),
                offset,
                %reason,
                "truncating torn tail of the txn log"
            );
            truncate_segment(path, offset)?;
            if offset <= SEGMENT_HEADER_LEN as u64 {
                continue;
            }
        } else if info.len <= SEGMENT_HEADER_LEN as u64 {
            // Created but crashed before its first record: remove it so that a
            // different first zxid can never end up under this file name.
            if !is_last {
                return Err(empty_middle_segment(path));
            }
            tracing::warn!(file = %path.display(), "removing txn log segment without records");
            truncate_segment(path, info.len)?;
            continue;
        }
        segments.push(info);
    }
    if !files.is_empty() {
        fsync_dir(log_dir)?;
    }
    on_chain.extend(segments.iter().map(|s| s.header.prev));
    Ok((segments, on_chain))
}

fn empty_middle_segment(path: &Path) -> LogError {
    LogError::Corrupt {
        file: path.to_path_buf(),
        offset: SEGMENT_HEADER_LEN as u64,
        reason: crate::error::Corruption::TruncatedRecord,
    }
}

/// The snapshot recovery starts from, and what it means for the log.
enum Base {
    /// No usable snapshot: the log alone must rebuild the state from zxid 0.
    None,
    /// A snapshot on the log's chain, or any with an empty log: replay what is above it.
    Continued(RecoveredSnapshot),
    /// The newest snapshot, off the log's chain: the log must restart after it.
    Restart(RecoveredSnapshot),
}

/// The newest snapshot file if it verifies, else the newest older one that verifies and
/// that a non-empty log continues. See the module doc for why.
fn choose_snapshot(
    snapshots: &[(Zxid, PathBuf)],
    on_chain: &BTreeSet<Zxid>,
    log_empty: bool,
) -> Result<Base, LogError> {
    for (index, (name_zxid, path)) in snapshots.iter().rev().enumerate() {
        let newest = index == 0;
        let continued = log_empty || on_chain.contains(name_zxid);
        if !newest && (log_empty || !continued) {
            tracing::warn!(
                file = %path.display(),
                "snapshot not usable: the log does not continue from it"
            );
            continue;
        }
        match snapshot::load(path) {
            // The loaded zxid equals the name's: load checks it.
            Ok((zxid, data)) => {
                let snapshot = RecoveredSnapshot {
                    zxid,
                    data,
                    path: path.clone(),
                };
                return Ok(if continued {
                    Base::Continued(snapshot)
                } else {
                    Base::Restart(snapshot)
                });
            }
            Err(LogError::Corrupt {
                file,
                offset,
                reason,
            }) => {
                tracing::warn!(
                    file = %file.display(),
                    offset,
                    %reason,
                    "skipping corrupt snapshot, falling back to an older one"
                );
            }
            Err(other) => return Err(other),
        }
    }
    Ok(Base::None)
}

/// Durably removes every segment so that the writer continues after `snapshot`, exactly
/// as `reset(snapshot.zxid)` would. Newest first, each removal durable before the next,
/// so a crash part way leaves a prefix of the log that `snapshot` is still off the
/// chain of, and the next recovery finishes the job.
fn restart_log(
    log_dir: &Path,
    segments: &[SegmentInfo],
    snapshot: &RecoveredSnapshot,
) -> Result<(), LogError> {
    let zxid = snapshot.zxid;
    let discarded = count_records_above(segments, zxid)?;
    let file = snapshot.path.display();
    if discarded > 0 {
        tracing::warn!(
            file = %file,
            discarded,
            %zxid,
            "completing an interrupted snapshot install: discarding {discarded} logged txns \
             above zxid {zxid} that do not continue it"
        );
    } else {
        let log_last = segments.last().map_or(Zxid::ZERO, |s| s.last);
        tracing::warn!(
            file = %file,
            %zxid,
            %log_last,
            "snapshot at zxid {zxid} is past the txn log's last record {log_last}: \
             restarting the log after it"
        );
    }
    let paths = segments.iter().rev().map(|s| s.path.as_path());
    remove_segments(log_dir, paths, "restarting the txn log after a snapshot")
}

/// How many records of `segments` lie above `zxid`.
fn count_records_above(segments: &[SegmentInfo], zxid: Zxid) -> Result<u64, LogError> {
    let mut count = 0u64;
    for segment in segments.iter().filter(|s| s.last > zxid) {
        let mut visit = |record: Zxid, _: &[u8], _: u64| count += u64::from(record > zxid);
        scan_file(&segment.path, Some(segment.header.prev), false, &mut visit)?;
    }
    Ok(count)
}

/// Removes the snapshot files `keep` rejects, oldest first and each durably before the
/// next, so that a crash part way never leaves an unusable snapshot as the newest file
/// where a removed one was newer: the next recovery then makes the same choice.
fn remove_off_chain_snapshots(
    snap_dir: &Path,
    snapshots: &[(Zxid, PathBuf)],
    keep: impl Fn(Zxid) -> bool,
) -> Result<(), LogError> {
    for (_, path) in snapshots.iter().filter(|(zxid, _)| !keep(*zxid)) {
        tracing::warn!(
            file = %path.display(),
            "removing a snapshot that the recovered txn log does not continue"
        );
        remove_file(path)?;
        fsync_dir(snap_dir)?;
    }
    Ok(())
}

/// Reads the records above `floor` (all records without one), oldest first.
fn replay(segments: &[SegmentInfo], floor: Option<Zxid>) -> Result<Vec<(Zxid, Vec<u8>)>, LogError> {
    let mut txns = Vec::new();
    for segment in segments {
        if floor.is_some_and(|f| segment.last <= f) {
            continue;
        }
        let mut keep = |zxid: Zxid, payload: &[u8], _offset: u64| {
            if floor.is_none_or(|f| zxid > f) {
                txns.push((zxid, payload.to_vec()));
            }
        };
        // The first pass repaired the tail, so anything bad now is corruption.
        let (info, _) = scan_file(&segment.path, Some(segment.header.prev), false, &mut keep)?;
        if info.len != segment.len {
            return Err(LogError::Io {
                op: "replay",
                path: segment.path.clone(),
                source: std::io::Error::other("segment changed during recovery"),
            });
        }
    }
    Ok(txns)
}
