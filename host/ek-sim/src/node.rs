//! One simulated server: a `Peer`, its `DataTree`, its disk, and (when it leads) the write
//! prep of ZooKeeper's `PrepRequestProcessor`. This module drives a server's outputs (the
//! call order of `Peer`'s documentation), applies commits, and reacts to events.

use crate::check::Violation;
use crate::disk::{Disk, Staged};
use crate::leader::{Leading, SimRequest};
use crate::linearizability::Output;
use crate::net::{InFlight, Packet, Sent};
use crate::sim::Sim;
use crate::trace::{Lost, TraceEvent};
use ek_tree::DataTree;
use ek_types::{ErrorCode, Txn, TxnBody, Zxid};
use ek_zab::{Event, Peer, Role, ServerId, Time, ZabConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// One server of the ensemble, up or down.
pub(crate) struct Node {
    pub(crate) cfg: ZabConfig,
    pub(crate) peer: Option<Peer>,
    pub(crate) tree: DataTree,
    pub(crate) disk: Disk,
    pub(crate) staged: Staged,
    /// When a crashed server comes back.
    pub(crate) restart_at: Option<Time>,
    pub(crate) leading: Option<Leading>,
    /// Requests this leader has taken, so a duplicated forward is not proposed twice (the
    /// real transport, a QUIC stream, never duplicates).
    pub(crate) seen: BTreeSet<(i64, i32)>,
    /// Client writes waiting for their txn to be applied here: (session, cxid) to op.
    pub(crate) waiting: BTreeMap<(i64, i32), usize>,
}

impl Node {
    pub(crate) fn new(cfg: ZabConfig, start_at: Time) -> Node {
        Node {
            cfg,
            peer: None,
            tree: DataTree::new(),
            disk: Disk::default(),
            staged: Staged::new(),
            restart_at: Some(start_at),
            leading: None,
            seen: BTreeSet::new(),
            waiting: BTreeMap::new(),
        }
    }
}

/// The reply a committed txn gives its client.
pub(crate) fn outcome(txn: &Txn) -> Result<Output, Violation> {
    match &txn.body {
        TxnBody::Error { code, .. } => match code {
            ErrorCode::NodeExists => Ok(Output::NodeExists),
            ErrorCode::NoNode => Ok(Output::NoNode),
            code => Err(Violation::new(
                "simulated server",
                format!("unexpected error txn {code:?} at {}", txn.zxid),
            )),
        },
        _ => Ok(Output::Ok),
    }
}

/// The tree as snapshot bytes (what a SNAP sync streams and a snapshot file holds).
pub(crate) fn serialise(tree: &DataTree) -> Result<Rc<Vec<u8>>, Violation> {
    let mut bytes = Vec::new();
    tree.snapshot()
        .write_to(&mut bytes)
        .map_err(|e| Violation::new("snapshot transfer", format!("cannot write: {e}")))?;
    Ok(Rc::new(bytes))
}

/// A tree read back from snapshot bytes.
pub(crate) fn load(bytes: &[u8]) -> Result<DataTree, Violation> {
    DataTree::read_snapshot(&mut &bytes[..])
        .map_err(|e| Violation::new("snapshot transfer", format!("cannot read: {e}")))
}

impl Sim {
    pub(crate) fn node_mut(&mut self, id: ServerId) -> &mut Node {
        self.nodes
            .get_mut(&id)
            .expect("server ids come from the node map")
    }

    /// Drains every output of `id` until it is quiet, proposing queued writes if it leads.
    pub(crate) fn drain(&mut self, id: ServerId) -> Result<(), Violation> {
        for _ in 0..10_000 {
            let progressed = self.drain_once(id)?;
            let proposed = self.leader_pump(id)?;
            if !progressed && !proposed {
                return Ok(());
            }
        }
        Err(Violation::new(
            "§10.15 liveness",
            format!("node {id} keeps producing output"),
        ))
    }

    fn drain_once(&mut self, id: ServerId) -> Result<bool, Violation> {
        let now = self.now;
        let ack_early = self.cfg.knobs.ack_before_fsync;
        let node = self
            .nodes
            .get_mut(&id)
            .expect("server ids come from the node map");
        let Some(peer) = node.peer.as_mut() else {
            return Ok(false);
        };
        let mut progressed = false;
        let mut last_polled = None;
        while let Some(write) = peer.poll_persist() {
            last_polled = Some(write.0);
            node.disk.pending.push_back(write);
            progressed = true;
        }
        if let (true, Some(last)) = (ack_early, last_polled) {
            peer.handle_persisted(last);
        }
        if node.disk.busy_until.is_none() && !node.disk.pending.is_empty() {
            let (low, high) = self.rates.disk_latency_ms;
            node.disk.busy_until = Some(now.plus_ms(self.rng.range(low, high)));
        }
        let transmits: Vec<_> = std::iter::from_fn(|| peer.poll_transmit()).collect();
        let commits: Vec<_> = std::iter::from_fn(|| peer.poll_commit()).collect();
        let events: Vec<_> = std::iter::from_fn(|| peer.poll_event()).collect();
        progressed |= !transmits.is_empty() || !commits.is_empty() || !events.is_empty();
        for (to, msg) in transmits {
            let disk = &self.nodes[&id].disk;
            self.checker.on_transmit(id, disk, &msg)?;
            let flight = InFlight {
                from: id,
                to,
                packet: Packet::Msg(msg),
            };
            self.send(flight);
        }
        for (zxid, data) in commits {
            self.apply_commit(id, zxid, data)?;
        }
        for event in events {
            self.on_event(id, event)?;
        }
        Ok(progressed)
    }

    pub(crate) fn send(&mut self, flight: InFlight) {
        match self.net.send(self.now, &mut self.rng, &self.rates, flight) {
            Sent::Queued => {}
            Sent::Duplicated => self.stats.duplicated += 1,
            Sent::Lost(why, flight) => self.lost(flight, why),
        }
        self.report_purged();
    }

    /// Reports the packets lost when their connection broke.
    pub(crate) fn report_purged(&mut self) {
        for flight in self.net.take_purged() {
            self.lost(flight, "connection reset");
        }
    }

    pub(crate) fn lost(&mut self, flight: InFlight, why: &'static str) {
        self.stats.lost += 1;
        let what = match flight.packet {
            Packet::Msg(msg) => Lost::Msg(msg),
            Packet::Snapshot { zxid, .. } => Lost::Snapshot(zxid),
        };
        self.record(TraceEvent::Lost(flight.from, flight.to, why, what));
    }

    /// Applies a committed txn to `id`'s tree and answers the client waiting for it.
    fn apply_commit(&mut self, id: ServerId, zxid: Zxid, data: Vec<u8>) -> Result<(), Violation> {
        self.checker.on_deliver(id, zxid, &data)?;
        let txn: Txn = postcard::from_bytes(&data).map_err(|e| {
            Violation::new("§10.1 integrity", format!("{zxid} does not decode: {e}"))
        })?;
        if txn.zxid != zxid {
            return Err(Violation::new(
                "§10.1 integrity",
                format!("entry {zxid} carries txn {}", txn.zxid),
            ));
        }
        if let Some(stamp) = txn.digest {
            self.checker.check_stamp(id, stamp.zxid, stamp.value)?;
        }
        let node = self.node_mut(id);
        node.tree.apply(&txn).map_err(|e| {
            Violation::new(
                "§10.12 state-machine equality",
                format!("node {id} cannot apply {zxid}: {e}"),
            )
        })?;
        let digest = node.tree.digest();
        if let Some(leading) = node.leading.as_mut() {
            leading.prep.applied(zxid);
        }
        let waiter = node.waiting.remove(&(txn.session_id.0, txn.cxid));
        self.checker.on_state(id, zxid, digest)?;
        self.stats.applied += 1;
        self.record(TraceEvent::Commit(id, zxid));
        if let Some(op) = waiter {
            self.complete(op, outcome(&txn)?);
        }
        Ok(())
    }

    fn on_event(&mut self, id: ServerId, event: Event) -> Result<(), Violation> {
        if !matches!(event, Event::Request { .. }) {
            self.record(TraceEvent::Event(id, event.clone()));
        }
        match event {
            Event::RoleChanged { .. } => self.node_mut(id).leading = None,
            Event::Established {
                role: Role::Leading,
                epoch,
                ..
            } => self.on_established(id, epoch)?,
            Event::SendSnapshot { to, min_zxid, .. } => {
                let node = self.node_mut(id);
                let zxid = node.tree.last_zxid();
                if zxid < min_zxid {
                    return Err(Violation::new(
                        "snapshot transfer",
                        format!("leader {id} snapshot at {zxid} is below {min_zxid}"),
                    ));
                }
                let bytes = serialise(&node.tree)?;
                self.stats.snap_syncs += 1;
                let packet = Packet::Snapshot { zxid, bytes };
                self.send(InFlight {
                    from: id,
                    to,
                    packet,
                });
            }
            Event::Request { from, payload } => {
                let request: SimRequest = postcard::from_bytes(&payload).map_err(|e| {
                    Violation::new("simulated server", format!("request from {from}: {e}"))
                })?;
                let node = self.node_mut(id);
                let key = (request.session, request.cxid);
                if let Some(leading) = node.leading.as_mut() {
                    if node.seen.insert(key) {
                        leading.queue.push_back(request);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
