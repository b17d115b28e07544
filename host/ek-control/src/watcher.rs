//! One task per active watcher plugin: subscribe to its watch prefixes, hand it the
//! start-up snapshot, then batches of committed changes in zxid order, and submit what it
//! buffered as one multi after each successful call. A failed call (trap, timeout, error)
//! loses nothing: after the plugin's backoff the task subscribes again and the plugin
//! gets a fresh snapshot, so it converges on the tree as it is.

use crate::env::{stat_of, NodeEnv};
use crate::manager::{PluginSession, Report};
use ek_plugin::{CallError, Change, ChangeBatch, ChangeKind, Manifest, Plugin};
use ek_server::NodeHandle;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Changes handed to one call at most; more wait for the next call.
const MAX_BATCH_CHANGES: usize = 1_000;
/// Batches queued for a watcher before its subscription is dropped and restarted.
const QUEUE: usize = 4_096;
/// Nodes a watcher's snapshot may hold.
const MAX_SNAPSHOT_NODES: usize = 100_000;

pub(crate) struct WatcherHandle {
    task: JoinHandle<()>,
}

impl WatcherHandle {
    pub(crate) fn abort(self) {
        self.task.abort();
    }

    /// Stops the task; a call in progress finishes on its blocking thread.
    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub(crate) fn start(
    node: NodeHandle,
    name: String,
    manifest: Manifest,
    plugin: Arc<Mutex<Plugin>>,
    session: PluginSession,
    report: Arc<Mutex<Report>>,
) -> WatcherHandle {
    let task = tokio::spawn(async move {
        run(node, name, manifest, plugin, session, report).await;
    });
    WatcherHandle { task }
}

async fn run(
    node: NodeHandle,
    name: String,
    manifest: Manifest,
    plugin: Arc<Mutex<Plugin>>,
    session: PluginSession,
    report: Arc<Mutex<Report>>,
) {
    let prefixes = manifest.watch_prefixes.clone();
    loop {
        let mut sub = match node
            .subscribe(prefixes.clone(), QUEUE, MAX_SNAPSHOT_NODES)
            .await
        {
            Ok(sub) => sub,
            Err(err) => {
                if node.is_closed() {
                    return;
                }
                tracing::debug!(plugin = %name, %err, "cannot subscribe yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let snapshot = ChangeBatch {
            snapshot: true,
            zxid: sub.zxid,
            changes: sub
                .snapshot
                .iter()
                .map(|(path, stat)| Change {
                    kind: ChangeKind::Created,
                    path: path.clone(),
                    zxid: stat.mzxid.0.max(stat.czxid.0) as u64,
                    stat: Some(stat_of(stat)),
                })
                .collect(),
        };
        let mut pending = Some(snapshot);
        loop {
            let batch = match pending.take() {
                Some(batch) => batch,
                None => {
                    let Some(first) = sub.changes.recv().await else {
                        break;
                    };
                    let mut batch = convert(first, false);
                    while batch.changes.len() < MAX_BATCH_CHANGES {
                        match sub.changes.try_recv() {
                            Ok(more) => {
                                batch.zxid = more.zxid;
                                batch.changes.extend(convert(more, false).changes);
                            }
                            Err(_) => break,
                        }
                    }
                    batch
                }
            };
            if let Err(wait) = call(&node, &name, &plugin, &session, &report, batch).await {
                tokio::time::sleep(wait).await;
                // Start over from a fresh snapshot.
                break;
            }
        }
    }
}

fn convert(batch: ek_server::ChangeBatch, snapshot: bool) -> ChangeBatch {
    ChangeBatch {
        snapshot,
        zxid: batch.zxid,
        changes: batch
            .changes
            .into_iter()
            .map(|change| Change {
                kind: match change.kind {
                    ek_server::ChangeKind::Created => ChangeKind::Created,
                    ek_server::ChangeKind::Deleted => ChangeKind::Deleted,
                    ek_server::ChangeKind::DataChanged => ChangeKind::DataChanged,
                },
                path: change.path,
                zxid: change.zxid,
                stat: change.stat.as_ref().map(stat_of),
            })
            .collect(),
    }
}

/// Runs one call and submits its writes; on failure, how long to wait before starting
/// over.
async fn call(
    node: &NodeHandle,
    name: &str,
    plugin: &Arc<Mutex<Plugin>>,
    session: &PluginSession,
    report: &Arc<Mutex<Report>>,
    batch: ChangeBatch,
) -> Result<(), Duration> {
    let env: std::sync::Arc<dyn ek_plugin::HostEnv> =
        std::sync::Arc::new(NodeEnv::new(node.clone(), PluginSession::ids(name)));
    let plugin = plugin.clone();
    let result = tokio::task::spawn_blocking(move || match plugin.lock() {
        Ok(mut plugin) => plugin.on_changes(&env, &batch),
        Err(_) => Err(CallError::Host("plugin lock poisoned".to_owned())),
    })
    .await;
    let result = match result {
        Ok(result) => result,
        Err(err) => Err(CallError::Host(format!("call thread failed: {err}"))),
    };
    match result {
        Ok(output) => {
            if output.ops.is_empty() {
                return Ok(());
            }
            let submitted = session.submit(&output.ops).await;
            if let Ok(mut report) = report.lock() {
                report.txns += 1;
                if let Err(err) = &submitted {
                    report.txn_failures += 1;
                    report.error(format!("txn of {} ops refused: {err}", output.ops.len()));
                }
            }
            if let Err(err) = submitted {
                tracing::warn!(plugin = name, %err, "a watcher's writes were refused");
            }
            Ok(())
        }
        Err(CallError::Backoff { retry_in }) => Err(retry_in),
        Err(CallError::Suspended { reason }) => {
            tracing::debug!(plugin = name, reason, "suspended watcher not called");
            Err(Duration::from_secs(5))
        }
        Err(err) => {
            tracing::warn!(plugin = name, %err, "watcher call failed");
            if let Ok(mut report) = report.lock() {
                report.error(err.to_string());
            }
            // A trap or timeout already put the plugin in backoff (the next call says how
            // long); a plugin that returned an error is retried a little later.
            Err(match err {
                CallError::Plugin(_) => Duration::from_secs(1),
                _ => Duration::from_millis(100),
            })
        }
    }
}
