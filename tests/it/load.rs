//! Write load for cluster tests and the checks that follow it: concurrent writers that
//! record every create the cluster acknowledged, and assertions that acknowledged nodes are
//! on a given node (after `sync`, so a follower's reads are up to date).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zookeeper_client as zk;

use crate::cluster::{Cluster, CLUSTER_WAIT};
use crate::proxy::NodeId;

/// Persistent, open to anyone.
pub(crate) const OPEN: &zk::CreateOptions<'static> =
    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// Ephemeral, open to anyone.
pub(crate) const EPHEMERAL: &zk::CreateOptions<'static> =
    &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());

/// Awaits `future`, failing the test with `what` if it takes longer than [`CLUSTER_WAIT`].
pub(crate) async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(CLUSTER_WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {CLUSTER_WAIT:?}: {what}"),
    }
}

/// What one writer saw.
#[derive(Debug)]
pub(crate) struct WriterReport {
    /// Which writer.
    pub(crate) writer: usize,
    /// Its session id when it started.
    pub(crate) session_before: i64,
    /// Its session id when it stopped.
    pub(crate) session_after: i64,
    /// Failed creates (connection loss and the like: outcome unknown, so not recorded).
    pub(crate) failures: Vec<String>,
    /// The error that ended its session, if one did.
    pub(crate) fatal: Option<zk::Error>,
}

/// Concurrent writers, one session each, creating `<parent>/w<writer>-<n>` with the path
/// as data until stopped.
pub(crate) struct Writers {
    sessions: Vec<i64>,
    acked: Arc<Vec<Mutex<Vec<String>>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<WriterReport>>,
}

impl Writers {
    /// Starts one writer per client under `parent` (which must exist).
    pub(crate) fn start(clients: Vec<zk::Client>, parent: &str) -> Writers {
        let acked: Arc<Vec<Mutex<Vec<String>>>> =
            Arc::new(clients.iter().map(|_| Mutex::new(Vec::new())).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = clients.iter().map(|client| client.session_id().0).collect();
        let tasks = clients
            .into_iter()
            .enumerate()
            .map(|(writer, client)| {
                let acked = Arc::clone(&acked);
                let stop = Arc::clone(&stop);
                let parent = parent.to_owned();
                tokio::spawn(async move { write(writer, client, &parent, &acked, &stop).await })
            })
            .collect();
        Writers {
            sessions,
            acked,
            stop,
            tasks,
        }
    }

    /// The writers' session ids, by writer (their sessions close when they stop).
    pub(crate) fn sessions(&self) -> &[i64] {
        &self.sessions
    }

    /// Acknowledged creates so far, per writer.
    pub(crate) fn acked_per_writer(&self) -> Vec<usize> {
        self.acked
            .iter()
            .map(|acked| acked.lock().unwrap_or_else(|p| p.into_inner()).len())
            .collect()
    }

    /// Acknowledged creates so far, in all.
    pub(crate) fn acked_total(&self) -> usize {
        self.acked_per_writer().iter().sum()
    }

    /// Stops the writers; returns every acknowledged path and what each writer saw.
    pub(crate) async fn stop(self) -> (Vec<String>, Vec<WriterReport>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut reports = Vec::new();
        for task in self.tasks {
            reports.push(within("a writer to stop", task).await.expect("writer task"));
        }
        let acked = self
            .acked
            .iter()
            .flat_map(|acked| acked.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect();
        (acked, reports)
    }
}

async fn write(
    writer: usize,
    client: zk::Client,
    parent: &str,
    acked: &[Mutex<Vec<String>>],
    stop: &AtomicBool,
) -> WriterReport {
    let mut report = WriterReport {
        writer,
        session_before: client.session_id().0,
        session_after: 0,
        failures: Vec::new(),
        fatal: None,
    };
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let path = format!("{parent}/w{writer}-{n}");
        n += 1;
        // A request made while the session reconnects waits for it; bound the wait.
        match tokio::time::timeout(CLUSTER_WAIT, client.create(&path, path.as_bytes(), OPEN)).await
        {
            Ok(Ok(_)) => acked[writer]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(path),
            Ok(Err(
                error @ (zk::Error::SessionExpired
                | zk::Error::ClientClosed
                | zk::Error::NoHosts
                | zk::Error::AuthFailed),
            )) => {
                report.fatal = Some(error);
                break;
            }
            Ok(Err(error)) => {
                report.failures.push(format!("{path}: {error}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => report
                .failures
                .push(format!("{path}: no answer within {CLUSTER_WAIT:?}")),
        }
    }
    report.session_after = client.session_id().0;
    report
}

/// Asserts that node `id` has every path in `acked`, each with its path as data, under
/// `parent`, reading through a session on `id` alone after `sync`.
pub(crate) async fn assert_acked_on(cluster: &Cluster, id: NodeId, parent: &str, acked: &[String]) {
    let client = cluster.client_at(id).await;
    within("sync", client.sync(parent))
        .await
        .unwrap_or_else(|error| panic!("sync {parent} on node {id}: {error}"));
    let children: BTreeSet<String> = within("list children", client.list_children(parent))
        .await
        .unwrap_or_else(|error| panic!("list {parent} on node {id}: {error}"))
        .into_iter()
        .map(|child| format!("{parent}/{child}"))
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|path| !children.contains(*path))
        .collect();
    assert!(
        missing.is_empty(),
        "node {id} lacks {} of {} acknowledged creates, e.g. {:?}\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        cluster.logs()
    );
    for path in acked {
        let (data, _) = within("get_data", client.get_data(path))
            .await
            .unwrap_or_else(|error| panic!("get {path} on node {id}: {error}"));
        assert_eq!(
            data,
            path.as_bytes(),
            "{path} has other data on node {id} than was acknowledged"
        );
    }
}

/// Creates `<parent>/<prefix><n>` for `n` in `0..count` through `client`, each with its
/// path as data; panics on any failure. Returns the paths.
pub(crate) async fn create_all(
    client: &zk::Client,
    parent: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut paths = Vec::with_capacity(count);
    for n in 0..count {
        let path = format!("{parent}/{prefix}{n}");
        within("create", client.create(&path, path.as_bytes(), OPEN))
            .await
            .unwrap_or_else(|error| panic!("create {path}: {error}"));
        paths.push(path);
    }
    paths
}

/// Reads `path` through a fresh session on node `id` after `sync`; `None` if it is absent.
pub(crate) async fn read_at(cluster: &Cluster, id: NodeId, path: &str) -> Option<Vec<u8>> {
    let client = cluster.client_at(id).await;
    within("sync", client.sync("/"))
        .await
        .unwrap_or_else(|error| panic!("sync on node {id}: {error}"));
    match within("get_data", client.get_data(path)).await {
        Ok((data, _)) => Some(data),
        Err(zk::Error::NoNode) => None,
        Err(error) => panic!("get {path} on node {id}: {error}"),
    }
}
