//! ek-sim: a deterministic simulator of an edgekeeper ensemble, for tests only.
//!
//! One thread runs 3 or 5 voters plus observers: each server is an [`ek_zab::Peer`] with an
//! [`ek_tree::DataTree`], a simulated disk, and (when it leads) an [`ek_tree::Prep`] that
//! turns client writes into `ek_types::Txn`s, proposed as postcard bytes exactly as the
//! real server encodes them. Simulated clients write a small key space through any server.
//! One `u64` seed drives a single PRNG that decides every latency and every fault: packet
//! loss, duplication, reordering and delay, partitions and one-way link cuts, fsync
//! latency, crashes that keep only a random prefix of the writes in flight, restarts, and
//! local snapshots that compact the log. Time is virtual and jumps to the next due event.
//!
//! After every step the checkers of zab.md §10 run (integrity, agreement, total and primary
//! order, leadership, epoch monotonicity, zxid uniqueness, log shape, durability before the
//! messages that imply it, state-machine equality by tree digest). At the end the network
//! heals, every server restarts, and the run must converge (§10.15); then every replica
//! must hold the same tree, every acknowledged write must be committed exactly once with the
//! outcome its client saw, and the client history must be linearizable
//! ([`linearizability`], a Porcupine-style search).
//!
//! [`run`] is a pure function of `(seed, config)`: a failing seed replays exactly.
//!
//! The simulator never reads a clock, never draws randomness but from its seed, and never
//! lets `HashMap` iteration order steer a run (its maps are `BTreeMap`s).
#![warn(missing_docs)]

mod check;
mod client;
mod config;
mod disk;
mod finish;
mod leader;
pub mod linearizability;
mod net;
mod node;
mod rng;
mod sim;
mod storage;
mod trace;

pub use check::Violation;
pub use client::OpRecord;
pub use config::{FaultRates, Knobs, LinkModel, Scenario, SimConfig};
pub use finish::Verdicts;
pub use rng::SimRng;
pub use sim::Stats;

use std::fmt;

/// What a successful run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Steps taken, convergence included.
    pub steps: u64,
    /// Virtual time at the end, in ms.
    pub time_ms: u64,
    /// Txns committed.
    pub committed: u64,
    /// The zxid every replica ended at.
    pub last_zxid: ek_types::Zxid,
    /// The digest every replica ended with.
    pub digest: u64,
    /// Counters.
    pub stats: Stats,
    /// Results of the final checks.
    pub verdicts: Verdicts,
    /// A hash of every event of the run: two runs of one seed must agree on it.
    pub fingerprint: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "seed {}: {} steps, {} ms virtual, {} txns committed (last {}), writes {} ok / {} refused by state / {} timed out / {} refused, {} epochs, {} crashes, {} partitions, {} snapshot syncs, {} packets lost, unknown outcomes {} applied / {} lost, {} inconclusive keys, fingerprint {:#018x}",
            self.seed,
            self.steps,
            self.time_ms,
            self.committed,
            self.last_zxid,
            s.ok,
            s.refused_by_state,
            s.timed_out,
            s.refused,
            s.epochs,
            s.crashes,
            s.partitions,
            s.snap_syncs,
            s.lost,
            self.verdicts.unknown_applied,
            self.verdicts.unknown_lost,
            self.verdicts.inconclusive_keys,
            self.fingerprint
        )
    }
}

/// A failed run: the seed, where it failed, which invariant broke, and the last events.
#[derive(Clone, Debug, thiserror::Error)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The step at which a check failed.
    pub step: u64,
    /// Virtual time of that step, in ms.
    pub time_ms: u64,
    /// The broken invariant and what was seen.
    pub violation: Violation,
    /// The last events before the failure, oldest first.
    pub trace_tail: Vec<String>,
    /// The command that replays this run with a verbose trace.
    pub replay: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "last {} events:", self.trace_tail.len())?;
        for line in &self.trace_tail {
            writeln!(f, "{line}")?;
        }
        writeln!(
            f,
            "seed {} failed at step {} (t={} ms): {}",
            self.seed, self.step, self.time_ms, self.violation
        )?;
        write!(f, "failing seed: {} (replay: {})", self.seed, self.replay)
    }
}

/// Runs one seed: faults for `config.steps` steps, then healing, convergence and the final
/// checks. The same `(seed, config)` always gives the same result.
pub fn run(seed: u64, config: &SimConfig) -> Result<Report, Failure> {
    let mut sim = sim::Sim::new(seed, config.clone());
    let result = sim.run().and_then(|()| {
        let (digest, last_zxid) = sim.check_replicas()?;
        let verdicts = sim.check_history()?;
        Ok((digest, last_zxid, verdicts))
    });
    match result {
        Ok((digest, last_zxid, verdicts)) => Ok(Report {
            seed,
            steps: sim.step,
            time_ms: sim.now.as_ms(),
            committed: sim.checker.delivered().len() as u64,
            last_zxid,
            digest,
            stats: sim.stats.clone(),
            verdicts,
            fingerprint: sim.trace.fingerprint(),
        }),
        Err(violation) => Err(Failure {
            seed,
            step: sim.step,
            time_ms: sim.now.as_ms(),
            violation,
            trace_tail: sim.trace.tail(),
            replay: config.replay_command(seed),
        }),
    }
}

/// The client history of a run, for tests that inspect it (runs the seed again).
pub fn history(seed: u64, config: &SimConfig) -> Vec<OpRecord> {
    let mut sim = sim::Sim::new(seed, config.clone());
    let _ = sim.run();
    sim.history
}
