//! Snapshot files: streaming write with header and crc trailer, verified load.

use crate::error::{io_err, Corruption, LogError};
use crate::format::{
    decode_snapshot, encode_snapshot_header, encode_snapshot_trailer, parse_name, snapshot_name,
};
use crate::fsutil::{fsync_dir, list_by_zxid, remove_file, tmp_path};
use ek_types::Zxid;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name prefix of snapshots.
pub(crate) const SNAPSHOT_PREFIX: &str = "snapshot";

/// A writer that checksums and counts what passes through it.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
    len: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams a snapshot into `snapshot.<zxid>.tmp`, then fsyncs, renames and fsyncs the
/// directory. `dir_mutex` orders the rename against truncation and retention.
pub(crate) fn write_snapshot(
    snap_dir: &Path,
    dir_mutex: &Mutex<()>,
    zxid: Zxid,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<PathBuf, LogError> {
    let path = snap_dir.join(snapshot_name(zxid));
    let tmp = tmp_path(&path);
    let result = write_tmp(&tmp, zxid, body);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let _guard = dir_mutex.lock().unwrap_or_else(|p| p.into_inner());
    fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
    fsync_dir(snap_dir)?;
    Ok(path)
}

fn write_tmp(
    tmp: &Path,
    zxid: Zxid,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), LogError> {
    let file = File::create(tmp).map_err(io_err("create", tmp))?;
    let mut out = BufWriter::with_capacity(256 << 10, file);
    out.write_all(&encode_snapshot_header(zxid))
        .map_err(io_err("write", tmp))?;
    let mut counted = CrcWriter {
        inner: out,
        crc: 0,
        len: 0,
    };
    body(&mut counted).map_err(io_err("write snapshot body", tmp))?;
    let CrcWriter {
        inner: mut out,
        crc,
        len,
    } = counted;
    out.write_all(&encode_snapshot_trailer(len, crc))
        .map_err(io_err("write", tmp))?;
    let file = out
        .into_inner()
        .map_err(|e| io_err("write", tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err("fsync", tmp))
}

/// Reads and verifies a snapshot file, returning its zxid and body.
pub(crate) fn load(path: &Path) -> Result<(Zxid, Vec<u8>), LogError> {
    let mut bytes = fs::read(path).map_err(io_err("read", path))?;
    let corrupt = |offset, reason| LogError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    let (zxid, body_len) = match decode_snapshot(&bytes) {
        Ok((zxid, body)) => (zxid, body.len()),
        Err((offset, reason)) => return Err(corrupt(offset, reason)),
    };
    let name = path.file_name().and_then(|n| n.to_str());
    let name_zxid = name.and_then(|n| parse_name(n, SNAPSHOT_PREFIX));
    if name_zxid != Some(zxid) {
        let name = name_zxid.unwrap_or(Zxid::ZERO);
        return Err(corrupt(0, Corruption::NameMismatch { name, header: zxid }));
    }
    // Reuse the file buffer for the body instead of copying it.
    let header_len = crate::format::SNAPSHOT_HEADER_LEN;
    bytes.truncate(header_len + body_len);
    bytes.drain(..header_len);
    Ok((zxid, bytes))
}

/// Snapshot files, oldest first.
pub(crate) fn list(snap_dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, LogError> {
    list_by_zxid(snap_dir, SNAPSHOT_PREFIX)
}

/// Removes snapshot files whose zxid is above `zxid`; returns whether any went.
pub(crate) fn remove_after(snap_dir: &Path, zxid: Zxid) -> Result<bool, LogError> {
    let mut removed = false;
    for (snap_zxid, path) in list(snap_dir)? {
        if snap_zxid > zxid {
            tracing::info!(file = %path.display(), after = %zxid, "removing snapshot past truncation point");
            remove_file(&path)?;
            removed = true;
        }
    }
    if removed {
        fsync_dir(snap_dir)?;
    }
    Ok(removed)
}

/// Removes snapshot files whose zxid is below `zxid`; returns whether any went.
pub(crate) fn remove_before(snap_dir: &Path, zxid: Zxid) -> Result<bool, LogError> {
    let mut removed = false;
    for (snap_zxid, path) in list(snap_dir)? {
        if snap_zxid < zxid {
            tracing::info!(file = %path.display(), restart_after = %zxid, "removing snapshot older than the restarted log");
            remove_file(&path)?;
            removed = true;
        }
    }
    if removed {
        fsync_dir(snap_dir)?;
    }
    Ok(removed)
}

/// Removes leftover `*.tmp` files of interrupted snapshot writes.
pub(crate) fn remove_tmp_files(snap_dir: &Path) -> Result<(), LogError> {
    for entry in fs::read_dir(snap_dir).map_err(io_err("read dir", snap_dir))? {
        let path = entry.map_err(io_err("read dir", snap_dir))?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            tracing::info!(file = %path.display(), "removing interrupted snapshot write");
            remove_file(&path)?;
        }
    }
    Ok(())
}
