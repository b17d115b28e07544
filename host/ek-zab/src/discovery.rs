//! Phase 1: discovery (zab.md §6.2). FOLLOWERINFO → LEADERINFO → ACKEPOCH.
//!
//! Persistence order (§6.6): the leader writes acceptedEpoch before any LEADERINFO and
//! currentEpoch before any NEWLEADER; a learner writes acceptedEpoch before its ACKEPOCH.

use crate::leader::{Handle, LeaderPhase, Stage};
use crate::learner::LearnerPhase;
use crate::peer::Peer;
use crate::types::{Message, PersistRequest, ServerId};
use ek_types::Zxid;

impl Peer {
    // ---- leader ----

    pub(crate) fn leader_on_follower_info(
        &mut self,
        from: ServerId,
        session: u64,
        accepted_epoch: u32,
    ) {
        let now = self.now;
        // The configuration, not the message, says who votes.
        let observer = !self.cfg.is_voter(from);
        let Some(leader) = self.leader_mut() else {
            return;
        };
        let phase = leader.phase;
        let epoch = leader.epoch;
        match leader.learners.get_mut(&from) {
            Some(handle) if handle.session == session => {
                // A resent FOLLOWERINFO of the current attempt.
                handle.last_heard = now;
                if handle.stage == Stage::Info && epoch_announced(phase) {
                    self.send(from, Message::LeaderInfo { session, epoch });
                }
                return;
            }
            _ => {}
        }
        if epoch_announced(phase) && accepted_epoch > epoch && !observer {
            // This voter promised a later epoch, so it can never ACKEPOCH ours. Java keeps
            // leading without it (the voter loops through elections until the leader fails);
            // abdicating instead lets a new election pick an epoch above every promise.
            self.become_looking("a voter promised a later epoch than ours");
            return;
        }
        // A new attempt replaces any older handler of this learner.
        leader.learners.insert(
            from,
            Handle {
                session,
                observer,
                stage: Stage::Info,
                peer_zxid: Zxid::ZERO,
                peer_applied: Zxid::ZERO,
                acked: Zxid::ZERO,
                last_heard: now,
                since: now,
            },
        );
        if phase == LeaderPhase::Discovery {
            // Observers' acceptedEpoch raises the new epoch too; only participants count.
            leader.max_accepted = leader.max_accepted.max(accepted_epoch);
            if !observer {
                leader.infos.insert(from);
            }
            self.leader_check_info_quorum();
        } else if epoch_announced(phase) {
            self.send(from, Message::LeaderInfo { session, epoch });
        }
    }

    /// With a quorum of FOLLOWERINFO (this leader included): epoch := max acceptedEpoch + 1,
    /// made durable before it is announced.
    pub(crate) fn leader_check_info_quorum(&mut self) {
        let Some(leader) = self.leader_ref() else {
            return;
        };
        if leader.phase != LeaderPhase::Discovery || !self.cfg.is_quorum(leader.infos.iter()) {
            return;
        }
        let Some(epoch) = leader.max_accepted.checked_add(1) else {
            self.become_looking("epoch space exhausted");
            return;
        };
        let id = self.persist(PersistRequest::AcceptedEpoch(epoch));
        if let Some(leader) = self.leader_mut() {
            leader.epoch = epoch;
        }
        self.leader_set_phase(LeaderPhase::PersistAccepted(id));
    }

    pub(crate) fn leader_on_accepted_epoch_durable(&mut self) {
        self.leader_set_phase(LeaderPhase::EpochAck);
        let Some(leader) = self.leader_ref() else {
            return;
        };
        let epoch = leader.epoch;
        let targets: Vec<(ServerId, u64)> = leader
            .learners
            .iter()
            .filter(|(_, h)| h.stage == Stage::Info)
            .map(|(id, h)| (*id, h.session))
            .collect();
        for (to, session) in targets {
            self.send(to, Message::LeaderInfo { session, epoch });
        }
        self.leader_check_epoch_quorum();
    }

    pub(crate) fn leader_on_ack_epoch(
        &mut self,
        from: ServerId,
        last_logged: Zxid,
        current_epoch: Option<u32>,
        applied: Zxid,
    ) {
        let Some(leader) = self.leader_mut() else {
            return;
        };
        let phase = leader.phase;
        let summary = leader.summary;
        let Some(handle) = leader.learners.get_mut(&from) else {
            return;
        };
        if handle.stage != Stage::Info || !epoch_announced(phase) {
            return;
        }
        if phase != LeaderPhase::Broadcast {
            if let Some(epoch) = current_epoch {
                // Java ZAB makes the leader's history the initial one, so a learner with a
                // more recent history means this server should not lead (§6.2 step 3).
                if (epoch, last_logged) > summary {
                    self.become_looking("follower is ahead of the leader");
                    return;
                }
            }
        }
        handle.stage = Stage::EpochAcked;
        handle.peer_zxid = last_logged;
        handle.peer_applied = applied;
        let participant = !handle.observer;
        if current_epoch.is_some() && participant {
            leader.epoch_acks.insert(from);
        }
        match phase {
            LeaderPhase::EpochAck => self.leader_check_epoch_quorum(),
            LeaderPhase::Sync | LeaderPhase::Broadcast => self.leader_start_sync(from),
            _ => {}
        }
    }

    /// With a quorum of counted ACKEPOCHs: write currentEpoch, then sync everyone.
    fn leader_check_epoch_quorum(&mut self) {
        let Some(leader) = self.leader_ref() else {
            return;
        };
        if leader.phase != LeaderPhase::EpochAck || !self.cfg.is_quorum(leader.epoch_acks.iter()) {
            return;
        }
        let epoch = leader.epoch;
        let id = self.persist(PersistRequest::CurrentEpoch(epoch));
        self.leader_set_phase(LeaderPhase::PersistCurrent(id));
    }

    pub(crate) fn leader_on_current_epoch_durable(&mut self) {
        self.leader_set_phase(LeaderPhase::Sync);
        let Some(leader) = self.leader_ref() else {
            return;
        };
        let ready: Vec<ServerId> = leader
            .learners
            .iter()
            .filter(|(_, h)| h.stage == Stage::EpochAcked)
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.leader_start_sync(id);
        }
        self.leader_check_newleader_quorum();
    }

    // ---- learner ----

    pub(crate) fn learner_on_leader_info(&mut self, epoch: u32) {
        if epoch > self.accepted_epoch {
            let id = self.persist(PersistRequest::AcceptedEpoch(epoch));
            if let Some(learner) = self.learner_mut() {
                learner.epoch = epoch;
                learner.phase = LearnerPhase::PersistAccepted(id);
            }
        } else if epoch == self.accepted_epoch || self.learner_ref().is_some_and(|l| l.observer) {
            // Already promised (e.g. a reconnect): this ack does not count for the quorum.
            // An observer's promise protects no quorum, so it may also join a lower epoch
            // (without lowering its acceptedEpoch); else it could never join this leader.
            self.learner_send_ack_epoch(epoch, None);
        } else {
            self.become_looking("LEADERINFO with an epoch below our acceptedEpoch");
        }
    }

    pub(crate) fn learner_on_accepted_epoch_durable(&mut self) {
        let Some(learner) = self.learner_ref() else {
            return;
        };
        let epoch = learner.epoch;
        let current_epoch = self.current_epoch;
        self.learner_send_ack_epoch(epoch, Some(current_epoch));
    }

    fn learner_send_ack_epoch(&mut self, epoch: u32, current_epoch: Option<u32>) {
        // The election waited for every write, so the log end is durable (ZOOKEEPER-2355).
        let last_logged = self.durable;
        let applied = self.applied;
        debug_assert_eq!(last_logged, self.log.last());
        if let Some(learner) = self.learner_mut() {
            learner.epoch = epoch;
            learner.phase = LearnerPhase::AwaitSync;
        }
        self.send_to_leader(|session| Message::AckEpoch {
            session,
            last_logged,
            current_epoch,
            applied,
        });
    }
}

/// True once LEADERINFO may be sent: acceptedEpoch is durable.
fn epoch_announced(phase: LeaderPhase) -> bool {
    !matches!(
        phase,
        LeaderPhase::Discovery | LeaderPhase::PersistAccepted(_)
    )
}
