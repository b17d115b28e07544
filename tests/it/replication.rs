//! Replication across an ensemble of real processes: writes made through any node are read
//! on every node, observers serve reads without counting in the quorum, nodes that were
//! away catch up by DIFF or SNAP, and a replica whose state diverges from the leader's
//! notices (digest mismatch) and stops serving while the others go on.

use ek_log::{Log, LogOptions, WriterHooks};
use ek_types::{Txn, TxnBody, Zxid};

use crate::cluster::{bounded_test, turn, Cluster, Mode, Spec};
use crate::harness::files_in;
use crate::load::{assert_acked_on, create_all, read_at, within, OPEN};
use crate::proxy::NodeId;

/// Writes through every node, then reads every write on every node.
async fn writes_through_each_node_are_read_on_all(cluster: &Cluster) {
    let root = cluster.client_any(&cluster.live()).await;
    within("create /r", root.create("/r", b"", OPEN))
        .await
        .expect("create /r");
    let mut written = Vec::new();
    for id in cluster.live() {
        let client = cluster.client_at(id).await;
        written.extend(create_all(&client, "/r", &format!("from-{id}-"), 10).await);
        let path = format!("/r/from-{id}-0");
        within("set_data", client.set_data(&path, b"changed", None))
            .await
            .unwrap_or_else(|error| panic!("set {path} through node {id}: {error}"));
    }
    for id in cluster.live() {
        for path in &written {
            let data = read_at(cluster, id, path).await;
            let expected: &[u8] = if path.ends_with("-0") {
                b"changed"
            } else {
                path.as_bytes()
            };
            assert_eq!(
                data.as_deref(),
                Some(expected),
                "node {id} reads {path} wrong after sync\n{}",
                cluster.logs()
            );
        }
    }
    cluster.wait_converged(&cluster.live()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_read_writes_made_through_any_node() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let cluster = Cluster::start(Spec::new(3, 0)).await;
        let leader = cluster.leader().await;
        for id in cluster.ids() {
            let mode = cluster.mode(id).await;
            let expected = if id == leader {
                Mode::Leader
            } else {
                Mode::Follower
            };
            assert_eq!(mode, Some(expected), "srvr Mode of node {id}");
        }
        writes_through_each_node_are_read_on_all(&cluster).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_read_writes_and_survive_two_failures() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(5, 0)).await;
        writes_through_each_node_are_read_on_all(&cluster).await;

        // Two followers die: three of five are a quorum and keep committing.
        let leader = cluster.leader().await;
        let down: Vec<NodeId> = cluster
            .ids()
            .into_iter()
            .filter(|&id| id != leader)
            .take(2)
            .collect();
        for &id in &down {
            cluster.kill9(id);
        }
        let live = cluster.live();
        let client = cluster.client_any(&live).await;
        within("create /five", client.create("/five", b"", OPEN))
            .await
            .expect("create /five with two of five nodes down");
        let written = create_all(&client, "/five", "n", 20).await;
        for &id in &live {
            assert_acked_on(&cluster, id, "/five", &written).await;
        }

        for &id in &down {
            cluster.restart(id).await;
        }
        for &id in &down {
            cluster.wait_serving(id).await;
            assert_acked_on(&cluster, id, "/five", &written).await;
        }
        cluster.wait_converged(&cluster.ids()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_serves_reads_and_is_not_needed_for_commits() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 1)).await;
        let observer: NodeId = 4;
        let voters = cluster.voters();
        assert_eq!(
            cluster.mode(observer).await,
            Some(Mode::Observer),
            "srvr Mode of the observer"
        );

        // Writes made through a voter are read at the observer.
        let voter = cluster.client_any(&voters).await;
        within("create /obs", voter.create("/obs", b"", OPEN))
            .await
            .expect("create /obs");
        let from_voter = create_all(&voter, "/obs", "v", 10).await;
        assert_acked_on(&cluster, observer, "/obs", &from_voter).await;

        // Writes made through the observer go to the leader and reach every voter.
        let through_observer = cluster.client_at(observer).await;
        let from_observer = create_all(&through_observer, "/obs", "o", 10).await;
        for &id in &voters {
            assert_acked_on(&cluster, id, "/obs", &from_observer).await;
        }

        // Without the observer the voters still commit.
        cluster.kill9(observer);
        cluster.leader_among(&voters).await;
        let without = create_all(&voter, "/obs", "without-observer-", 10).await;
        for &id in &voters {
            assert_acked_on(&cluster, id, "/obs", &without).await;
        }
        cluster.wait_converged(&voters).await;

        // It comes back as an observer and catches up.
        cluster.restart(observer).await;
        let mode = cluster.wait_serving(observer).await;
        assert_eq!(mode, Mode::Observer, "the restarted observer's mode");
        assert_acked_on(&cluster, observer, "/obs", &without).await;
        cluster.wait_converged(&cluster.ids()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_restarts_and_catches_up_by_diff() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0)).await;
        let old_leader = cluster.leader().await;
        let client = cluster.client_any(&cluster.ids()).await;
        within("create /diff", client.create("/diff", b"", OPEN))
            .await
            .expect("create /diff");
        let before = create_all(&client, "/diff", "before-", 20).await;
        drop(client);
        // Nothing in flight: the old leader's log holds only committed txns.
        cluster.wait_converged(&cluster.ids()).await;
        let old_epoch = epoch(cluster.zxid(old_leader).await);

        cluster.kill9(old_leader);
        let survivors = cluster.live();
        let new_leader = cluster.leader_among(&survivors).await;
        let client = cluster.client_any(&survivors).await;
        let during = create_all(&client, "/diff", "during-", 50).await;
        let new_epoch = epoch(cluster.zxid(new_leader).await);
        assert!(
            new_epoch > old_epoch,
            "the new leader {new_leader} commits in epoch {new_epoch}, not after the old \
             leader's epoch {old_epoch}"
        );

        let diffs = cluster.syncs("diff", &survivors).await;
        let snaps = cluster.syncs("snap", &survivors).await;
        cluster.restart(old_leader).await;
        let mode = cluster.wait_serving(old_leader).await;
        assert_eq!(mode, Mode::Follower, "the old leader rejoins as a follower");
        cluster.wait_syncs_above("diff", &survivors, diffs).await;
        assert_eq!(
            cluster.syncs("snap", &survivors).await,
            snaps,
            "node {old_leader} missed 50 txns the leader {new_leader} still has in its log: \
             that is a DIFF, not a SNAP"
        );
        cluster.wait_converged(&cluster.ids()).await;
        assert_acked_on(&cluster, old_leader, "/diff", &before).await;
        assert_acked_on(&cluster, old_leader, "/diff", &during).await;
    })
    .await;
}

/// The epoch (high 32 bits) of a zxid from `srvr`; 0 if the node did not answer.
fn epoch(zxid: Option<i64>) -> u32 {
    Zxid(zxid.unwrap_or(0)).epoch()
}

/// Txns written while the follower is down: more than the leader's retained log covers.
const TXNS_WHILE_AWAY: usize = 1200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_back_after_snapshots_catches_up_by_snap() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let spec = Spec::new(3, 0).with_config("snapshot_every_txns = 100\nsnapshots_retained = 2");
        let mut cluster = Cluster::start(spec).await;
        let leader = cluster.leader().await;
        let away = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
        let client = cluster.client_at(leader).await;
        within("create /snap", client.create("/snap", b"", OPEN))
            .await
            .expect("create /snap");
        cluster.wait_converged(&cluster.ids()).await;
        cluster.kill9(away);

        // Four sessions write concurrently so that the 1200 txns take less time.
        let survivors = cluster.live();
        let mut tasks = Vec::new();
        for writer in 0..4 {
            let client = cluster.client_any(&survivors).await;
            tasks.push(tokio::spawn(async move {
                let count = TXNS_WHILE_AWAY / 4;
                create_all(&client, "/snap", &format!("w{writer}-"), count).await
            }));
        }
        let mut written = Vec::new();
        for task in tasks {
            written.extend(within("writers", task).await.expect("writer task"));
        }
        let snapshots = files_in(&cluster.data_dir(leader).join("snapshot"), "snapshot.");
        assert!(
            snapshots.len() >= 2,
            "the leader wrote no snapshots with snapshot_every_txns = 100: {snapshots:?}"
        );

        let snaps = cluster.syncs("snap", &survivors).await;
        cluster.restart(away).await;
        cluster.wait_serving(away).await;
        cluster.wait_syncs_above("snap", &survivors, snaps).await;
        cluster.wait_converged(&cluster.ids()).await;
        assert_acked_on(&cluster, away, "/snap", &written).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_with_a_tampered_txn_reports_a_digest_mismatch_and_stops_serving() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0)).await;
        let leader = cluster.leader().await;
        let followers: Vec<NodeId> = cluster
            .ids()
            .into_iter()
            .filter(|&id| id != leader)
            .collect();
        let (victim, witness) = (followers[0], followers[1]);

        // The session stays open until the follower is down, so that the SetData is the
        // last txn it logs (closing the session would be another txn).
        let client = cluster.client_at(leader).await;
        within("create /replica", client.create("/replica", b"v0", OPEN))
            .await
            .expect("create /replica");
        within(
            "set /replica",
            client.set_data("/replica", b"original", None),
        )
        .await
        .expect("set /replica");
        cluster.wait_converged(&cluster.ids()).await;
        cluster.kill9(victim);
        drop(client);

        tamper_last_set_data(&cluster.data_dir(victim));
        cluster.spawn(victim);
        let what = format!("node {victim} to log a digest mismatch and stop serving");
        cluster
            .wait_for(&what, || async {
                if let Some(status) = cluster.exit_status(victim) {
                    panic!(
                        "node {victim} exited ({status}) instead of staying up and reporting \
                         itself unhealthy; log:\n{}",
                        cluster.log_tail(victim)
                    );
                }
                let logged = mentions_digest_mismatch(&cluster.log(victim));
                (logged && refuses_service(&cluster, victim).await).then_some(())
            })
            .await;

        // The others go on committing, and the damaged node keeps refusing service.
        let others = [leader, witness];
        cluster.leader_among(&others).await;
        let client = cluster.client_any(&others).await;
        within("create /after", client.create("/after", b"", OPEN))
            .await
            .expect("create /after with one follower refusing service");
        let after = create_all(&client, "/after", "n", 5).await;
        for id in others {
            for path in &after {
                assert!(
                    read_at(&cluster, id, path).await.is_some(),
                    "node {id} lacks {path} written after node {victim} stopped"
                );
            }
        }
        cluster.wait_converged(&others).await;
        assert!(
            refuses_service(&cluster, victim).await,
            "node {victim} serves again with a state that differs from the leader's; log:\n{}",
            cluster.log_tail(victim)
        );
    })
    .await;
}

/// Whether node `id` refuses service: `srvr` says it is not serving, or `/healthz` is 503.
async fn refuses_service(cluster: &Cluster, id: NodeId) -> bool {
    cluster.mode(id).await == Some(Mode::NotServing) || cluster.healthz(id).await == Some(503)
}

fn mentions_digest_mismatch(log: &str) -> bool {
    log.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.contains("digest") && line.contains("mismatch")
    })
}

/// Rewrites the last txn in the log of the (stopped) node whose data dir is `data_dir`:
/// it must be a SetData, and its data is replaced while zxid, digest and framing stay
/// valid, so only a replica check can tell.
fn tamper_last_set_data(data_dir: &std::path::Path) {
    let (log, recovered) = Log::open(data_dir, LogOptions::default())
        .unwrap_or_else(|error| panic!("open the log in {}: {error}", data_dir.display()));
    let (zxid, payload) = recovered.txns.last().cloned().unwrap_or_else(|| {
        panic!(
            "no txn logged after the snapshot in {}: cannot tamper with one",
            data_dir.display()
        )
    });
    let previous = match recovered.txns.len() {
        n if n >= 2 => recovered.txns[n - 2].0,
        _ => recovered.snapshot.as_ref().map_or(Zxid::ZERO, |s| s.zxid),
    };
    let mut txn: Txn = postcard::from_bytes(&payload).unwrap_or_else(|error| {
        panic!("the log record at zxid {zxid:?} is no postcard ek_types::Txn: {error}")
    });
    match &mut txn.body {
        TxnBody::SetData { path, data, .. } if path == "/replica" => {
            *data = Some(b"tampered".to_vec());
        }
        other => panic!("the last logged txn should be the SetData of /replica, is {other:?}"),
    }
    let writer = log
        .start_writer(WriterHooks::new(|_| {}))
        .expect("start the log writer");
    writer
        .truncate_after(previous)
        .expect("truncate the last txn");
    let bytes = postcard::to_allocvec(&txn).expect("encode the txn");
    writer.append(zxid, bytes).expect("append the tampered txn");
    writer.sync().expect("sync the tampered txn");
    drop(writer);
    drop(log);
}
