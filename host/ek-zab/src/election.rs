//! Phase 0: Fast Leader Election (zab.md §4, Java's `FastLeaderElection.lookForLeader`).
//!
//! Votes are ordered by (currentEpoch, last logged zxid, id). Observers never vote and are
//! never voted for: voters drop notifications whose sender or candidate is not a voter and
//! answer them with their own vote; observers only act on FOLLOWING/LEADING votes.

use crate::peer::{Peer, RoleState};
use crate::types::{Message, Notification, ServerId, ServerState, Time, Vote};
use std::collections::BTreeMap;

/// A vote as received, with the sender's round and state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    vote: Vote,
    round: u64,
    state: ServerState,
}

impl Received {
    /// Java's `Vote.equals`: full equality when either side is LOOKING, else only
    /// (leader, peerEpoch) (ZOOKEEPER-1732/1818).
    fn agrees(&self, other: &Received) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            self.vote == other.vote && self.round == other.round
        } else {
            self.vote.leader == other.vote.leader && self.vote.epoch == other.vote.epoch
        }
    }
}

/// State while LOOKING.
#[derive(Debug)]
pub(crate) struct Election {
    /// False until every issued storage request is durable.
    started: bool,
    initial: Vote,
    proposal: Vote,
    recvset: BTreeMap<ServerId, Received>,
    outofelection: BTreeMap<ServerId, Received>,
    timeout_ms: u64,
    resend_at: Time,
    finalize_at: Option<Time>,
}

impl Election {
    pub(crate) fn waiting() -> Election {
        let vote = Vote {
            leader: 0,
            zxid: ek_types::Zxid::ZERO,
            epoch: 0,
        };
        Election {
            started: false,
            initial: vote,
            proposal: vote,
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            timeout_ms: 0,
            resend_at: Time::ZERO,
            finalize_at: None,
        }
    }

    pub(crate) fn deadline(&self) -> Option<Time> {
        if !self.started {
            return None;
        }
        Some(match self.finalize_at {
            Some(at) => at.min(self.resend_at),
            None => self.resend_at,
        })
    }
}

impl Peer {
    fn election(&mut self) -> Option<&mut Election> {
        match &mut self.role {
            RoleState::Looking(election) if election.started => Some(election),
            _ => None,
        }
    }

    fn my_state(&self) -> ServerState {
        match &self.role {
            RoleState::Looking(_) => ServerState::Looking,
            RoleState::Leading(_) => ServerState::Leading,
            RoleState::Learning(learner) if learner.observer => ServerState::Observing,
            RoleState::Learning(_) => ServerState::Following,
        }
    }

    fn my_notification(&self) -> Message {
        let vote = match &self.role {
            RoleState::Looking(election) => election.proposal,
            _ => self.vote,
        };
        Message::Notification(Notification {
            state: self.my_state(),
            vote,
            round: self.round,
        })
    }

    fn broadcast_notification(&mut self) {
        let msg = self.my_notification();
        let me = self.cfg.id;
        let voters: Vec<ServerId> = self.cfg.voters.iter().copied().collect();
        for voter in voters.into_iter().filter(|&v| v != me) {
            self.send(voter, msg.clone());
        }
    }

    /// Starts the election once nothing is being written (ZOOKEEPER-4712): the initial
    /// vote then names a durable last zxid and currentEpoch (ZOOKEEPER-2355).
    pub(crate) fn maybe_start_election(&mut self) {
        let ready = matches!(&self.role, RoleState::Looking(e) if !e.started);
        if !ready || !self.persist_idle() {
            return;
        }
        debug_assert_eq!(self.durable, self.log.last());
        self.round += 1;
        let initial = Vote {
            leader: self.cfg.id,
            zxid: self.durable,
            epoch: self.current_epoch,
        };
        self.vote = initial;
        let me = self.cfg.id;
        let voter = self.cfg.is_voter(me);
        let round = self.round;
        let timeout_ms = self.cfg.notification_timeout_ms_min;
        let jitter_ms = self.rng.up_to(timeout_ms / 2);
        let now = self.now;
        let RoleState::Looking(election) = &mut self.role else {
            return;
        };
        election.started = true;
        election.initial = initial;
        election.proposal = initial;
        election.timeout_ms = timeout_ms;
        election.resend_at = now.plus_ms(timeout_ms + jitter_ms);
        if voter {
            election.recvset.insert(me, looking(initial, round));
        }
        self.broadcast_notification();
        self.check_looking_quorum();
    }

    pub(crate) fn on_notification(&mut self, from: ServerId, n: Notification) {
        let from_voter = self.cfg.is_voter(from);
        if !matches!(self.role, RoleState::Looking(_)) {
            // Receiver side when not LOOKING: answer a LOOKING peer with our vote.
            if n.state == ServerState::Looking {
                let msg = self.my_notification();
                self.send(from, msg);
            }
            return;
        }
        if self.election().is_none() {
            return;
        }
        if !from_voter || !self.cfg.is_voter(n.vote.leader) {
            // zab.md §4.3 step 3: non-voters get our current vote back.
            if n.state == ServerState::Looking {
                let msg = self.my_notification();
                self.send(from, msg);
            }
            return;
        }
        match n.state {
            ServerState::Looking if self.cfg.is_voter(self.cfg.id) => self.on_looking(from, n),
            ServerState::Looking => {} // observers ignore LOOKING notifications
            ServerState::Following | ServerState::Leading => self.on_established(from, n),
            ServerState::Observing => {}
        }
    }

    fn on_looking(&mut self, from: ServerId, n: Notification) {
        let me = self.cfg.id;
        let mut round = self.round;
        let Some(election) = self.election() else {
            return;
        };
        let mut changed = false;
        if n.round > round {
            round = n.round;
            election.recvset.clear();
            election.proposal = if n.vote.better_than(&election.initial) {
                n.vote
            } else {
                election.initial
            };
            changed = true;
        } else if n.round < round {
            // Receiver side: a peer in an older round gets our proposal back.
            let msg = self.my_notification();
            self.send(from, msg);
            return;
        } else if n.vote.better_than(&election.proposal) {
            election.proposal = n.vote;
            changed = true;
        }
        election.recvset.insert(from, looking(n.vote, n.round));
        let proposal = election.proposal;
        election.recvset.insert(me, looking(proposal, round));
        self.round = round;
        if changed {
            self.broadcast_notification();
        }
        self.check_looking_quorum();
    }

    /// Arms (or disarms) `finalizeWait` depending on whether a quorum agrees.
    fn check_looking_quorum(&mut self) {
        let round = self.round;
        let now = self.now;
        let wait_ms = self.cfg.finalize_wait_ms;
        let Some(election) = self.election_ref() else {
            return;
        };
        let target = looking(election.proposal, round);
        let agreeing: Vec<ServerId> = election
            .recvset
            .iter()
            .filter(|(_, r)| r.agrees(&target))
            .map(|(id, _)| *id)
            .collect();
        let quorum = self.cfg.is_quorum(agreeing.iter());
        let Some(election) = self.election() else {
            return;
        };
        if !quorum {
            election.finalize_at = None;
        } else if election.finalize_at.is_none() {
            election.finalize_at = Some(now.plus_ms(wait_ms));
            if wait_ms == 0 {
                self.election_on_timeout();
            }
        }
    }

    fn election_ref(&self) -> Option<&Election> {
        match &self.role {
            RoleState::Looking(election) if election.started => Some(election),
            _ => None,
        }
    }

    fn on_established(&mut self, from: ServerId, n: Notification) {
        let received = Received {
            vote: n.vote,
            round: n.round,
            state: n.state,
        };
        let round = self.round;
        let Some(election) = self.election() else {
            return;
        };
        if n.round == round {
            election.recvset.insert(from, received);
            let set = election.recvset.clone();
            if self.agreed_and_leader_checked(&set, &received) {
                self.decide(n.vote);
                return;
            }
        }
        let Some(election) = self.election() else {
            return;
        };
        election.outofelection.insert(from, received);
        let set = election.outofelection.clone();
        if self.agreed_and_leader_checked(&set, &received) {
            self.round = n.round;
            self.decide(n.vote);
        }
    }

    /// A quorum of `set` agrees with `target`, and `checkLeader` holds: a leader other than
    /// us must itself say LEADING (else a crashed leader could be elected forever); if it
    /// is us, the round must be ours.
    fn agreed_and_leader_checked(
        &self,
        set: &BTreeMap<ServerId, Received>,
        target: &Received,
    ) -> bool {
        let agreeing = set
            .iter()
            .filter(|(_, r)| r.agrees(target))
            .map(|(id, _)| id);
        if !self.cfg.is_quorum(agreeing) {
            return false;
        }
        let leader = target.vote.leader;
        if leader == self.cfg.id {
            target.round == self.round
        } else {
            set.get(&leader)
                .is_some_and(|r| r.state == ServerState::Leading)
        }
    }

    /// The transport (re)connected to `peer`. While looking, a voter gets our vote at once
    /// and the resend backoff starts over: notifications sent while the link was down were
    /// lost, and waiting out a doubled timeout would delay the election for nothing.
    pub(crate) fn election_on_peer_connected(&mut self, peer: ServerId) {
        if !self.cfg.is_voter(peer) || peer == self.cfg.id {
            return;
        }
        let now = self.now;
        let min_ms = self.cfg.notification_timeout_ms_min;
        let Some(election) = self.election() else {
            return;
        };
        election.timeout_ms = min_ms;
        election.resend_at = election.resend_at.min(now.plus_ms(min_ms));
        let msg = self.my_notification();
        self.send(peer, msg);
    }

    pub(crate) fn election_on_timeout(&mut self) {
        let now = self.now;
        let Some(election) = self.election() else {
            return;
        };
        if election.finalize_at.is_some_and(|at| at <= now) {
            let proposal = election.proposal;
            self.decide(proposal);
            return;
        }
        if election.resend_at <= now {
            let max_ms = self.cfg.notification_timeout_ms_max;
            let Some(election) = self.election() else {
                return;
            };
            election.timeout_ms = (election.timeout_ms * 2).min(max_ms);
            let timeout_ms = election.timeout_ms;
            let jitter_ms = self.rng.up_to(timeout_ms / 2);
            if let Some(election) = self.election() {
                election.resend_at = now.plus_ms(timeout_ms + jitter_ms);
            }
            self.broadcast_notification();
        }
    }

    fn decide(&mut self, vote: Vote) {
        tracing::info!(
            id = self.cfg.id,
            leader = vote.leader,
            round = self.round,
            "elected"
        );
        self.vote = vote;
        if vote.leader == self.cfg.id {
            self.become_leading();
        } else {
            let observer = !self.cfg.is_voter(self.cfg.id);
            self.become_learner(vote.leader, observer);
        }
    }
}

fn looking(vote: Vote, round: u64) -> Received {
    Received {
        vote,
        round,
        state: ServerState::Looking,
    }
}
