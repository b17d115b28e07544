//! [`Peer`]: one server's ZAB state machine, its inputs, outputs and getters. The phases
//! live in `election.rs`, `discovery.rs`, `sync.rs`, `broadcast.rs` and `observer.rs`.

use crate::election::Election;
use crate::leader::Leader;
use crate::learner::Learner;
use crate::log::{Log, Rng};
use crate::types::{
    Entry, Event, Message, PersistId, PersistRequest, PersistedState, ProposeError, RequestError,
    Role, ServerId, StartError, Time, Vote, ZabConfig,
};
use ek_types::Zxid;
use std::collections::VecDeque;

/// What a storage request changes once durable.
#[derive(Clone, Copy, Debug)]
enum PersistEffect {
    LogEnd(Zxid),
    AcceptedEpoch(u32),
    CurrentEpoch(u32),
}

pub(crate) enum RoleState {
    Looking(Election),
    Leading(Box<Leader>),
    Learning(Box<Learner>),
}

/// One server's ZAB state machine (sans-IO, like quinn-proto's `Connection` or raft-rs's
/// `RawNode`). It does no I/O, reads no clock and draws no randomness except from a PRNG
/// seeded by [`ZabConfig::rng_seed`]; the same inputs always give the same outputs.
///
/// # Call order
///
/// 1. Feed **one input**: [`handle_message`](Peer::handle_message),
///    [`handle_timeout`](Peer::handle_timeout), [`handle_persisted`](Peer::handle_persisted),
///    [`handle_snapshot_received`](Peer::handle_snapshot_received), or a command
///    ([`propose`](Peer::propose), [`forward`](Peer::forward), [`sync`](Peer::sync)).
/// 2. **Drain every output until `None`**, in this order:
///    [`poll_persist`](Peer::poll_persist) (start the writes),
///    [`poll_transmit`](Peer::poll_transmit) (send),
///    [`poll_commit`](Peer::poll_commit) (apply to the state machine, in order),
///    [`poll_event`](Peer::poll_event) (react; a [`Event::SendSnapshot`] must snapshot the
///    state *after* the commits just polled).
/// 3. Do the I/O. Report each durable write with `handle_persisted` (in request order),
///    each received snapshot with `handle_snapshot_received`, each message with
///    `handle_message`.
/// 4. Sleep until [`poll_timeout`](Peer::poll_timeout) or the next input, whichever is first;
///    at the deadline call `handle_timeout`.
///
/// Durability is an output: a message that implies durability (ACK, ACKEPOCH, LEADERINFO,
/// NEWLEADER, NEWLEADER-ACK) only leaves `poll_transmit` after `handle_persisted` reported
/// the write it depends on. The transport must deliver messages between two servers in
/// order (a QUIC stream); losing messages is safe but stalls until a timeout.
///
/// Crash and restart: drop the `Peer` and build a new one from what the disk holds
/// ([`PersistedState`]) with a fresh [`ZabConfig::rng_seed`].
pub struct Peer {
    pub(crate) cfg: ZabConfig,
    pub(crate) rng: Rng,
    /// The latest time seen in an input.
    pub(crate) now: Time,
    /// Durable acceptedEpoch.
    pub(crate) accepted_epoch: u32,
    /// Durable currentEpoch.
    pub(crate) current_epoch: u32,
    pub(crate) log: Log,
    /// Last zxid handed out by `poll_commit`.
    pub(crate) applied: Zxid,
    /// Last zxid known committed.
    pub(crate) committed: Zxid,
    /// The durable end of the log.
    pub(crate) durable: Zxid,
    persist_queue: VecDeque<(PersistId, PersistRequest)>,
    inflight: VecDeque<(PersistId, PersistEffect)>,
    next_persist: u64,
    pub(crate) persisted_through: u64,
    transmits: VecDeque<(ServerId, Message)>,
    commits: VecDeque<Entry>,
    events: VecDeque<Event>,
    /// The vote reported to others (updated to the new epoch after sync, ZOOKEEPER-1732).
    pub(crate) vote: Vote,
    /// FLE logical clock.
    pub(crate) round: u64,
    pub(crate) role: RoleState,
}

impl Peer {
    /// A server starting from its recovered state, `now` being the driver's current time.
    /// It starts LOOKING.
    pub fn new(cfg: ZabConfig, persisted: PersistedState, now: Time) -> Result<Peer, StartError> {
        if cfg.voters.is_empty() {
            return Err(StartError::NoVoters);
        }
        if !cfg.is_member(cfg.id) {
            return Err(StartError::NotAMember(cfg.id));
        }
        if let Some(id) = cfg.voters.intersection(&cfg.observers).next() {
            return Err(StartError::VoterAndObserver(*id));
        }
        let PersistedState {
            accepted_epoch,
            current_epoch,
            snapshot_zxid,
            log,
        } = persisted;
        if current_epoch > accepted_epoch {
            return Err(StartError::EpochsInverted {
                accepted: accepted_epoch,
                current: current_epoch,
            });
        }
        let log = Log::new(snapshot_zxid, log, cfg.first_counter)
            .map_err(StartError::LogNotContiguous)?;
        // A txn of an epoch never promised means corruption. ZooKeeper is stricter
        // (epoch(last) ≤ currentEpoch) but then refuses to start after a crash between the
        // NEWLEADER fsync and the currentEpoch write that ZOOKEEPER-4643 mandates.
        if log.last().epoch() > accepted_epoch {
            return Err(StartError::LogAheadOfEpoch {
                zxid: log.last(),
                accepted: accepted_epoch,
            });
        }
        let vote = Vote {
            leader: cfg.id,
            zxid: log.last(),
            epoch: current_epoch,
        };
        let mut peer = Peer {
            rng: Rng::new(cfg.rng_seed),
            cfg,
            now,
            accepted_epoch,
            current_epoch,
            applied: snapshot_zxid,
            committed: snapshot_zxid,
            durable: log.last(),
            log,
            persist_queue: VecDeque::new(),
            inflight: VecDeque::new(),
            next_persist: 1,
            persisted_through: 0,
            transmits: VecDeque::new(),
            commits: VecDeque::new(),
            events: VecDeque::new(),
            vote,
            round: 0,
            role: RoleState::Looking(Election::waiting()),
        };
        peer.become_looking("start");
        Ok(peer)
    }

    // ---- inputs ----

    /// A message from server `from`.
    pub fn handle_message(&mut self, now: Time, from: ServerId, msg: Message) {
        self.advance(now);
        if from == self.cfg.id || !self.cfg.is_member(from) {
            tracing::debug!(from, "message from a non-member dropped");
            return;
        }
        match msg {
            Message::Notification(notification) => self.on_notification(from, notification),
            msg => match &self.role {
                RoleState::Looking(_) => {}
                RoleState::Leading(_) => self.leader_on_message(from, msg),
                RoleState::Learning(learner) => {
                    if learner.leader == from {
                        self.learner_on_message(msg);
                    }
                }
            },
        }
        self.deliver();
    }

    /// A timer expired (call when `now >= poll_timeout()`; calling earlier is harmless).
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        match &self.role {
            RoleState::Looking(_) => self.election_on_timeout(),
            RoleState::Leading(_) => self.leader_on_timeout(),
            RoleState::Learning(_) => self.learner_on_timeout(),
        }
        self.deliver();
    }

    /// The transport (re)connected to `peer` (optional input: it only speeds up elections
    /// after a peer starts or a link heals).
    pub fn handle_peer_connected(&mut self, now: Time, peer: ServerId) {
        self.advance(now);
        if matches!(self.role, RoleState::Looking(_)) {
            self.election_on_peer_connected(peer);
        }
        self.deliver();
    }

    /// Every storage request up to and including `id` is durable.
    pub fn handle_persisted(&mut self, id: PersistId) {
        let mut progressed = false;
        while let Some(&(front, effect)) = self.inflight.front() {
            if front > id {
                break;
            }
            self.inflight.pop_front();
            self.persisted_through = front.0;
            progressed = true;
            match effect {
                PersistEffect::LogEnd(zxid) => self.durable = zxid,
                PersistEffect::AcceptedEpoch(epoch) => {
                    self.accepted_epoch = self.accepted_epoch.max(epoch)
                }
                PersistEffect::CurrentEpoch(epoch) => {
                    self.current_epoch = self.current_epoch.max(epoch)
                }
            }
        }
        if !progressed {
            return;
        }
        match &self.role {
            RoleState::Looking(_) => self.maybe_start_election(),
            RoleState::Leading(_) => self.leader_on_persisted(),
            RoleState::Learning(_) => self.learner_on_persisted(),
        }
        self.deliver();
    }

    /// The snapshot a leader `from` streamed for a SNAP sync has been received completely and
    /// staged (not yet installed); its state is at `zxid`. It is installed by a later
    /// [`PersistRequest::InstallSnapshot`].
    pub fn handle_snapshot_received(&mut self, now: Time, from: ServerId, zxid: Zxid) {
        self.advance(now);
        self.learner_on_snapshot(from, zxid);
        self.deliver();
    }

    // ---- commands ----

    /// Leader only: assign the next zxid to `data` and broadcast it. The txn is delivered by
    /// `poll_commit` once a quorum (this leader counted only after its own fsync) has it.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<Zxid, ProposeError> {
        let result = self.leader_propose(data);
        self.deliver();
        result
    }

    /// Leader only: the zxid the next [`propose`](Peer::propose) will assign, so the caller
    /// can bind txn content to it before proposing (nothing changes).
    pub fn next_zxid(&self) -> Result<Zxid, ProposeError> {
        self.leader_next_zxid()
    }

    /// Learner only: send an opaque request (a client write, session touches) to the leader;
    /// it appears there as [`Event::Request`].
    pub fn forward(&mut self, payload: Vec<u8>) -> Result<(), RequestError> {
        self.learner_forward(payload)
    }

    /// ZooKeeper's `sync`: [`Event::SyncDone`] with `id` once this server has delivered
    /// everything the leader had proposed when it saw the sync.
    pub fn sync(&mut self, id: u64) -> Result<(), RequestError> {
        let result = match &self.role {
            RoleState::Leading(_) => self.leader_sync(id),
            _ => self.learner_sync(id),
        };
        self.deliver();
        result
    }

    // ---- outputs ----

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(ServerId, Message)> {
        self.transmits.pop_front()
    }

    /// The next storage request to execute.
    pub fn poll_persist(&mut self) -> Option<(PersistId, PersistRequest)> {
        let (id, request) = self.persist_queue.pop_front()?;
        let effect = match &request {
            PersistRequest::Append(entries) => {
                PersistEffect::LogEnd(entries.last().map_or(self.durable, |entry| entry.zxid))
            }
            PersistRequest::Truncate { after } => PersistEffect::LogEnd(*after),
            PersistRequest::InstallSnapshot {
                snapshot, entries, ..
            } => PersistEffect::LogEnd(entries.last().map_or(*snapshot, |entry| entry.zxid)),
            PersistRequest::AcceptedEpoch(epoch) => PersistEffect::AcceptedEpoch(*epoch),
            PersistRequest::CurrentEpoch(epoch) => PersistEffect::CurrentEpoch(*epoch),
        };
        self.inflight.push_back((id, effect));
        Some((id, request))
    }

    /// The next committed txn to apply; zxids strictly increase.
    pub fn poll_commit(&mut self) -> Option<(Zxid, Vec<u8>)> {
        self.commits
            .pop_front()
            .map(|entry| (entry.zxid, entry.data))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Time> {
        match &self.role {
            RoleState::Looking(election) => election.deadline(),
            RoleState::Leading(leader) => Some(leader.deadline()),
            RoleState::Learning(learner) => Some(self.learner_deadline(learner)),
        }
    }

    // ---- getters ----

    /// This server's id.
    pub fn id(&self) -> ServerId {
        self.cfg.id
    }

    /// The current role.
    pub fn role(&self) -> Role {
        match &self.role {
            RoleState::Looking(_) => Role::Looking,
            RoleState::Leading(_) => Role::Leading,
            RoleState::Learning(learner) if learner.observer => Role::Observing,
            RoleState::Learning(_) => Role::Following,
        }
    }

    /// The leader this server follows or is (none while looking).
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            RoleState::Looking(_) => None,
            RoleState::Leading(_) => Some(self.cfg.id),
            RoleState::Learning(learner) => Some(learner.leader),
        }
    }

    /// True once in the broadcast phase (leader established, or learner got UPTODATE).
    pub fn is_established(&self) -> bool {
        match &self.role {
            RoleState::Looking(_) => false,
            RoleState::Leading(leader) => leader.is_established(),
            RoleState::Learning(learner) => learner.is_established(),
        }
    }

    /// Durable acceptedEpoch.
    pub fn accepted_epoch(&self) -> u32 {
        self.accepted_epoch
    }

    /// Durable currentEpoch.
    pub fn current_epoch(&self) -> u32 {
        self.current_epoch
    }

    /// Last zxid delivered by `poll_commit` (or covered by the start-up snapshot).
    pub fn last_committed(&self) -> Zxid {
        self.applied
    }

    /// Last zxid in the log (durable or being written).
    pub fn last_logged(&self) -> Zxid {
        self.log.last()
    }

    /// Last zxid known durable in the local log.
    pub fn last_durable(&self) -> Zxid {
        self.durable
    }

    /// The current election vote.
    pub fn vote(&self) -> Vote {
        self.vote
    }

    /// Leader: the learners currently synced and heard from within `syncLimit` (this
    /// server included), i.e. the set whose quorum keeps it leading. Empty otherwise.
    pub fn synced_learners(&self) -> Vec<ServerId> {
        match &self.role {
            RoleState::Leading(leader) => leader.synced(&self.cfg, self.now),
            _ => Vec::new(),
        }
    }

    // ---- plumbing shared by the phases ----

    fn advance(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    pub(crate) fn send(&mut self, to: ServerId, msg: Message) {
        self.transmits.push_back((to, msg));
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Queues a storage request and returns its id.
    pub(crate) fn persist(&mut self, request: PersistRequest) -> PersistId {
        let id = PersistId(self.next_persist);
        self.next_persist += 1;
        self.persist_queue.push_back((id, request));
        id
    }

    /// Queues txns for the log, joining them to a queued append if possible (group commit).
    pub(crate) fn persist_append(&mut self, entries: Vec<Entry>) -> PersistId {
        if let Some((id, PersistRequest::Append(queued))) = self.persist_queue.back_mut() {
            queued.extend(entries);
            return *id;
        }
        self.persist(PersistRequest::Append(entries))
    }

    /// The id of the last request issued (0 if none).
    pub(crate) fn last_issued_persist(&self) -> u64 {
        self.next_persist - 1
    }

    /// True when every issued storage request is durable (ZOOKEEPER-4712: nothing is
    /// being written behind our back).
    pub(crate) fn persist_idle(&self) -> bool {
        self.persist_queue.is_empty() && self.inflight.is_empty()
    }

    /// Hands out every txn that is committed and durable here, in order, then trims the
    /// in-memory log and completes syncs.
    pub(crate) fn deliver(&mut self) {
        let limit = self.committed.min(self.durable);
        while self.applied < limit {
            let Some(entry) = self.log.first_after(self.applied) else {
                break;
            };
            if entry.zxid > limit {
                break;
            }
            self.applied = entry.zxid;
            self.commits.push_back(entry.clone());
        }
        self.log.trim(self.cfg.diff_window, self.applied);
        match &self.role {
            RoleState::Leading(_) => self.leader_check_syncs(),
            RoleState::Learning(_) => self.learner_check_syncs(),
            RoleState::Looking(_) => {}
        }
    }

    /// Leaves any role for LOOKING. Pending syncs fail; the election starts once every
    /// storage request issued so far is durable, so the vote and ACKEPOCH report a durable
    /// last zxid (ZOOKEEPER-2355, 4712).
    pub(crate) fn become_looking(&mut self, reason: &str) {
        tracing::info!(id = self.cfg.id, reason, "going LOOKING");
        let failed: Vec<u64> = match &mut self.role {
            RoleState::Leading(leader) => leader.take_local_syncs(),
            RoleState::Learning(learner) => learner.take_syncs(),
            RoleState::Looking(_) => Vec::new(),
        };
        for id in failed {
            self.emit(Event::SyncFailed { id });
        }
        self.role = RoleState::Looking(Election::waiting());
        self.emit(Event::RoleChanged {
            role: Role::Looking,
            leader: None,
        });
        self.maybe_start_election();
    }

    pub(crate) fn tick_ms(&self, ticks: u64) -> u64 {
        self.cfg.tick_ms.saturating_mul(ticks)
    }
}
