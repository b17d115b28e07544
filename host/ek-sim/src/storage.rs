//! A simulated server's life on its disk: fsync completions, SNAP installs, crashes that
//! keep a random prefix of the writes in flight, restarts from disk, local snapshots.

use crate::check::Violation;
use crate::node::{load, serialise};
use crate::sim::Sim;
use crate::trace::TraceEvent;
use ek_tree::DataTree;
use ek_types::Zxid;
use ek_zab::{Peer, PersistId, PersistRequest, ServerId};

impl Sim {
    /// The fsync in progress on `id` completes: a random prefix of the writes in flight
    /// becomes durable (group commit) and is reported.
    pub(crate) fn disk_done(&mut self, id: ServerId) -> Result<(), Violation> {
        let count = {
            let node = self.node_mut(id);
            node.disk.busy_until = None;
            node.disk.pending.len() as u64
        };
        if count == 0 {
            return Ok(());
        }
        let batch = self.rng.range(1, count) as usize;
        let through = self.write_through(id, batch)?;
        if let Some(through) = through {
            self.record(TraceEvent::Persisted(id, through.0, batch));
            let ack_early = self.cfg.knobs.ack_before_fsync;
            if let Some(peer) = self.node_mut(id).peer.as_mut() {
                if !ack_early {
                    peer.handle_persisted(through);
                }
            }
        }
        self.drain(id)
    }

    /// Writes the first `count` writes in flight of `id` to its disk.
    fn write_through(
        &mut self,
        id: ServerId,
        count: usize,
    ) -> Result<Option<PersistId>, Violation> {
        let mut through = None;
        for _ in 0..count {
            let Some((write_id, request)) = self.node_mut(id).disk.pending.pop_front() else {
                break;
            };
            if let PersistRequest::Append(entries)
            | PersistRequest::InstallSnapshot { entries, .. } = &request
            {
                for entry in entries {
                    self.checker.check_entry(
                        &format!("node {id} disk"),
                        entry.zxid,
                        &entry.data,
                    )?;
                }
            }
            let node = self.node_mut(id);
            let installed = node.disk.execute(id, request, &node.staged)?;
            if let Some((zxid, bytes)) = installed {
                self.install(id, zxid, &bytes)?;
            }
            through = Some(write_id);
        }
        Ok(through)
    }

    /// A snapshot received by SNAP sync is now the durable base: it becomes the live state.
    fn install(&mut self, id: ServerId, zxid: Zxid, bytes: &[u8]) -> Result<(), Violation> {
        let tree = load(bytes)?;
        let node = self.node_mut(id);
        if tree.last_zxid() != zxid || tree.last_zxid() < node.tree.last_zxid() {
            return Err(Violation::new(
                "§10.2 agreement",
                format!(
                    "node {id} installs a snapshot at {} (announced {zxid}) over its state at {}",
                    tree.last_zxid(),
                    node.tree.last_zxid()
                ),
            ));
        }
        let digest = tree.digest();
        node.tree = tree;
        node.staged.retain(|(_, staged), _| *staged > zxid);
        self.checker.on_reset(id, zxid, digest)?;
        self.record(TraceEvent::Install(id, zxid));
        Ok(())
    }

    /// Crashes `id`: the writes in flight survive only as a random prefix.
    pub(crate) fn crash(&mut self, id: ServerId) -> Result<(), Violation> {
        let in_flight = self.node_mut(id).disk.pending.len() as u64;
        let kept = self.rng.range(0, in_flight) as usize;
        {
            let node = self.node_mut(id);
            node.peer = None;
            node.leading = None;
            node.waiting.clear();
            node.seen.clear();
        }
        self.write_through(id, kept)?;
        let (low, high) = self.rates.downtime_ms;
        let restart_at = self.now.plus_ms(self.rng.range(low, high));
        let node = self.node_mut(id);
        node.disk.pending.clear();
        node.disk.busy_until = None;
        node.staged.clear();
        node.restart_at = Some(restart_at);
        self.stats.crashes += 1;
        self.record(TraceEvent::Crash(id, kept, in_flight as usize - kept));
        Ok(())
    }

    /// (Re)starts `id` from its disk: the tree from the snapshot only; the core re-delivers
    /// the logged tail through `poll_commit` once it learns it is committed.
    pub(crate) fn restart(&mut self, id: ServerId) -> Result<(), Violation> {
        let rng_seed = self.rng.next_u64();
        let now = self.now;
        let node = self.node_mut(id);
        node.restart_at = None;
        node.tree = match &node.disk.snapshot {
            Some((_, bytes)) => load(bytes)?,
            None => DataTree::new(),
        };
        let mut cfg = node.cfg.clone();
        cfg.rng_seed = rng_seed;
        let peer = Peer::new(cfg, node.disk.persisted(), now).map_err(|e| {
            Violation::new(
                "§2 start-up sanity",
                format!("node {id} refuses its disk: {e}"),
            )
        })?;
        node.peer = Some(peer);
        let (base, digest) = (node.tree.last_zxid(), node.tree.digest());
        self.checker.on_reset(id, base, digest)?;
        self.record(TraceEvent::Restart(id, base));
        self.drain(id)
    }

    /// `id` writes a snapshot of its applied state and drops the log it covers.
    pub(crate) fn local_snapshot(&mut self, id: ServerId) -> Result<(), Violation> {
        let node = self.node_mut(id);
        let zxid = node.tree.last_zxid();
        if node.peer.is_none() || zxid <= node.disk.snapshot_zxid() {
            return Ok(());
        }
        if !node.disk.holds(zxid) {
            return Err(Violation::new(
                "§10.11 durability",
                format!("node {id} applied {zxid}, which its disk does not hold"),
            ));
        }
        let bytes = serialise(&node.tree)?;
        node.disk.compact(zxid, bytes);
        self.record(TraceEvent::LocalSnapshot(id, zxid));
        Ok(())
    }
}
