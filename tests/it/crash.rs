//! Durability across a crash: writers record every create the server acknowledged, the
//! server is killed with SIGKILL mid-stream and restarted on the same data directory, and
//! every acknowledged node must be there with its data.

use std::sync::{Arc, Mutex};

use zookeeper_client as zk;

use crate::harness::{bounded, client, deadline, files_in, wait_until, Flavor, Server, WAIT};

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
        let acked = write_until_killed(&mut server).await;
        tokio::task::block_in_place(|| server.restart());
        assert_all_present(&server, &acked).await;
    })
    .await;
}

/// The same, with snapshots taken while the writers run, so recovery is snapshot + log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_sigkill_across_snapshots() {
    if Flavor::from_env() != Flavor::Edgekeeper {
        eprintln!("skipped: edgekeeper's snapshot interval is what this test sets");
        return;
    }
    deadline(async {
        let mut server = Server::start_with("snapshot_every_txns = 40\nsnapshots_retained = 2");
        let acked = write_until_killed(&mut server).await;
        let snapshots = files_in(&server.data_dir().join("snapshot"), "snapshot.");
        assert!(
            !snapshots.is_empty(),
            "no snapshot was written; log:\n{}",
            server.log_tail()
        );
        tokio::task::block_in_place(|| server.restart());
        assert_all_present(&server, &acked).await;
    })
    .await;
}

/// A log whose last record was cut short (a crash mid-write) recovers: the torn record is
/// dropped with a warning and everything before it is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_truncated_with_a_warning() {
    if Flavor::from_env() != Flavor::Edgekeeper {
        eprintln!("skipped: this test edits edgekeeper's log files");
        return;
    }
    deadline(async {
        let mut server = Server::start();
        let segment = create_then_kill(&mut server, "/t", 20).await;
        // The segment is preallocated: the records end at its last non-zero byte (which
        // lies inside the last record: its header holds a crc and a zxid).
        let bytes = std::fs::read(&segment).unwrap();
        let len = bytes.iter().rposition(|&byte| byte != 0).unwrap() as u64 + 1;
        // The last record is the session close or the last create: cut 3 bytes off it.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len(len - 3).unwrap();
        drop(file);

        tokio::task::block_in_place(|| server.restart());
        let log = server.log_tail();
        let name = segment.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            log.contains("WARN") && log.contains(&name),
            "expected a warning naming {name}; log:\n{log}"
        );
        let zk = client(&server).await;
        for n in 0..19 {
            assert!(
                zk.check_stat(&format!("/t{n}")).await.unwrap().is_some(),
                "/t{n} lost after truncating the torn tail"
            );
        }
        zk.create("/after", b"", OPEN).await.unwrap();
    })
    .await;
}

/// A flipped byte inside a record in the middle of the log is corruption, not a torn tail:
/// the node refuses to start and names the file and the offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_log_record_is_reported() {
    if Flavor::from_env() != Flavor::Edgekeeper {
        eprintln!("skipped: this test edits edgekeeper's log files");
        return;
    }
    deadline(async {
        let mut server = Server::start();
        let segment = create_then_kill(&mut server, "/f", 20).await;
        let mut bytes = std::fs::read(&segment).unwrap();
        // Segment header (40 bytes), then the first record's frame (16 bytes), then its
        // payload: flip a payload byte of the first record; many valid records follow.
        let offset = 40 + 16 + 2;
        bytes[offset] ^= 0x40;
        std::fs::write(&segment, &bytes).unwrap();

        let (status, log) = tokio::task::block_in_place(|| server.restart_expecting_failure());
        assert!(!status.success(), "edgekeeper exited 0 on a corrupt log");
        let name = segment.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            log.contains(&name) && log.contains("offset"),
            "the error must name {name} and the offset; log:\n{log}"
        );
    })
    .await;
}

/// Runs concurrent writers until enough creates are acknowledged, then kills the server
/// with SIGKILL; returns every acknowledged path.
async fn write_until_killed(server: &mut Server) -> Vec<String> {
    let setup = client(server).await;
    setup.create("/crash", b"", OPEN).await.unwrap();
    drop(setup);

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let zk = client(server).await;
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
    acked
}

/// Every acknowledged node is there with its data, nothing else is under /crash, and the
/// server takes new writes.
async fn assert_all_present(server: &Server, acked: &[String]) {
    let zk = client(server).await;
    let mut missing = Vec::new();
    for path in acked {
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
    // Unacknowledged creates may or may not be there, but nothing else.
    let children = zk.list_children("/crash").await.unwrap();
    assert!(children.len() >= acked.len());
    assert!(children.iter().all(|child| child.starts_with('w')));
    zk.create("/crash/after", b"", OPEN).await.unwrap();
}

/// Creates `count` nodes `<prefix><n>`, kills the server and returns its newest log
/// segment, for tests that then damage it.
async fn create_then_kill(server: &mut Server, prefix: &str, count: usize) -> std::path::PathBuf {
    let zk = client(server).await;
    for n in 0..count {
        zk.create(&format!("{prefix}{n}"), b"data", OPEN)
            .await
            .unwrap();
    }
    drop(zk);
    server.kill();
    last_segment(server)
}

/// The newest log segment (names sort by their first zxid in fixed-width hex).
fn last_segment(server: &Server) -> std::path::PathBuf {
    let segments = files_in(&server.data_dir().join("log"), "log.");
    segments.last().cloned().expect("a log segment")
}
