//! Phase 3: broadcast (zab.md §6.5). Pipelined PROPOSAL → ACK → COMMIT, strictly in zxid
//! order; the leader counts its own ack only after its own fsync; followers ACK only after
//! theirs. Also ZooKeeper's `sync`.

use crate::leader::{LeaderPhase, Outstanding, Stage, SyncWaiter};
use crate::learner::LearnerPhase;
use crate::peer::Peer;
use crate::types::{Entry, Event, Message, ProposeError, RequestError, ServerId};
use ek_types::Zxid;
use std::collections::BTreeSet;

impl Peer {
    // ---- leader ----

    pub(crate) fn leader_next_zxid(&self) -> Result<Zxid, ProposeError> {
        let Some(leader) = self.leader_ref() else {
            return Err(ProposeError::NotLeader {
                leader: self.leader(),
            });
        };
        if leader.phase != LeaderPhase::Broadcast {
            return Err(ProposeError::NotReady);
        }
        leader
            .last_proposed
            .next()
            .ok_or(ProposeError::CounterExhausted)
    }

    pub(crate) fn leader_propose(&mut self, data: Vec<u8>) -> Result<Zxid, ProposeError> {
        let leader_hint = self.leader();
        let now = self.now;
        let Some(leader) = self.leader_mut() else {
            return Err(ProposeError::NotLeader {
                leader: leader_hint,
            });
        };
        if leader.phase != LeaderPhase::Broadcast {
            return Err(ProposeError::NotReady);
        }
        let Some(zxid) = leader.last_proposed.next() else {
            // ZOOKEEPER-1277: the counter would reach 0xffffffff; a new epoch resets it.
            self.become_looking("zxid counter exhausted");
            return Err(ProposeError::CounterExhausted);
        };
        leader.last_proposed = zxid;
        leader.outstanding.insert(
            zxid,
            Outstanding {
                acks: BTreeSet::new(),
                proposed_at: now,
            },
        );
        let entry = Entry { zxid, data };
        let prev = self.log.last();
        let appended = self.log.append(entry.clone());
        debug_assert!(appended.is_ok(), "leader log must stay contiguous");
        self.persist_append(vec![entry.clone()]);
        let followers = self
            .leader_ref()
            .map_or(Vec::new(), |l| l.forwarding(false));
        for (to, session) in followers {
            let entry = entry.clone();
            self.send(
                to,
                Message::Proposal {
                    session,
                    prev,
                    entry,
                },
            );
        }
        Ok(zxid)
    }

    pub(crate) fn leader_on_ack(&mut self, from: ServerId, zxid: Zxid) {
        let Some(leader) = self.leader_mut() else {
            return;
        };
        if zxid.counter() == 0 {
            if zxid.epoch() == leader.epoch {
                self.leader_on_newleader_ack(from);
            }
            return;
        }
        let Some(handle) = leader.learners.get_mut(&from) else {
            return;
        };
        if handle.observer || handle.stage != Stage::UpToDate {
            // Proposal ACKs only count after UPTODATE (ZOOKEEPER-4685); observers never ACK.
            return;
        }
        handle.acked = handle.acked.max(zxid);
        // Cumulative: the learner's log is its leader's history, durable up to `zxid`.
        for (_, outstanding) in leader.outstanding.range_mut(..=zxid) {
            outstanding.acks.insert(from);
        }
        self.leader_try_commit();
    }

    /// Our own fsync counts as our ack.
    pub(crate) fn leader_self_ack(&mut self) {
        let durable = self.durable;
        let me = self.cfg.id;
        let Some(leader) = self.leader_mut() else {
            return;
        };
        for (_, outstanding) in leader.outstanding.range_mut(..=durable) {
            outstanding.acks.insert(me);
        }
        self.leader_try_commit();
    }

    /// Commits proposals in zxid order while the oldest has a quorum of acks. Followers get
    /// one cumulative COMMIT for the newest of them (a COMMIT covers every earlier zxid);
    /// observers get each txn as an INFORM.
    fn leader_try_commit(&mut self) {
        let mut newest = None;
        while let Some(leader) = self.leader_ref() {
            let Some((&zxid, outstanding)) = leader.outstanding.first_key_value() else {
                break;
            };
            if !self.cfg.is_quorum(outstanding.acks.iter()) {
                break;
            }
            let observers = leader.forwarding(true);
            if let Some(leader) = self.leader_mut() {
                leader.outstanding.remove(&zxid);
            }
            self.committed = zxid;
            newest = Some(zxid);
            if !observers.is_empty() {
                let Some(entry) = self.log.get(zxid).cloned() else {
                    break;
                };
                let prev = self.log.last_before(zxid);
                for (to, session) in observers {
                    let entry = entry.clone();
                    self.send(
                        to,
                        Message::Inform {
                            session,
                            prev,
                            entry,
                        },
                    );
                }
            }
        }
        let (Some(zxid), Some(leader)) = (newest, self.leader_ref()) else {
            return;
        };
        for (to, session) in leader.forwarding(false) {
            self.send(to, Message::Commit { session, zxid });
        }
    }

    pub(crate) fn leader_sync(&mut self, id: u64) -> Result<(), RequestError> {
        let target = self.log.last();
        let Some(leader) = self.leader_mut() else {
            return Err(RequestError::NoLeader);
        };
        if !leader.is_established() {
            return Err(RequestError::NoLeader);
        }
        leader.syncs.push((SyncWaiter::Local(id), target));
        Ok(())
    }

    pub(crate) fn leader_on_sync_request(&mut self, from: ServerId, session: u64, id: u64) {
        let target = self.log.last();
        let Some(leader) = self.leader_mut() else {
            return;
        };
        if !leader.is_established() {
            return;
        }
        let waiter = SyncWaiter::Remote {
            to: from,
            session,
            id,
        };
        leader.syncs.push((waiter, target));
        self.leader_check_syncs();
    }

    /// Answers syncs whose target is committed (remote) or delivered (local).
    pub(crate) fn leader_check_syncs(&mut self) {
        let (committed, applied) = (self.committed, self.applied);
        let Some(leader) = self.leader_mut() else {
            return;
        };
        let mut ready = Vec::new();
        leader.syncs.retain(|&(waiter, target)| {
            let done = match waiter {
                SyncWaiter::Local(_) => target <= applied,
                SyncWaiter::Remote { .. } => target <= committed,
            };
            if done {
                ready.push((waiter, target));
            }
            !done
        });
        for (waiter, zxid) in ready {
            match waiter {
                SyncWaiter::Local(id) => self.emit(Event::SyncDone { id }),
                SyncWaiter::Remote { to, session, id } => {
                    self.send(to, Message::SyncReply { session, id, zxid })
                }
            }
        }
    }

    // ---- learner ----

    pub(crate) fn learner_on_broadcast(&mut self, msg: Message) {
        let Some(learner) = self.learner_ref() else {
            return;
        };
        let (epoch, observer) = (learner.epoch, learner.observer);
        match msg {
            Message::Proposal { entry, prev, .. } if !observer => {
                let zxid = entry.zxid;
                if zxid <= self.log.last() {
                    return; // a duplicate (TLA+ issue 2)
                }
                if zxid.epoch() != epoch || prev != self.log.last() {
                    self.become_looking("PROPOSAL does not extend our log");
                    return;
                }
                let appended = self.log.append(entry.clone());
                debug_assert!(appended.is_ok());
                self.persist_append(vec![entry]);
            }
            Message::Commit { zxid, .. } if !observer => {
                if zxid > self.log.last() {
                    self.become_looking("COMMIT for a txn not received");
                    return;
                }
                self.committed = self.committed.max(zxid);
            }
            Message::Inform { entry, prev, .. } if observer => {
                self.observer_on_inform(entry, prev, epoch)
            }
            Message::SyncReply { id, zxid, .. } => {
                if let Some(learner) = self.learner_mut() {
                    if let Some(target) = learner.syncs.get_mut(&id) {
                        *target = Some(zxid);
                    }
                }
            }
            msg => self.learner_protocol_error(&msg),
        }
    }

    /// Followers ACK (cumulatively) what is durable, only in broadcast (ZOOKEEPER-4685).
    pub(crate) fn learner_maybe_ack(&mut self) {
        let durable = self.durable;
        let Some(learner) = self.learner_mut() else {
            return;
        };
        if learner.observer || learner.phase != LearnerPhase::Broadcast || durable <= learner.acked
        {
            return;
        }
        learner.acked = durable;
        self.send_to_leader(|session| Message::Ack {
            session,
            zxid: durable,
        });
    }
}
