//! The ZAB driver: feeds the sans-IO `ek_zab::Peer` its inputs (peer messages, timeouts,
//! durable log writes, received snapshots) and carries out its outputs (messages over the
//! QUIC transport, log appends and truncations, epoch files, snapshot installs, committed
//! txns to apply, role changes).
//!
//! A standalone node is an ensemble of one voter without a transport: it elects itself,
//! and a txn commits when its own log made it durable. Every node, standalone or not, runs
//! the same write path.

use crate::client::ConnId;
use crate::core::{Core, CoreMsg};
use crate::pipeline::{Origin, Proposal};
use crate::{Config, MemberRole, ServerError};
use bytes::Bytes;
use ek_net::{Channel, Incoming, PeerId, StreamReader, Transport};
use ek_tree::DataTree;
use ek_types::{Txn, Zxid};
use ek_zab::{
    Event, Message, Peer, PersistId, PersistRequest, PersistedState, Role, ServerId, SyncKind,
    Time, ZabConfig,
};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Name of the metadata file holding `acceptedEpoch`.
const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// Name of the metadata file holding `currentEpoch`.
const CURRENT_EPOCH: &str = "currentEpoch";
/// Bytes per chunk of a snapshot stream.
const SNAPSHOT_CHUNK: usize = 64 << 10;
/// Recent (zxid, digest) pairs kept to check the digests the leader stamps into txns.
const DIGEST_HISTORY: usize = 4096;

/// What a snapshot stream starts with: a magic number and the snapshot's zxid.
const SNAPSHOT_MAGIC: u64 = 0x656b_736e_6170_0001;

/// The replication state of the core.
pub(crate) struct Replication {
    pub(crate) peer: Peer,
    pub(crate) transport: Option<Arc<Transport>>,
    /// True when the config has an `[ensemble]`.
    pub(crate) ensemble: bool,
    /// The time origin handed to the ZAB core.
    origin: Instant,
    /// Appends handed to the log writer: the request id and the zxid whose durability
    /// completes it.
    pending: VecDeque<(PersistId, Zxid)>,
    /// Durable reports sent by the log writer before a truncation or reset, still queued in
    /// the core's channel: they speak of records that no longer exist and are ignored.
    fence: u64,
    /// Snapshots received for a SNAP sync, by sender: the zxid and the staged file.
    staged: HashMap<ServerId, (Zxid, PathBuf)>,
    /// Our own digest after each recent txn.
    digests: VecDeque<(Zxid, u64)>,
    /// When each of this leader's proposals was made, for the proposal latency metric.
    proposed_at: VecDeque<(Zxid, Instant)>,
    /// When each batch of txns was handed to the log, for the commit latency metric.
    logged_at: VecDeque<(Zxid, Instant)>,
    /// The replica's tree diverged from the leader's: it serves nobody.
    pub(crate) diverged: bool,
    next_sync: u64,
    voters: u64,
    observers: u64,
    /// ZAB syncs in flight: what completes each.
    pub(crate) syncs: HashMap<u64, SyncWaiter>,
}

/// Who waits for a ZAB sync.
pub(crate) enum SyncWaiter {
    /// A client's `sync` request (its reply entry carries the id).
    Client(ConnId),
    /// A follower checking a session a client wants to resume, after catching up.
    Resume {
        conn: ConnId,
        session: ek_types::SessionId,
        timeout_ms: i32,
    },
}

/// The persisted part of the ZAB state, read at start-up.
pub(crate) fn read_epochs(log: &ek_log::Log, last: Zxid) -> Result<(u32, u32), String> {
    let read = |name: &str| -> Result<Option<u32>, String> {
        match log.read_metadata(name) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => {
                let text = String::from_utf8_lossy(&bytes);
                text.trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|err| format!("{name} holds {:?}: {err}", text.trim()))
            }
            Err(err) => Err(format!("cannot read {name}: {err}")),
        }
    };
    let accepted = read(ACCEPTED_EPOCH)?;
    let current = read(CURRENT_EPOCH)?;
    // A data dir written before epochs were persisted: its history's epoch was promised.
    let floor = last.epoch();
    Ok((
        accepted.unwrap_or(floor).max(current.unwrap_or(0)),
        current.unwrap_or(floor),
    ))
}

/// The ZAB configuration of this node.
pub(crate) fn zab_config(config: &Config, seed: u64) -> ZabConfig {
    let id = config.node_id;
    let mut zab = match &config.ensemble {
        None => ZabConfig::new(id, [id], []),
        Some(ensemble) => {
            let voters = ensemble
                .members
                .iter()
                .filter(|m| m.role == MemberRole::Voter)
                .map(|m| m.id);
            let observers = ensemble
                .members
                .iter()
                .filter(|m| m.role == MemberRole::Observer)
                .map(|m| m.id);
            let mut zab = ZabConfig::new(id, voters, observers);
            zab.tick_ms = u64::from(ensemble.zab_tick_ms.max(1));
            zab.init_limit_ticks = u64::from(ensemble.init_limit_ticks.max(1));
            zab.sync_limit_ticks = u64::from(ensemble.sync_limit_ticks.max(1));
            // Election resends start at one tick: a LAN election takes a few ticks.
            zab.notification_timeout_ms_min = zab.tick_ms.max(20);
            zab.finalize_wait_ms = (zab.tick_ms / 2).max(10);
            zab
        }
    };
    zab.rng_seed = seed;
    zab
}

/// Starts the QUIC transport of an ensemble member and forwards its events to the core.
pub(crate) fn start_transport(
    config: &Config,
    core_tx: mpsc::UnboundedSender<CoreMsg>,
) -> Result<Option<Arc<Transport>>, ServerError> {
    let Some(ensemble) = &config.ensemble else {
        return Ok(None);
    };
    let me = ensemble
        .members
        .iter()
        .find(|m| m.id == config.node_id)
        .ok_or_else(|| ServerError::Ensemble(format!("node {} is not a member", config.node_id)))?;
    let listen = ensemble.peer_listen.unwrap_or(me.peer_addr);
    let peers = ensemble
        .members
        .iter()
        .filter(|m| m.id != config.node_id)
        .map(|m| (PeerId(m.id), m.peer_addr))
        .collect();
    let tls = ek_net::TlsConfig::Files {
        ca_cert: ensemble.ca_cert.clone(),
        cert: ensemble.cert.clone(),
        key: ensemble.key.clone(),
    };
    let mut net = ek_net::NetConfig::new(PeerId(config.node_id), listen, peers, tls);
    net.keep_alive = std::time::Duration::from_millis(u64::from(ensemble.peer_keepalive_ms));
    net.idle_timeout = std::time::Duration::from_millis(u64::from(ensemble.peer_idle_timeout_ms));
    net.max_frame_len = net
        .max_frame_len
        .max(config.max_frame_bytes.saturating_mul(2));
    let (transport, mut events) =
        Transport::start(net).map_err(|err| ServerError::Ensemble(err.to_string()))?;
    let staging = config.data_dir.join("staging");
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let msg = match event {
                Incoming::Stream {
                    from,
                    channel: Channel::Snapshot,
                    reader,
                } => {
                    tokio::spawn(receive_snapshot(
                        from,
                        reader,
                        staging.clone(),
                        core_tx.clone(),
                    ));
                    continue;
                }
                Incoming::Stream { from, .. } => {
                    tracing::warn!(%from, "ignoring a bulk stream on a non-snapshot channel");
                    continue;
                }
                other => CoreMsg::Net(other),
            };
            if core_tx.send(msg).is_err() {
                return;
            }
        }
    });
    Ok(Some(Arc::new(transport)))
}

/// Reads a snapshot a leader streams for a SNAP sync into a staging file.
async fn receive_snapshot(
    from: PeerId,
    mut reader: StreamReader,
    staging: PathBuf,
    core_tx: mpsc::UnboundedSender<CoreMsg>,
) {
    let path = staging.join(format!("snapshot-from-{}.tmp", from.0));
    let result: io::Result<Zxid> = async {
        let magic = reader.read_u64().await?;
        if magic != SNAPSHOT_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a snapshot stream",
            ));
        }
        let zxid = Zxid(reader.read_i64().await?);
        tokio::fs::create_dir_all(&staging).await?;
        let mut file = tokio::fs::File::create(&path).await?;
        tokio::io::copy(&mut reader, &mut file).await?;
        file.flush().await?;
        Ok(zxid)
    }
    .await;
    match result {
        Ok(zxid) => {
            tracing::info!(from = from.0, %zxid, "received a snapshot");
            let _ = core_tx.send(CoreMsg::SnapshotStaged {
                from: from.0,
                zxid,
                path,
            });
        }
        Err(err) => tracing::warn!(from = from.0, %err, "snapshot stream failed"),
    }
}

impl Replication {
    pub(crate) fn new(
        peer: Peer,
        zab: &ZabConfig,
        transport: Option<Arc<Transport>>,
        ensemble: bool,
        origin: Instant,
        tree: &DataTree,
    ) -> Replication {
        let mut digests = VecDeque::with_capacity(DIGEST_HISTORY);
        digests.push_back((tree.last_zxid(), tree.digest()));
        Replication {
            peer,
            transport,
            ensemble,
            origin,
            pending: VecDeque::new(),
            fence: 0,
            staged: HashMap::new(),
            digests,
            proposed_at: VecDeque::new(),
            logged_at: VecDeque::new(),
            diverged: false,
            next_sync: 1,
            voters: zab.voters.len() as u64,
            observers: zab.observers.len() as u64,
            syncs: HashMap::new(),
        }
    }

    /// Now, as the ZAB core counts time.
    pub(crate) fn now(&self) -> Time {
        Time::from_ms(self.origin.elapsed().as_millis() as u64)
    }

    /// When the ZAB core wants its next timeout, as an instant.
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        let at = self.peer.poll_timeout()?;
        let origin = tokio::time::Instant::from_std(self.origin);
        Some(origin + std::time::Duration::from_millis(at.as_ms()))
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.peer.role() == Role::Leading && self.peer.is_established()
    }

    pub(crate) fn next_sync_id(&mut self) -> u64 {
        let id = self.next_sync;
        self.next_sync += 1;
        id
    }

    /// Records our digest after applying `zxid`.
    pub(crate) fn record_digest(&mut self, zxid: Zxid, digest: u64) {
        if self.digests.len() == DIGEST_HISTORY {
            self.digests.pop_front();
        }
        self.digests.push_back((zxid, digest));
    }

    /// Our digest after `zxid`, if it is recent enough to be remembered.
    fn digest_at(&self, zxid: Zxid) -> Option<u64> {
        let index = self.digests.binary_search_by(|(z, _)| z.cmp(&zxid)).ok()?;
        Some(self.digests[index].1)
    }

    fn reset_digests(&mut self, tree: &DataTree) {
        self.digests.clear();
        self.digests.push_back((tree.last_zxid(), tree.digest()));
    }
}

impl Core {
    /// Carries out everything the ZAB core has to say, until it has nothing more.
    pub(crate) fn drive(&mut self) {
        let mut committed = false;
        loop {
            let mut progressed = false;
            while let Some((id, request)) = self.repl.peer.poll_persist() {
                self.execute_persist(id, request);
                progressed = true;
            }
            while let Some((to, msg)) = self.repl.peer.poll_transmit() {
                self.transmit(to, &msg);
            }
            while let Some((zxid, data)) = self.repl.peer.poll_commit() {
                self.commit_entry(zxid, data);
                committed = true;
                progressed = true;
            }
            while let Some(event) = self.repl.peer.poll_event() {
                self.on_zab_event(event);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if committed {
            self.after_commits();
        }
        self.publish_zab();
    }

    fn transmit(&mut self, to: ServerId, msg: &Message) {
        let Some(transport) = &self.repl.transport else {
            return;
        };
        let channel = match msg {
            Message::Notification(_) => Channel::Election,
            _ => Channel::Replication,
        };
        match postcard::to_allocvec(msg) {
            Ok(bytes) => {
                // A peer that is down misses the message; ZAB resynchronises it.
                let _ = transport.send(PeerId(to), channel, Bytes::from(bytes));
            }
            Err(err) => tracing::error!(%err, to, "cannot encode a peer message"),
        }
    }

    /// An event of the peer transport.
    pub(crate) fn on_net(&mut self, event: Incoming) {
        match event {
            Incoming::Message { from, payload, .. } => match postcard::from_bytes(&payload) {
                Ok(msg) => {
                    let now = self.repl.now();
                    self.repl.peer.handle_message(now, from.0, msg);
                }
                Err(err) => {
                    tracing::warn!(from = from.0, %err, "dropping an undecodable peer message")
                }
            },
            Incoming::PeerUp(peer) => {
                tracing::info!(peer = peer.0, "peer connected");
                let now = self.repl.now();
                self.repl.peer.handle_peer_connected(now, peer.0);
            }
            Incoming::PeerDown(peer) => tracing::info!(peer = peer.0, "peer disconnected"),
            Incoming::Stream { .. } => {}
        }
    }

    pub(crate) fn zab_timeout(&mut self) {
        let now = self.repl.now();
        self.repl.peer.handle_timeout(now);
    }

    pub(crate) fn snapshot_staged(&mut self, from: ServerId, zxid: Zxid, path: PathBuf) {
        if let Some((_, old)) = self.repl.staged.insert(from, (zxid, path)) {
            let _ = std::fs::remove_file(old);
        }
        let now = self.repl.now();
        self.repl.peer.handle_snapshot_received(now, from, zxid);
    }

    /// The log writer made everything up to `zxid` durable.
    pub(crate) fn on_durable(&mut self, zxid: Zxid) {
        if self.repl.fence > 0 {
            return;
        }
        let mut done = None;
        while let Some(&(id, last)) = self.repl.pending.front() {
            if last > zxid {
                break;
            }
            done = Some(id);
            self.repl.pending.pop_front();
        }
        if let Some(id) = done {
            self.repl.peer.handle_persisted(id);
        }
    }

    /// The writer's reports from before a truncation have all been received.
    pub(crate) fn on_log_fence(&mut self) {
        self.repl.fence = self.repl.fence.saturating_sub(1);
    }

    /// Waits until everything handed to the log writer is durable, and tells ZAB so.
    fn settle_log(&mut self) -> bool {
        match self.log.sync() {
            Ok(_) => {
                if let Some(&(id, _)) = self.repl.pending.back() {
                    self.repl.pending.clear();
                    self.repl.peer.handle_persisted(id);
                }
                true
            }
            Err(err) => {
                self.log_failed(&err.to_string());
                false
            }
        }
    }

    /// After a truncation or reset: ignore the writer's earlier reports still queued.
    fn fence_log(&mut self) {
        self.repl.fence += 1;
        let _ = self.core_tx.send(CoreMsg::LogFence);
    }

    fn execute_persist(&mut self, id: PersistId, request: PersistRequest) {
        if self.pipeline.has_failed() {
            return;
        }
        match request {
            PersistRequest::Append(entries) => self.append_entries(id, entries),
            PersistRequest::Truncate { after } => {
                if !self.settle_log() {
                    return;
                }
                tracing::info!(%after, "truncating the txn log (TRUNC from the leader)");
                if let Err(err) = self.log.truncate_after(after) {
                    self.log_failed(&format!("truncate after {after}: {err}"));
                    return;
                }
                self.fence_log();
                self.repl.peer.handle_persisted(id);
            }
            PersistRequest::InstallSnapshot {
                from,
                snapshot,
                entries,
            } => {
                if !self.settle_log() {
                    return;
                }
                if let Err(err) = self.install_snapshot(from, snapshot) {
                    self.log_failed(&format!("installing the snapshot from {from}: {err}"));
                    return;
                }
                self.append_entries(id, entries);
            }
            PersistRequest::AcceptedEpoch(epoch) => self.write_epoch(id, ACCEPTED_EPOCH, epoch),
            PersistRequest::CurrentEpoch(epoch) => self.write_epoch(id, CURRENT_EPOCH, epoch),
        }
    }

    fn append_entries(&mut self, id: PersistId, entries: Vec<ek_zab::Entry>) {
        let Some(last) = entries.last().map(|entry| entry.zxid) else {
            match self.repl.pending.back() {
                Some(&(_, last)) => self.repl.pending.push_back((id, last)),
                None => self.repl.peer.handle_persisted(id),
            }
            return;
        };
        for entry in entries {
            if let Err(err) = self.log.append(entry.zxid, entry.data) {
                self.log_failed(&format!("append {}: {err}", entry.zxid));
                return;
            }
        }
        self.repl.pending.push_back((id, last));
        self.repl.logged_at.push_back((last, Instant::now()));
    }

    fn write_epoch(&mut self, id: PersistId, name: &str, epoch: u32) {
        if !self.settle_log() {
            return;
        }
        let log = self.snapshots.log.clone();
        if let Err(err) = log.write_metadata(name, epoch.to_string().as_bytes()) {
            self.log_failed(&format!("writing {name}: {err}"));
            return;
        }
        tracing::info!(name, epoch, "epoch persisted");
        self.repl.peer.handle_persisted(id);
    }

    /// SNAP: the snapshot `from` streamed becomes the durable base and the live tree.
    fn install_snapshot(&mut self, from: ServerId, zxid: Zxid) -> Result<(), String> {
        let Some((staged_zxid, path)) = self.repl.staged.remove(&from) else {
            return Err("no snapshot was received".into());
        };
        if staged_zxid != zxid {
            return Err(format!("received {staged_zxid}, asked to install {zxid}"));
        }
        let tree = read_tree(&path)?;
        if tree.last_zxid() != zxid {
            return Err(format!(
                "the snapshot says {zxid} but holds {}",
                tree.last_zxid()
            ));
        }
        let log = self.snapshots.log.clone();
        log.write_snapshot(zxid, |out| {
            let mut file = std::fs::File::open(&path)?;
            io::copy(&mut file, out)?;
            Ok(())
        })
        .map_err(|err| err.to_string())?;
        self.log.reset(zxid).map_err(|err| err.to_string())?;
        self.fence_log();
        let _ = std::fs::remove_file(&path);
        tracing::info!(%zxid, from, znodes = tree.node_count(), "installed a snapshot from the leader");
        self.tree = tree;
        self.reset_subscribers();
        self.prep.clear();
        self.snapshots.txns_since = 0;
        self.repl.reset_digests(&self.tree);
        self.rebuild_sessions();
        Ok(())
    }

    /// A committed txn, in zxid order.
    fn commit_entry(&mut self, zxid: Zxid, data: Vec<u8>) {
        let proposal = match self.pipeline.take_front(zxid) {
            Some(proposal) => proposal,
            None => {
                let txn: Txn = match postcard::from_bytes(&data) {
                    Ok(txn) => txn,
                    Err(err) => {
                        return self
                            .diverge(&format!("committed txn {zxid} does not decode: {err}"));
                    }
                };
                if txn.zxid != zxid {
                    return self.diverge(&format!("committed txn {zxid} holds txn {}", txn.zxid));
                }
                Proposal {
                    txn,
                    origin: Origin::Replicated,
                    size: data.len(),
                }
            }
        };
        if let Some(stamp) = proposal.txn.digest {
            if let Some(ours) = self.repl.digest_at(stamp.zxid) {
                if ours != stamp.value && !self.repl.diverged {
                    self.metrics.inc_digest_mismatch();
                    return self.diverge(&format!(
                        "replica digest mismatch after zxid {}: leader {:#x}, here {ours:#x}",
                        stamp.zxid, stamp.value
                    ));
                }
            }
        }
        while let Some(&(proposed, at)) = self.repl.proposed_at.front() {
            if proposed > zxid {
                break;
            }
            self.repl.proposed_at.pop_front();
            if proposed == zxid {
                self.metrics.observe_proposal(at.elapsed());
            }
        }
        self.apply(proposal);
        self.repl
            .record_digest(self.tree.last_zxid(), self.tree.digest());
    }

    /// This replica's tree no longer matches the leader's: stop serving rather than serve
    /// divergent data. ZAB goes on (its log is intact), but no client is served.
    pub(crate) fn diverge(&mut self, reason: &str) {
        tracing::error!(
            reason,
            "this replica diverged from the leader; it stops serving"
        );
        self.repl.diverged = true;
        self.admin.set_healthy(false);
        self.stop_serving("replica diverged");
    }

    fn on_zab_event(&mut self, event: Event) {
        match event {
            Event::RoleChanged { role, leader } => {
                tracing::info!(?role, ?leader, "role changed");
                if role == Role::Looking {
                    self.stop_serving("looking for a leader");
                }
            }
            Event::Established {
                role,
                leader,
                epoch,
            } => {
                tracing::info!(?role, leader, epoch, "serving");
                if role == Role::Leading {
                    // A new leader owns expiry: every session gets a full timeout.
                    self.rebuild_sessions();
                }
                self.publish_zab();
                self.admin.set_ready(!self.repl.diverged);
            }
            Event::SendSnapshot { to, epoch, .. } => self.send_snapshot(to, epoch),
            Event::LearnerSync { learner, kind } => {
                tracing::info!(learner, ?kind, "synchronising a learner");
                self.metrics.inc_learner_sync(match kind {
                    SyncKind::Diff => ek_admin::SyncKind::Diff,
                    SyncKind::Trunc => ek_admin::SyncKind::Trunc,
                    SyncKind::Snap => ek_admin::SyncKind::Snap,
                });
            }
            Event::Request { from, payload } => self.on_forwarded(from, &payload),
            Event::SyncDone { id } => self.sync_done(id),
            Event::SyncFailed { id } => self.sync_failed(id),
        }
    }

    /// Whether clients are served: a leader with a quorum, or a synced learner.
    pub(crate) fn serving(&self) -> bool {
        self.repl.peer.is_established() && !self.repl.diverged && !self.pipeline.has_failed()
    }

    /// Leaves the broadcast phase: every client connection closes (clients move on to a
    /// server that serves), pending work is dropped. Txns already proposed may still
    /// commit under the next leader; their clients learn it by reading.
    pub(crate) fn stop_serving(&mut self, reason: &str) {
        self.admin.set_ready(false);
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        if !conns.is_empty() {
            tracing::info!(
                reason,
                connections = conns.len(),
                "closing client connections"
            );
        }
        for conn in conns {
            self.drop_conn(conn);
        }
        self.pending_handshakes.clear();
        self.forwarded.clear();
        let _ = self.pipeline.take_through(Zxid(i64::MAX));
        self.repl.proposed_at.clear();
        self.repl.logged_at.clear();
        self.prep.clear();
        self.held.clear();
        self.repl.syncs.clear();
    }

    /// The sessions the tree holds, each with a full timeout from now.
    fn rebuild_sessions(&mut self) {
        let now = Instant::now();
        let mut tracker = crate::session::SessionTracker::new(std::time::Duration::from_millis(
            u64::from(self.config.tick_ms),
        ));
        for (session, timeout_ms) in self.tree.sessions() {
            tracker.track(session, timeout_ms, now);
        }
        self.tracker = tracker;
    }

    /// Hands a txn to ZAB; the txn's zxid must come from [`Core::next_zxid`].
    pub(crate) fn propose(&mut self, mut txn: Txn, origin: Origin) -> bool {
        txn.digest = Some(ek_types::TreeDigest {
            zxid: self.tree.last_zxid(),
            value: self.tree.digest(),
        });
        let bytes = match postcard::to_allocvec(&txn) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!(%err, zxid = %txn.zxid, "cannot encode a txn");
                return false;
            }
        };
        if bytes.len() > ek_log::RECORD_PAYLOAD_MAX {
            tracing::warn!(zxid = %txn.zxid, len = bytes.len(), "txn too large for the log");
            return false;
        }
        let size = bytes.len();
        match self.repl.peer.propose(bytes) {
            Ok(zxid) if zxid == txn.zxid => {}
            Ok(zxid) => {
                // Cannot happen: the zxid came from next_zxid with nothing in between.
                self.diverge(&format!("proposed {} but ZAB assigned {zxid}", txn.zxid));
                return false;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot propose");
                return false;
            }
        }
        self.repl.proposed_at.push_back((txn.zxid, Instant::now()));
        self.pipeline.push(Proposal { txn, origin, size });
        true
    }

    /// The zxid of the next proposal, if this node leads and can propose.
    pub(crate) fn next_zxid(&self) -> Result<Zxid, crate::pipeline::ProposeError> {
        if self.pipeline.has_failed() {
            return Err(crate::pipeline::ProposeError::LogFailed);
        }
        self.repl
            .peer
            .next_zxid()
            .map_err(crate::pipeline::ProposeError::Zab)
    }

    /// Leader: streams a snapshot of the applied tree to a learner.
    fn send_snapshot(&mut self, to: ServerId, epoch: u32) {
        let Some(transport) = self.repl.transport.clone() else {
            return;
        };
        let tree = self.tree.snapshot();
        let zxid = self.tree.last_zxid();
        tracing::info!(to, epoch, %zxid, "streaming a snapshot");
        tokio::spawn(async move {
            if let Err(err) = stream_snapshot(&transport, to, zxid, tree).await {
                tracing::warn!(to, %err, "snapshot stream failed");
            }
        });
    }

    fn publish_zab(&self) {
        let peer = &self.repl.peer;
        let (voters, observers) = (self.repl.voters, self.repl.observers);
        let state = if !peer.is_established() || self.repl.diverged {
            ek_admin::ServerState::Looking
        } else if !self.repl.ensemble {
            ek_admin::ServerState::Standalone
        } else {
            match peer.role() {
                Role::Leading => ek_admin::ServerState::Leader,
                Role::Following => ek_admin::ServerState::Follower,
                Role::Observing => ek_admin::ServerState::Observer,
                Role::Looking => ek_admin::ServerState::Looking,
            }
        };
        self.metrics.set_server_state(state);
        self.metrics.set_zab(&ek_admin::ZabGauges {
            epoch: u64::from(peer.current_epoch()),
            accepted_epoch: u64::from(peer.accepted_epoch()),
            last_zxid: peer.last_logged().0 as u64,
            last_committed: peer.last_committed().0 as u64,
            quorum_size: voters / 2 + 1,
            voters,
            observers,
            synced_learners: peer.synced_learners().len() as u64,
            leader_id: peer.leader().unwrap_or(0),
        });
    }
}

fn read_tree(path: &Path) -> Result<DataTree, String> {
    let file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let mut reader = io::BufReader::new(file);
    DataTree::read_snapshot(&mut reader).map_err(|err| err.to_string())
}

/// Writes the stream header and the tree, chunk by chunk, to `to`. The tree is serialised
/// on a blocking thread into a small bounded queue, so at most a few chunks are in memory.
async fn stream_snapshot(
    transport: &Transport,
    to: ServerId,
    zxid: Zxid,
    tree: ek_tree::TreeSnapshot,
) -> io::Result<()> {
    let mut stream = transport
        .send_stream(PeerId(to), Channel::Snapshot)
        .await
        .map_err(io::Error::other)?;
    stream.write_u64(SNAPSHOT_MAGIC).await?;
    stream.write_i64(zxid.0).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx,
            buf: Vec::with_capacity(SNAPSHOT_CHUNK),
        };
        tree.write_to(&mut out)?;
        out.flush()
    });
    while let Some(chunk) = rx.recv().await {
        stream.write_all(&chunk).await?;
    }
    writer.await.map_err(io::Error::other)??;
    stream.finish().await
}

struct ChunkWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= SNAPSHOT_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SNAPSHOT_CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "snapshot stream closed"))
    }
}

/// The ZAB state recovered from the data dir.
pub(crate) fn persisted_state(
    accepted_epoch: u32,
    current_epoch: u32,
    snapshot_zxid: Zxid,
    log: Vec<(Zxid, Vec<u8>)>,
) -> PersistedState {
    PersistedState {
        accepted_epoch,
        current_epoch,
        snapshot_zxid,
        log: log
            .into_iter()
            .map(|(zxid, data)| ek_zab::Entry { zxid, data })
            .collect(),
    }
}
