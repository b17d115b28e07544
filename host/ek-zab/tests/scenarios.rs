//! Scenario tests: N peers wired by the in-test harness (`harness/mod.rs`), which also
//! checks the zab.md §6.6 ordering and §10 invariants after every step.

mod harness;

use ek_zab::{Event, Message, ProposeError, RequestError, Role, SyncKind};
use harness::{z, Cluster, Disk};
use std::collections::BTreeMap;

fn disks(list: Vec<(u64, Disk)>) -> BTreeMap<u64, Disk> {
    list.into_iter().collect()
}

fn no_tweak(_: &mut ek_zab::ZabConfig) {}

#[test]
fn election_prefers_epoch_then_zxid_then_id() {
    // Highest currentEpoch wins even with a shorter log.
    let mut c = Cluster::build(
        &[1, 2, 3],
        &[],
        1,
        no_tweak,
        disks(vec![
            (
                1,
                Disk::with_log(1, 1, &[z(1, 1), z(1, 2), z(1, 3), z(1, 4)]),
            ),
            (2, Disk::with_log(2, 2, &[z(1, 1), z(1, 2), z(2, 1)])),
            (3, Disk::with_log(2, 1, &[z(1, 1), z(1, 2), z(1, 3)])),
        ]),
    );
    assert_eq!(c.elect(), 2);

    // Same epoch: the longest log wins.
    let mut c = Cluster::build(
        &[1, 2, 3],
        &[],
        2,
        no_tweak,
        disks(vec![
            (1, Disk::with_log(1, 1, &[z(1, 1), z(1, 2), z(1, 3)])),
            (2, Disk::with_log(1, 1, &[z(1, 1)])),
            (3, Disk::with_log(1, 1, &[z(1, 1), z(1, 2)])),
        ]),
    );
    assert_eq!(c.elect(), 1);

    // All equal: the highest id wins.
    let mut c = Cluster::new(&[1, 2, 3], &[], 3);
    assert_eq!(c.elect(), 3);
}

#[test]
fn fresh_cluster_elects_and_syncs_everyone() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 7);
    let leader = c.elect();
    assert_eq!(c.leaders(), vec![leader]);
    for id in [1, 2, 3] {
        let peer = c.peer(id);
        assert!(peer.is_established());
        assert_eq!(peer.current_epoch(), 1);
        assert_eq!(peer.accepted_epoch(), 1);
        assert_eq!(peer.leader(), Some(leader));
        let expected = if id == leader {
            Role::Leading
        } else {
            Role::Following
        };
        assert_eq!(peer.role(), expected);
    }
}

#[test]
fn standalone_server_commits_alone() {
    let mut c = Cluster::new(&[1], &[], 5);
    assert_eq!(c.elect(), 1);
    let zxid = c.propose(1).unwrap();
    assert_eq!(zxid, z(1, 1));
    c.run_for(10);
    assert_eq!(c.sm_zxids(1), vec![z(1, 1)]);
}

#[test]
fn proposals_commit_everywhere_in_order() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 11);
    let leader = c.elect();
    let mut zxids = Vec::new();
    for _ in 0..20 {
        zxids.push(c.propose(leader).unwrap());
    }
    c.run_for(100);
    for id in [1, 2, 3] {
        assert_eq!(c.sm_zxids(id), zxids, "node {id}");
    }
    let follower = if leader == 1 { 2 } else { 1 };
    let peer = c.nodes.get_mut(&follower).unwrap().peer.as_mut().unwrap();
    assert_eq!(
        peer.propose(vec![]),
        Err(ProposeError::NotLeader {
            leader: Some(leader)
        })
    );
}

#[test]
fn acks_leave_only_after_fsync_and_leader_counts_itself_after_its_own() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 13);
    let leader = c.elect();
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != leader).collect();
    c.auto_persist = false;
    let zxid = c.propose(leader).unwrap();
    c.deliver_all();
    let acks = |c: &Cluster| {
        c.sent_to(
            leader,
            |m| matches!(m, Message::Ack { zxid: a, .. } if *a == zxid),
        )
        .len()
    };
    assert_eq!(acks(&c), 0, "no ACK before the follower's fsync");
    // One follower fsyncs: its ACK plus the leader's (not yet fsynced) is not a quorum.
    c.persist_all(followers[0]);
    c.deliver_all();
    assert_eq!(acks(&c), 1);
    assert!(
        c.node(leader).sm.is_empty(),
        "leader counted itself before its fsync"
    );
    // The leader fsyncs: quorum {leader, follower}.
    c.persist_all(leader);
    c.deliver_all();
    assert_eq!(c.sm_zxids(leader), vec![zxid]);
    // The other follower got COMMIT but applies only once its own log has the txn.
    assert!(c.node(followers[1]).sm.is_empty());
    c.persist_all(followers[1]);
    c.deliver_all();
    assert_eq!(c.sm_zxids(followers[1]), vec![zxid]);
}

#[test]
fn newleader_ack_waits_for_synced_txns_then_current_epoch() {
    // Node 3 is behind; with manual persistence its NEWLEADER-ACK must wait for the
    // append and then the currentEpoch write (the harness asserts the order on send).
    let mut c = Cluster::build(
        &[1, 2, 3],
        &[],
        17,
        no_tweak,
        disks(vec![
            (1, Disk::with_log(1, 1, &[z(1, 1), z(1, 2)])),
            (2, Disk::with_log(1, 1, &[z(1, 1), z(1, 2)])),
            (3, Disk::with_log(1, 1, &[z(1, 1)])),
        ]),
    );
    c.auto_persist = false;
    c.start_all();
    for _ in 0..200 {
        c.run_for(20);
        for id in [1, 2, 3] {
            c.persist_some(id, 1);
        }
    }
    assert!(c.all_established());
    let log3: Vec<_> = c.node(3).persist_log.clone();
    let append = log3
        .iter()
        .position(|r| matches!(r, ek_zab::PersistRequest::Append(_)))
        .expect("3 appended the DIFF");
    let current = log3
        .iter()
        .position(|r| matches!(r, ek_zab::PersistRequest::CurrentEpoch(_)))
        .expect("3 wrote currentEpoch");
    assert!(append < current, "ZOOKEEPER-4643: txns before currentEpoch");
}

#[test]
fn lagging_follower_gets_diff() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 19);
    let leader = c.elect();
    let lagger = if leader == 1 { 2 } else { 1 };
    c.crash(lagger, 0);
    let mut zxids: Vec<_> = (0..3).map(|_| c.propose(leader).unwrap()).collect();
    c.run_for(50);
    c.restart(lagger);
    c.settle();
    let diffs = c.sent_to(lagger, |m| matches!(m, Message::Diff { .. }));
    assert!(!diffs.is_empty());
    assert!(c
        .sent_to(lagger, |m| matches!(
            m,
            Message::Snap { .. } | Message::Trunc { .. }
        ))
        .is_empty());
    zxids.push(c.propose(leader).unwrap());
    c.run_for(50);
    assert_eq!(c.sm_zxids(lagger), zxids);
    assert!(c.node(leader).events.contains(&Event::LearnerSync {
        learner: lagger,
        kind: SyncKind::Diff
    }));
}

#[test]
fn follower_with_uncommitted_tail_gets_trunc() {
    // Node 1 was leader of epoch 1 and logged 1.4 and 1.5 alone before the crash.
    let mut c = Cluster::build(
        &[1, 2, 3],
        &[],
        23,
        no_tweak,
        disks(vec![
            (
                1,
                Disk::with_log(1, 1, &[z(1, 1), z(1, 2), z(1, 3), z(1, 4), z(1, 5)]),
            ),
            (2, Disk::with_log(1, 1, &[z(1, 1), z(1, 2), z(1, 3)])),
            (3, Disk::with_log(1, 1, &[z(1, 1), z(1, 2), z(1, 3)])),
        ]),
    );
    c.restart(2);
    c.restart(3);
    let leader = c.settle();
    assert_eq!(leader, 3);
    c.restart(1);
    c.settle();
    assert_eq!(
        c.sent_to(1, |m| matches!(m, Message::Trunc { .. })),
        vec![Message::Trunc {
            session: match &c.sent_to(1, |m| matches!(m, Message::Trunc { .. }))[0] {
                Message::Trunc { session, .. } => *session,
                _ => unreachable!(),
            },
            to: z(1, 3)
        }]
    );
    assert_eq!(c.node(1).disk.last(), z(1, 3));
    let zxid = c.propose(leader).unwrap();
    c.run_for(50);
    for id in [1, 2, 3] {
        assert_eq!(
            c.sm_zxids(id),
            vec![z(1, 1), z(1, 2), z(1, 3), zxid],
            "node {id}"
        );
    }
}

#[test]
fn follower_behind_the_window_gets_snap() {
    let mut c = Cluster::build(
        &[1, 2, 3],
        &[],
        29,
        |cfg| cfg.diff_window = 5,
        BTreeMap::new(),
    );
    let leader = c.elect();
    let lagger = if leader == 1 { 2 } else { 1 };
    c.propose(leader).unwrap();
    c.run_for(20);
    c.crash(lagger, 0);
    for _ in 0..30 {
        c.propose(leader).unwrap();
    }
    c.run_for(50);
    c.restart(lagger);
    c.settle();
    assert!(!c
        .sent_to(lagger, |m| matches!(m, Message::Snap { .. }))
        .is_empty());
    assert!(c
        .node(leader)
        .events
        .iter()
        .any(|e| matches!(e, Event::SendSnapshot { to, .. } if *to == lagger)));
    c.propose(leader).unwrap();
    c.run_for(50);
    assert_eq!(c.sm_zxids(lagger), c.sm_zxids(leader));
    assert_eq!(c.sm_zxids(lagger).len(), 32);
    // The snapshot is durable: a restart keeps everything.
    c.crash(lagger, 0);
    c.restart(lagger);
    c.settle();
    c.run_for(100);
    assert_eq!(c.sm_zxids(lagger), c.sm_zxids(leader));
}

#[test]
fn leader_crash_elects_a_new_leader_with_every_committed_txn() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 31);
    let old = c.elect();
    let mut zxids: Vec<_> = (0..10).map(|_| c.propose(old).unwrap()).collect();
    c.run_for(50);
    c.crash(old, 0);
    let new = c.settle();
    assert_ne!(new, old);
    assert_eq!(c.peer(new).current_epoch(), 2);
    zxids.extend((0..5).map(|_| c.propose(new).unwrap()));
    c.run_for(50);
    c.restart(old);
    c.settle();
    c.run_for(100);
    for id in [1, 2, 3] {
        assert_eq!(c.sm_zxids(id), zxids, "node {id}");
    }
}

#[test]
fn minority_cannot_commit_and_its_tail_is_discarded() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 37);
    let old = c.elect();
    let committed = c.propose(old).unwrap();
    c.run_for(50);
    c.isolate(old);
    let lost = c.propose(old).unwrap();
    c.run_for(100);
    assert_eq!(
        c.sm_zxids(old),
        vec![committed],
        "a minority leader committed"
    );
    // The old leader abdicates within syncLimit; the majority elects a new one.
    c.run_for(2_000);
    assert_ne!(c.peer(old).role(), Role::Leading);
    let new = c.leaders()[0];
    assert_ne!(new, old);
    let after = c.propose(new).unwrap();
    c.run_for(50);
    c.heal();
    c.settle();
    c.run_for(100);
    for id in [1, 2, 3] {
        assert_eq!(c.sm_zxids(id), vec![committed, after], "node {id}");
        assert!(c.node(id).disk.log.iter().all(|e| e.zxid != lost));
    }
}

#[test]
fn observer_is_never_counted_in_a_quorum() {
    let mut c = Cluster::new(&[1, 2], &[3], 41);
    let leader = c.elect();
    assert_eq!(c.peer(3).role(), Role::Observing);
    let first = c.propose(leader).unwrap();
    c.run_for(50);
    assert_eq!(c.sm_zxids(3), vec![first], "observer got INFORM");
    assert!(c
        .sent_to(3, |m| matches!(m, Message::Proposal { .. }))
        .is_empty());
    assert!(c
        .sent
        .iter()
        .all(|(from, _, m)| *from != 3
            || !matches!(m, Message::Ack { zxid, .. } if zxid.counter() != 0)));
    // Without the other voter, leader + observer is no quorum.
    let other = if leader == 1 { 2 } else { 1 };
    c.crash(other, 0);
    let _ = c.propose(leader);
    c.run_for(100);
    assert_eq!(c.sm_zxids(leader), vec![first]);
    c.run_for(2_000);
    assert!(
        c.leaders().is_empty(),
        "leader kept leading with an observer only"
    );
    assert_ne!(c.peer(3).role(), Role::Leading);
}

#[test]
fn epochs_never_decrease_across_crashes() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 43);
    c.elect();
    let mut seen: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for round in 0..6u64 {
        let leader = c.settle();
        c.propose(leader).unwrap();
        c.run_for(30);
        let victim = if round % 2 == 0 {
            leader
        } else {
            round % 3 + 1
        };
        c.crash(victim, (round % 3) as usize);
        c.run_for(500);
        c.restart(victim);
        c.settle();
        for id in [1, 2, 3] {
            let disk = &c.node(id).disk;
            assert!(disk.current <= disk.accepted);
            let before = seen
                .insert(id, (disk.accepted, disk.current))
                .unwrap_or((0, 0));
            assert!(disk.accepted >= before.0 && disk.current >= before.1);
        }
    }
    assert!(c.peer(1).current_epoch() >= 4);
}

#[test]
fn counter_exhaustion_makes_the_leader_abdicate() {
    let mut c = Cluster::build(
        &[1, 2, 3],
        &[],
        47,
        |cfg| cfg.first_counter = 0xffff_fffc,
        BTreeMap::new(),
    );
    let leader = c.elect();
    assert_eq!(c.propose(leader), Ok(z(1, 0xffff_fffd)));
    assert_eq!(c.propose(leader), Ok(z(1, 0xffff_fffe)));
    assert_eq!(c.propose(leader), Err(ProposeError::CounterExhausted));
    assert_eq!(c.peer(leader).role(), Role::Looking);
    let next = c.settle();
    assert_eq!(c.peer(next).current_epoch(), 2);
    c.run_for(100);
    assert_eq!(c.sm_zxids(next), vec![z(1, 0xffff_fffd), z(1, 0xffff_fffe)]);
    assert_eq!(c.propose(next), Ok(z(2, 0xffff_fffd)));
}

#[test]
fn sync_and_forward_on_a_follower() {
    let mut c = Cluster::new(&[1, 2, 3], &[], 53);
    let leader = c.elect();
    let follower = if leader == 1 { 2 } else { 1 };
    let node = c.nodes.get_mut(&follower).unwrap();
    let peer = node.peer.as_mut().unwrap();
    assert_eq!(peer.forward(b"hello".to_vec()), Ok(()));
    c.drain(follower);
    c.auto_persist = false;
    let zxid = c.propose(leader).unwrap();
    let peer = c.nodes.get_mut(&follower).unwrap().peer.as_mut().unwrap();
    peer.sync(9).unwrap();
    c.drain(follower);
    c.deliver_all();
    assert!(!c.node(follower).events.contains(&Event::SyncDone { id: 9 }));
    for id in [1, 2, 3] {
        c.persist_all(id);
    }
    c.auto_persist = true;
    c.run_for(50);
    assert!(c.node(follower).events.contains(&Event::SyncDone { id: 9 }));
    assert_eq!(c.sm_zxids(follower), vec![zxid]);
    assert!(c.node(leader).events.contains(&Event::Request {
        from: follower,
        payload: b"hello".to_vec()
    }));
    let peer = c.nodes.get_mut(&leader).unwrap().peer.as_mut().unwrap();
    assert_eq!(peer.forward(vec![]), Err(RequestError::IsLeader));
}

#[test]
fn restarted_node_rejoins_an_established_ensemble() {
    // ZOOKEEPER-1732: a newcomer must see a consistent (leader, peerEpoch) quorum.
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], &[], 59);
    let leader = c.elect();
    let other = (1..=5).find(|&i| i != leader).unwrap();
    c.crash(other, 0);
    c.propose(leader).unwrap();
    c.run_for(50);
    c.restart(other);
    c.run_for(1_000);
    assert_eq!(c.peer(other).leader(), Some(leader));
    assert!(c.peer(other).is_established());
    assert_eq!(c.leaders(), vec![leader]);
}
