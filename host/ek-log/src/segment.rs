//! Log segment files: scanning with torn-tail detection, creation and truncation.

use crate::error::{io_err, Corruption, LogError};
use crate::format::{
    decode_record, segment_name, valid_record_follows, SegmentHeader, SEGMENT_HEADER_LEN,
};
use crate::fsutil::{fsync_dir, list_by_zxid, remove_file};
use ek_types::Zxid;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name prefix of segments.
pub(crate) const SEGMENT_PREFIX: &str = "log";

/// What a scan learned about one segment.
#[derive(Clone, Debug)]
pub(crate) struct SegmentInfo {
    pub(crate) path: PathBuf,
    pub(crate) header: SegmentHeader,
    /// Zxid of the last valid record, or `header.prev` when there is none.
    pub(crate) last: Zxid,
    /// Length of the valid prefix in bytes.
    pub(crate) len: u64,
}

/// How the valid prefix of a segment ends.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// At the end of the file.
    Clean,
    /// At a torn tail: bad bytes at `offset` with nothing valid after them.
    Torn { offset: u64, reason: Corruption },
}

/// Checks a segment's bytes and calls `on_record(zxid, payload, offset)` for each valid
/// record. `expected_prev` is where the previous segment ended. Damage is a torn tail only
/// when `is_last` and no valid record follows it; anything else is [`LogError::Corrupt`].
pub(crate) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    expected_prev: Option<Zxid>,
    is_last: bool,
    on_record: &mut dyn FnMut(Zxid, &[u8], u64),
) -> Result<(SegmentInfo, ScanEnd), LogError> {
    let corrupt = |offset: u64, reason: Corruption| LogError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    let header = match SegmentHeader::decode(bytes) {
        Ok(header) => header,
        // A crash while the header was being written leaves a short file; the header is
        // fsynced before any record is written, so a bad header with data after it is not.
        Err(reason) if is_last && bytes.len() <= SEGMENT_HEADER_LEN => {
            let header = SegmentHeader {
                first: Zxid::ZERO,
                prev: Zxid::ZERO,
            };
            let info = SegmentInfo {
                path: path.to_path_buf(),
                header,
                last: Zxid::ZERO,
                len: 0,
            };
            return Ok((info, ScanEnd::Torn { offset: 0, reason }));
        }
        Err(reason) => return Err(corrupt(0, reason)),
    };
    let name_zxid = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| crate::format::parse_name(n, SEGMENT_PREFIX));
    if name_zxid != Some(header.first) {
        let name = name_zxid.unwrap_or(Zxid::ZERO);
        return Err(corrupt(
            0,
            Corruption::NameMismatch {
                name,
                header: header.first,
            },
        ));
    }
    if let Some(expected) = expected_prev.filter(|e| *e != header.prev) {
        return Err(corrupt(
            0,
            Corruption::ChainBreak {
                expected,
                found: header.prev,
            },
        ));
    }
    let mut offset = SEGMENT_HEADER_LEN;
    let mut last = header.prev;
    let end = loop {
        let reason = match decode_record(bytes, offset) {
            Ok(None) => break ScanEnd::Clean,
            Ok(Some(frame)) if frame.zxid <= last => Corruption::ZxidNotIncreasing {
                zxid: frame.zxid,
                prev: last,
            },
            Ok(Some(frame)) if offset == SEGMENT_HEADER_LEN && frame.zxid != header.first => {
                Corruption::FirstZxidMismatch {
                    header: header.first,
                    record: frame.zxid,
                }
            }
            Ok(Some(frame)) => {
                on_record(frame.zxid, frame.payload, offset as u64);
                last = frame.zxid;
                offset = frame.end;
                continue;
            }
            Err(reason) => reason,
        };
        // The writer preallocates segments: zeros after the last record are unused space,
        // not a torn record (a record header is never all zeros: its crc covers the zxid).
        if bytes[offset..].iter().all(|&byte| byte == 0) {
            break ScanEnd::Clean;
        }
        if is_last && !valid_record_follows(bytes, offset + 1, last) {
            break ScanEnd::Torn {
                offset: offset as u64,
                reason,
            };
        }
        return Err(corrupt(offset as u64, reason));
    };
    let info = SegmentInfo {
        path: path.to_path_buf(),
        header,
        last,
        len: offset as u64,
    };
    Ok((info, end))
}

/// Reads and scans one segment file.
pub(crate) fn scan_file(
    path: &Path,
    expected_prev: Option<Zxid>,
    is_last: bool,
    on_record: &mut dyn FnMut(Zxid, &[u8], u64),
) -> Result<(SegmentInfo, ScanEnd), LogError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    scan_segment(path, &bytes, expected_prev, is_last, on_record)
}

/// Reads just the header of a segment file.
pub(crate) fn read_header(path: &Path) -> Result<SegmentHeader, LogError> {
    use std::io::Read;
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let mut buf = Vec::with_capacity(SEGMENT_HEADER_LEN);
    Read::take(&mut file, SEGMENT_HEADER_LEN as u64)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    SegmentHeader::decode(&buf).map_err(|reason| LogError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        reason,
    })
}

/// The segment files of `log_dir` with their headers, oldest first.
pub(crate) fn list_headers(log_dir: &Path) -> Result<Vec<(PathBuf, SegmentHeader)>, LogError> {
    list_by_zxid(log_dir, SEGMENT_PREFIX)?
        .into_iter()
        .map(|(_, path)| read_header(&path).map(|h| (path, h)))
        .collect()
}

/// Cuts a segment to `len` bytes durably. A segment left without records is removed
/// instead, so that a file's name always matches its first record.
pub(crate) fn truncate_segment(path: &Path, len: u64) -> Result<(), LogError> {
    if len <= SEGMENT_HEADER_LEN as u64 {
        remove_file(path)?;
        return fsync_dir(crate::fsutil::parent_of(path));
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    file.set_len(len).map_err(io_err("truncate", path))?;
    file.sync_all().map_err(io_err("fsync", path))
}

/// Removes segment files in the given order, each removal durable before the next.
///
/// Without a directory fsync between them, unlinks may reach the disk in any order, and
/// a crash could leave a hole in the chain that recovery must report as corruption.
/// Removing newest first always leaves a prefix of the log, oldest first a suffix.
pub(crate) fn remove_segments<'a>(
    log_dir: &Path,
    paths: impl IntoIterator<Item = &'a Path>,
    why: &'static str,
) -> Result<(), LogError> {
    for path in paths {
        tracing::info!(file = %path.display(), why, "removing txn log segment");
        remove_file(path)?;
        fsync_dir(log_dir)?;
    }
    Ok(())
}

/// Creates `log_dir/log.<first>` holding only its header, durable with its directory entry.
pub(crate) fn create_segment(
    log_dir: &Path,
    header: SegmentHeader,
) -> Result<(File, PathBuf), LogError> {
    let path = log_dir.join(segment_name(header.first));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create segment", &path))?;
    file.write_all(&header.encode())
        .map_err(io_err("write", &path))?;
    file.sync_all().map_err(io_err("fsync", &path))?;
    fsync_dir(log_dir)?;
    Ok((file, path))
}

/// Opens an existing segment for appending at `len`; also returns the file's length (the
/// end of its preallocated space, at least `len`).
pub(crate) fn open_for_append(path: &Path, len: u64) -> Result<(File, u64), LogError> {
    use std::io::{Seek, SeekFrom};
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    file.seek(SeekFrom::Start(len))
        .map_err(io_err("seek", path))?;
    let allocated = file.metadata().map_err(io_err("stat", path))?.len();
    Ok((file, allocated.max(len)))
}

/// Extends `file` to `len` bytes with allocated, zero-reading blocks, so that later writes
/// below `len` change neither the file's size nor its block map and an `fdatasync` of them
/// waits for the data alone (not also for the inode): `fallocate(2)` on Linux. Where the
/// file system cannot, the log simply grows as it is written.
pub(crate) fn preallocate(file: &File, len: u64) -> std::io::Result<()> {
    fs4::fs_std::FileExt::allocate(file, len)
}
