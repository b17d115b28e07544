//! The data dir: recovery at start (newest valid snapshot; the logged txns after it go to
//! ZAB, which re-delivers them once it knows them committed), the group-commit writer's
//! hooks, and snapshots written off the core task while writes go on.

use crate::core::{Core, CoreMsg};
use crate::{Config, ServerError};
use ek_admin::Metrics;
use ek_log::{Log, LogOptions, LogWriter, WriterHooks};
use ek_tree::DataTree;
use ek_types::{Txn, Zxid};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What recovery hands the core.
pub(crate) struct Recovered {
    /// The tree of the newest valid snapshot (empty without one).
    pub(crate) tree: DataTree,
    /// Every logged txn after the snapshot, in order; committed or not, ZAB decides.
    pub(crate) txns: Vec<(Zxid, Vec<u8>)>,
    /// Durable `acceptedEpoch` and `currentEpoch`.
    pub(crate) epochs: (u32, u32),
    pub(crate) log: LogWriter,
    pub(crate) snapshots: Snapshots,
}

/// Snapshot scheduling state.
pub(crate) struct Snapshots {
    pub(crate) log: Arc<Log>,
    pub(crate) txns_since: u64,
    in_progress: bool,
}

/// A finished snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotJob {
    zxid: Zxid,
    size_bytes: u64,
    elapsed: Duration,
}

/// Opens and locks the data dir, rebuilds the tree, and starts the log writer whose hooks
/// feed the core.
pub(crate) fn recover(
    config: &Config,
    core_tx: mpsc::UnboundedSender<CoreMsg>,
    metrics: Arc<Metrics>,
) -> Result<Recovered, ServerError> {
    let dir = config.data_dir.clone();
    let storage_error = |source| ServerError::Storage {
        dir: dir.clone(),
        source,
    };
    let options = LogOptions {
        snapshots_retained: config.snapshots_retained.max(1) as usize,
        ..LogOptions::default()
    };
    let (log, recovered) = Log::open(&dir, options).map_err(storage_error)?;
    let recovery_error = |reason: String| ServerError::Recovery {
        dir: dir.clone(),
        reason,
    };
    let tree = match &recovered.snapshot {
        Some(snapshot) => {
            DataTree::read_snapshot(&mut snapshot.data.as_slice()).map_err(|err| {
                recovery_error(format!("snapshot {}: {err}", snapshot.path.display()))
            })?
        }
        None => DataTree::new(),
    };
    let txns = recovered.txns;
    // Every logged txn must decode: a record that passed its checksum but does not decode
    // is corruption, reported now rather than when it commits.
    for (zxid, bytes) in &txns {
        let txn: Txn = postcard::from_bytes(bytes).map_err(|err| {
            recovery_error(format!("txn {zxid} in the log does not decode: {err}"))
        })?;
        if txn.zxid != *zxid {
            return Err(recovery_error(format!(
                "log record {zxid} holds txn {}",
                txn.zxid
            )));
        }
    }
    let epochs =
        crate::replication::read_epochs(&log, recovered.last_zxid).map_err(recovery_error)?;
    tracing::info!(
        snapshot_zxid = %tree.last_zxid(),
        logged = txns.len(),
        last_logged = %recovered.last_zxid,
        accepted_epoch = epochs.0,
        current_epoch = epochs.1,
        znodes = tree.node_count(),
        "recovered the data dir"
    );
    let logged = txns.len();
    let durable_tx = core_tx.clone();
    let hooks = WriterHooks::new(move |zxid| {
        let _ = durable_tx.send(CoreMsg::Durable(zxid));
    })
    .on_error(move |err| {
        let _ = core_tx.send(CoreMsg::LogFailed(err.to_string()));
    })
    .on_fsync(move |elapsed| metrics.observe_fsync(elapsed));
    let writer = log.start_writer(hooks).map_err(storage_error)?;
    Ok(Recovered {
        tree,
        txns,
        epochs,
        log: writer,
        snapshots: Snapshots {
            log: Arc::new(log),
            txns_since: logged as u64,
            in_progress: false,
        },
    })
}

impl Core {
    /// Starts a snapshot on a blocking thread once enough txns were applied since the last.
    pub(crate) fn maybe_snapshot(&mut self) {
        let snapshots = &mut self.snapshots;
        if snapshots.in_progress || snapshots.txns_since < self.config.snapshot_every_txns {
            return;
        }
        snapshots.in_progress = true;
        snapshots.txns_since = 0;
        let tree = self.tree.snapshot();
        let zxid = self.tree.last_zxid();
        let log = snapshots.log.clone();
        let core_tx = self.core_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut size_bytes = 0u64;
            let result = log.write_snapshot(zxid, |out| {
                let mut counting = CountingWriter {
                    inner: out,
                    bytes: 0,
                };
                tree.write_to(&mut counting)?;
                size_bytes = counting.bytes;
                Ok(())
            });
            let done = result
                .map(|_| SnapshotJob {
                    zxid,
                    size_bytes,
                    elapsed: started.elapsed(),
                })
                .map_err(|err| err.to_string());
            let _ = core_tx.send(CoreMsg::SnapshotDone(done));
        });
    }

    pub(crate) fn snapshot_done(&mut self, result: Result<SnapshotJob, String>) {
        self.snapshots.in_progress = false;
        match result {
            Ok(job) => {
                tracing::info!(
                    zxid = %job.zxid,
                    bytes = job.size_bytes,
                    ms = job.elapsed.as_millis() as u64,
                    "snapshot written"
                );
                self.metrics.observe_snapshot(job.size_bytes, job.elapsed);
            }
            Err(reason) => tracing::warn!(reason, "snapshot failed; the log still has everything"),
        }
    }
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
