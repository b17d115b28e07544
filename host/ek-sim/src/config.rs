//! What a run simulates: the ensemble, the workload, the fault rates and the test-only
//! knobs that break the simulated system on purpose.

/// The configuration of one run. Everything not fixed here is drawn from the seed (the
/// in-memory DIFF window, think times, which fault strikes when), so one `(seed, config)`
/// pair names exactly one execution.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Voting servers (ids `1..=voters`).
    pub voters: usize,
    /// Observers (ids after the voters).
    pub observers: usize,
    /// Events processed while faults are injected; then the network heals, every server
    /// restarts and the run must converge.
    pub steps: u64,
    /// Simulated clients, each with its own session.
    pub clients: usize,
    /// Keys `/k0 .. /k{keys-1}` the clients write.
    pub keys: usize,
    /// How long a client waits for a reply before giving up (outcome unknown).
    pub client_timeout_ms: u64,
    /// Upper bound of virtual time for the final convergence (zab.md §10.15).
    pub converge_ms: u64,
    /// Fault rates.
    pub faults: FaultRates,
    /// Deliberate bugs, to prove the checkers catch them. All off in a real run.
    pub knobs: Knobs,
    /// Print every event as it happens (the replay mode of the binary).
    pub verbose: bool,
}

/// How a link between two servers loses and orders packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkModel {
    /// A reconnecting stream, as `ek-net` over QUIC is: packets arrive in order, and a loss
    /// (a random drop, or a partition cutting the link) breaks the connection, losing every
    /// packet still in flight on it; later packets travel on a new connection. This is the
    /// transport `ek_zab::Peer` asks for ("in order; losing messages is safe but stalls").
    /// `reorder` does not apply; a duplicate arrives right after its original.
    Stream,
    /// Independent datagrams: each packet may be lost, duplicated or reordered on its own,
    /// so a receiver can see a later packet of a stream after losing an earlier one. This
    /// goes beyond the transport contract of `ek_zab::Peer`.
    Datagram,
}

/// How often things go wrong. Probabilities are per packet; intervals are virtual ms.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRates {
    /// How links lose and order packets.
    pub link: LinkModel,
    /// A packet is lost (with [`LinkModel::Stream`]: the connection breaks).
    pub drop: f64,
    /// A packet is delivered twice.
    pub duplicate: f64,
    /// A packet ignores the FIFO order of its link (only with [`LinkModel::Datagram`]).
    pub reorder: f64,
    /// One-way network latency range.
    pub latency_ms: (u64, u64),
    /// A packet is delayed by up to `spike_ms` more.
    pub spike: f64,
    /// See `spike`.
    pub spike_ms: u64,
    /// Latency range of one fsync.
    pub disk_latency_ms: (u64, u64),
    /// Virtual time between two cluster faults.
    pub fault_interval_ms: (u64, u64),
    /// How long a crashed server stays down.
    pub downtime_ms: (u64, u64),
    /// Relative weight of a crash among cluster faults.
    pub crash_weight: u32,
    /// Relative weight of a partition (two random sides, or one isolated server).
    pub partition_weight: u32,
    /// Relative weight of cutting random links in one direction only.
    pub cut_links_weight: u32,
    /// Relative weight of healing every partition.
    pub heal_weight: u32,
    /// Relative weight of a server writing a snapshot of its tree and compacting its log.
    pub snapshot_weight: u32,
}

impl Default for FaultRates {
    fn default() -> FaultRates {
        FaultRates {
            link: LinkModel::Stream,
            drop: 0.01,
            duplicate: 0.01,
            reorder: 0.005,
            latency_ms: (1, 8),
            spike: 0.02,
            spike_ms: 150,
            disk_latency_ms: (1, 10),
            fault_interval_ms: (150, 900),
            downtime_ms: (50, 1_500),
            crash_weight: 4,
            partition_weight: 2,
            cut_links_weight: 1,
            heal_weight: 3,
            snapshot_weight: 2,
        }
    }
}

impl FaultRates {
    /// No faults at all: a perfect FIFO network, disks that never lose anything.
    pub fn none() -> FaultRates {
        FaultRates {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            spike: 0.0,
            crash_weight: 0,
            partition_weight: 0,
            cut_links_weight: 0,
            heal_weight: 0,
            snapshot_weight: 0,
            ..FaultRates::default()
        }
    }
}

/// Test-only bugs planted in the simulated system (never in ek-zab) to show that some seed
/// catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// The disk reports every write durable as soon as it is issued; the data reaches the
    /// platter later, and a crash before that loses it.
    pub ack_before_fsync: bool,
    /// The leader answers its own clients when it proposes, not when the txn commits.
    pub reply_before_commit: bool,
}

/// Preset ensembles for tests and the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Three voters.
    ThreeVoters,
    /// Five voters.
    FiveVoters,
    /// Three voters and two observers.
    ThreeVotersTwoObservers,
    /// Five voters and one observer.
    FiveVotersOneObserver,
}

impl Scenario {
    /// The configuration of this preset, running `steps` events under faults.
    pub fn config(self, steps: u64) -> SimConfig {
        let (voters, observers) = match self {
            Scenario::ThreeVoters => (3, 0),
            Scenario::FiveVoters => (5, 0),
            Scenario::ThreeVotersTwoObservers => (3, 2),
            Scenario::FiveVotersOneObserver => (5, 1),
        };
        SimConfig {
            steps,
            ..SimConfig::new(voters, observers)
        }
    }
}

impl SimConfig {
    /// Defaults: 4000 steps, 4 clients on 3 keys, default fault rates, no knobs.
    pub fn new(voters: usize, observers: usize) -> SimConfig {
        SimConfig {
            voters,
            observers,
            steps: 4_000,
            clients: 4,
            keys: 3,
            client_timeout_ms: 1_500,
            converge_ms: 60_000,
            faults: FaultRates::default(),
            knobs: Knobs::default(),
            verbose: false,
        }
    }

    /// The command-line flags that reproduce this configuration with the `ek-sim` binary.
    pub fn cli_flags(&self) -> String {
        let mut flags = format!(
            "--voters {} --observers {} --steps {} --clients {} --keys {}",
            self.voters, self.observers, self.steps, self.clients, self.keys
        );
        let (base, base_flag) = if self.faults.crash_weight == 0 {
            (FaultRates::none(), " --no-faults")
        } else {
            (FaultRates::default(), "")
        };
        flags.push_str(base_flag);
        if self.faults.link == LinkModel::Datagram {
            flags.push_str(" --datagram");
        }
        let packet_rates = [
            ("drop", self.faults.drop, base.drop),
            ("duplicate", self.faults.duplicate, base.duplicate),
            ("reorder", self.faults.reorder, base.reorder),
        ];
        for (name, rate, default) in packet_rates {
            if rate != default {
                flags.push_str(&format!(" --{name} {rate}"));
            }
        }
        let rest = FaultRates {
            link: base.link,
            drop: base.drop,
            duplicate: base.duplicate,
            reorder: base.reorder,
            ..self.faults.clone()
        };
        if rest != base {
            flags.push_str(" (plus custom fault rates: replay through ek_sim::run)");
        }
        if self.knobs.ack_before_fsync {
            flags.push_str(" --break-ack-before-fsync");
        }
        if self.knobs.reply_before_commit {
            flags.push_str(" --break-reply-before-commit");
        }
        flags
    }

    /// The command that replays `seed` with this configuration.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "EK_SIM_SEED={seed} cargo run -p ek-sim -- {}",
            self.cli_flags()
        )
    }
}
