//! Random schedules on 3 voters (and a variant with an observer): reordered, dropped and
//! duplicated messages, partitions, crashes that keep an arbitrary prefix of the writes in
//! flight, restarts, delayed fsyncs. The harness checks zab.md §6.6 and §10 after every step;
//! at the end the faults stop and the cluster must converge: one leader, every server holding
//! every txn anyone ever delivered (§10.11 durability, §10.15 liveness).

mod harness;

use harness::Cluster;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Deliver the packet at this index of the queue (reordering).
    Deliver(usize),
    /// Deliver this many packets in FIFO order.
    DeliverFifo(u8),
    /// Lose the packet at this index.
    Drop(usize),
    /// Deliver a copy of the packet at this index, keeping the original.
    Duplicate(usize),
    /// Advance virtual time, firing timers, delivering nothing.
    Advance(u16),
    /// Run with FIFO delivery for a while.
    Run(u16),
    Propose(u8),
    /// Crash, keeping this many of the writes in flight.
    Crash(u8, u8),
    Restart(u8),
    Isolate(u8),
    Heal,
    /// Make this many pending writes of a node durable (manual-persistence runs).
    Persist(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<usize>().prop_map(Op::Deliver),
        6 => (1u8..20).prop_map(Op::DeliverFifo),
        2 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::Duplicate),
        3 => (1u16..400).prop_map(Op::Advance),
        4 => (1u16..600).prop_map(Op::Run),
        5 => any::<u8>().prop_map(Op::Propose),
        1 => (any::<u8>(), 0u8..4).prop_map(|(n, k)| Op::Crash(n, k)),
        2 => any::<u8>().prop_map(Op::Restart),
        1 => any::<u8>().prop_map(Op::Isolate),
        1 => Just(Op::Heal),
        4 => (any::<u8>(), 1u8..4).prop_map(|(n, k)| Op::Persist(n, k)),
    ]
}

fn run(seed: u64, manual_persist: bool, observer: bool, ops: Vec<Op>) {
    let observers: &[u64] = if observer { &[4] } else { &[] };
    let mut c = Cluster::new(&[1, 2, 3], observers, seed);
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    let pick = |n: u8| ids[n as usize % ids.len()];
    c.auto_persist = !manual_persist;
    c.start_all();
    for op in ops {
        match op {
            Op::Deliver(i) if !c.queue.is_empty() => {
                let i = i % c.queue.len();
                c.deliver_at(i);
            }
            Op::DeliverFifo(n) => {
                for _ in 0..n {
                    if c.queue.is_empty() {
                        break;
                    }
                    c.deliver_at(0);
                }
            }
            Op::Drop(i) if !c.queue.is_empty() => {
                let i = i % c.queue.len();
                c.queue.remove(i);
            }
            Op::Duplicate(i) if !c.queue.is_empty() => {
                let i = i % c.queue.len();
                let copy = c.queue[i].clone();
                c.queue.push_back(copy);
            }
            Op::Advance(ms) => c.advance(ms as u64),
            Op::Run(ms) => c.run_for(ms as u64),
            Op::Propose(n) => {
                let id = pick(n);
                if c.alive(id) {
                    let _ = c.propose(id);
                } else if let Some(leader) = c.leader() {
                    let _ = c.propose(leader);
                }
            }
            Op::Crash(n, keep) => {
                let id = pick(n);
                if c.alive(id) {
                    c.crash(id, keep as usize);
                }
            }
            Op::Restart(n) => {
                let id = pick(n);
                if !c.alive(id) {
                    c.restart(id);
                }
            }
            Op::Isolate(n) => c.isolate(pick(n)),
            Op::Heal => c.heal(),
            Op::Persist(n, k) => {
                let id = pick(n);
                if c.alive(id) {
                    c.persist_some(id, k as usize);
                }
            }
            _ => {}
        }
    }
    // Faults stop: heal, restart, reliable FIFO network, prompt fsyncs.
    c.heal();
    c.auto_persist = true;
    for id in ids.clone() {
        if c.alive(id) {
            c.persist_all(id);
        } else {
            c.restart(id);
        }
    }
    let leader = c.settle();
    c.propose(leader).expect("settled leader accepts proposals");
    // A learner of a leader that abdicated and was re-elected believes in its old session
    // until syncLimit passes without pings; give stale views time to expire and rejoin.
    c.run_for(3_000);
    c.settle();
    c.run_for(500);
    if std::env::var("EK_TRACE").is_ok() {
        for id in ids.clone() {
            let p = c.peer(id);
            println!(
                "END now={} {id} {:?} est={} timeout={:?} leader={:?}",
                c.now.as_ms(),
                p.role(),
                p.is_established(),
                p.poll_timeout(),
                p.leader()
            );
        }
    }
    for id in ids {
        assert_eq!(
            c.node(id).sm,
            c.committed,
            "node {id} does not hold every delivered txn"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_keep_the_invariants(
        seed in any::<u64>(),
        manual_persist in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(seed, manual_persist, false, ops);
    }

    #[test]
    fn random_schedules_with_an_observer(
        seed in any::<u64>(),
        manual_persist in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(seed, manual_persist, true, ops);
    }
}
