//! The leader's state (one `LearnerHandler` per learner, Java's `Leader` + `LearnerHandler`),
//! its message dispatch and its timers. The phase logic is in `discovery.rs`, `sync.rs` and
//! `broadcast.rs`.

use crate::peer::{Peer, RoleState};
use crate::types::{Event, Message, PersistId, Role, ServerId, Time, ZabConfig};
use ek_types::Zxid;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaderPhase {
    /// Waiting for a quorum of FOLLOWERINFO.
    Discovery,
    /// Writing acceptedEpoch before any LEADERINFO leaves.
    PersistAccepted(PersistId),
    /// Waiting for a quorum of ACKEPOCH.
    EpochAck,
    /// Writing currentEpoch before any NEWLEADER leaves.
    PersistCurrent(PersistId),
    /// Waiting for a quorum of NEWLEADER-ACK.
    Sync,
    /// Established.
    Broadcast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// FOLLOWERINFO received.
    Info,
    /// ACKEPOCH received; waiting for this leader's currentEpoch to be durable.
    EpochAcked,
    /// Sync stream and NEWLEADER sent; the learner is in the forwarding set.
    NewLeaderSent,
    /// NEWLEADER-ACK received, UPTODATE not yet sent.
    Synced,
    /// UPTODATE sent: broadcast.
    UpToDate,
}

/// One learner as the leader sees it.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    pub(crate) session: u64,
    pub(crate) observer: bool,
    pub(crate) stage: Stage,
    /// The learner's last logged zxid from its ACKEPOCH.
    pub(crate) peer_zxid: Zxid,
    /// The learner's last applied zxid from its ACKEPOCH.
    pub(crate) peer_applied: Zxid,
    /// Highest zxid the learner acked (cumulative).
    pub(crate) acked: Zxid,
    pub(crate) last_heard: Time,
    /// When its FOLLOWERINFO arrived: it must be synced within `initLimit`.
    pub(crate) since: Time,
}

/// An uncommitted proposal.
#[derive(Clone, Debug)]
pub(crate) struct Outstanding {
    pub(crate) acks: BTreeSet<ServerId>,
    pub(crate) proposed_at: Time,
}

/// Who waits for a `sync`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SyncWaiter {
    Local(u64),
    Remote { to: ServerId, session: u64, id: u64 },
}

#[derive(Debug)]
pub(crate) struct Leader {
    pub(crate) phase: LeaderPhase,
    /// The new epoch (0 until chosen).
    pub(crate) epoch: u32,
    pub(crate) max_accepted: u32,
    pub(crate) infos: BTreeSet<ServerId>,
    pub(crate) epoch_acks: BTreeSet<ServerId>,
    pub(crate) newleader_acks: BTreeSet<ServerId>,
    /// (currentEpoch, last zxid) when leading began: a learner ahead of it aborts us.
    pub(crate) summary: (u32, Zxid),
    pub(crate) learners: BTreeMap<ServerId, Handle>,
    pub(crate) outstanding: BTreeMap<Zxid, Outstanding>,
    pub(crate) last_proposed: Zxid,
    pub(crate) phase_deadline: Time,
    pub(crate) next_ping: Time,
    pub(crate) next_check: Time,
    pub(crate) syncs: Vec<(SyncWaiter, Zxid)>,
}

impl Leader {
    pub(crate) fn is_established(&self) -> bool {
        self.phase == LeaderPhase::Broadcast
    }

    pub(crate) fn deadline(&self) -> Time {
        self.next_ping.min(self.next_check)
    }

    pub(crate) fn take_local_syncs(&mut self) -> Vec<u64> {
        let mut failed = Vec::new();
        for (waiter, _) in self.syncs.drain(..) {
            if let SyncWaiter::Local(id) = waiter {
                failed.push(id);
            }
        }
        failed
    }

    /// This leader plus the participants that acked NEWLEADER and were heard from within
    /// `syncLimit` (Java's `LearnerHandler.synced()`).
    pub(crate) fn synced(&self, cfg: &ZabConfig, now: Time) -> Vec<ServerId> {
        let limit_ms = cfg.tick_ms.saturating_mul(cfg.sync_limit_ticks);
        let mut ids = vec![cfg.id];
        ids.extend(
            self.learners
                .iter()
                .filter(|(_, h)| !h.observer && h.stage >= Stage::Synced)
                .filter(|(_, h)| now.ms_since(h.last_heard) <= limit_ms)
                .map(|(id, _)| *id),
        );
        ids
    }

    /// Learners in the forwarding set, with their sessions.
    pub(crate) fn forwarding(&self, observers: bool) -> Vec<(ServerId, u64)> {
        self.learners
            .iter()
            .filter(|(_, h)| h.observer == observers && h.stage >= Stage::NewLeaderSent)
            .map(|(id, h)| (*id, h.session))
            .collect()
    }
}

impl Peer {
    pub(crate) fn leader_mut(&mut self) -> Option<&mut Leader> {
        match &mut self.role {
            RoleState::Leading(leader) => Some(leader),
            _ => None,
        }
    }

    pub(crate) fn leader_ref(&self) -> Option<&Leader> {
        match &self.role {
            RoleState::Leading(leader) => Some(leader),
            _ => None,
        }
    }

    /// Decided to lead: start discovery.
    pub(crate) fn become_leading(&mut self) {
        let now = self.now;
        let half_tick_ms = (self.cfg.tick_ms / 2).max(1);
        let init_ms = self.tick_ms(self.cfg.init_limit_ticks);
        let leader = Leader {
            phase: LeaderPhase::Discovery,
            epoch: 0,
            max_accepted: self.accepted_epoch,
            infos: BTreeSet::from([self.cfg.id]),
            epoch_acks: BTreeSet::from([self.cfg.id]),
            newleader_acks: BTreeSet::from([self.cfg.id]),
            summary: (self.current_epoch, self.log.last()),
            learners: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_proposed: self.log.last(),
            phase_deadline: now.plus_ms(init_ms),
            next_ping: now.plus_ms(half_tick_ms),
            next_check: now.plus_ms(self.cfg.tick_ms),
            syncs: Vec::new(),
        };
        self.role = RoleState::Leading(Box::new(leader));
        self.emit(Event::RoleChanged {
            role: Role::Leading,
            leader: Some(self.cfg.id),
        });
        self.leader_check_info_quorum();
    }

    /// Moves to the next pre-broadcast phase with a fresh `initLimit` deadline.
    pub(crate) fn leader_set_phase(&mut self, phase: LeaderPhase) {
        let init_ms = self.tick_ms(self.cfg.init_limit_ticks);
        let now = self.now;
        if let Some(leader) = self.leader_mut() {
            leader.phase = phase;
            leader.phase_deadline = now.plus_ms(init_ms);
        }
    }

    pub(crate) fn leader_on_message(&mut self, from: ServerId, msg: Message) {
        if let Message::FollowerInfo {
            session,
            accepted_epoch,
            observer: _,
        } = msg
        {
            self.leader_on_follower_info(from, session, accepted_epoch);
            return;
        }
        let session = match &msg {
            Message::AckEpoch { session, .. }
            | Message::Ack { session, .. }
            | Message::Ping { session, .. }
            | Message::Request { session, .. }
            | Message::SyncRequest { session, .. } => *session,
            _ => return,
        };
        let now = self.now;
        let Some(handle) = self
            .leader_mut()
            .and_then(|leader| leader.learners.get_mut(&from))
        else {
            return;
        };
        if handle.session != session {
            return;
        }
        handle.last_heard = now;
        let stage = handle.stage;
        match msg {
            Message::AckEpoch {
                last_logged,
                current_epoch,
                applied,
                ..
            } => self.leader_on_ack_epoch(from, last_logged, current_epoch, applied),
            Message::Ack { zxid, .. } => self.leader_on_ack(from, zxid),
            Message::Request { payload, .. } if stage == Stage::UpToDate => {
                self.emit(Event::Request { from, payload });
            }
            Message::SyncRequest { id, .. } => self.leader_on_sync_request(from, session, id),
            _ => {}
        }
    }

    pub(crate) fn leader_on_persisted(&mut self) {
        let Some(leader) = self.leader_ref() else {
            return;
        };
        match leader.phase {
            LeaderPhase::PersistAccepted(id) if self.persisted_through >= id.0 => {
                self.leader_on_accepted_epoch_durable()
            }
            LeaderPhase::PersistCurrent(id) if self.persisted_through >= id.0 => {
                self.leader_on_current_epoch_durable()
            }
            LeaderPhase::Broadcast => self.leader_self_ack(),
            _ => {}
        }
    }

    pub(crate) fn leader_on_timeout(&mut self) {
        let now = self.now;
        let half_tick_ms = (self.cfg.tick_ms / 2).max(1);
        let tick_ms = self.cfg.tick_ms;
        let Some(leader) = self.leader_mut() else {
            return;
        };
        if leader.next_ping <= now {
            leader.next_ping = now.plus_ms(half_tick_ms);
            let last_proposed = leader.last_proposed;
            let targets: Vec<(ServerId, u64)> = leader
                .learners
                .iter()
                .map(|(id, h)| (*id, h.session))
                .collect();
            for (to, session) in targets {
                self.send(
                    to,
                    Message::Ping {
                        session,
                        zxid: last_proposed,
                    },
                );
            }
        }
        let Some(leader) = self.leader_mut() else {
            return;
        };
        if leader.next_check > now {
            return;
        }
        leader.next_check = now.plus_ms(tick_ms);
        if !leader.is_established() {
            if leader.phase_deadline <= now {
                self.become_looking("initLimit expired before the leader was established");
            }
            return;
        }
        self.leader_drop_lagging();
        let synced = self.synced_learners();
        if !self.cfg.is_quorum(synced.iter()) {
            self.become_looking("synced learners no longer form a quorum");
        }
    }

    /// Drops learners silent or lagging beyond their limit; they time out and rejoin.
    fn leader_drop_lagging(&mut self) {
        let now = self.now;
        let sync_ms = self.tick_ms(self.cfg.sync_limit_ticks);
        let init_ms = self.tick_ms(self.cfg.init_limit_ticks);
        let Some(leader) = self.leader_mut() else {
            return;
        };
        let outstanding = &leader.outstanding;
        let lagging = |h: &Handle| {
            let limit_ms = if h.stage >= Stage::Synced {
                sync_ms
            } else {
                init_ms
            };
            if now.ms_since(h.last_heard) > limit_ms {
                return true;
            }
            if h.stage < Stage::Synced && now.ms_since(h.since) > init_ms {
                return true;
            }
            // The oldest proposal this participant has not acked is older than syncLimit.
            !h.observer
                && h.stage == Stage::UpToDate
                && outstanding
                    .range(..)
                    .find(|(zxid, _)| **zxid > h.acked)
                    .is_some_and(|(_, o)| now.ms_since(o.proposed_at) > sync_ms)
        };
        let dropped: Vec<ServerId> = leader
            .learners
            .iter()
            .filter(|(_, h)| lagging(h))
            .map(|(id, _)| *id)
            .collect();
        for id in dropped {
            tracing::info!(learner = id, "dropping a lagging learner");
            leader.learners.remove(&id);
        }
    }
}
