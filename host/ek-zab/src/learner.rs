//! The learner's state (follower or observer, Java's `Learner`), its message dispatch, its
//! timers, and the learner side of `sync` and request forwarding.

use crate::peer::{Peer, RoleState};
use crate::types::{
    Entry, Event, Message, PersistId, RequestError, Role, ServerId, SyncKind, Time,
};
use ek_types::Zxid;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LearnerPhase {
    /// FOLLOWERINFO sent (and resent every tick), waiting for LEADERINFO.
    AwaitLeaderInfo,
    /// Writing acceptedEpoch before ACKEPOCH leaves.
    PersistAccepted(PersistId),
    /// ACKEPOCH sent, waiting for DIFF/TRUNC/SNAP.
    AwaitSync,
    /// Receiving the sync stream, up to UPTODATE.
    Syncing,
    /// UPTODATE received.
    Broadcast,
}

/// Where the NEWLEADER handling stands (zab.md §6.3 learner step 3, §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NewLeaderStep {
    NotSeen,
    /// NEWLEADER received; for SNAP, waiting for the snapshot.
    Received,
    /// Synced txns (and snapshot or truncation) being made durable.
    PersistTxns(u64),
    /// currentEpoch being made durable.
    PersistEpoch(u64),
    /// NEWLEADER-ACK sent.
    Acked,
}

/// The sync stream as received so far.
#[derive(Clone, Debug)]
pub(crate) struct SyncBuffer {
    pub(crate) kind: Option<SyncKind>,
    /// SNAP: the stream starts after this zxid.
    pub(crate) snap_min: Zxid,
    /// SNAP: the snapshot's zxid once received.
    pub(crate) snapshot: Option<Zxid>,
    /// Proposals not yet logged (Java's `packetsNotLogged`).
    pub(crate) entries: Vec<Entry>,
    /// Highest COMMIT seen in the stream.
    pub(crate) commit: Zxid,
    pub(crate) newleader: NewLeaderStep,
}

#[derive(Debug)]
pub(crate) struct Learner {
    pub(crate) leader: ServerId,
    pub(crate) observer: bool,
    pub(crate) session: u64,
    pub(crate) phase: LearnerPhase,
    /// The leader's new epoch (0 until LEADERINFO).
    pub(crate) epoch: u32,
    pub(crate) last_heard: Time,
    /// When this attempt began: discovery and sync must finish within `initLimit` of it,
    /// however chatty the leader's pings are (a lost message must not wedge us).
    pub(crate) started_at: Time,
    pub(crate) resend_at: Time,
    pub(crate) sync: SyncBuffer,
    /// Highest zxid acked to the leader in broadcast.
    pub(crate) acked: Zxid,
    /// `sync` ids, with the leader's target once it replied.
    pub(crate) syncs: BTreeMap<u64, Option<Zxid>>,
}

impl Learner {
    pub(crate) fn is_established(&self) -> bool {
        self.phase == LearnerPhase::Broadcast
    }

    pub(crate) fn take_syncs(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.syncs).into_keys().collect()
    }
}

impl Peer {
    pub(crate) fn learner_mut(&mut self) -> Option<&mut Learner> {
        match &mut self.role {
            RoleState::Learning(learner) => Some(learner),
            _ => None,
        }
    }

    pub(crate) fn learner_ref(&self) -> Option<&Learner> {
        match &self.role {
            RoleState::Learning(learner) => Some(learner),
            _ => None,
        }
    }

    /// Decided to follow (or observe) `leader`: start discovery with a fresh session.
    pub(crate) fn become_learner(&mut self, leader: ServerId, observer: bool) {
        let session = self.rng.next_u64();
        let now = self.now;
        let learner = Learner {
            leader,
            observer,
            session,
            phase: LearnerPhase::AwaitLeaderInfo,
            epoch: 0,
            last_heard: now,
            started_at: now,
            resend_at: now.plus_ms(self.cfg.tick_ms),
            sync: SyncBuffer {
                kind: None,
                snap_min: Zxid::ZERO,
                snapshot: None,
                entries: Vec::new(),
                commit: Zxid::ZERO,
                newleader: NewLeaderStep::NotSeen,
            },
            acked: Zxid::ZERO,
            syncs: BTreeMap::new(),
        };
        self.role = RoleState::Learning(Box::new(learner));
        self.emit(Event::RoleChanged {
            role: if observer {
                Role::Observing
            } else {
                Role::Following
            },
            leader: Some(leader),
        });
        self.learner_send_info();
    }

    pub(crate) fn learner_send_info(&mut self) {
        let accepted_epoch = self.accepted_epoch;
        let Some(learner) = self.learner_ref() else {
            return;
        };
        let (leader, session, observer) = (learner.leader, learner.session, learner.observer);
        self.send(
            leader,
            Message::FollowerInfo {
                session,
                accepted_epoch,
                observer,
            },
        );
    }

    /// Sends a message to the leader in this learner's session.
    pub(crate) fn send_to_leader(&mut self, make: impl FnOnce(u64) -> Message) {
        let Some(learner) = self.learner_ref() else {
            return;
        };
        let (leader, session) = (learner.leader, learner.session);
        self.send(leader, make(session));
    }

    pub(crate) fn learner_on_message(&mut self, msg: Message) {
        let session = match &msg {
            Message::LeaderInfo { session, .. }
            | Message::Diff { session, .. }
            | Message::Trunc { session, .. }
            | Message::Snap { session, .. }
            | Message::Proposal { session, .. }
            | Message::Commit { session, .. }
            | Message::NewLeader { session, .. }
            | Message::UpToDate { session, .. }
            | Message::Inform { session, .. }
            | Message::Ping { session, .. }
            | Message::SyncReply { session, .. } => *session,
            _ => return,
        };
        let now = self.now;
        let Some(learner) = self.learner_mut() else {
            return;
        };
        if learner.session != session {
            return;
        }
        learner.last_heard = now;
        let phase = learner.phase;
        let observer = learner.observer;
        match (phase, msg) {
            (_, Message::Ping { zxid: proposed, .. }) => {
                // The leader sent every proposal up to `proposed` before this ping, on the
                // same FIFO link: if our log stops short, messages were lost in between
                // (a link re-made mid-session), and an idle leader would never tell us.
                // (A new epoch's leader reports `(epoch, first_counter)` before it proposes.)
                let proposed_any = proposed.counter() > self.cfg.first_counter;
                if phase == LearnerPhase::Broadcast
                    && !observer
                    && proposed_any
                    && proposed > self.log.last()
                {
                    self.become_looking("missed proposals: the leader's ping is ahead of our log");
                    return;
                }
                let zxid = self.durable;
                self.send_to_leader(|session| Message::Ping { session, zxid });
            }
            (LearnerPhase::AwaitLeaderInfo, Message::LeaderInfo { epoch, .. }) => {
                self.learner_on_leader_info(epoch)
            }
            (LearnerPhase::AwaitSync, msg) => self.learner_on_sync_header(msg),
            (LearnerPhase::Syncing, msg) => self.learner_on_sync_message(msg),
            (LearnerPhase::Broadcast, msg) => self.learner_on_broadcast(msg),
            (_, Message::LeaderInfo { .. }) => {} // duplicate of the one being handled
            (_, msg) => self.learner_protocol_error(&msg),
        }
    }

    /// An unexpected message in this session: the stream is not what the protocol allows
    /// (lost, reordered or duplicated messages). Give up; the next attempt starts clean.
    pub(crate) fn learner_protocol_error(&mut self, msg: &Message) {
        tracing::warn!(id = self.cfg.id, ?msg, "unexpected message from the leader");
        self.become_looking("protocol error in the leader stream");
    }

    pub(crate) fn learner_deadline(&self, learner: &Learner) -> Time {
        if learner.phase == LearnerPhase::Broadcast {
            let sync_ms = self.tick_ms(self.cfg.sync_limit_ticks);
            return learner.last_heard.plus_ms(sync_ms);
        }
        let init_ms = self.tick_ms(self.cfg.init_limit_ticks);
        let give_up = learner.started_at.plus_ms(init_ms);
        if learner.phase == LearnerPhase::AwaitLeaderInfo {
            give_up.min(learner.resend_at)
        } else {
            give_up
        }
    }

    pub(crate) fn learner_on_timeout(&mut self) {
        let now = self.now;
        let tick_ms = self.cfg.tick_ms;
        let Some(learner) = self.learner_ref() else {
            return;
        };
        let expired = if learner.phase == LearnerPhase::Broadcast {
            now.ms_since(learner.last_heard) >= self.tick_ms(self.cfg.sync_limit_ticks)
        } else {
            now.ms_since(learner.started_at) >= self.tick_ms(self.cfg.init_limit_ticks)
        };
        if expired {
            self.become_looking("leader silent, or sync not done within initLimit");
            return;
        }
        if learner.phase == LearnerPhase::AwaitLeaderInfo && learner.resend_at <= now {
            if let Some(learner) = self.learner_mut() {
                learner.resend_at = now.plus_ms(tick_ms);
            }
            self.learner_send_info();
        }
    }

    pub(crate) fn learner_on_persisted(&mut self) {
        let Some(learner) = self.learner_ref() else {
            return;
        };
        match learner.phase {
            LearnerPhase::PersistAccepted(id) if self.persisted_through >= id.0 => {
                self.learner_on_accepted_epoch_durable()
            }
            LearnerPhase::Syncing => self.learner_newleader_progress(),
            LearnerPhase::Broadcast => self.learner_maybe_ack(),
            _ => {}
        }
    }

    pub(crate) fn learner_forward(&mut self, payload: Vec<u8>) -> Result<(), RequestError> {
        match &self.role {
            RoleState::Leading(_) => Err(RequestError::IsLeader),
            RoleState::Learning(learner) if learner.is_established() => {
                self.send_to_leader(|session| Message::Request { session, payload });
                Ok(())
            }
            _ => Err(RequestError::NoLeader),
        }
    }

    pub(crate) fn learner_sync(&mut self, id: u64) -> Result<(), RequestError> {
        let Some(learner) = self.learner_mut() else {
            return Err(RequestError::NoLeader);
        };
        if !learner.is_established() {
            return Err(RequestError::NoLeader);
        }
        learner.syncs.insert(id, None);
        self.send_to_leader(|session| Message::SyncRequest { session, id });
        Ok(())
    }

    pub(crate) fn learner_check_syncs(&mut self) {
        let applied = self.applied;
        let Some(learner) = self.learner_mut() else {
            return;
        };
        let done: Vec<u64> = learner
            .syncs
            .iter()
            .filter(|(_, target)| target.is_some_and(|zxid| zxid <= applied))
            .map(|(id, _)| *id)
            .collect();
        for id in &done {
            learner.syncs.remove(id);
        }
        for id in done {
            self.emit(Event::SyncDone { id });
        }
    }
}
