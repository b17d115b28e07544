//! The run's trace: a ring buffer of recent events (printed when a check fails), a running
//! fingerprint of every event (two runs of one seed must agree on it), and, in verbose mode,
//! every event printed as it happens.

use ek_types::Zxid;
use ek_zab::{Event, Message, ServerId};
use std::collections::VecDeque;
use std::fmt;

/// What a lost packet was.
#[derive(Clone, Debug)]
pub(crate) enum Lost {
    Msg(Message),
    Snapshot(Zxid),
}

/// One thing that happened.
#[derive(Clone, Debug)]
pub(crate) enum TraceEvent {
    Deliver(ServerId, ServerId, Message),
    DeliverSnapshot(ServerId, ServerId, Zxid),
    Lost(ServerId, ServerId, &'static str, Lost),
    Timeout(ServerId),
    Persisted(ServerId, u64, usize),
    Commit(ServerId, Zxid),
    Event(ServerId, Event),
    Propose(ServerId, Zxid, i64, i32),
    Crash(ServerId, usize, usize),
    Restart(ServerId, Zxid),
    Install(ServerId, Zxid),
    LocalSnapshot(ServerId, Zxid),
    Partition(Vec<(ServerId, ServerId)>),
    Heal,
    Invoke(usize, usize, ServerId, String),
    Complete(usize, usize, String),
    ClientTimeout(usize, usize),
    Rejected(usize, ServerId, &'static str),
    Phase(&'static str),
}

impl TraceEvent {
    /// A few cheap numbers naming the event, for the fingerprint.
    fn key(&self) -> (u64, u64, u64) {
        let zxid = |z: &Zxid| z.0 as u64;
        match self {
            TraceEvent::Deliver(from, to, msg) => (1, from * 64 + to, message_code(msg)),
            TraceEvent::DeliverSnapshot(from, to, z) => (2, from * 64 + to, zxid(z)),
            TraceEvent::Lost(from, to, _, lost) => {
                let code = match lost {
                    Lost::Msg(msg) => message_code(msg),
                    Lost::Snapshot(z) => zxid(z),
                };
                (3, from * 64 + to, code)
            }
            TraceEvent::Timeout(id) => (4, *id, 0),
            TraceEvent::Persisted(id, through, n) => (5, *id, through * 64 + *n as u64),
            TraceEvent::Commit(id, z) => (6, *id, zxid(z)),
            TraceEvent::Event(id, _) => (7, *id, 0),
            TraceEvent::Propose(id, z, _, _) => (8, *id, zxid(z)),
            TraceEvent::Crash(id, kept, lost) => (9, *id, (*kept * 64 + *lost) as u64),
            TraceEvent::Restart(id, z) => (10, *id, zxid(z)),
            TraceEvent::Install(id, z) => (11, *id, zxid(z)),
            TraceEvent::LocalSnapshot(id, z) => (12, *id, zxid(z)),
            TraceEvent::Partition(links) => (13, links.len() as u64, 0),
            TraceEvent::Heal => (14, 0, 0),
            TraceEvent::Invoke(client, op, node, _) => (15, *client as u64, *op as u64 + node),
            TraceEvent::Complete(client, op, _) => (16, *client as u64, *op as u64),
            TraceEvent::ClientTimeout(client, op) => (17, *client as u64, *op as u64),
            TraceEvent::Rejected(client, node, _) => (18, *client as u64, *node),
            TraceEvent::Phase(_) => (19, 0, 0),
        }
    }
}

fn message_code(msg: &Message) -> u64 {
    match msg {
        Message::Notification(n) => 1 + n.round * 32,
        Message::FollowerInfo { .. } => 2,
        Message::LeaderInfo { epoch, .. } => 3 + u64::from(*epoch) * 32,
        Message::AckEpoch { .. } => 4,
        Message::Diff { from, .. } => 5 + (from.0 as u64) * 32,
        Message::Trunc { to, .. } => 6 + (to.0 as u64) * 32,
        Message::Snap { .. } => 7,
        Message::Proposal { entry, .. } => 8 + (entry.zxid.0 as u64) * 32,
        Message::Commit { zxid, .. } => 9 + (zxid.0 as u64) * 32,
        Message::NewLeader { .. } => 10,
        Message::Ack { zxid, .. } => 11 + (zxid.0 as u64) * 32,
        Message::UpToDate { .. } => 12,
        Message::Inform { entry, .. } => 13 + (entry.zxid.0 as u64) * 32,
        Message::Ping { .. } => 14,
        Message::Request { .. } => 15,
        Message::SyncRequest { .. } => 16,
        Message::SyncReply { .. } => 17,
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Deliver(from, to, msg) => write!(f, "{from}->{to} {msg:?}"),
            TraceEvent::DeliverSnapshot(from, to, z) => write!(f, "{from}->{to} SNAPSHOT@{z}"),
            TraceEvent::Lost(from, to, why, Lost::Msg(msg)) => {
                write!(f, "{from}->{to} LOST ({why}) {msg:?}")
            }
            TraceEvent::Lost(from, to, why, Lost::Snapshot(z)) => {
                write!(f, "{from}->{to} LOST ({why}) SNAPSHOT@{z}")
            }
            TraceEvent::Timeout(id) => write!(f, "node {id} timeout"),
            TraceEvent::Persisted(id, through, n) => {
                write!(f, "node {id} disk: {n} write(s) durable through #{through}")
            }
            TraceEvent::Commit(id, z) => write!(f, "node {id} applies {z}"),
            TraceEvent::Event(id, event) => write!(f, "node {id} event {event:?}"),
            TraceEvent::Propose(id, z, session, cxid) => {
                write!(f, "node {id} proposes {z} (session {session}, cxid {cxid})")
            }
            TraceEvent::Crash(id, kept, lost) => write!(
                f,
                "CRASH node {id}: {kept} in-flight write(s) kept, {lost} lost"
            ),
            TraceEvent::Restart(id, z) => write!(f, "RESTART node {id} from snapshot {z}"),
            TraceEvent::Install(id, z) => write!(f, "node {id} installs snapshot {z}"),
            TraceEvent::LocalSnapshot(id, z) => write!(f, "node {id} writes snapshot {z}"),
            TraceEvent::Partition(links) => write!(f, "PARTITION cut {links:?}"),
            TraceEvent::Heal => write!(f, "HEAL"),
            TraceEvent::Invoke(client, op, node, what) => {
                write!(f, "client {client} op#{op} at node {node}: {what}")
            }
            TraceEvent::Complete(client, op, result) => {
                write!(f, "client {client} op#{op} -> {result}")
            }
            TraceEvent::ClientTimeout(client, op) => {
                write!(f, "client {client} op#{op} timed out (outcome unknown)")
            }
            TraceEvent::Rejected(client, node, why) => {
                write!(f, "client {client} refused by node {node}: {why}")
            }
            TraceEvent::Phase(phase) => write!(f, "=== {phase} ==="),
        }
    }
}

/// The recent events and the fingerprint of all of them.
pub(crate) struct Trace {
    recent: VecDeque<(u64, u64, TraceEvent)>,
    capacity: usize,
    verbose: bool,
    fingerprint: u64,
}

impl Trace {
    pub(crate) fn new(capacity: usize, verbose: bool) -> Trace {
        Trace {
            recent: VecDeque::with_capacity(capacity),
            capacity,
            verbose,
            fingerprint: 0xcbf2_9ce4_8422_2325,
        }
    }

    pub(crate) fn push(&mut self, step: u64, time_ms: u64, event: TraceEvent) {
        let (a, b, c) = event.key();
        for word in [step, time_ms, a, b, c] {
            self.fingerprint = (self.fingerprint ^ word).wrapping_mul(0x0100_0000_01b3);
        }
        if self.verbose {
            println!("[{step:>6} t={time_ms:>6}] {event}");
        }
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back((step, time_ms, event));
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The recent events, formatted, oldest first.
    pub(crate) fn tail(&self) -> Vec<String> {
        self.recent
            .iter()
            .map(|(step, time_ms, event)| format!("[{step:>6} t={time_ms:>6}] {event}"))
            .collect()
    }
}
