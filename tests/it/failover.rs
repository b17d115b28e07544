//! Failures of a replicated ensemble: the leader SIGKILLed under write load (no
//! acknowledged write lost, sessions move to another node), a minority partition (no
//! commit there; the majority goes on), a deposed leader's uncommitted write (TRUNCed when
//! it returns), a lossy network (commits go on), and real clients (`zookeeper-client`,
//! kazoo's recipes) riding through a leader kill.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ek_log::{Log, LogOptions};
use ek_types::{Txn, TxnBody};
use zookeeper_client as zk;

use crate::cluster::{bounded_test, turn, Cluster, Mode, Spec, CLUSTER_WAIT};
use crate::harness::{python, Helper};
use crate::load::{assert_acked_on, create_all, read_at, within, Writers, EPHEMERAL, OPEN};
use crate::proxy::NodeId;

/// Concurrent writers during the leader kill.
const WRITERS: usize = 4;
/// Acknowledged creates to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 100;
/// Acknowledged creates each writer must make after the kill.
const ACKED_AFTER_KILL: usize = 20;
/// How long a write that cannot commit is given before the test moves on. Waiting longer
/// only makes the check stricter.
const NO_COMMIT_WAIT: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_write_load_loses_no_acknowledged_write() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0)).await;
        let old_leader = cluster.leader().await;
        let setup = cluster.client_any(&cluster.ids()).await;
        within("create /load", setup.create("/load", b"", OPEN))
            .await
            .expect("create /load");

        // A session on the leader holds an ephemeral; it must survive the leader's death.
        let holder = cluster.client_on(old_leader).await;
        within("create /held", holder.create("/held", b"", EPHEMERAL))
            .await
            .expect("create the ephemeral /held");
        let held_session = holder.session_id().0;

        let writers = start_writers(&cluster, old_leader).await;
        cluster.kill9(old_leader);
        let survivors = cluster.live();
        let new_leader = cluster.leader_among(&survivors).await;
        let acked = writers_ride_through(&cluster, writers, &survivors).await;

        // The holder's session moved to a survivor with the same id; its ephemeral lives.
        let stat = within("stat /held after the kill", holder.check_stat("/held"))
            .await
            .unwrap_or_else(|error| panic!("stat /held through the moved session: {error}"));
        assert_eq!(
            holder.session_id().0,
            held_session,
            "the session on node {old_leader} was not resumed with the same id"
        );
        assert_eq!(
            stat.map(|stat| stat.ephemeral_owner),
            Some(held_session),
            "the ephemeral of the resumed session is gone or changed owner"
        );
        assert_on_survivor(&cluster, held_session, &survivors, "the holder's").await;
        for &id in &survivors {
            assert_acked_on(&cluster, id, "/load", &acked).await;
            assert!(
                read_at(&cluster, id, "/held").await.is_some(),
                "node {id} lacks the resumed session's ephemeral"
            );
        }

        // The old leader returns and is brought up to date (DIFF or TRUNC: it may have
        // logged proposals nobody else got).
        let synced = sync_total(&cluster, &survivors).await;
        cluster.restart(old_leader).await;
        cluster.wait_serving(old_leader).await;
        cluster
            .wait_for("the new leader to sync the old one", || async {
                (sync_total(&cluster, &survivors).await > synced).then_some(())
            })
            .await;
        assert_eq!(
            cluster.mode(new_leader).await,
            Some(Mode::Leader),
            "node {new_leader} should still lead"
        );
        cluster.wait_converged(&cluster.ids()).await;
        assert_acked_on(&cluster, old_leader, "/load", &acked).await;
    })
    .await;
}

/// Starts [`WRITERS`] writers under `/load`, writer 0 on `leader` so that one certainly
/// loses its connection when the leader dies; returns once enough creates are acknowledged.
async fn start_writers(cluster: &Cluster, leader: NodeId) -> Writers {
    let mut clients = vec![cluster.client_on(leader).await];
    for _ in 1..WRITERS {
        clients.push(cluster.client_any(&cluster.ids()).await);
    }
    let writers = Writers::start(clients, "/load");
    cluster
        .wait_for("acknowledged creates before the kill", || async {
            (writers.acked_total() >= ACKED_BEFORE_KILL).then_some(())
        })
        .await;
    writers
}

/// After the kill: every writer makes progress with its session, now on a survivor; then
/// the writers stop. Returns every acknowledged path.
async fn writers_ride_through(
    cluster: &Cluster,
    writers: Writers,
    survivors: &[NodeId],
) -> Vec<String> {
    let at_kill = writers.acked_per_writer();
    cluster
        .wait_for("every writer to make progress after the kill", || async {
            let now = writers.acked_per_writer();
            let moved = now
                .iter()
                .zip(&at_kill)
                .all(|(now, then)| *now >= then + ACKED_AFTER_KILL);
            moved.then_some(())
        })
        .await;
    for (writer, &session) in writers.sessions().iter().enumerate() {
        assert_on_survivor(cluster, session, survivors, &format!("writer {writer}'s")).await;
    }
    let (acked, reports) = writers.stop().await;
    for report in &reports {
        assert!(
            report.fatal.is_none() && report.session_before == report.session_after,
            "writer {} lost its session across the leader kill: {report:?}",
            report.writer
        );
    }
    acked
}

/// Asserts that `session` is held by one of `survivors` (by `cons`).
async fn assert_on_survivor(cluster: &Cluster, session: i64, survivors: &[NodeId], whose: &str) {
    let node = cluster.node_of_session(session).await;
    assert!(
        node.is_some_and(|node| survivors.contains(&node)),
        "{whose} session should sit on a survivor {survivors:?}, is on {node:?}"
    );
}

/// Syncs of every kind counted on `ids`.
async fn sync_total(cluster: &Cluster, ids: &[NodeId]) -> f64 {
    let mut total = 0.0;
    for kind in ["diff", "trunc", "snap"] {
        total += cluster.syncs(kind, ids).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_partition_cannot_commit_and_the_majority_can() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let cluster = Cluster::start(Spec::new(3, 0).with_proxy()).await;
        let leader = cluster.leader().await;
        let minority = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
        let majority: Vec<NodeId> = cluster
            .ids()
            .into_iter()
            .filter(|&id| id != minority)
            .collect();
        let setup = cluster.client_at(leader).await;
        within("create /part", setup.create("/part", b"", OPEN))
            .await
            .expect("create /part");
        cluster.wait_converged(&cluster.ids()).await;
        let at_minority = cluster.client_at(minority).await;

        cluster.proxy().isolate(minority);
        let attempt = tokio::time::timeout(
            NO_COMMIT_WAIT,
            at_minority.create("/part/minority", b"", OPEN),
        )
        .await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "a write through node {minority} succeeded while it was cut off from the others"
        );
        cluster.wait_not_serving(minority).await;

        let new_leader = cluster.leader_among(&majority).await;
        let client = cluster.client_any(&majority).await;
        let written = create_all(&client, "/part", "majority-", 20).await;
        for &id in &majority {
            assert_acked_on(&cluster, id, "/part", &written).await;
        }
        assert_eq!(
            cluster.mode(minority).await,
            Some(Mode::NotServing),
            "the cut-off node {minority} must not serve while the majority (leader \
             {new_leader}) commits"
        );

        cluster.proxy().heal();
        cluster.wait_serving(minority).await;
        cluster.leader().await;
        cluster.wait_converged(&cluster.ids()).await;
        assert_acked_on(&cluster, minority, "/part", &written).await;
    })
    .await;
}

/// Share of datagrams between nodes dropped in the lossy-network test.
const LOSS: f64 = 0.05;
/// Acknowledged creates to wait for over the lossy network.
const ACKED_WHILE_LOSSY: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_over_a_lossy_network() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let cluster = Cluster::start(Spec::new(3, 0).with_proxy()).await;
        let setup = cluster.client_any(&cluster.ids()).await;
        within("create /lossy", setup.create("/lossy", b"", OPEN))
            .await
            .expect("create /lossy");

        cluster.proxy().set_drop_probability(LOSS);
        let mut clients = Vec::new();
        for id in cluster.ids() {
            clients.push(cluster.client_at(id).await);
        }
        let writers = Writers::start(clients, "/lossy");
        cluster
            .wait_for("acknowledged creates over the lossy network", || async {
                (writers.acked_total() >= ACKED_WHILE_LOSSY).then_some(())
            })
            .await;
        let (acked, _) = writers.stop().await;
        let counters = cluster.proxy().counters();
        assert!(
            counters.dropped > 0,
            "the proxy dropped nothing: {counters:?}"
        );

        cluster.proxy().heal();
        cluster.leader().await;
        cluster.wait_converged(&cluster.ids()).await;
        for id in cluster.ids() {
            assert_acked_on(&cluster, id, "/lossy", &acked).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposed_leaders_uncommitted_write_is_truncated() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0).with_proxy()).await;
        let old_leader = cluster.leader().await;
        let others: Vec<NodeId> = cluster
            .ids()
            .into_iter()
            .filter(|&id| id != old_leader)
            .collect();
        let at_old = cluster.client_at(old_leader).await;
        within("create /trunc", at_old.create("/trunc", b"", OPEN))
            .await
            .expect("create /trunc");
        cluster.wait_converged(&cluster.ids()).await;

        // Cut off, the leader still takes the write and logs it, but no one acks it.
        cluster.proxy().isolate(old_leader);
        let attempt = tokio::time::timeout(
            NO_COMMIT_WAIT,
            at_old.create("/trunc/uncommitted", b"never", OPEN),
        )
        .await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "the cut-off leader {old_leader} acknowledged a write without a quorum"
        );

        // The majority elects a leader of its own and commits.
        let new_leader = cluster.leader_among(&others).await;
        let client = cluster.client_any(&others).await;
        let committed = create_all(&client, "/trunc", "committed-", 20).await;

        cluster.kill9(old_leader);
        drop(at_old);
        assert!(
            logs_create(&cluster.data_dir(old_leader), "/trunc/uncommitted"),
            "precondition: the cut-off leader {old_leader} should have logged the write it \
             could not commit; log:\n{}",
            cluster.log_tail(old_leader)
        );

        cluster.proxy().heal();
        let truncs = cluster.syncs("trunc", &others).await;
        cluster.restart(old_leader).await;
        let mode = cluster.wait_serving(old_leader).await;
        assert_eq!(mode, Mode::Follower, "the old leader rejoins as a follower");
        cluster.wait_syncs_above("trunc", &others, truncs).await;
        assert_eq!(
            cluster.mode(new_leader).await,
            Some(Mode::Leader),
            "node {new_leader} should still lead"
        );
        cluster.wait_converged(&cluster.ids()).await;
        for id in cluster.ids() {
            assert_eq!(
                read_at(&cluster, id, "/trunc/uncommitted").await,
                None,
                "node {id} has the write only the deposed leader logged"
            );
            assert_acked_on(&cluster, id, "/trunc", &committed).await;
        }
    })
    .await;
}

/// Whether the log in `data_dir` (of a stopped node) holds a txn creating `path`.
fn logs_create(data_dir: &Path, path: &str) -> bool {
    let (log, recovered) = Log::open(data_dir, LogOptions::default())
        .unwrap_or_else(|error| panic!("open the log in {}: {error}", data_dir.display()));
    drop(log);
    recovered.txns.iter().any(|(_, payload)| {
        postcard::from_bytes::<Txn>(payload)
            .is_ok_and(|txn| matches!(&txn.body, TxnBody::Create { path: p, .. } if p == path))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_session_rides_through_leader_kill() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0)).await;
        let old_leader = cluster.leader().await;
        let client = cluster.client_on(old_leader).await;
        let session = client.session_id();
        let mut states = client.state_watcher();
        within("create /ride", client.create("/ride", b"", OPEN))
            .await
            .expect("create /ride");
        let (_, watcher) = within("watch /ride", client.check_and_watch_stat("/ride/later"))
            .await
            .expect("watch /ride/later");

        cluster.kill9(old_leader);
        // The watch channel keeps only the latest state, so Disconnected may be skipped.
        let state = within("the session to reconnect", async {
            loop {
                let state = states.changed().await;
                if state != zk::SessionState::Disconnected {
                    return state;
                }
            }
        })
        .await;
        assert_eq!(
            state,
            zk::SessionState::SyncConnected,
            "the session on the killed node should reconnect to another node, not end"
        );
        let node = cluster.node_of_session(session.0).await;
        assert!(
            node.is_some_and(|node| node != old_leader),
            "the session should now sit on a survivor, is on {node:?}"
        );
        assert_eq!(client.session_id(), session, "the same session, resumed");

        // The watch set before the kill fires for a change made after it.
        let other = cluster.client_any(&cluster.live()).await;
        within("create /ride/later", other.create("/ride/later", b"", OPEN))
            .await
            .expect("create /ride/later");
        let event = within("the watch to fire", watcher.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeCreated);
        assert_eq!(event.path, "/ride/later");
        let (data, _) = within("read after reconnect", client.get_data("/ride/later"))
            .await
            .expect("read through the resumed session");
        assert!(data.is_empty());
        within(
            "write after reconnect",
            client.set_data("/ride", b"x", None),
        )
        .await
        .expect("write through the resumed session");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_lock_and_election_survive_leader_kill() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0)).await;
        let old_leader = cluster.leader().await;
        let signals = tempfile::tempdir().expect("signal dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/cluster_kazoo.py");
        let mut command = Command::new(python());
        command
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"])
            .arg(&script)
            .env("EK_HOSTS", cluster.connect_string(&cluster.ids()))
            .env("EK_LEADER", cluster.client_addr(old_leader).to_string())
            .env("EK_SIGNAL_DIR", signals.path())
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut helper = Helper::spawn(command, "pytest cluster_kazoo.py");

        // The script holds a lock and the leadership through a session on the leader.
        let ready = signals.path().join("ready");
        let deadline = Instant::now() + CLUSTER_WAIT;
        while !ready.exists() {
            if helper.has_exited() || Instant::now() > deadline {
                let output = tokio::task::block_in_place(|| helper.finish());
                panic!(
                    "the kazoo script did not get ready ({}):\n{}\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        cluster.kill9(old_leader);
        cluster.leader_among(&cluster.live()).await;
        std::fs::write(signals.path().join("killed"), b"").expect("signal the kill");

        let output = tokio::task::block_in_place(|| helper.finish());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "kazoo recipes failed across the leader kill ({}):\n{stdout}\n{stderr}\n{}",
            output.status,
            cluster.logs()
        );
    })
    .await;
}
