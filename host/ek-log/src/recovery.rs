//! Start-up recovery: repair a torn tail, pick the newest usable snapshot, replay the log.

use crate::error::LogError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::fsutil::fsync_dir;
use crate::segment::{scan_file, truncate_segment, ScanEnd, SegmentInfo, SEGMENT_PREFIX};
use crate::snapshot;
use ek_types::Zxid;
use std::path::{Path, PathBuf};

/// What recovery found on disk: the state to rebuild, in order.
#[derive(Debug)]
pub struct Recovered {
    /// The newest snapshot whose checksums verify and that the log continues, if any.
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
    let segments = repair_log(log_dir)?;
    let log_start = segments.first().map(|s| s.header.prev);
    let snapshot = choose_snapshot(snap_dir, log_start)?;
    if snapshot.is_none() && log_start.is_some_and(|start| start != Zxid::ZERO) {
        let start = log_start.unwrap_or(Zxid::ZERO);
        let reason = format!("no usable snapshot, and the log starts after zxid {start}");
        return Err(LogError::Unrecoverable {
            dir: dir.to_path_buf(),
            reason,
        });
    }
    if snapshot.is_none() && segments.is_empty() && !snapshot::list(snap_dir)?.is_empty() {
        let reason = "no usable snapshot and no log".to_string();
        return Err(LogError::Unrecoverable {
            dir: dir.to_path_buf(),
            reason,
        });
    }
    let floor = snapshot.as_ref().map(|s| s.zxid);
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

/// Scans every segment, cuts a torn tail off the last one, and returns what remains.
fn repair_log(log_dir: &Path) -> Result<Vec<SegmentInfo>, LogError> {
    let files = crate::fsutil::list_by_zxid(log_dir, SEGMENT_PREFIX)?;
    let mut segments: Vec<SegmentInfo> = Vec::with_capacity(files.len());
    for (index, (_, path)) in files.iter().enumerate() {
        let is_last = index + 1 == files.len();
        let expected_prev = segments.last().map(|s| s.last);
        let (info, end) = scan_file(path, expected_prev, is_last, &mut |_, _, _| {})?;
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
    Ok(segments)
}

fn empty_middle_segment(path: &Path) -> LogError {
    LogError::Corrupt {
        file: path.to_path_buf(),
        offset: SEGMENT_HEADER_LEN as u64,
        reason: crate::error::Corruption::TruncatedRecord,
    }
}

/// The newest snapshot that verifies and that the log continues without a gap.
///
/// An older snapshot is used only when the log reaches back to it (`log_start <= zxid`):
/// falling back past a newer snapshot without that would silently lose txns.
fn choose_snapshot(
    snap_dir: &Path,
    log_start: Option<Zxid>,
) -> Result<Option<RecoveredSnapshot>, LogError> {
    let mut skipped_newer = false;
    for (name_zxid, path) in snapshot::list(snap_dir)?.into_iter().rev() {
        let covered = match log_start {
            Some(start) => start <= name_zxid,
            None => !skipped_newer,
        };
        if !covered {
            tracing::warn!(
                file = %path.display(),
                log_start = ?log_start,
                "snapshot not usable: the log does not continue from it"
            );
            skipped_newer = true;
            continue;
        }
        match snapshot::load(&path) {
            Ok((zxid, data)) => return Ok(Some(RecoveredSnapshot { zxid, data, path })),
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
                skipped_newer = true;
            }
            Err(other) => return Err(other),
        }
    }
    Ok(None)
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
