//! The group-commit writer: one thread drains the queue, writes everything it took, and
//! makes it durable with a single fdatasync before reporting the highest durable zxid.

use crate::error::{io_err, LogError};
use crate::format::{
    encode_record, record_len, snapshot_name, SegmentHeader, RECORD_PAYLOAD_MAX, SEGMENT_HEADER_LEN,
};
use crate::recovery::Tail;
use crate::segment::{
    create_segment, list_headers, open_for_append, preallocate, remove_segments, scan_file,
    truncate_segment,
};
use crate::snapshot;
use ek_types::Zxid;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// Bytes buffered before a write(2) in the middle of a batch.
const WRITE_BUF_BYTES: usize = 1 << 20;

/// Segments are preallocated in steps of this many bytes ahead of the writes.
const PREALLOC_BYTES: u64 = 4 << 20;

/// Callbacks the writer thread invokes. They run on the writer thread, so they must be
/// quick (hand the value to another thread or set an atomic) and must not call back into
/// the [`LogWriter`] and wait on it.
pub struct WriterHooks {
    /// After each fdatasync that made new records durable, with the highest durable zxid.
    /// Values strictly increase, except after `truncate_after`/`reset`.
    pub on_durable: Box<dyn FnMut(Zxid) + Send>,
    /// Once, when an I/O error stopped the writer. Nothing after it becomes durable;
    /// the node must stop acknowledging writes.
    pub on_error: Box<dyn FnMut(&LogError) + Send>,
    /// After each fdatasync, with its duration, for a latency histogram.
    pub on_fsync: Box<dyn FnMut(Duration) + Send>,
}

impl WriterHooks {
    /// Hooks with `on_durable` and no-op error and fsync hooks.
    pub fn new(on_durable: impl FnMut(Zxid) + Send + 'static) -> WriterHooks {
        WriterHooks {
            on_durable: Box::new(on_durable),
            on_error: Box::new(|_| {}),
            on_fsync: Box::new(|_| {}),
        }
    }

    /// Sets `on_error`.
    pub fn on_error(mut self, on_error: impl FnMut(&LogError) + Send + 'static) -> WriterHooks {
        self.on_error = Box::new(on_error);
        self
    }

    /// Sets `on_fsync`.
    pub fn on_fsync(mut self, on_fsync: impl FnMut(Duration) + Send + 'static) -> WriterHooks {
        self.on_fsync = Box::new(on_fsync);
        self
    }
}

/// Counters of the writer, read with [`LogWriter::counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCounters {
    /// Records written.
    pub appends: u64,
    /// fdatasync calls.
    pub fsyncs: u64,
    /// Record bytes written, frames included.
    pub bytes: u64,
    /// Duration of the latest fdatasync.
    pub fsync_last: Duration,
    /// Summed duration of all fdatasyncs.
    pub fsync_total: Duration,
    /// Highest durable zxid.
    pub durable_zxid: Zxid,
}

#[derive(Default)]
struct Stats {
    appends: AtomicU64,
    fsyncs: AtomicU64,
    bytes: AtomicU64,
    fsync_last_ns: AtomicU64,
    fsync_total_ns: AtomicU64,
    durable_zxid: AtomicI64,
}

/// State shared by the handles and the writer thread.
#[derive(Default)]
struct Shared {
    stats: Stats,
    stopped: Mutex<Option<String>>,
}

impl Shared {
    fn stop(&self, error: &LogError) {
        let mut stopped = lock(&self.stopped);
        stopped.get_or_insert_with(|| error.to_string());
    }

    fn stopped_error(&self) -> LogError {
        let reason = lock(&self.stopped).clone();
        let reason = reason.unwrap_or_else(|| "the writer thread has exited".to_string());
        LogError::WriterStopped { reason }
    }
}

type Reply = SyncSender<Result<Zxid, LogError>>;

enum Command {
    Append { zxid: Zxid, payload: Vec<u8> },
    Sync(Reply),
    TruncateAfter(Zxid, Reply),
    Reset(Zxid, Reply),
}

struct Enqueue {
    tx: Option<SyncSender<Command>>,
    last: Zxid,
}

struct Handle {
    enqueue: Mutex<Enqueue>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Closing the queue lets the thread write and sync what is queued, then exit.
        lock(&self.enqueue).tx = None;
        if let Some(thread) = self.thread.take() {
            if thread::current().id() != self.thread_id {
                let _ = thread.join();
            }
        }
    }
}

/// The handle to the group-commit writer thread. Cloneable, `Send` and `Sync`.
///
/// When the last clone drops, the thread writes and syncs what is queued and exits.
#[derive(Clone)]
pub struct LogWriter {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("counters", &self.counters())
            .finish()
    }
}

/// Everything the writer thread needs from the [`crate::Log`].
pub(crate) struct WriterConfig {
    pub(crate) log_dir: PathBuf,
    pub(crate) snap_dir: PathBuf,
    pub(crate) dir_mutex: Arc<Mutex<()>>,
    pub(crate) lock_file: Arc<File>,
    pub(crate) segment_bytes_max: u64,
    pub(crate) queue_capacity: usize,
}

impl LogWriter {
    pub(crate) fn start(
        config: WriterConfig,
        tail: Tail,
        hooks: WriterHooks,
    ) -> Result<LogWriter, LogError> {
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity.max(1));
        let shared = Arc::new(Shared::default());
        shared
            .stats
            .durable_zxid
            .store(tail.last.0, Ordering::Relaxed);
        let active = match &tail.active {
            Some((path, len)) => {
                let (file, allocated) = open_for_append(path, *len)?;
                Some(Active {
                    file,
                    size: *len,
                    allocated,
                    path: path.clone(),
                })
            }
            None => None,
        };
        let writer = Writer {
            batch_max: config.queue_capacity.max(1),
            config,
            active,
            chain: tail.chain,
            written: tail.last,
            durable: tail.last,
            dirty: false,
            preallocate: true,
            buf: Vec::with_capacity(WRITE_BUF_BYTES),
            hooks,
            shared: shared.clone(),
        };
        let thread = thread::Builder::new()
            .name("ek-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err("spawn writer thread", "ek-log-writer"))?;
        let handle = Handle {
            enqueue: Mutex::new(Enqueue {
                tx: Some(tx),
                last: tail.last,
            }),
            shared,
            thread_id: thread.thread().id(),
            thread: Some(thread),
        };
        Ok(LogWriter {
            handle: Arc::new(handle),
        })
    }

    /// Queues a record. Returns once it is queued, not once it is durable: durability is
    /// reported through [`WriterHooks::on_durable`]. Blocks only while the bounded queue
    /// is full. `zxid` must be above every zxid appended or recovered before.
    pub fn append(&self, zxid: Zxid, payload: Vec<u8>) -> Result<(), LogError> {
        if payload.len() > RECORD_PAYLOAD_MAX {
            return Err(LogError::RecordTooLarge {
                len: payload.len(),
                max: RECORD_PAYLOAD_MAX,
            });
        }
        let mut enqueue = lock(&self.handle.enqueue);
        if zxid <= enqueue.last {
            return Err(LogError::NotIncreasing {
                zxid,
                last: enqueue.last,
            });
        }
        self.send(&enqueue, Command::Append { zxid, payload })?;
        enqueue.last = zxid;
        Ok(())
    }

    /// Waits until every record queued before this call is durable; returns the highest
    /// durable zxid.
    pub fn sync(&self) -> Result<Zxid, LogError> {
        let enqueue = lock(&self.handle.enqueue);
        self.call(enqueue, Command::Sync).map(|(_, zxid)| zxid)
    }

    /// Durably removes every record above `zxid` (ZAB TRUNC), and every snapshot above it.
    /// Records queued before this call are written first. Later appends must be above
    /// `zxid`. Fails without changing anything if the retained log starts above `zxid`.
    ///
    /// The snapshots go before the records: after a crash part way, recovery finds the old
    /// log (or a prefix of it) and snapshots it continues, never a snapshot holding
    /// truncated txns.
    pub fn truncate_after(&self, zxid: Zxid) -> Result<(), LogError> {
        let enqueue = lock(&self.handle.enqueue);
        let (mut enqueue, _) = self.call(enqueue, |reply| Command::TruncateAfter(zxid, reply))?;
        enqueue.last = enqueue.last.min(zxid);
        Ok(())
    }

    /// Durably removes the whole log and every snapshot but the one at `zxid`, so that the
    /// log restarts after `zxid`. Call it after [`crate::Log::write_snapshot`] wrote the
    /// snapshot received from the leader (ZAB SNAP). Later appends must be above `zxid`.
    ///
    /// Fails with [`LogError::ResetWithoutSnapshot`], changing nothing, if there is no
    /// snapshot file at `zxid` (unless `zxid` is zero: a log after zero needs none).
    ///
    /// A crash at any point of the install is safe. Between `write_snapshot` and the end
    /// of `reset`, [`crate::Log::open`] recovers either the old history (when the old log
    /// continues the new snapshot, or a newer snapshot of the old history exists) or the
    /// new snapshot with the old log discarded, exactly as if `reset` had finished.
    pub fn reset(&self, zxid: Zxid) -> Result<(), LogError> {
        let enqueue = lock(&self.handle.enqueue);
        let (mut enqueue, _) = self.call(enqueue, |reply| Command::Reset(zxid, reply))?;
        enqueue.last = zxid;
        Ok(())
    }

    /// The counters so far, for metrics.
    pub fn counters(&self) -> LogCounters {
        let stats = &self.handle.shared.stats;
        LogCounters {
            appends: stats.appends.load(Ordering::Relaxed),
            fsyncs: stats.fsyncs.load(Ordering::Relaxed),
            bytes: stats.bytes.load(Ordering::Relaxed),
            fsync_last: Duration::from_nanos(stats.fsync_last_ns.load(Ordering::Relaxed)),
            fsync_total: Duration::from_nanos(stats.fsync_total_ns.load(Ordering::Relaxed)),
            durable_zxid: Zxid(stats.durable_zxid.load(Ordering::Relaxed)),
        }
    }

    fn send(&self, enqueue: &Enqueue, command: Command) -> Result<(), LogError> {
        if lock(&self.handle.shared.stopped).is_some() {
            return Err(self.handle.shared.stopped_error());
        }
        let tx = enqueue
            .tx
            .as_ref()
            .ok_or_else(|| self.handle.shared.stopped_error())?;
        tx.send(command)
            .map_err(|_| self.handle.shared.stopped_error())
    }

    /// Sends a control command and waits for its reply while holding the queue, so that
    /// no append can slip in between.
    fn call<'a>(
        &self,
        enqueue: MutexGuard<'a, Enqueue>,
        command: impl FnOnce(Reply) -> Command,
    ) -> Result<(MutexGuard<'a, Enqueue>, Zxid), LogError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.send(&enqueue, command(reply))?;
        match result.recv() {
            Ok(Ok(zxid)) => Ok((enqueue, zxid)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.handle.shared.stopped_error()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The segment being appended to.
struct Active {
    file: File,
    path: PathBuf,
    /// Bytes of records (and header) written.
    size: u64,
    /// The file's length: `size` plus preallocated zeros.
    allocated: u64,
}

/// The writer thread's state.
struct Writer {
    config: WriterConfig,
    batch_max: usize,
    active: Option<Active>,
    /// `prev` for the next segment: the last record written, or the log's start.
    chain: Zxid,
    /// Highest zxid written (maybe not yet durable).
    written: Zxid,
    /// Highest zxid reported durable.
    durable: Zxid,
    /// Whether bytes were written since the last fdatasync.
    dirty: bool,
    /// Whether segments are preallocated (cleared when the file system refuses).
    preallocate: bool,
    buf: Vec<u8>,
    hooks: WriterHooks,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            if let Err(error) = self.batch(first, &rx) {
                self.shared.stop(&error);
                tracing::error!(%error, "txn log writer stopped");
                (self.hooks.on_error)(&error);
                return;
            }
        }
        // Keep the data dir locked until the thread is done with it.
        drop(self.config.lock_file);
    }

    /// Handles `first` and whatever else is queued (up to `batch_max`), then commits.
    fn batch(&mut self, first: Command, rx: &Receiver<Command>) -> Result<(), LogError> {
        self.handle(first)?;
        for _ in 1..self.batch_max {
            match rx.try_recv() {
                Ok(command) => self.handle(command)?,
                Err(_) => break,
            }
        }
        self.commit()
    }

    fn handle(&mut self, command: Command) -> Result<(), LogError> {
        match command {
            Command::Append { zxid, payload } => self.append(zxid, &payload),
            Command::Sync(reply) => {
                let result = self.commit().map(|()| self.durable);
                self.reply(reply, result)
            }
            Command::TruncateAfter(zxid, reply) => {
                let result = self.truncate_after(zxid);
                self.reply(reply, result)
            }
            Command::Reset(zxid, reply) => {
                let result = self.reset(zxid);
                self.reply(reply, result)
            }
        }
    }

    /// Sends a control command's result. A refused request is answered and the writer
    /// goes on; an I/O error stops the writer.
    fn reply(&mut self, reply: Reply, result: Result<Zxid, LogError>) -> Result<(), LogError> {
        match result {
            Ok(zxid) => {
                let _ = reply.send(Ok(zxid));
                Ok(())
            }
            Err(
                error @ (LogError::TruncateBelowLog { .. } | LogError::ResetWithoutSnapshot { .. }),
            ) => {
                let _ = reply.send(Err(error));
                Ok(())
            }
            Err(error) => {
                self.shared.stop(&error);
                let _ = reply.send(Err(self.shared.stopped_error()));
                Err(error)
            }
        }
    }

    fn append(&mut self, zxid: Zxid, payload: &[u8]) -> Result<(), LogError> {
        let len = record_len(payload.len()) as u64;
        let roll = match &self.active {
            None => true,
            Some(active) => {
                let size = active.size + self.buf.len() as u64;
                size > SEGMENT_HEADER_LEN as u64 && size + len > self.config.segment_bytes_max
            }
        };
        if roll {
            self.roll(zxid)?;
        }
        encode_record(&mut self.buf, zxid, payload);
        self.chain = zxid;
        self.written = zxid;
        self.shared.stats.appends.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.bytes.fetch_add(len, Ordering::Relaxed);
        if self.buf.len() >= WRITE_BUF_BYTES {
            self.write_buf()?;
        }
        Ok(())
    }

    /// Starts a new segment whose first record is `first`. The old segment is made fully
    /// durable first, so only the last segment can ever have a torn tail.
    fn roll(&mut self, first: Zxid) -> Result<(), LogError> {
        if self.active.is_some() {
            self.commit()?;
        }
        if let Some(old) = self.active.take() {
            // A finished segment keeps no preallocated space. Not synced: if the cut is
            // lost in a crash, recovery reads the zeros as unused space.
            if old.allocated > old.size {
                old.file
                    .set_len(old.size)
                    .map_err(io_err("truncate", &old.path))?;
            }
        }
        let _guard = lock(&self.config.dir_mutex);
        let header = SegmentHeader {
            first,
            prev: self.chain,
        };
        let (file, path) = create_segment(&self.config.log_dir, header)?;
        tracing::debug!(file = %path.display(), "started txn log segment");
        self.active = Some(Active {
            file,
            path,
            size: SEGMENT_HEADER_LEN as u64,
            allocated: SEGMENT_HEADER_LEN as u64,
        });
        Ok(())
    }

    fn write_buf(&mut self) -> Result<(), LogError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = self.active.as_mut() else {
            return Err(LogError::WriterStopped {
                reason: "records without a segment".into(),
            });
        };
        let end = active.size + self.buf.len() as u64;
        if end > active.allocated && self.preallocate {
            let target = end.div_ceil(PREALLOC_BYTES) * PREALLOC_BYTES;
            match preallocate(&active.file, target) {
                Ok(()) => active.allocated = target,
                // EOPNOTSUPP: this file system cannot; stop asking.
                Err(err)
                    if err.kind() == std::io::ErrorKind::Unsupported
                        || err.raw_os_error() == Some(95) =>
                {
                    tracing::debug!(file = %active.path.display(), "no preallocation on this file system");
                    self.preallocate = false;
                }
                // Out of space, say: the write below reports it if it matters.
                Err(err) => {
                    tracing::debug!(file = %active.path.display(), %err, "preallocation failed");
                }
            }
        }
        active
            .file
            .write_all(&self.buf)
            .map_err(io_err("write", &active.path))?;
        active.size += self.buf.len() as u64;
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    /// Writes the buffer, fdatasyncs once, and reports the new durable zxid.
    fn commit(&mut self) -> Result<(), LogError> {
        self.write_buf()?;
        if let (true, Some(active)) = (self.dirty, &self.active) {
            let started = Instant::now();
            active
                .file
                .sync_data()
                .map_err(io_err("fdatasync", &active.path))?;
            let took = started.elapsed();
            self.dirty = false;
            let stats = &self.shared.stats;
            let took_ns = took.as_nanos().min(u64::MAX as u128) as u64;
            stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            stats.fsync_last_ns.store(took_ns, Ordering::Relaxed);
            stats.fsync_total_ns.fetch_add(took_ns, Ordering::Relaxed);
            (self.hooks.on_fsync)(took);
        }
        if self.written > self.durable {
            self.durable = self.written;
            self.shared
                .stats
                .durable_zxid
                .store(self.durable.0, Ordering::Relaxed);
            (self.hooks.on_durable)(self.durable);
        }
        Ok(())
    }

    fn truncate_after(&mut self, zxid: Zxid) -> Result<Zxid, LogError> {
        self.commit()?;
        let dir_mutex = self.config.dir_mutex.clone();
        let _guard = lock(&dir_mutex);
        let log_dir = self.config.log_dir.clone();
        let segments = list_headers(&log_dir)?;
        let log_start = segments.first().map_or(self.chain, |(_, h)| h.prev);
        if zxid < log_start {
            return Err(LogError::TruncateBelowLog { zxid, log_start });
        }
        // Snapshots above the cut go first. One that outlived its records would look to
        // recovery like a snapshot past a torn tail, and its state, truncated txns
        // included, would be kept. A crash before the cut leaves the whole old log, whose
        // chain every remaining snapshot is on: the TRUNC simply did not happen.
        snapshot::remove_after(&self.config.snap_dir, zxid)?;
        self.active = None;
        let keep = segments.iter().rposition(|(_, h)| h.first <= zxid);
        let removed = &segments[keep.map_or(0, |k| k + 1)..];
        // Newest first, so a crash part way leaves a prefix of the log.
        let paths = removed.iter().rev().map(|(path, _)| path.as_path());
        remove_segments(&log_dir, paths, "truncating the txn log")?;
        self.chain = match keep {
            Some(k) => self.keep_segment_until(&segments[k].0, &segments[k].1, zxid)?,
            None => log_start,
        };
        self.written = self.written.min(zxid);
        self.durable = self.durable.min(zxid);
        self.shared
            .stats
            .durable_zxid
            .store(self.durable.0, Ordering::Relaxed);
        Ok(self.durable)
    }

    /// Cuts `path` after the last record at or below `zxid`, makes it the active segment,
    /// and returns that record's zxid.
    fn keep_segment_until(
        &mut self,
        path: &Path,
        header: &SegmentHeader,
        zxid: Zxid,
    ) -> Result<Zxid, LogError> {
        let mut cut: Option<u64> = None;
        let mut last = header.prev;
        let mut visit = |record: Zxid, _: &[u8], offset: u64| {
            if record > zxid {
                cut.get_or_insert(offset);
            } else {
                last = record;
            }
        };
        let (info, _) = scan_file(path, Some(header.prev), false, &mut visit)?;
        let len = cut.unwrap_or(info.len);
        if len < info.len {
            tracing::info!(file = %path.display(), offset = len, after = %zxid, "truncating txn log");
            truncate_segment(path, len)?;
        }
        let (file, allocated) = open_for_append(path, len)?;
        self.active = Some(Active {
            file,
            path: path.to_path_buf(),
            size: len,
            allocated,
        });
        Ok(last)
    }

    /// Restarts the log after `zxid`. Each step is durable before the next, and a crash
    /// after any of them recovers either the old history or the installed snapshot (see
    /// the recovery module doc).
    fn reset(&mut self, zxid: Zxid) -> Result<Zxid, LogError> {
        self.commit()?;
        let dir_mutex = self.config.dir_mutex.clone();
        let _guard = lock(&dir_mutex);
        let snap_dir = self.config.snap_dir.clone();
        // A log restarted after zxid needs the state at zxid. Without that snapshot an
        // older one would be the newest after a crash, off the new log's chain, and
        // recovery would take it for an interrupted install and drop the new log.
        if zxid != Zxid::ZERO && !snap_dir.join(snapshot_name(zxid)).is_file() {
            return Err(LogError::ResetWithoutSnapshot { zxid });
        }
        // 1. Snapshots of the abandoned history above zxid, so the one at zxid is the
        //    newest: recovery then replays the old log on it if it continues it, and
        //    otherwise completes the install.
        snapshot::remove_after(&snap_dir, zxid)?;
        // 2. The segments, newest first, so a crash part way leaves a prefix of the log.
        self.active = None;
        let files = list_headers_lenient(&self.config.log_dir)?;
        let paths = files.iter().rev().map(|(path, _)| path.as_path());
        remove_segments(&self.config.log_dir, paths, "resetting the txn log")?;
        // 3. Snapshots below zxid: the log no longer reaches back to them.
        snapshot::remove_before(&snap_dir, zxid)?;
        self.chain = zxid;
        self.written = zxid;
        self.durable = zxid;
        self.shared
            .stats
            .durable_zxid
            .store(zxid.0, Ordering::Relaxed);
        Ok(zxid)
    }
}

/// Segment files by name only: a reset removes them whatever their headers say.
fn list_headers_lenient(log_dir: &Path) -> Result<Vec<(PathBuf, Zxid)>, LogError> {
    let files = crate::fsutil::list_by_zxid(log_dir, crate::segment::SEGMENT_PREFIX)?;
    Ok(files.into_iter().map(|(zxid, path)| (path, zxid)).collect())
}
