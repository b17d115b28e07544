//! Durability across a crash: writers record every create the server acknowledged, the
//! server is killed with SIGKILL mid-stream and restarted on the same data directory, and
//! every acknowledged node must be there with its data.

use std::sync::{Arc, Mutex};

use zookeeper_client as zk;

use crate::harness::{bounded, client, deadline, wait_until, Server, WAIT};

const OPEN: &zk::CreateOptions<'static> =
    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// Concurrent writers, each with its own session.
const WRITERS: usize = 4;
/// Creates each writer attempts at most; the kill comes well before they are all done.
const CREATES_PER_WRITER: usize = 5_000;
/// Acknowledged creates to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_sigkill() {
    deadline(async {
        let mut server = Server::start();
        let setup = client(&server).await;
        setup.create("/crash", b"", OPEN).await.unwrap();
        drop(setup);

        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let zk = client(&server).await;
            let acked = Arc::clone(&acked);
            writers.push(tokio::spawn(async move {
                for n in 0..CREATES_PER_WRITER {
                    let path = format!("/crash/w{writer}-{n}");
                    // Stop at the first failure: the server is gone.
                    if zk.create(&path, path.as_bytes(), OPEN).await.is_err() {
                        return;
                    }
                    acked.lock().unwrap().push(path);
                }
            }));
        }
        wait_until("enough acknowledged creates", || async {
            acked.lock().unwrap().len() >= ACKED_BEFORE_KILL
        })
        .await;
        server.kill();
        for writer in writers {
            // A writer blocked on a reply must notice the dead server; abort it if it does not.
            let abort = writer.abort_handle();
            if tokio::time::timeout(WAIT, writer).await.is_err() {
                abort.abort();
            }
        }
        let acked = acked.lock().unwrap().clone();
        assert!(acked.len() >= ACKED_BEFORE_KILL);

        tokio::task::block_in_place(|| server.restart());
        let zk = client(&server).await;
        let mut missing = Vec::new();
        for path in &acked {
            match bounded("get after restart", zk.get_data(path)).await {
                Ok((data, _)) => {
                    assert_eq!(data, path.as_bytes(), "{path} came back with other data")
                }
                Err(zk::Error::NoNode) => missing.push(path.clone()),
                Err(error) => panic!("get {path} after restart: {error}"),
            }
        }
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged creates lost after SIGKILL, e.g. {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        );
        // Unacknowledged creates may or may not be there, but nothing else: every child is a
        // writer's path, and the server takes new writes.
        let children = zk.list_children("/crash").await.unwrap();
        assert!(children.len() >= acked.len());
        assert!(children.iter().all(|child| child.starts_with('w')));
        zk.create("/crash/after", b"", OPEN).await.unwrap();
    })
    .await;
}
