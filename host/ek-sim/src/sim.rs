//! The event loop: one thread, virtual time, one PRNG. Each step takes the earliest due
//! thing (a packet arriving, an fsync completing, a server restarting, a `Peer` timer, a
//! client waking up, a cluster fault), does it, drains the servers it touched, and runs the
//! per-step checks.

use crate::check::{Checker, Violation};
use crate::client::{Client, OpRecord};
use crate::config::{FaultRates, SimConfig};
use crate::net::{Network, Packet};
use crate::node::Node;
use crate::rng::SimRng;
use crate::trace::{Trace, TraceEvent};
use ek_tree::DataTree;
use ek_zab::{ServerId, Time, ZabConfig};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Faults are injected and clients write.
    Faults,
    /// Everything healed; the run must converge.
    Converge,
}

/// Counters for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client writes sent to a server.
    pub invoked: u64,
    /// Writes answered Ok.
    pub ok: u64,
    /// Writes answered NodeExists / NoNode.
    pub refused_by_state: u64,
    /// Writes a client gave up on.
    pub timed_out: u64,
    /// Writes a server refused at once (down, not serving).
    pub refused: u64,
    /// Txns proposed.
    pub proposed: u64,
    /// Txns applied, summed over servers.
    pub applied: u64,
    /// Epochs established.
    pub epochs: u64,
    /// Crashes.
    pub crashes: u64,
    /// Partitions and link cuts.
    pub partitions: u64,
    /// Snapshots streamed for SNAP syncs.
    pub snap_syncs: u64,
    /// Packets lost (dropped, or on a cut link, or to a server that is down).
    pub lost: u64,
    /// Packets duplicated.
    pub duplicated: u64,
    /// Packets delivered.
    pub delivered: u64,
    /// Barrier writes issued while converging.
    pub barriers: u64,
}

/// Next thing due, in the order ties are broken.
#[derive(Clone, Copy, Debug)]
enum Due {
    Packet,
    Disk(ServerId),
    Restart(ServerId),
    Timer(ServerId),
    Client(usize),
    Fault,
}

/// Steps allowed at one virtual instant before the run is declared livelocked.
const SAME_INSTANT_STEPS_MAX: u64 = 20_000;
/// While converging, at most one barrier write per this much virtual time.
const BARRIER_INTERVAL_MS: u64 = 300;

pub(crate) struct Sim {
    pub(crate) cfg: SimConfig,
    /// The fault rates in force (all zero while converging).
    pub(crate) rates: FaultRates,
    pub(crate) rng: SimRng,
    pub(crate) now: Time,
    pub(crate) step: u64,
    same_instant: u64,
    pub(crate) phase: Phase,
    pub(crate) nodes: BTreeMap<ServerId, Node>,
    pub(crate) net: Network,
    pub(crate) clients: Vec<Client>,
    pub(crate) history: Vec<OpRecord>,
    pub(crate) checker: Checker,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) next_fault: Option<Time>,
    pub(crate) next_value: u64,
    pub(crate) think_ms: u64,
}

impl Sim {
    pub(crate) fn new(seed: u64, cfg: SimConfig) -> Sim {
        let mut rng = SimRng::new(seed);
        let voters: Vec<ServerId> = (1..=cfg.voters as u64).collect();
        let observers: Vec<ServerId> =
            (cfg.voters as u64 + 1..=(cfg.voters + cfg.observers) as u64).collect();
        // Drawn per seed: how much history a leader keeps for DIFFs (small windows force
        // SNAP syncs), and how long clients pause between writes.
        let diff_window = rng.range(2, 40) as usize;
        let think_ms = rng.range(5, 200);
        let mut nodes = BTreeMap::new();
        for &id in voters.iter().chain(&observers) {
            let mut zab = ZabConfig::new(id, voters.iter().copied(), observers.iter().copied());
            zab.init_limit_ticks = 10;
            zab.sync_limit_ticks = 4;
            zab.notification_timeout_ms_min = 50;
            zab.notification_timeout_ms_max = 800;
            zab.finalize_wait_ms = 20;
            zab.diff_window = diff_window;
            let start_at = Time::from_ms(rng.range(0, 50));
            nodes.insert(id, Node::new(zab, start_at));
        }
        let server_count = nodes.len() as u64;
        let clients = (0..cfg.clients)
            .map(|index| Client {
                session: index as i64 + 1,
                node: rng.range(1, server_count),
                next_cxid: 1,
                wake_at: Some(Time::from_ms(rng.range(100, 400))),
                waiting: None,
            })
            .collect();
        let (low, high) = cfg.faults.fault_interval_ms;
        let next_fault = Some(Time::from_ms(rng.range(low, high)));
        Sim {
            rates: cfg.faults.clone(),
            trace: Trace::new(300, cfg.verbose),
            cfg,
            rng,
            now: Time::ZERO,
            step: 0,
            same_instant: 0,
            phase: Phase::Faults,
            nodes,
            net: Network::default(),
            clients,
            history: Vec::new(),
            checker: Checker::new(DataTree::new().digest()),
            stats: Stats::default(),
            next_fault,
            next_value: 0,
            think_ms,
        }
    }

    pub(crate) fn record(&mut self, event: TraceEvent) {
        self.trace.push(self.step, self.now.as_ms(), event);
    }

    fn next_due(&self) -> Option<(Time, Due)> {
        let mut best: Option<(Time, Due)> = None;
        let mut consider = |time: Option<Time>, due: Due| {
            if let Some(time) = time {
                if best.is_none_or(|(best_time, _)| time < best_time) {
                    best = Some((time, due));
                }
            }
        };
        consider(self.net.next_time(), Due::Packet);
        for (&id, node) in &self.nodes {
            consider(node.disk.busy_until, Due::Disk(id));
            consider(node.restart_at, Due::Restart(id));
            consider(
                node.peer.as_ref().and_then(|p| p.poll_timeout()),
                Due::Timer(id),
            );
        }
        for (index, client) in self.clients.iter().enumerate() {
            consider(client.wake_at, Due::Client(index));
        }
        consider(self.next_fault, Due::Fault);
        best
    }

    /// Runs one step; false if nothing is due (a dead system).
    pub(crate) fn step(&mut self) -> Result<bool, Violation> {
        let Some((at, due)) = self.next_due() else {
            return Ok(false);
        };
        if at > self.now {
            self.now = at;
            self.same_instant = 0;
        } else {
            self.same_instant += 1;
            if self.same_instant > SAME_INSTANT_STEPS_MAX {
                return Err(Violation::new(
                    "§10.15 liveness",
                    format!(
                        "virtual time stuck at {} ms ({due:?} keeps being due)",
                        self.now.as_ms()
                    ),
                ));
            }
        }
        self.step += 1;
        match due {
            Due::Packet => self.deliver()?,
            Due::Disk(id) => self.disk_done(id)?,
            Due::Restart(id) => self.restart(id)?,
            Due::Timer(id) => {
                let now = self.now;
                self.record(TraceEvent::Timeout(id));
                if let Some(peer) = self.node_mut(id).peer.as_mut() {
                    peer.handle_timeout(now);
                }
                self.drain(id)?;
            }
            Due::Client(index) => self.client_wake(index)?,
            Due::Fault => self.fault()?,
        }
        self.check_step()?;
        Ok(true)
    }

    fn check_step(&mut self) -> Result<(), Violation> {
        for node in self.nodes.values() {
            if let Some(peer) = node.peer.as_ref() {
                self.checker.on_step(peer, &node.disk)?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self) -> Result<(), Violation> {
        let Some((flight, cut)) = self.net.pop_due(self.now) else {
            return Ok(());
        };
        let (from, to) = (flight.from, flight.to);
        let now = self.now;
        let alive = self.nodes.get(&to).is_some_and(|node| node.peer.is_some());
        if cut || !alive {
            let why = if cut { "partition" } else { "receiver down" };
            self.lost(flight, why);
            return Ok(());
        }
        self.stats.delivered += 1;
        match flight.packet {
            Packet::Msg(msg) => {
                self.record(TraceEvent::Deliver(from, to, msg.clone()));
                if let Some(peer) = self.node_mut(to).peer.as_mut() {
                    peer.handle_message(now, from, msg);
                }
            }
            Packet::Snapshot { zxid, bytes } => {
                self.record(TraceEvent::DeliverSnapshot(from, to, zxid));
                let node = self.node_mut(to);
                node.staged.insert((from, zxid), bytes);
                if let Some(peer) = node.peer.as_mut() {
                    peer.handle_snapshot_received(now, from, zxid);
                }
            }
        }
        self.drain(to)
    }

    fn alive(&self) -> Vec<ServerId> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.peer.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// A cluster fault: crash, partition, one-way link cuts, heal, or a local snapshot.
    fn fault(&mut self) -> Result<(), Violation> {
        let (low, high) = self.rates.fault_interval_ms;
        self.next_fault = Some(self.now.plus_ms(self.rng.range(low, high)));
        let rates = &self.rates;
        let weights = [
            rates.crash_weight,
            rates.partition_weight,
            rates.cut_links_weight,
            rates.heal_weight,
            rates.snapshot_weight,
        ];
        if weights.iter().all(|w| *w == 0) {
            return Ok(());
        }
        let alive = self.alive();
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        match self.rng.weighted(&weights) {
            0 if !alive.is_empty() => {
                let id = alive[self.rng.index(alive.len())];
                self.crash(id)?;
            }
            1 => self.partition(&ids),
            2 => self.cut_links(&ids),
            3 => {
                self.net.heal();
                self.record(TraceEvent::Heal);
            }
            4 if !alive.is_empty() => {
                let id = alive[self.rng.index(alive.len())];
                self.local_snapshot(id)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Two random sides (or one isolated server) that cannot talk to each other.
    fn partition(&mut self, ids: &[ServerId]) {
        let isolated = self.rng.chance(0.5).then(|| ids[self.rng.index(ids.len())]);
        let side: Vec<bool> = ids
            .iter()
            .map(|id| match isolated {
                Some(isolated) => *id == isolated,
                None => self.rng.chance(0.5),
            })
            .collect();
        for (a, &id_a) in ids.iter().enumerate() {
            for (b, &id_b) in ids.iter().enumerate() {
                if side[a] != side[b] {
                    self.net.block(id_a, id_b, self.rates.link);
                }
            }
        }
        self.partitioned();
    }

    /// Random links cut in one direction only.
    fn cut_links(&mut self, ids: &[ServerId]) {
        let cuts = self.rng.range(1, ids.len() as u64);
        for _ in 0..cuts {
            let from = ids[self.rng.index(ids.len())];
            let to = ids[self.rng.index(ids.len())];
            if from != to {
                self.net.block(from, to, self.rates.link);
            }
        }
        self.partitioned();
    }

    fn partitioned(&mut self) {
        self.report_purged();
        self.stats.partitions += 1;
        let blocked = self.net.blocked();
        self.record(TraceEvent::Partition(blocked));
    }

    /// The fault phase, then healing and convergence.
    pub(crate) fn run(&mut self) -> Result<(), Violation> {
        while self.step < self.cfg.steps {
            if !self.step()? {
                break;
            }
        }
        self.converge()
    }

    fn converge(&mut self) -> Result<(), Violation> {
        self.phase = Phase::Converge;
        self.record(TraceEvent::Phase("heal, restart every server, converge"));
        self.net.heal();
        self.rates = FaultRates {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            spike: 0.0,
            ..self.rates.clone()
        };
        self.next_fault = None;
        let now = self.now;
        for node in self.nodes.values_mut() {
            if node.peer.is_none() {
                node.restart_at = Some(now);
            }
        }
        let deadline = self.now.plus_ms(self.cfg.converge_ms);
        let mut barrier_at = self.now;
        loop {
            match self.quiet() {
                Some((_, true)) => return Ok(()),
                Some((leader, false)) if self.now >= barrier_at => {
                    barrier_at = self.now.plus_ms(BARRIER_INTERVAL_MS);
                    self.stats.barriers += 1;
                    self.barrier(leader)?;
                }
                _ => {}
            }
            if self.now > deadline || !self.step()? {
                return Err(Violation::new(
                    "§10.15 liveness",
                    format!(
                        "no convergence within {} ms of healing: {}",
                        self.cfg.converge_ms,
                        self.summary()
                    ),
                ));
            }
        }
    }

    /// `Some((leader, converged))` when the ensemble is quiet: one established leader,
    /// every server following it, no write in flight on any disk, nothing queued or
    /// uncommitted at the leader. Converged if every tree has applied everything.
    pub(crate) fn quiet(&self) -> Option<(ServerId, bool)> {
        let mut leader = None;
        for node in self.nodes.values() {
            let peer = node.peer.as_ref()?;
            if !peer.is_established() || !node.disk.pending.is_empty() {
                return None;
            }
            match (leader, peer.leader()) {
                (_, None) => return None,
                (None, Some(id)) => leader = Some(id),
                (Some(expected), Some(id)) if expected != id => return None,
                _ => {}
            }
        }
        let leader_id = leader?;
        let node = self.nodes.get(&leader_id)?;
        let (peer, leading) = (node.peer.as_ref()?, node.leading.as_ref()?);
        let last = peer.last_logged();
        if !leading.queue.is_empty() || peer.last_committed() != last {
            return None;
        }
        let converged = self
            .nodes
            .values()
            .all(|node| node.tree.last_zxid() == last);
        Some((leader_id, converged))
    }

    /// One line per server, for liveness failures.
    pub(crate) fn summary(&self) -> String {
        let mut lines = Vec::new();
        for (id, node) in &self.nodes {
            let line = match node.peer.as_ref() {
                None => format!("node {id}: down"),
                Some(peer) => format!(
                    "node {id}: {:?} leader {:?} established {} epochs ({}, {}) logged {} durable {} applied {} tree {} pending writes {}",
                    peer.role(),
                    peer.leader(),
                    peer.is_established(),
                    peer.accepted_epoch(),
                    peer.current_epoch(),
                    peer.last_logged(),
                    peer.last_durable(),
                    peer.last_committed(),
                    node.tree.last_zxid(),
                    node.disk.pending.len()
                ),
            };
            lines.push(line);
        }
        format!("in flight {}; {}", self.net.in_flight(), lines.join("; "))
    }
}
