//! Observers (zab.md §7): learners that never vote, never ACK a proposal and never count in a
//! quorum. They sync like followers (their ACKEPOCH and NEWLEADER-ACK are not counted), then
//! receive INFORM (a committed txn with its content) instead of PROPOSAL/COMMIT. In election
//! they only listen: voters drop their votes and answer with their own, and an observer
//! decides only on a quorum of FOLLOWING/LEADING votes (see `election.rs`).

use crate::peer::Peer;
use crate::types::Entry;
use ek_types::Zxid;

impl Peer {
    /// INFORM in broadcast: log it, and it is committed.
    pub(crate) fn observer_on_inform(&mut self, entry: Entry, prev: Zxid, epoch: u32) {
        let zxid = entry.zxid;
        if zxid > self.log.last() {
            // Committed txns of the leader's history; they may still be of older epochs
            // right after sync, but never of a later one.
            if zxid.epoch() > epoch || prev != self.log.last() {
                self.become_looking("INFORM does not extend our log");
                return;
            }
            let appended = self.log.append(entry.clone());
            debug_assert!(appended.is_ok());
            self.persist_append(vec![entry]);
        }
        self.committed = self.committed.max(zxid);
    }
}
