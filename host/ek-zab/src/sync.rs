//! Phase 2: synchronisation (zab.md §6.3, §6.4).
//!
//! Leader: choose DIFF/TRUNC/SNAP, queue the stream, add the learner to the forwarding set
//! and queue NEWLEADER last (ZOOKEEPER-3104) — one step, so no proposal slips between.
//! Learner: buffer the stream; on NEWLEADER make the committed part durable, then
//! currentEpoch, then ACK (ZOOKEEPER-3911, 4646, 4643); keep uncommitted proposals pending
//! until UPTODATE (ZOOKEEPER-4394); send no other ACK before UPTODATE (ZOOKEEPER-4685).

use crate::leader::{LeaderPhase, Stage};
use crate::learner::{LearnerPhase, NewLeaderStep};
use crate::log::Log;
use crate::peer::Peer;
use crate::types::{Entry, Event, Message, PersistRequest, Role, ServerId, SyncKind};
use ek_types::Zxid;

/// The leader's decision for one learner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The learner's last zxid is in our history: send what follows it.
    Diff { from: Zxid },
    /// Truncate the learner to `to`, then send what follows it.
    Trunc { to: Zxid },
    /// Send a snapshot, then what follows `min`.
    Snap,
}

/// `LearnerHandler.syncFollower`, restricted to the in-memory history (`log`, up to
/// `last`): DIFF only from a zxid literally in our history (ZOOKEEPER-1154); TRUNC to the
/// longest common prefix we can prove; SNAP otherwise.
///
/// `peer` is the learner's last logged zxid, `applied` its last applied one. A learner
/// holding `peer` holds every earlier txn of `peer`'s epoch, so our last txn below `peer` is
/// common if it is of that epoch. Java SNAPs when it is not ("never TRUNC across an epoch
/// boundary": its log truncation cannot); we first try the learner's applied zxid, which is
/// committed hence in our history and in the learner's log, because a SNAP of our applied
/// state could be older than the learner's and roll its state machine back.
pub(crate) fn plan(log: &Log, peer: Zxid, applied: Zxid, last: Zxid) -> Plan {
    if peer == last {
        return Plan::Diff { from: peer };
    }
    if peer < log.base() {
        // Older than the in-memory window (no on-disk DIFF yet).
        return Plan::Snap;
    }
    if peer < last && log.contains(peer) {
        return Plan::Diff { from: peer };
    }
    // The learner has txns we do not: an old leader's uncommitted tail, or a divergent one.
    let below = if peer > last {
        last
    } else {
        log.last_before(peer)
    };
    if below.epoch() == peer.epoch() {
        Plan::Trunc { to: below }
    } else if applied >= log.base() && applied <= below && log.contains(applied) {
        Plan::Trunc { to: applied }
    } else {
        Plan::Snap
    }
}

impl Peer {
    // ---- leader ----

    /// Sends `learner` its sync stream and NEWLEADER, and adds it to the forwarding set.
    pub(crate) fn leader_start_sync(&mut self, learner: ServerId) {
        let applied = self.applied;
        let log_last = self.log.last();
        let committed = self.committed;
        let Some(leader) = self.leader_ref() else {
            return;
        };
        let Some(handle) = leader.learners.get(&learner) else {
            return;
        };
        let (session, observer, peer) = (handle.session, handle.observer, handle.peer_zxid);
        let peer_applied = handle.peer_applied;
        let epoch = leader.epoch;
        // Before establishment our whole history is the initial history of the epoch, and
        // is sent as committed (delivered only after UPTODATE). Observers get only committed
        // txns; followers also get outstanding proposals.
        let commit_upto = if leader.is_established() {
            committed
        } else {
            log_last
        };
        let last = if observer { commit_upto } else { log_last };
        let plan = plan(&self.log, peer, peer_applied, last);
        let (kind, start, header) = match plan {
            Plan::Diff { from } => (SyncKind::Diff, from, Message::Diff { session, from }),
            Plan::Trunc { to } => (SyncKind::Trunc, to, Message::Trunc { session, to }),
            Plan::Snap => (
                SyncKind::Snap,
                applied,
                Message::Snap {
                    session,
                    min_zxid: applied,
                },
            ),
        };
        tracing::info!(learner, ?kind, ?peer, ?start, "syncing learner");
        self.send(learner, header);
        let stream: Vec<Entry> = self.log.range(start, last).cloned().collect();
        let mut prev = start;
        for entry in stream {
            let zxid = entry.zxid;
            self.send(
                learner,
                Message::Proposal {
                    session,
                    prev,
                    entry,
                },
            );
            prev = zxid;
            if zxid <= commit_upto {
                self.send(learner, Message::Commit { session, zxid });
            }
        }
        let stream_last = self.log.range(start, last).last().map_or(start, |e| e.zxid);
        self.send(
            learner,
            Message::NewLeader {
                session,
                epoch,
                last: stream_last,
                committed: commit_upto.min(stream_last),
            },
        );
        if let Some(handle) = self
            .leader_mut()
            .and_then(|leader| leader.learners.get_mut(&learner))
        {
            handle.stage = Stage::NewLeaderSent;
            handle.acked = start;
        }
        self.emit(Event::LearnerSync { learner, kind });
        if kind == SyncKind::Snap {
            self.emit(Event::SendSnapshot {
                to: learner,
                epoch,
                min_zxid: applied,
            });
        }
    }

    pub(crate) fn leader_on_newleader_ack(&mut self, from: ServerId) {
        let Some(leader) = self.leader_mut() else {
            return;
        };
        let phase = leader.phase;
        let Some(handle) = leader.learners.get_mut(&from) else {
            return;
        };
        if handle.stage != Stage::NewLeaderSent {
            return;
        }
        handle.stage = Stage::Synced;
        if !handle.observer {
            leader.newleader_acks.insert(from);
        }
        match phase {
            LeaderPhase::Sync => self.leader_check_newleader_quorum(),
            LeaderPhase::Broadcast => self.leader_send_uptodate(from),
            _ => {}
        }
    }

    pub(crate) fn leader_check_newleader_quorum(&mut self) {
        let Some(leader) = self.leader_ref() else {
            return;
        };
        if leader.phase != LeaderPhase::Sync || !self.cfg.is_quorum(leader.newleader_acks.iter()) {
            return;
        }
        self.leader_establish();
    }

    /// A quorum has our history durably under the new epoch: it is committed.
    fn leader_establish(&mut self) {
        let epoch = self.leader_ref().map_or(0, |leader| leader.epoch);
        let first = Zxid::new(epoch, self.cfg.first_counter);
        let log_last = self.log.last();
        self.committed = self.committed.max(log_last);
        if let Some(leader) = self.leader_mut() {
            leader.phase = LeaderPhase::Broadcast;
            leader.last_proposed = first.max(log_last);
        }
        // Late joiners must see a consistent (leader, peerEpoch) (ZOOKEEPER-1732).
        self.vote.epoch = epoch;
        tracing::info!(id = self.cfg.id, epoch, "leader established");
        let synced: Vec<ServerId> = self.leader_ref().map_or(Vec::new(), |leader| {
            leader
                .learners
                .iter()
                .filter(|(_, h)| h.stage == Stage::Synced)
                .map(|(id, _)| *id)
                .collect()
        });
        for id in synced {
            self.leader_send_uptodate(id);
        }
        self.emit(Event::Established {
            role: Role::Leading,
            leader: self.cfg.id,
            epoch,
        });
    }

    fn leader_send_uptodate(&mut self, to: ServerId) {
        let committed = self.committed;
        let Some(handle) = self
            .leader_mut()
            .and_then(|leader| leader.learners.get_mut(&to))
        else {
            return;
        };
        handle.stage = Stage::UpToDate;
        let session = handle.session;
        self.send(to, Message::UpToDate { session, committed });
    }

    // ---- learner ----

    /// The first message after ACKEPOCH must be DIFF, TRUNC or SNAP.
    pub(crate) fn learner_on_sync_header(&mut self, msg: Message) {
        let kind = match msg {
            Message::Diff { from, .. } => {
                // Nothing changes here: a DIFF header is not state (ZOOKEEPER-2355).
                if from != self.log.last() {
                    self.become_looking("DIFF from a zxid that is not our last");
                    return;
                }
                SyncKind::Diff
            }
            Message::Trunc { to, .. } => {
                // Only committed txns are ever applied, so a correct leader never truncates
                // below them; and `to` must be a txn we hold (ZOOKEEPER-1156: exact cut).
                if to < self.applied || !self.log.truncate_after(to) {
                    self.become_looking("TRUNC to a zxid we cannot cut at");
                    return;
                }
                self.persist(PersistRequest::Truncate { after: to });
                self.durable = self.durable.min(to);
                SyncKind::Trunc
            }
            Message::Snap { min_zxid, .. } => {
                if let Some(learner) = self.learner_mut() {
                    learner.sync.snap_min = min_zxid;
                }
                SyncKind::Snap
            }
            msg => {
                self.learner_protocol_error(&msg);
                return;
            }
        };
        if let Some(learner) = self.learner_mut() {
            learner.sync.kind = Some(kind);
            learner.phase = LearnerPhase::Syncing;
        }
    }

    /// The zxid the next proposal of the stream must follow.
    fn learner_stream_last(&self) -> Zxid {
        let Some(learner) = self.learner_ref() else {
            return Zxid::ZERO;
        };
        if let Some(entry) = learner.sync.entries.last() {
            return entry.zxid;
        }
        let snapshot_pending = matches!(
            learner.sync.newleader,
            NewLeaderStep::NotSeen | NewLeaderStep::Received
        );
        if learner.sync.kind == Some(SyncKind::Snap) && snapshot_pending {
            // The log is replaced only at NEWLEADER; the stream starts after `snap_min`.
            learner.sync.snap_min
        } else {
            self.log.last()
        }
    }

    pub(crate) fn learner_on_sync_message(&mut self, msg: Message) {
        match msg {
            Message::Proposal { entry, prev, .. } => self.learner_buffer(entry, prev, false),
            Message::Inform { entry, prev, .. } => self.learner_buffer(entry, prev, true),
            Message::Commit { zxid, .. } => {
                if zxid > self.learner_stream_last() {
                    self.become_looking("COMMIT for a txn not received");
                    return;
                }
                if let Some(learner) = self.learner_mut() {
                    learner.sync.commit = learner.sync.commit.max(zxid);
                }
            }
            Message::NewLeader {
                epoch,
                last,
                committed,
                ..
            } => {
                let stream_last = self.learner_stream_last();
                let Some(learner) = self.learner_mut() else {
                    return;
                };
                if epoch != learner.epoch || learner.sync.newleader != NewLeaderStep::NotSeen {
                    self.become_looking("unexpected NEWLEADER");
                    return;
                }
                if stream_last != last {
                    // Part of the stream never arrived: acknowledging would claim history
                    // this learner does not hold (ZOOKEEPER-3911's class of bug).
                    self.become_looking("sync stream incomplete at NEWLEADER");
                    return;
                }
                learner.sync.commit = learner.sync.commit.max(committed);
                learner.sync.newleader = NewLeaderStep::Received;
                self.learner_finish_newleader();
            }
            Message::UpToDate { committed, .. } => self.learner_on_uptodate(committed),
            msg => self.learner_protocol_error(&msg),
        }
    }

    /// Buffers a stream txn; duplicates are ignored (TLA+ issue 2), holes abort.
    fn learner_buffer(&mut self, entry: Entry, prev: Zxid, committed: bool) {
        let last = self.learner_stream_last();
        let zxid = entry.zxid;
        if zxid > last {
            if prev != last || !self.log.follows(last, zxid) {
                self.become_looking("hole in the sync stream");
                return;
            }
            if let Some(learner) = self.learner_mut() {
                learner.sync.entries.push(entry);
            }
        }
        if committed {
            if let Some(learner) = self.learner_mut() {
                learner.sync.commit = learner.sync.commit.max(zxid);
            }
        }
    }

    pub(crate) fn learner_on_snapshot(&mut self, from: ServerId, zxid: Zxid) {
        let Some(learner) = self.learner_mut() else {
            return;
        };
        if learner.leader != from
            || learner.phase != LearnerPhase::Syncing
            || learner.sync.kind != Some(SyncKind::Snap)
            || learner.sync.snapshot.is_some()
            || zxid < learner.sync.snap_min
        {
            return;
        }
        learner.sync.snapshot = Some(zxid);
        self.learner_finish_newleader();
    }

    /// NEWLEADER (zab.md §6.3 learner step 3): make the snapshot (SNAP) and every txn
    /// committed in the stream durable; the rest stays pending (ZOOKEEPER-4394).
    fn learner_finish_newleader(&mut self) {
        let Some(learner) = self.learner_mut() else {
            return;
        };
        if learner.sync.newleader != NewLeaderStep::Received {
            return;
        }
        let snapshot = match learner.sync.kind {
            Some(SyncKind::Snap) => match learner.sync.snapshot {
                Some(zxid) => Some(zxid),
                None => return, // wait for handle_snapshot_received
            },
            _ => None,
        };
        let commit = learner.sync.commit;
        let leader = learner.leader;
        let mut ready: Vec<Entry> = Vec::new();
        let mut rest: Vec<Entry> = Vec::new();
        for entry in std::mem::take(&mut learner.sync.entries) {
            if snapshot.is_some_and(|s| entry.zxid <= s) {
                continue;
            }
            if entry.zxid <= commit {
                ready.push(entry);
            } else {
                rest.push(entry);
            }
        }
        learner.sync.entries = rest;
        // Validate before touching the log, so an abort leaves memory equal to disk.
        let mut prev = snapshot.unwrap_or(self.log.last());
        for entry in &ready {
            if !self.log.follows(prev, entry.zxid) {
                self.become_looking("sync stream does not extend our log");
                return;
            }
            prev = entry.zxid;
        }
        if let Some(snapshot) = snapshot {
            if snapshot < self.applied {
                self.become_looking("snapshot older than our applied state");
                return;
            }
            // The live state becomes the snapshot when the driver installs it; nothing is
            // delivered before UPTODATE, which needs this write to be durable first.
            self.log.reset(snapshot);
            self.applied = snapshot;
            self.committed = snapshot;
            self.durable = self.durable.min(snapshot);
        }
        for entry in &ready {
            let appended = self.log.append(entry.clone());
            debug_assert!(appended.is_ok());
        }
        if let Some(snapshot) = snapshot {
            self.persist(PersistRequest::InstallSnapshot {
                from: leader,
                snapshot,
                entries: ready,
            });
        } else if !ready.is_empty() {
            self.persist_append(ready);
        }
        // Wait for everything issued so far, the truncation included.
        let wait = self.last_issued_persist();
        if let Some(learner) = self.learner_mut() {
            learner.sync.newleader = NewLeaderStep::PersistTxns(wait);
        }
        self.learner_newleader_progress();
    }

    /// Txns durable → write currentEpoch → durable → NEWLEADER-ACK (ZOOKEEPER-4643).
    pub(crate) fn learner_newleader_progress(&mut self) {
        let persisted = self.persisted_through;
        let current_epoch = self.current_epoch;
        let Some(learner) = self.learner_ref() else {
            return;
        };
        let epoch = learner.epoch;
        match learner.sync.newleader {
            NewLeaderStep::PersistTxns(id) if persisted >= id => {
                let wait = if current_epoch < epoch {
                    self.persist(PersistRequest::CurrentEpoch(epoch)).0
                } else {
                    self.last_issued_persist()
                };
                if let Some(learner) = self.learner_mut() {
                    learner.sync.newleader = NewLeaderStep::PersistEpoch(wait);
                }
                self.learner_newleader_progress();
            }
            NewLeaderStep::PersistEpoch(id) if persisted >= id => {
                if let Some(learner) = self.learner_mut() {
                    learner.sync.newleader = NewLeaderStep::Acked;
                }
                // Late joiners must see a consistent (leader, peerEpoch) (ZOOKEEPER-1732).
                self.vote.epoch = epoch;
                let zxid = Zxid::new(epoch, 0);
                self.send_to_leader(|session| Message::Ack { session, zxid });
            }
            _ => {}
        }
    }

    /// UPTODATE: log the pending proposals through the normal path and start serving.
    fn learner_on_uptodate(&mut self, leader_committed: Zxid) {
        let Some(learner) = self.learner_mut() else {
            return;
        };
        if learner.sync.newleader != NewLeaderStep::Acked {
            self.become_looking("UPTODATE before our NEWLEADER-ACK");
            return;
        }
        let rest = std::mem::take(&mut learner.sync.entries);
        let commit = learner.sync.commit.max(leader_committed);
        let (leader, epoch, observer) = (learner.leader, learner.epoch, learner.observer);
        learner.phase = LearnerPhase::Broadcast;
        let append: Vec<Entry> = rest
            .into_iter()
            .filter(|entry| entry.zxid > self.log.last())
            .collect();
        let mut prev = self.log.last();
        for entry in &append {
            if !self.log.follows(prev, entry.zxid) {
                self.become_looking("pending proposals do not extend our log");
                return;
            }
            prev = entry.zxid;
        }
        for entry in &append {
            let appended = self.log.append(entry.clone());
            debug_assert!(appended.is_ok());
        }
        if !append.is_empty() {
            self.persist_append(append);
        }
        self.committed = self.committed.max(commit.min(self.log.last()));
        tracing::info!(id = self.cfg.id, leader, epoch, "synced with the leader");
        self.emit(Event::Established {
            role: if observer {
                Role::Observing
            } else {
                Role::Following
            },
            leader,
            epoch,
        });
        self.learner_maybe_ack();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(base: Zxid, zxids: &[(u32, u32)], first_counter: u32) -> Log {
        let entries = zxids
            .iter()
            .map(|&(e, c)| Entry {
                zxid: Zxid::new(e, c),
                data: Vec::new(),
            })
            .collect();
        Log::new(base, entries, first_counter).unwrap()
    }

    #[test]
    fn plan_follows_section_6_4() {
        let z = Zxid::new;
        let history = log(z(1, 2), &[(1, 3), (1, 4), (2, 1), (2, 2)], 0);
        let last = z(2, 2);
        let zero = Zxid::ZERO;
        assert_eq!(plan(&history, last, zero, last), Plan::Diff { from: last });
        assert_eq!(
            plan(&history, z(1, 4), zero, last),
            Plan::Diff { from: z(1, 4) }
        );
        assert_eq!(
            plan(&history, z(1, 2), zero, last),
            Plan::Diff { from: z(1, 2) }
        );
        // Ahead of us in our last epoch: an old leader's uncommitted tail.
        assert_eq!(
            plan(&history, z(2, 5), zero, last),
            Plan::Trunc { to: last }
        );
        // Ahead of us in a later epoch: cut back to what it applied, if we have it.
        assert_eq!(
            plan(&history, z(3, 1), z(1, 4), last),
            Plan::Trunc { to: z(1, 4) }
        );
        assert_eq!(plan(&history, z(3, 1), zero, last), Plan::Snap);
        // Divergent 1.5 while our next txn is of epoch 2: our 1.4 is common.
        assert_eq!(
            plan(&history, z(1, 5), zero, last),
            Plan::Trunc { to: z(1, 4) }
        );
        // A learner holding 1.9 holds all of epoch 1, so our base 1.4 is common.
        let window = log(z(1, 4), &[(2, 1), (2, 2)], 0);
        assert_eq!(
            plan(&window, z(1, 9), zero, last),
            Plan::Trunc { to: z(1, 4) }
        );
        // A failed epoch-3 leader's tail over that window: only its applied point helps.
        assert_eq!(plan(&window, z(3, 1), zero, last), Plan::Snap);
        assert_eq!(
            plan(&window, z(3, 1), z(1, 4), last),
            Plan::Trunc { to: z(1, 4) }
        );
        // Older than the window.
        assert_eq!(plan(&history, z(1, 1), zero, last), Plan::Snap);
        assert_eq!(plan(&history, Zxid::ZERO, zero, last), Plan::Snap);
    }
}
