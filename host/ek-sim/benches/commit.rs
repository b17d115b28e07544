//! The ZAB commit path, end to end in the simulator: client writes through prep, proposal,
//! simulated fsync, quorum ACKs, COMMIT and tree apply on three voters, with no faults.
//! The per-step invariant checkers run too, so this is an upper bound on the protocol's
//! own cost; compare runs of it, not with the real server's throughput.
//!
//! `cargo bench -p ek-sim --bench commit`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ek_sim::{FaultRates, SimConfig};

fn config(voters: usize) -> SimConfig {
    SimConfig {
        steps: 2_000,
        clients: 8,
        keys: 16,
        faults: FaultRates::none(),
        ..SimConfig::new(voters, 0)
    }
}

fn commit_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("zab_commit_path");
    for voters in [3, 5] {
        let config = config(voters);
        // Throughput in committed txns: the same for every iteration of one seed.
        let committed = match ek_sim::run(7, &config) {
            Ok(report) => report.committed,
            Err(failure) => panic!("the fault-free run failed: {failure}"),
        };
        group.throughput(Throughput::Elements(committed));
        group.bench_function(format!("{voters}_voters_{committed}_txns"), |b| {
            b.iter(|| ek_sim::run(7, &config).map(|report| report.committed))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = commit_path
}
criterion_main!(benches);
