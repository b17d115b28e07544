//! The data dir: lock, recovery, writer start, snapshots, retention and metadata files.

use crate::error::{io_err, LogError};
use crate::fsutil::{create_dir_durable, fsync_dir, lock_file, remove_file, write_atomic};
use crate::recovery::{recover, Recovered, Tail};
use crate::segment::{list_headers, remove_segments};
use crate::snapshot;
use crate::writer::{LogWriter, WriterConfig, WriterHooks};
use ek_types::Zxid;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Names under the data dir that metadata files may not take.
const RESERVED_NAMES: [&str; 3] = ["LOCK", "log", "snapshot"];

/// Tunables of a [`Log`].
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// A segment that would grow past this many bytes is closed and a new one started.
    pub segment_bytes_max: u64,
    /// How many of the newest snapshots [`Log::purge`] keeps (at least 1).
    pub snapshots_retained: usize,
    /// Capacity of the writer's queue; appends block while it is full. Also the most
    /// records one fdatasync covers.
    pub queue_capacity: usize,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            segment_bytes_max: 64 << 20,
            snapshots_retained: 3,
            queue_capacity: 4096,
        }
    }
}

/// An open, locked data dir. `Send + Sync`: snapshots and metadata can be written from
/// any thread while the [`LogWriter`] appends.
pub struct Log {
    dir: PathBuf,
    log_dir: PathBuf,
    snap_dir: PathBuf,
    options: LogOptions,
    lock_file: Arc<File>,
    /// Orders segment creation and removal, snapshot renames and retention.
    dir_mutex: Arc<Mutex<()>>,
    /// One snapshot write at a time, so two never share a temp file.
    snapshot_mutex: Mutex<()>,
    /// Where recovery left the log, until the writer takes it.
    tail: Mutex<Option<Tail>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish()
    }
}

impl Log {
    /// Locks `dir` (creating it if needed), repairs a torn log tail and recovers the
    /// newest usable snapshot plus the txns logged after it.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<(Log, Recovered), LogError> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_durable(&dir)?;
        let lock_file = lock_file(&dir.join("LOCK"))?;
        let log_dir = dir.join("log");
        let snap_dir = dir.join("snapshot");
        create_dir_durable(&log_dir)?;
        create_dir_durable(&snap_dir)?;
        snapshot::remove_tmp_files(&snap_dir)?;
        let (recovered, tail) = recover(&dir, &log_dir, &snap_dir)?;
        tracing::info!(
            dir = %dir.display(),
            snapshot = ?recovered.snapshot.as_ref().map(|s| s.zxid),
            txns = recovered.txns.len(),
            last_zxid = %recovered.last_zxid,
            "recovered txn log"
        );
        let log = Log {
            dir,
            log_dir,
            snap_dir,
            options,
            lock_file: Arc::new(lock_file),
            dir_mutex: Arc::new(Mutex::new(())),
            snapshot_mutex: Mutex::new(()),
            tail: Mutex::new(Some(tail)),
        };
        Ok((log, recovered))
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the group-commit writer thread, continuing after the recovered log.
    /// Only once per `Log`.
    pub fn start_writer(&self, hooks: WriterHooks) -> Result<LogWriter, LogError> {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner()).take();
        let tail = tail.ok_or(LogError::WriterAlreadyStarted)?;
        let config = WriterConfig {
            log_dir: self.log_dir.clone(),
            snap_dir: self.snap_dir.clone(),
            dir_mutex: self.dir_mutex.clone(),
            lock_file: self.lock_file.clone(),
            segment_bytes_max: self.options.segment_bytes_max,
            queue_capacity: self.options.queue_capacity,
        };
        LogWriter::start(config, tail, hooks)
    }

    /// Writes a snapshot of the state after `zxid`: `body` streams the bytes, which get a
    /// header and a crc32c trailer, then the file is fsynced and renamed into place and
    /// [`Log::purge`] applies retention (unless a newer snapshot exists: see
    /// [`LogWriter::reset`]). Runs on the calling thread; appends go on.
    ///
    /// To install a snapshot received from the leader, call this and then
    /// [`LogWriter::reset`] with the same zxid; a crash in between is completed (or rolled
    /// back to the old history) by [`Log::open`].
    pub fn write_snapshot(
        &self,
        zxid: Zxid,
        body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<PathBuf, LogError> {
        let path = {
            let _one = self
                .snapshot_mutex
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            snapshot::write_snapshot(&self.snap_dir, &self.dir_mutex, zxid, body)?
        };
        tracing::info!(file = %path.display(), "wrote snapshot");
        // Local snapshots only grow: truncation and reset remove snapshots above their
        // zxid. A newer one exists only while a snapshot from the leader is installed
        // below the abandoned history's snapshots, until `reset` removes them; retention
        // now could count those and remove the new snapshot, so it waits.
        let newer = snapshot::list(&self.snap_dir)?
            .into_iter()
            .any(|(other, _)| other > zxid);
        if newer {
            tracing::info!(file = %path.display(), "newer snapshots await a reset; retention waits");
        } else {
            self.purge()?;
        }
        Ok(path)
    }

    /// Keeps the newest [`LogOptions::snapshots_retained`] snapshots and removes older
    /// ones, then removes every segment whose records are all at or below the oldest
    /// kept snapshot. The segment being appended to is never removed. Do not call it
    /// between writing a snapshot from the leader and [`LogWriter::reset`]: the new
    /// snapshot may be older than those of the abandoned history.
    pub fn purge(&self) -> Result<(), LogError> {
        let _guard = self.dir_mutex.lock().unwrap_or_else(|p| p.into_inner());
        let snapshots = snapshot::list(&self.snap_dir)?;
        let keep = self.options.snapshots_retained.max(1);
        let cut = snapshots.len().saturating_sub(keep);
        for (_, path) in &snapshots[..cut] {
            tracing::info!(file = %path.display(), "removing old snapshot");
            remove_file(path)?;
        }
        let Some((oldest_kept, _)) = snapshots.get(cut) else {
            return Ok(());
        };
        if cut > 0 {
            fsync_dir(&self.snap_dir)?;
        }
        let segments = list_headers(&self.log_dir)?;
        // The next segment's prev is this one's last record. Removing oldest first, each
        // durably, leaves a suffix of the log whose chain is unbroken after any crash.
        let removable = segments
            .windows(2)
            .take_while(|pair| pair[1].1.prev <= *oldest_kept)
            .count();
        let paths = segments[..removable].iter().map(|(path, _)| path.as_path());
        remove_segments(&self.log_dir, paths, "older than the retained snapshots")
    }

    /// Atomically replaces the metadata file `name` in the data dir (temp file, fsync,
    /// rename, directory fsync). For small files such as `acceptedEpoch`.
    pub fn write_metadata(&self, name: &str, bytes: &[u8]) -> Result<(), LogError> {
        check_metadata_name(name)?;
        write_atomic(&self.dir.join(name), bytes)
    }

    /// Reads the metadata file `name`; `None` if it does not exist.
    pub fn read_metadata(&self, name: &str) -> Result<Option<Vec<u8>>, LogError> {
        check_metadata_name(name)?;
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", path)(e)),
        }
    }
}

fn check_metadata_name(name: &str) -> Result<(), LogError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(allowed)
        && !RESERVED_NAMES.contains(&name);
    if valid {
        Ok(())
    } else {
        Err(LogError::InvalidMetadataName(name.to_string()))
    }
}
