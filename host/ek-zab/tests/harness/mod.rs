//! A tiny single-threaded harness wiring N `Peer`s together: an in-memory network (FIFO by
//! default; tests may reorder, drop, duplicate, partition), simulated disks (a crash keeps
//! only what was made durable, plus an arbitrary prefix of the writes in flight), virtual
//! time, and checkers run after every step:
//!
//! * zab.md §6.6 on every transmitted message: ACK only for durable txns, NEWLEADER-ACK only
//!   with currentEpoch durable, ACKEPOCH/LEADERINFO only with acceptedEpoch durable,
//!   NEWLEADER only with currentEpoch durable;
//! * §10: one leader per epoch (NEWLEADER senders), agreement of delivered prefixes,
//!   delivery in zxid order, integrity (only proposed txns delivered), zxid uniqueness,
//!   log shape, epoch monotonicity and `currentEpoch ≤ acceptedEpoch` on every disk.
//!
//! `EK_TRACE=1` prints deliveries, crashes and non-ping messages; `EK_TRACE_ALL=1` adds
//! pings and notifications.
#![allow(dead_code, unreachable_pub)]

use ek_types::Zxid;
use ek_zab::{
    Entry, Event, Message, Peer, PersistId, PersistRequest, PersistedState, ProposeError, Role,
    ServerId, Time, ZabConfig,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub type Txn = (Zxid, Vec<u8>);

pub fn z(epoch: u32, counter: u32) -> Zxid {
    Zxid::new(epoch, counter)
}

fn follows(prev: Zxid, next: Zxid, first_counter: u32) -> bool {
    if next.epoch() == prev.epoch() {
        prev.counter() + 1 == next.counter()
    } else {
        next.epoch() > prev.epoch() && next.counter() == first_counter + 1
    }
}

#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub accepted: u32,
    pub current: u32,
    pub snapshot_zxid: Zxid,
    pub snapshot: Vec<Txn>,
    pub log: Vec<Entry>,
}

impl Disk {
    pub fn with_log(accepted: u32, current: u32, zxids: &[Zxid]) -> Disk {
        Disk {
            accepted,
            current,
            log: zxids
                .iter()
                .map(|&zxid| Entry {
                    zxid,
                    data: format!("pre-{zxid:?}").into_bytes(),
                })
                .collect(),
            ..Disk::default()
        }
    }

    pub fn last(&self) -> Zxid {
        self.log.last().map_or(self.snapshot_zxid, |e| e.zxid)
    }

    fn persisted(&self) -> PersistedState {
        PersistedState {
            accepted_epoch: self.accepted,
            current_epoch: self.current,
            snapshot_zxid: self.snapshot_zxid,
            log: self
                .log
                .iter()
                .filter(|e| e.zxid > self.snapshot_zxid)
                .cloned()
                .collect(),
        }
    }
}

pub struct Node {
    pub cfg: ZabConfig,
    pub peer: Option<Peer>,
    pub disk: Disk,
    /// The state machine: every txn delivered, in order.
    pub sm: Vec<Txn>,
    pub pending: VecDeque<(PersistId, PersistRequest)>,
    pub staged: Option<(ServerId, Zxid, Vec<Txn>)>,
    pub incarnation: u64,
    pub events: Vec<Event>,
    pub persist_log: Vec<PersistRequest>,
}

impl Node {
    pub fn peer(&self) -> &Peer {
        self.peer.as_ref().expect("node is down")
    }
}

#[derive(Clone, Debug)]
pub enum Packet {
    Msg(Message),
    Snapshot { zxid: Zxid, state: Vec<Txn> },
}

pub struct Cluster {
    pub nodes: BTreeMap<ServerId, Node>,
    pub now: Time,
    pub queue: VecDeque<(ServerId, ServerId, Packet)>,
    pub blocked: BTreeSet<(ServerId, ServerId)>,
    pub auto_persist: bool,
    /// Every message ever transmitted: (from, to, message).
    pub sent: Vec<(ServerId, ServerId, Message)>,
    pub seed: u64,
    /// The longest delivered sequence seen anywhere; every node's `sm` is a prefix of it.
    pub committed: Vec<Txn>,
    bound: BTreeMap<Zxid, Vec<u8>>,
    epoch_leader: BTreeMap<u32, ServerId>,
    next_payload: u64,
}

impl Cluster {
    pub fn new(voters: &[ServerId], observers: &[ServerId], seed: u64) -> Cluster {
        Cluster::build(voters, observers, seed, |_| {}, BTreeMap::new())
    }

    pub fn build(
        voters: &[ServerId],
        observers: &[ServerId],
        seed: u64,
        tweak: impl Fn(&mut ZabConfig),
        mut disks: BTreeMap<ServerId, Disk>,
    ) -> Cluster {
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            now: Time::ZERO,
            queue: VecDeque::new(),
            blocked: BTreeSet::new(),
            auto_persist: true,
            sent: Vec::new(),
            seed,
            committed: Vec::new(),
            bound: BTreeMap::new(),
            epoch_leader: BTreeMap::new(),
            next_payload: 0,
        };
        for &id in voters.iter().chain(observers) {
            let mut cfg = ZabConfig::new(id, voters.iter().copied(), observers.iter().copied());
            tweak(&mut cfg);
            let disk = disks.remove(&id).unwrap_or_default();
            for entry in &disk.log {
                cluster.bind(entry);
            }
            cluster.nodes.insert(
                id,
                Node {
                    cfg,
                    peer: None,
                    sm: disk.snapshot.clone(),
                    disk,
                    pending: VecDeque::new(),
                    staged: None,
                    incarnation: 0,
                    events: Vec::new(),
                    persist_log: Vec::new(),
                },
            );
        }
        cluster
    }

    /// Starts every node that is down.
    pub fn start_all(&mut self) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in ids {
            if self.nodes[&id].peer.is_none() {
                self.restart(id);
            }
        }
    }

    pub fn node(&self, id: ServerId) -> &Node {
        &self.nodes[&id]
    }

    pub fn peer(&self, id: ServerId) -> &Peer {
        self.nodes[&id].peer()
    }

    pub fn alive(&self, id: ServerId) -> bool {
        self.nodes[&id].peer.is_some()
    }

    fn bind(&mut self, entry: &Entry) {
        let previous = self.bound.insert(entry.zxid, entry.data.clone());
        if let Some(previous) = previous {
            assert_eq!(
                previous, entry.data,
                "§10.9 zxid {:?} bound to two contents",
                entry.zxid
            );
        }
    }

    // ---- driving ----

    /// Drains every output of `id`, checking each, executing storage requests when
    /// `auto_persist` is on.
    pub fn drain(&mut self, id: ServerId) {
        for _ in 0..10_000 {
            let mut progressed = false;
            loop {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return;
                };
                let Some(peer) = node.peer.as_mut() else {
                    return;
                };
                let mut outputs = Vec::new();
                while let Some(request) = peer.poll_persist() {
                    node.persist_log.push(request.1.clone());
                    node.pending.push_back(request);
                }
                while let Some(t) = peer.poll_transmit() {
                    outputs.push(t);
                }
                let mut commits = Vec::new();
                while let Some(c) = peer.poll_commit() {
                    commits.push(c);
                }
                let mut events = Vec::new();
                while let Some(e) = peer.poll_event() {
                    events.push(e);
                }
                if outputs.is_empty() && commits.is_empty() && events.is_empty() {
                    break;
                }
                progressed = true;
                for (to, msg) in outputs {
                    if std::env::var("EK_TRACE").is_ok()
                        && (std::env::var("EK_TRACE_ALL").is_ok()
                            || !matches!(msg, Message::Ping { .. } | Message::Notification(_)))
                    {
                        println!("t={} {id}->{to} {msg:?}", self.now.as_ms());
                    }
                    self.check_transmit(id, &msg);
                    self.sent.push((id, to, msg.clone()));
                    self.queue.push_back((id, to, Packet::Msg(msg)));
                }
                for commit in commits {
                    self.on_commit(id, commit);
                }
                for event in events {
                    self.on_event(id, event);
                }
            }
            if self.auto_persist && !self.nodes[&id].pending.is_empty() {
                self.persist_all(id);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
        panic!("node {id} keeps producing output");
    }

    fn check_transmit(&mut self, from: ServerId, msg: &Message) {
        let disk = &self.nodes[&from].disk;
        match msg {
            Message::Ack { zxid, .. } if zxid.counter() == 0 => {
                assert!(
                    disk.current >= zxid.epoch(),
                    "§6.6 NEWLEADER-ACK before currentEpoch"
                );
                assert!(
                    self.nodes[&from].pending.iter().all(|(_, r)| !matches!(
                        r,
                        PersistRequest::Append(_)
                            | PersistRequest::InstallSnapshot { .. }
                            | PersistRequest::Truncate { .. }
                    )),
                    "§6.6 NEWLEADER-ACK with synced txns not durable"
                );
            }
            Message::Ack { zxid, .. } => {
                assert!(
                    disk.snapshot_zxid == *zxid || disk.log.iter().any(|e| e.zxid == *zxid),
                    "§6.6 ACK of {zxid:?} from {from} before it is durable"
                );
            }
            Message::AckEpoch {
                current_epoch: Some(_),
                ..
            } => {
                assert!(disk.accepted >= 1, "ACKEPOCH before acceptedEpoch");
            }
            Message::LeaderInfo { epoch, .. } => {
                assert_eq!(
                    disk.accepted, *epoch,
                    "§6.6 LEADERINFO before acceptedEpoch"
                );
            }
            Message::NewLeader { epoch, .. } => {
                assert_eq!(disk.current, *epoch, "§6.6 NEWLEADER before currentEpoch");
                let leader = *self.epoch_leader.entry(*epoch).or_insert(from);
                assert_eq!(leader, from, "§10.7 two leaders for epoch {epoch}");
            }
            Message::Proposal { entry, .. } | Message::Inform { entry, .. } => {
                let entry = entry.clone();
                self.bind(&entry);
            }
            _ => {}
        }
    }

    fn on_commit(&mut self, id: ServerId, (zxid, data): Txn) {
        let node = self.nodes.get_mut(&id).unwrap();
        if let Some(last) = node.sm.last() {
            assert!(
                zxid > last.0,
                "§10.3 node {id} delivered {zxid:?} after {:?}",
                last.0
            );
        }
        let position = node.sm.len();
        if std::env::var("EK_TRACE").is_ok() {
            println!(
                "t={} node {id} delivers {zxid:?} at {position}",
                self.now.as_ms()
            );
        }
        node.sm.push((zxid, data.clone()));
        assert_eq!(
            self.bound.get(&zxid),
            Some(&data),
            "§10.1 node {id} delivered {zxid:?} never proposed with this content"
        );
        if position < self.committed.len() {
            assert_eq!(
                self.committed[position],
                (zxid, data),
                "§10.2 node {id} delivered a different txn at position {position}"
            );
        } else {
            self.committed.push((zxid, data));
        }
    }

    fn on_event(&mut self, id: ServerId, event: Event) {
        if let Event::SendSnapshot { to, min_zxid, .. } = &event {
            let state = self.nodes[&id].sm.clone();
            let zxid = state.last().map_or(Zxid::ZERO, |t| t.0);
            assert!(zxid >= *min_zxid, "snapshot below min_zxid");
            self.queue
                .push_back((id, *to, Packet::Snapshot { zxid, state }));
        }
        self.nodes.get_mut(&id).unwrap().events.push(event);
    }

    /// Makes the first `count` pending storage requests of `id` durable and reports them.
    pub fn persist_some(&mut self, id: ServerId, count: usize) {
        let mut last = None;
        for _ in 0..count {
            let Some((pid, request)) = self.nodes.get_mut(&id).unwrap().pending.pop_front() else {
                break;
            };
            self.execute(id, request);
            last = Some(pid);
        }
        if let Some(pid) = last {
            if let Some(peer) = self.nodes.get_mut(&id).unwrap().peer.as_mut() {
                peer.handle_persisted(pid);
            }
            self.drain(id);
        }
    }

    pub fn persist_all(&mut self, id: ServerId) {
        let count = self.nodes[&id].pending.len();
        self.persist_some(id, count);
    }

    fn execute(&mut self, id: ServerId, request: PersistRequest) {
        match &request {
            PersistRequest::Append(entries) | PersistRequest::InstallSnapshot { entries, .. } => {
                for entry in entries {
                    self.bind(entry);
                }
            }
            _ => {}
        }
        let node = self.nodes.get_mut(&id).unwrap();
        let first = node.cfg.first_counter;
        let disk = &mut node.disk;
        match request {
            PersistRequest::Append(entries) => {
                for entry in entries {
                    assert!(
                        follows(disk.last(), entry.zxid, first),
                        "§10.10 node {id} log hole: {:?} after {:?}",
                        entry.zxid,
                        disk.last()
                    );
                    disk.log.push(entry);
                }
            }
            PersistRequest::Truncate { after } => {
                assert!(after >= disk.snapshot_zxid, "truncate below the snapshot");
                disk.log.retain(|e| e.zxid <= after);
                assert_eq!(disk.last(), after, "truncate to a zxid not in the log");
            }
            PersistRequest::InstallSnapshot {
                from,
                snapshot,
                entries,
            } => {
                let (staged_from, zxid, state) = node
                    .staged
                    .clone()
                    .expect("install without a staged snapshot");
                assert_eq!((staged_from, zxid), (from, snapshot));
                disk.snapshot_zxid = snapshot;
                disk.snapshot = state.clone();
                disk.log = Vec::new();
                for entry in entries {
                    assert!(follows(disk.last(), entry.zxid, first), "install: log hole");
                    disk.log.push(entry);
                }
                assert!(
                    state.starts_with(&node.sm),
                    "installed snapshot does not extend node {id}'s state"
                );
                node.sm = state;
            }
            PersistRequest::AcceptedEpoch(epoch) => {
                assert!(
                    epoch >= disk.accepted,
                    "§10.8 acceptedEpoch decreased on {id}"
                );
                disk.accepted = epoch;
            }
            PersistRequest::CurrentEpoch(epoch) => {
                assert!(
                    epoch >= disk.current,
                    "§10.8 currentEpoch decreased on {id}"
                );
                assert!(
                    epoch <= disk.accepted,
                    "§10.8 currentEpoch above acceptedEpoch on {id}"
                );
                disk.current = epoch;
            }
        }
    }

    /// Delivers the packet at `index` of the queue (dropped if the link is cut or the
    /// receiver is down).
    pub fn deliver_at(&mut self, index: usize) {
        let Some((from, to, packet)) = self.queue.remove(index) else {
            return;
        };
        if self.blocked.contains(&(from, to)) || !self.alive(to) {
            return;
        }
        let now = self.now;
        let node = self.nodes.get_mut(&to).unwrap();
        let peer = node.peer.as_mut().unwrap();
        match packet {
            Packet::Msg(msg) => peer.handle_message(now, from, msg),
            Packet::Snapshot { zxid, state } => {
                node.staged = Some((from, zxid, state));
                peer.handle_snapshot_received(now, from, zxid);
            }
        }
        self.drain(to);
    }

    /// Delivers queued packets in FIFO order until none is left.
    pub fn deliver_all(&mut self) {
        for _ in 0..1_000_000 {
            if self.queue.is_empty() {
                return;
            }
            self.deliver_at(0);
        }
        let tail: Vec<String> = self
            .sent
            .iter()
            .rev()
            .take(12)
            .map(|(f, t, m)| format!("{f}->{t} {m:?}"))
            .collect();
        panic!("message storm: {tail:#?}");
    }

    fn min_timeout(&self) -> Option<Time> {
        self.nodes
            .values()
            .filter_map(|n| n.peer.as_ref().and_then(|p| p.poll_timeout()))
            .min()
    }

    fn fire_timers(&mut self) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in ids {
            let now = self.now;
            let Some(peer) = self.nodes.get_mut(&id).unwrap().peer.as_mut() else {
                continue;
            };
            if peer.poll_timeout().is_some_and(|t| t <= now) {
                peer.handle_timeout(now);
                self.drain(id);
            }
        }
    }

    /// Runs `ms` of virtual time: deliver everything, jump to the next timer, repeat.
    pub fn run_for(&mut self, ms: u64) {
        let target = self.now.plus_ms(ms);
        for _ in 0..1_000_000 {
            self.deliver_all();
            match self.min_timeout() {
                Some(next) if next <= target => {
                    self.now = self.now.max(next);
                    self.fire_timers();
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers do not advance");
    }

    /// Advances time without delivering anything, firing timers on the way.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now.plus_ms(ms);
        for _ in 0..100_000 {
            match self.min_timeout() {
                Some(next) if next <= target => {
                    self.now = self.now.max(next);
                    self.fire_timers();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    pub fn propose(&mut self, id: ServerId) -> Result<Zxid, ProposeError> {
        self.next_payload += 1;
        let data = format!("txn-{}-{}", id, self.next_payload).into_bytes();
        let peer = self
            .nodes
            .get_mut(&id)
            .unwrap()
            .peer
            .as_mut()
            .expect("down");
        let result = peer.propose(data);
        self.drain(id);
        result
    }

    /// Crashes `id`: storage requests not reported durable are lost, except the first
    /// `keep` of them (written, but the report never came).
    pub fn crash(&mut self, id: ServerId, keep: usize) {
        if std::env::var("EK_TRACE").is_ok() {
            println!("t={} CRASH {id}", self.now.as_ms());
        }
        let node = self.nodes.get_mut(&id).unwrap();
        node.peer = None;
        let pending: Vec<_> = node.pending.drain(..).collect();
        for (_, request) in pending.into_iter().take(keep) {
            self.execute(id, request);
        }
        let node = self.nodes.get_mut(&id).unwrap();
        node.staged = None;
        // The state machine is rebuilt from the snapshot; the core re-delivers the log.
        node.sm = node.disk.snapshot.clone();
    }

    pub fn restart(&mut self, id: ServerId) {
        let seed = self.seed;
        let now = self.now;
        let node = self.nodes.get_mut(&id).unwrap();
        assert!(node.peer.is_none());
        node.incarnation += 1;
        let mut cfg = node.cfg.clone();
        cfg.rng_seed = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(id * 1_000_003 + node.incarnation);
        node.sm = node.disk.snapshot.clone();
        node.peer = Some(Peer::new(cfg, node.disk.persisted(), now).expect("restart"));
        self.drain(id);
    }

    pub fn isolate(&mut self, id: ServerId) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for other in ids {
            if other != id {
                self.blocked.insert((id, other));
                self.blocked.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    // ---- queries ----

    /// Established leaders (role Leading and in broadcast).
    pub fn leaders(&self) -> Vec<ServerId> {
        self.nodes
            .iter()
            .filter(|(_, n)| {
                n.peer
                    .as_ref()
                    .is_some_and(|p| p.role() == Role::Leading && p.is_established())
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The one established leader whose epoch is highest, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.leaders()
            .into_iter()
            .max_by_key(|id| self.peer(*id).current_epoch())
    }

    pub fn all_established(&self) -> bool {
        self.nodes
            .values()
            .filter_map(|n| n.peer.as_ref())
            .all(|p| p.is_established())
    }

    pub fn sm_zxids(&self, id: ServerId) -> Vec<Zxid> {
        self.nodes[&id].sm.iter().map(|t| t.0).collect()
    }

    /// Messages of a kind sent to `to`.
    pub fn sent_to(&self, to: ServerId, pred: impl Fn(&Message) -> bool) -> Vec<Message> {
        self.sent
            .iter()
            .filter(|(_, t, m)| *t == to && pred(m))
            .map(|(_, _, m)| m.clone())
            .collect()
    }

    /// Elects and syncs a fresh cluster; returns the leader.
    pub fn elect(&mut self) -> ServerId {
        self.start_all();
        for _ in 0..100 {
            self.run_for(200);
            if self.leader().is_some() && self.all_established() {
                return self.leader().unwrap();
            }
        }
        panic!("no leader elected");
    }

    /// Runs until every live node is established under one leader (or panics).
    pub fn settle(&mut self) -> ServerId {
        for _ in 0..300 {
            self.run_for(200);
            if self.leaders().len() == 1 && self.all_established() {
                return self.leader().unwrap();
            }
        }
        panic!(
            "cluster did not settle: {:?}",
            self.nodes
                .iter()
                .map(|(id, n)| (*id, n.peer.as_ref().map(|p| (p.role(), p.is_established()))))
                .collect::<Vec<_>>()
        );
    }
}
