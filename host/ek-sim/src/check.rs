//! The zab.md §10 checkers, run incrementally: on every message sent, every write made
//! durable, every txn delivered, every proposal, and once per step over every server.
//!
//! The simulator knows every proposal, since only its leaders call `Peer::propose`: that
//! record is the paper's `B_e`, and every txn seen anywhere (a message, a disk, a delivery)
//! must match it byte for byte.

use crate::disk::{follows, Disk};
use ek_types::Zxid;
use ek_zab::{Message, Peer, Role, ServerId};
use std::collections::BTreeMap;
use std::fmt;

/// A broken invariant: which one, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant, e.g. "§10.2 agreement".
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// What the checker remembers of one server.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    /// Position in the global delivered sequence of the next txn this server delivers.
    next: usize,
    /// The last txn it delivered (or its state's base after a restart or install).
    last: Zxid,
    /// Highest acceptedEpoch / currentEpoch ever seen for it (across restarts).
    accepted: u32,
    current: u32,
}

#[derive(Default)]
pub(crate) struct Checker {
    /// Every txn any leader proposed (`B_e` of every epoch).
    proposed: BTreeMap<Zxid, Vec<u8>>,
    /// The leader of each epoch that reached synchronisation (NEWLEADER) or broadcast.
    epoch_leader: BTreeMap<u32, ServerId>,
    /// The longest delivered sequence; every server's deliveries are a prefix of it.
    delivered: Vec<Zxid>,
    /// Tree digest right after each delivered txn (and at the empty state).
    digests: BTreeMap<Zxid, u64>,
    nodes: BTreeMap<ServerId, Track>,
}

impl Checker {
    pub(crate) fn new(empty_digest: u64) -> Checker {
        Checker {
            digests: BTreeMap::from([(Zxid::ZERO, empty_digest)]),
            ..Checker::default()
        }
    }

    /// The global delivered sequence.
    pub(crate) fn delivered(&self) -> &[Zxid] {
        &self.delivered
    }

    /// The content of a proposed txn.
    pub(crate) fn proposal(&self, zxid: Zxid) -> Option<&[u8]> {
        self.proposed.get(&zxid).map(Vec::as_slice)
    }

    /// A leader proposed `data` as `zxid` in `epoch`; its tree had applied `applied`.
    pub(crate) fn on_propose(
        &mut self,
        leader: ServerId,
        epoch: u32,
        zxid: Zxid,
        data: &[u8],
        applied: Zxid,
    ) -> Result<(), Violation> {
        if zxid.epoch() != epoch {
            return Err(Violation::new(
                "§10.4 primary order",
                format!("leader {leader} of epoch {epoch} proposed {zxid}"),
            ));
        }
        if let Some(previous) = self.proposed.insert(zxid, data.to_vec()) {
            if previous != data {
                return Err(Violation::new(
                    "§10.9 zxid uniqueness",
                    format!("{zxid} proposed twice with different contents (now by {leader})"),
                ));
            }
        }
        // §10.6: every txn of an earlier epoch delivered anywhere is delivered here first.
        let older = self.delivered.partition_point(|z| z.epoch() < epoch);
        if let Some(last_older) = older.checked_sub(1).map(|i| self.delivered[i]) {
            if last_older > applied {
                return Err(Violation::new(
                    "§10.6 primary integrity",
                    format!(
                        "leader {leader} proposes {zxid} having applied {applied}, but {last_older} was delivered"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A leader established `epoch` with its history ending at `base`: that history holds
    /// every txn of an earlier epoch delivered anywhere (§10.6, §10.11).
    pub(crate) fn on_established(
        &self,
        leader: ServerId,
        epoch: u32,
        base: Zxid,
    ) -> Result<(), Violation> {
        let older = self.delivered.partition_point(|z| z.epoch() < epoch);
        match older.checked_sub(1).map(|i| self.delivered[i]) {
            Some(last_older) if last_older > base => Err(Violation::new(
                "§10.6 primary integrity",
                format!("leader {leader} established epoch {epoch} with history up to {base}, but {last_older} was delivered"),
            )),
            _ => Ok(()),
        }
    }

    /// A txn seen in a message or on a disk must be the proposed one (§10.1, §10.9).
    pub(crate) fn check_entry(&self, at: &str, zxid: Zxid, data: &[u8]) -> Result<(), Violation> {
        match self.proposed.get(&zxid) {
            Some(proposed) if proposed == data => Ok(()),
            Some(_) => Err(Violation::new(
                "§10.9 zxid uniqueness",
                format!("{at}: {zxid} carries content other than the proposal"),
            )),
            None => Err(Violation::new(
                "§10.1 integrity",
                format!("{at}: {zxid} was never proposed"),
            )),
        }
    }

    /// Server `id` delivered `zxid` (§10.1 integrity, §10.2 agreement, §10.3 total order,
    /// §10.4/§10.5 primary order: delivered counters have no holes).
    pub(crate) fn on_deliver(
        &mut self,
        id: ServerId,
        zxid: Zxid,
        data: &[u8],
    ) -> Result<(), Violation> {
        self.check_entry(&format!("node {id} delivery"), zxid, data)?;
        let track = self.nodes.entry(id).or_default();
        if zxid <= track.last || !follows(track.last, zxid) {
            return Err(Violation::new(
                "§10.3 total order",
                format!("node {id} delivered {zxid} right after {}", track.last),
            ));
        }
        let position = track.next;
        match self.delivered.get(position) {
            Some(&expected) if expected != zxid => {
                return Err(Violation::new(
                    "§10.2 agreement",
                    format!("node {id} delivered {zxid} at position {position}, others {expected}"),
                ));
            }
            Some(_) => {}
            None => {
                if self.delivered.last().is_some_and(|last| *last >= zxid) {
                    return Err(Violation::new(
                        "§10.3 total order",
                        format!("node {id} extends the delivered sequence with {zxid}"),
                    ));
                }
                self.delivered.push(zxid);
            }
        }
        track.next = position + 1;
        track.last = zxid;
        Ok(())
    }

    /// Server `id`'s tree has `digest` right after `zxid` (§10.12).
    pub(crate) fn on_state(
        &mut self,
        id: ServerId,
        zxid: Zxid,
        digest: u64,
    ) -> Result<(), Violation> {
        let recorded = *self.digests.entry(zxid).or_insert(digest);
        if recorded != digest {
            return Err(Violation::new(
                "§10.12 state-machine equality",
                format!("node {id} has digest {digest:#x} at {zxid}, another {recorded:#x}"),
            ));
        }
        Ok(())
    }

    /// The digest a txn carries, stamped by its leader, matches the one recorded (§10.12).
    pub(crate) fn check_stamp(
        &self,
        id: ServerId,
        zxid: Zxid,
        digest: u64,
    ) -> Result<(), Violation> {
        match self.digests.get(&zxid) {
            Some(&recorded) if recorded != digest => Err(Violation::new(
                "§10.12 state-machine equality",
                format!(
                    "node {id}: txn stamped digest {digest:#x} at {zxid}, recorded {recorded:#x}"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Server `id`'s state machine now starts from a snapshot at `base` (restart or SNAP).
    pub(crate) fn on_reset(
        &mut self,
        id: ServerId,
        base: Zxid,
        digest: u64,
    ) -> Result<(), Violation> {
        self.on_state(id, base, digest)?;
        let next = if base == Zxid::ZERO {
            0
        } else {
            match self.delivered.binary_search(&base) {
                Ok(index) => index + 1,
                Err(_) => {
                    return Err(Violation::new(
                        "§10.1 integrity",
                        format!("node {id} loads a snapshot at {base}, which nobody delivered"),
                    ))
                }
            }
        };
        let track = self.nodes.entry(id).or_default();
        track.next = next;
        track.last = base;
        Ok(())
    }

    /// A message is leaving `from` (zab.md §6.6: durability before the messages that
    /// imply it; §10.7: one leader per epoch; §10.9: txn contents).
    pub(crate) fn on_transmit(
        &mut self,
        from: ServerId,
        disk: &Disk,
        msg: &Message,
    ) -> Result<(), Violation> {
        let durable = "§6.6 durability before the message";
        match msg {
            Message::Ack { zxid, .. } => {
                if let Some(detail) = ack_not_durable(from, disk, *zxid) {
                    return Err(Violation::new(durable, detail));
                }
            }
            Message::AckEpoch {
                current_epoch: Some(epoch),
                ..
            } if disk.current < *epoch => {
                return Err(Violation::new(
                    durable,
                    format!("node {from} ACKEPOCH with currentEpoch {epoch} not durable"),
                ));
            }
            Message::LeaderInfo { epoch, .. } if disk.accepted != *epoch => {
                return Err(Violation::new(
                    durable,
                    format!(
                        "node {from} LEADERINFO {epoch} with acceptedEpoch {}",
                        disk.accepted
                    ),
                ));
            }
            Message::NewLeader { epoch, .. } => {
                if disk.current != *epoch {
                    return Err(Violation::new(
                        durable,
                        format!(
                            "node {from} NEWLEADER {epoch} with currentEpoch {}",
                            disk.current
                        ),
                    ));
                }
                self.claim_epoch(from, *epoch)?;
            }
            Message::Proposal { entry, .. } | Message::Inform { entry, .. } => {
                self.check_entry(&format!("message from {from}"), entry.zxid, &entry.data)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn claim_epoch(&mut self, leader: ServerId, epoch: u32) -> Result<(), Violation> {
        let owner = *self.epoch_leader.entry(epoch).or_insert(leader);
        if owner != leader {
            return Err(Violation::new(
                "§10.7 leadership",
                format!("servers {owner} and {leader} both lead epoch {epoch}"),
            ));
        }
        Ok(())
    }

    /// Once per step, for each live server (§10.7, §10.8).
    pub(crate) fn on_step(&mut self, peer: &Peer, disk: &Disk) -> Result<(), Violation> {
        let id = peer.id();
        let (accepted, current) = (peer.accepted_epoch(), peer.current_epoch());
        let monotonic = "§10.8 epoch monotonicity";
        if current > accepted || disk.current > disk.accepted {
            return Err(Violation::new(
                monotonic,
                format!("node {id} currentEpoch above acceptedEpoch"),
            ));
        }
        if accepted > disk.accepted || current > disk.current {
            return Err(Violation::new(
                durable_epochs(),
                format!(
                    "node {id} reports epochs ({accepted}, {current}), its disk holds ({}, {})",
                    disk.accepted, disk.current
                ),
            ));
        }
        let track = self.nodes.entry(id).or_default();
        if accepted < track.accepted || current < track.current {
            return Err(Violation::new(
                monotonic,
                format!(
                    "node {id} epochs went from ({}, {}) to ({accepted}, {current})",
                    track.accepted, track.current
                ),
            ));
        }
        track.accepted = accepted;
        track.current = current;
        if peer.is_established() && peer.last_logged().epoch() > current {
            return Err(Violation::new(
                monotonic,
                format!(
                    "node {id} logged {} in currentEpoch {current}",
                    peer.last_logged()
                ),
            ));
        }
        if peer.role() == Role::Leading && peer.is_established() {
            self.claim_epoch(id, current)?;
        }
        Ok(())
    }
}

/// Why an ACK of `zxid` from `from` claims more than its disk holds, if it does.
fn ack_not_durable(from: ServerId, disk: &Disk, zxid: Zxid) -> Option<String> {
    if zxid.counter() == 0 {
        // NEWLEADER-ACK: the synced history and the new currentEpoch are durable.
        let missing = disk.current < zxid.epoch() || disk.log_write_pending();
        return missing.then(|| {
            format!(
                "node {from} NEWLEADER-ACK for epoch {} with currentEpoch {} or synced txns not durable",
                zxid.epoch(),
                disk.current
            )
        });
    }
    let missing = !disk.holds(zxid) || disk.last() < zxid;
    missing.then(|| format!("node {from} ACKs {zxid}, its disk ends at {}", disk.last()))
}

fn durable_epochs() -> &'static str {
    "§2 epochs are durable"
}
