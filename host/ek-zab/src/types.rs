//! The public vocabulary of the ZAB core: ids, time, log entries, votes, messages, storage
//! requests, events, configuration and errors.

use ek_types::Zxid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A server id (`myid`): unique in the ensemble, observers included.
pub type ServerId = u64;

/// A point in time, in milliseconds since an origin the driver chooses (boot, or the
/// simulator's start). The core never reads a clock; every input carries one of these.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Time(u64);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(0);

    /// A time `ms` milliseconds after the origin.
    pub fn from_ms(ms: u64) -> Time {
        Time(ms)
    }

    /// Milliseconds since the origin.
    pub fn as_ms(self) -> u64 {
        self.0
    }

    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn ms_since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// One accepted transaction: its zxid and the opaque bytes ZAB orders. ek-zab never decodes
/// `data`; the server encodes an `ek_types::Txn` there and applies it after commit.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The zxid the leader bound to this txn; never reused for other content.
    pub zxid: Zxid,
    /// The txn, opaque to ZAB.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({:?}, {} bytes)", self.zxid, self.data.len())
    }
}

/// A leader-election vote: `(leader, zxid, peerEpoch)` (zab.md §4.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Vote {
    /// The proposed leader.
    pub leader: ServerId,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The proposed leader's `currentEpoch` (the "peerEpoch").
    pub epoch: u32,
}

impl Vote {
    /// `totalOrderPredicate`: currentEpoch first, then last logged zxid, then server id.
    /// Non-voters never get here: their votes are dropped on receipt (zab.md §4.3 step 3).
    pub fn better_than(&self, other: &Vote) -> bool {
        (self.epoch, self.zxid, self.leader) > (other.epoch, other.zxid, other.leader)
    }
}

/// The state a server reports in its election notifications.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ServerState {
    /// Running an election.
    Looking,
    /// Following an elected leader.
    Following,
    /// Leading.
    Leading,
    /// Observing (never votes, never leads).
    Observing,
}

/// An election notification (zab.md §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Notification {
    /// The sender's state.
    pub state: ServerState,
    /// The sender's current vote.
    pub vote: Vote,
    /// The sender's logical clock (election round, Java's `electionEpoch`).
    pub round: u64,
}

/// A server's role, as reported by [`crate::Peer::role`] and in events.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Electing a leader.
    Looking,
    /// Leader (from discovery on).
    Leading,
    /// Voting learner.
    Following,
    /// Non-voting learner.
    Observing,
}

/// How the leader brings a learner up to date (zab.md §6.4); reported in events for metrics.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SyncKind {
    /// The learner's last zxid is in the leader's history: send what follows it.
    Diff,
    /// The learner has txns the leader does not: truncate, then send what follows.
    Trunc,
    /// Stream a snapshot, then what follows it.
    Snap,
}

/// A message between two servers. Every message after `FollowerInfo` carries the learner's
/// `session`, a random number the learner picks for each attempt to join a leader; both
/// sides drop messages of another session, so a late message of an old connection can never
/// be taken for part of the current one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Fast leader election notification.
    Notification(Notification),
    /// Learner → leader: FOLLOWERINFO / OBSERVERINFO, carrying the learner's acceptedEpoch.
    FollowerInfo {
        /// The learner's session for this attempt.
        session: u64,
        /// The learner's durable acceptedEpoch.
        accepted_epoch: u32,
        /// True for OBSERVERINFO.
        observer: bool,
    },
    /// Leader → learner: LEADERINFO, the proposed new epoch.
    LeaderInfo {
        /// Echo of the learner's session.
        session: u64,
        /// The new epoch.
        epoch: u32,
    },
    /// Learner → leader: ACKEPOCH.
    AckEpoch {
        /// The learner's session.
        session: u64,
        /// The learner's last durably logged zxid (ZOOKEEPER-2355: never a DIFF header).
        last_logged: Zxid,
        /// The learner's currentEpoch, or `None` (Java's `-1`) when it had already promised
        /// this epoch: then the ack does not count toward the epoch quorum.
        current_epoch: Option<u32>,
        /// The last txn the learner applied (committed, so in every future leader's
        /// history): the leader may TRUNC to it when no longer common prefix is known.
        applied: Zxid,
    },
    /// Leader → learner: DIFF; the stream that follows extends the learner's log as is.
    Diff {
        /// Echo of the learner's session.
        session: u64,
        /// The learner's last zxid as the leader understood it; the learner checks it.
        from: Zxid,
    },
    /// Leader → learner: TRUNC; drop every txn after `to`, then take the stream.
    Trunc {
        /// Echo of the learner's session.
        session: u64,
        /// The last txn to keep.
        to: Zxid,
    },
    /// Leader → learner: SNAP; a snapshot of the leader's tree at a zxid ≥ `min_zxid` comes
    /// out of band (the drivers stream it), then the txns after `min_zxid`.
    Snap {
        /// Echo of the learner's session.
        session: u64,
        /// The snapshot will cover at least this zxid.
        min_zxid: Zxid,
    },
    /// Leader → follower: a txn (during sync: part of the leader's history).
    Proposal {
        /// Echo of the learner's session.
        session: u64,
        /// The txn before it in the leader's history. Learners check the chain, so a lost
        /// txn is noticed even at an epoch boundary, where counters cannot show it.
        prev: Zxid,
        /// The txn.
        entry: Entry,
    },
    /// Leader → follower: everything up to `zxid` is committed.
    Commit {
        /// Echo of the learner's session.
        session: u64,
        /// The committed zxid.
        zxid: Zxid,
    },
    /// Leader → learner: NEWLEADER, the last element of the sync stream (ZOOKEEPER-3104).
    NewLeader {
        /// Echo of the learner's session.
        session: u64,
        /// The new epoch.
        epoch: u32,
        /// The last txn of the sync stream: a learner that did not receive it (a message
        /// lost or reordered on a reconnecting link) must not acknowledge the leader.
        last: Zxid,
        /// Every txn of the stream up to this one is committed (so a lost COMMIT of the
        /// stream cannot leave part of it unlogged when the learner acknowledges).
        committed: Zxid,
    },
    /// Learner → leader: ACK. `zxid == (epoch, 0)` is the NEWLEADER-ACK; otherwise it is
    /// cumulative: the learner's log is durable up to and including `zxid`.
    Ack {
        /// The learner's session.
        session: u64,
        /// The acked zxid.
        zxid: Zxid,
    },
    /// Leader → learner: UPTODATE, start serving; carries the leader's last committed zxid
    /// (the TLA+ spec's COMMIT-LD fix, zab.md §11).
    UpToDate {
        /// Echo of the learner's session.
        session: u64,
        /// The leader's last committed zxid when it sent this.
        committed: Zxid,
    },
    /// Leader → observer: a committed txn with its content.
    Inform {
        /// Echo of the learner's session.
        session: u64,
        /// The txn before it in the leader's history.
        prev: Zxid,
        /// The committed txn.
        entry: Entry,
    },
    /// Keep-alive, both ways. Leader → learner carries its last proposed zxid; learner →
    /// leader its durable last zxid.
    Ping {
        /// The learner's session.
        session: u64,
        /// See above.
        zxid: Zxid,
    },
    /// Learner → leader: an opaque request from the server (a forwarded client write, a
    /// batch of session touches). The leader's core hands it out as [`Event::Request`].
    Request {
        /// The learner's session.
        session: u64,
        /// Opaque to ZAB.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Learner → leader: ZooKeeper's `sync`.
    SyncRequest {
        /// The learner's session.
        session: u64,
        /// The learner's id for this sync.
        id: u64,
    },
    /// Leader → learner: everything proposed before the SyncRequest is committed up to
    /// `zxid`; the learner completes the sync once it has applied `zxid`.
    SyncReply {
        /// Echo of the learner's session.
        session: u64,
        /// The learner's id for this sync.
        id: u64,
        /// The leader's last proposed zxid when the request arrived.
        zxid: Zxid,
    },
}

/// Identifies a storage request. Ids increase; [`crate::Peer::handle_persisted`] with an id
/// means that request and every earlier one are durable.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PersistId(pub u64);

/// A storage request. The driver executes them in order and makes each durable before the
/// next one becomes durable, then reports with [`crate::Peer::handle_persisted`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PersistRequest {
    /// Append these txns (in zxid order, contiguous after the current log end) and fsync.
    Append(Vec<Entry>),
    /// Drop every logged txn with zxid > `after` (byte-precise, ZOOKEEPER-1156) and fsync.
    Truncate {
        /// The last txn to keep.
        after: Zxid,
    },
    /// Atomically: make the snapshot received from `from` at `snapshot` the durable base,
    /// drop the whole old log, append `entries`, and load the snapshot as the live state
    /// (commits after `snapshot` follow). All or nothing across a crash (ZOOKEEPER-3642).
    InstallSnapshot {
        /// The leader the snapshot came from.
        from: ServerId,
        /// The snapshot's zxid, as given to [`crate::Peer::handle_snapshot_received`].
        snapshot: Zxid,
        /// Txns after the snapshot, committed in the sync stream.
        entries: Vec<Entry>,
    },
    /// Write `acceptedEpoch` (atomic file replace + fsync).
    AcceptedEpoch(u32),
    /// Write `currentEpoch` (atomic file replace + fsync).
    CurrentEpoch(u32),
}

/// Something the driver should know or act on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// The role changed. `leader` is the elected leader (none while looking).
    RoleChanged {
        /// The new role.
        role: Role,
        /// The leader this server follows or is.
        leader: Option<ServerId>,
    },
    /// Broadcast phase reached: a leader has a quorum of NEWLEADER-ACKs, a learner got
    /// UPTODATE. The server may serve clients.
    Established {
        /// The role.
        role: Role,
        /// The leader.
        leader: ServerId,
        /// The established epoch.
        epoch: u32,
    },
    /// Leader: stream a snapshot of the live state (taken after applying every commit
    /// polled so far, so its zxid is ≥ `min_zxid`) to `to`, which reports it with
    /// [`crate::Peer::handle_snapshot_received`].
    SendSnapshot {
        /// The learner.
        to: ServerId,
        /// The leader's epoch.
        epoch: u32,
        /// Lower bound of the snapshot's zxid.
        min_zxid: Zxid,
    },
    /// Leader: started synchronising a learner this way (for metrics).
    LearnerSync {
        /// The learner.
        learner: ServerId,
        /// DIFF, TRUNC or SNAP.
        kind: SyncKind,
    },
    /// Leader: a learner forwarded an opaque request.
    Request {
        /// The learner.
        from: ServerId,
        /// The payload given to [`crate::Peer::forward`] there.
        payload: Vec<u8>,
    },
    /// A `sync` completed: every txn the leader had proposed when it saw the sync has been
    /// polled from [`crate::Peer::poll_commit`] here.
    SyncDone {
        /// The caller's id.
        id: u64,
    },
    /// A `sync` was abandoned because this server left the broadcast phase.
    SyncFailed {
        /// The caller's id.
        id: u64,
    },
}

/// Static configuration of one server.
#[derive(Clone, Debug)]
pub struct ZabConfig {
    /// This server's id.
    pub id: ServerId,
    /// Voting members (this server included if it votes).
    pub voters: BTreeSet<ServerId>,
    /// Observers (never vote, never lead, never count in a quorum).
    pub observers: BTreeSet<ServerId>,
    /// Length of a tick (ZooKeeper's `tickTime`).
    pub tick_ms: u64,
    /// Max ticks for discovery and synchronisation (ZooKeeper's `initLimit`).
    pub init_limit_ticks: u64,
    /// Max ticks a synced learner may lag or stay silent (ZooKeeper's `syncLimit`).
    pub sync_limit_ticks: u64,
    /// First election resend timeout; it doubles up to `notification_timeout_ms_max`.
    pub notification_timeout_ms_min: u64,
    /// Cap of the election resend timeout.
    pub notification_timeout_ms_max: u64,
    /// How long an election waits for a better vote once a quorum agrees (`finalizeWait`).
    pub finalize_wait_ms: u64,
    /// Committed txns kept in memory to serve DIFFs (ZooKeeper's committed log, 500).
    pub diff_window: usize,
    /// Seed of the PRNG (session nonces, election jitter). Give each start of a server a
    /// different seed (e.g. mix in a boot counter); the simulator derives it from its seed.
    pub rng_seed: u64,
    /// Test knob (ZooKeeper's initial-zxid knob): a new epoch's counters start after this
    /// value instead of 0, to exercise counter exhaustion (ZOOKEEPER-1277). Keep 0.
    pub first_counter: u32,
}

impl ZabConfig {
    /// A configuration with defaults tuned for a LAN: 100 ms ticks, `initLimit` 20,
    /// `syncLimit` 5, election resends from 100 ms to 6.4 s, 50 ms `finalizeWait`.
    pub fn new(
        id: ServerId,
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
    ) -> ZabConfig {
        ZabConfig {
            id,
            voters: voters.into_iter().collect(),
            observers: observers.into_iter().collect(),
            tick_ms: 100,
            init_limit_ticks: 20,
            sync_limit_ticks: 5,
            notification_timeout_ms_min: 100,
            notification_timeout_ms_max: 6_400,
            finalize_wait_ms: 50,
            diff_window: 500,
            rng_seed: id,
            first_counter: 0,
        }
    }

    /// True if `id` votes.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    /// True if `id` is a voter or an observer.
    pub fn is_member(&self, id: ServerId) -> bool {
        self.voters.contains(&id) || self.observers.contains(&id)
    }

    /// True if `ids` hold a strict majority of the voters (observers never count).
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let voting = ids
            .into_iter()
            .filter(|id| self.voters.contains(id))
            .count();
        voting * 2 > self.voters.len()
    }
}

/// What a server recovered from its disk at start-up.
#[derive(Clone, Debug, Default)]
pub struct PersistedState {
    /// Durable `acceptedEpoch`.
    pub accepted_epoch: u32,
    /// Durable `currentEpoch`.
    pub current_epoch: u32,
    /// Zxid of the snapshot the driver loaded as its live state (0 if none). Only
    /// committed txns are ever applied, so this prefix is committed.
    pub snapshot_zxid: Zxid,
    /// Every logged txn after `snapshot_zxid`, in zxid order. The core re-delivers them
    /// through [`crate::Peer::poll_commit`] once it learns they are committed.
    pub log: Vec<Entry>,
}

/// Why [`crate::Peer::new`] refused a configuration or recovered state
/// (`QuorumPeer.loadDataBase` sanity rules, zab.md §2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// This server's id is neither a voter nor an observer.
    #[error("server {0} is not a member of the ensemble")]
    NotAMember(ServerId),
    /// There are no voters.
    #[error("the ensemble has no voters")]
    NoVoters,
    /// A server is listed as both voter and observer.
    #[error("server {0} is both a voter and an observer")]
    VoterAndObserver(ServerId),
    /// `currentEpoch > acceptedEpoch`.
    #[error("currentEpoch {current} is above acceptedEpoch {accepted}")]
    EpochsInverted {
        /// Durable acceptedEpoch.
        accepted: u32,
        /// Durable currentEpoch.
        current: u32,
    },
    /// The log holds a txn of an epoch this server never promised (corruption).
    #[error("logged zxid {zxid:?} is from an epoch above acceptedEpoch {accepted}")]
    LogAheadOfEpoch {
        /// The offending zxid.
        zxid: Zxid,
        /// Durable acceptedEpoch.
        accepted: u32,
    },
    /// The log is not strictly increasing and contiguous after the snapshot.
    #[error("log is not contiguous at {0:?}")]
    LogNotContiguous(Zxid),
}

/// Why [`crate::Peer::propose`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This server is not the leader; `leader` is the one it follows, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this server follows, if it knows one.
        leader: Option<ServerId>,
    },
    /// This server leads but has no quorum of NEWLEADER-ACKs yet.
    #[error("leader not yet established")]
    NotReady,
    /// The epoch's zxid counter is exhausted; the leader abdicated (ZOOKEEPER-1277).
    #[error("zxid counter exhausted, leader abdicated")]
    CounterExhausted,
}

/// Why [`crate::Peer::forward`] or [`crate::Peer::sync`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// This server is not in the broadcast phase with a leader.
    #[error("not connected to an established leader")]
    NoLeader,
    /// This server is the leader: handle the request locally (propose it).
    #[error("this server is the leader")]
    IsLeader,
}
