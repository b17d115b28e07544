//! Small file system helpers: directory fsync, the data dir lock, atomic writes and
//! directory listings by zxid.

use crate::error::{io_err, LogError};
use crate::format::parse_name;
use ek_types::Zxid;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    let handle = File::open(dir).map_err(io_err("open dir", dir))?;
    handle.sync_all().map_err(io_err("fsync dir", dir))
}

/// Creates `dir` (and parents) and makes its entry durable in its parent.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), LogError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("create dir", dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Opens `path` and takes an exclusive lock on it, held until the returned file drops.
///
/// fs4 locks are `flock` locks, which belong to the open file description, so a second
/// open in the same process is refused just like one from another process.
pub(crate) fn lock_file(path: &Path) -> Result<File, LogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open lock", path))?;
    match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(LogError::Locked(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(LogError::Locked(path.to_path_buf()))
        }
        Err(e) => Err(io_err("lock", path)(e)),
    }
}

/// Replaces `path` with `bytes` atomically: write `<path>.tmp`, fsync, rename, fsync dir.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = tmp_path(path);
    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(bytes).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    fsync_dir(parent_of(path))
}

/// `<path>.tmp`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The directory holding `path`.
pub(crate) fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Files in `dir` named `<prefix>.<16 hex>`, oldest zxid first.
pub(crate) fn list_by_zxid(dir: &Path, prefix: &str) -> Result<Vec<(Zxid, PathBuf)>, LogError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read dir", dir))? {
        let entry = entry.map_err(io_err("read dir", dir))?;
        let name = entry.file_name();
        if let Some(zxid) = name.to_str().and_then(|n| parse_name(n, prefix)) {
            found.push((zxid, entry.path()));
        }
    }
    found.sort_by_key(|(zxid, _)| *zxid);
    Ok(found)
}

/// Removes a file; a file already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", path)(e)),
        _ => Ok(()),
    }
}
