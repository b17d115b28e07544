//! A simulated disk: what is durable, and the writes in flight. A write becomes durable
//! when its fsync completes; a crash keeps what is durable plus a random prefix of the
//! writes in flight (written, but the completion never reported). The shape checks of
//! zab.md §10.8 and §10.10 run on every write that reaches the platter.

use crate::check::Violation;
use ek_types::Zxid;
use ek_zab::{Entry, PersistId, PersistRequest, PersistedState, ServerId, Time};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

/// True if a txn with zxid `next` may directly follow `prev` in a history (ek-zab's rule
/// with `first_counter` 0): the next counter of the epoch, or counter 1 of a later epoch.
pub(crate) fn follows(prev: Zxid, next: Zxid) -> bool {
    if next.epoch() == prev.epoch() {
        prev.counter().checked_add(1) == Some(next.counter())
    } else {
        next.epoch() > prev.epoch() && next.counter() == 1
    }
}

/// Snapshots a server received for a SNAP sync and has not installed, by (leader, zxid).
pub(crate) type Staged = BTreeMap<(ServerId, Zxid), Rc<Vec<u8>>>;

/// A serialised tree and the zxid it is at.
pub(crate) type SnapshotFile = (Zxid, Rc<Vec<u8>>);

#[derive(Default)]
pub(crate) struct Disk {
    /// Durable acceptedEpoch.
    pub(crate) accepted: u32,
    /// Durable currentEpoch.
    pub(crate) current: u32,
    /// Durable snapshot of the tree (serialised), and its zxid.
    pub(crate) snapshot: Option<SnapshotFile>,
    /// Durable txns after the snapshot.
    pub(crate) log: Vec<Entry>,
    /// Issued writes not yet durable, in order.
    pub(crate) pending: VecDeque<(PersistId, PersistRequest)>,
    /// When the fsync in progress completes.
    pub(crate) busy_until: Option<Time>,
}

impl Disk {
    pub(crate) fn snapshot_zxid(&self) -> Zxid {
        self.snapshot.as_ref().map_or(Zxid::ZERO, |(zxid, _)| *zxid)
    }

    /// The last durable txn.
    pub(crate) fn last(&self) -> Zxid {
        self.log
            .last()
            .map_or(self.snapshot_zxid(), |entry| entry.zxid)
    }

    /// True if the durable history holds the txn `zxid` (in the snapshot or the log).
    pub(crate) fn holds(&self, zxid: Zxid) -> bool {
        zxid <= self.snapshot_zxid()
            || self
                .log
                .binary_search_by(|entry| entry.zxid.cmp(&zxid))
                .is_ok()
    }

    /// True if a write that changes the log is in flight.
    pub(crate) fn log_write_pending(&self) -> bool {
        self.pending.iter().any(|(_, request)| {
            matches!(
                request,
                PersistRequest::Append(_)
                    | PersistRequest::Truncate { .. }
                    | PersistRequest::InstallSnapshot { .. }
            )
        })
    }

    /// What a restarting server reads back.
    pub(crate) fn persisted(&self) -> PersistedState {
        PersistedState {
            accepted_epoch: self.accepted,
            current_epoch: self.current,
            snapshot_zxid: self.snapshot_zxid(),
            log: self.log.clone(),
        }
    }

    /// Makes one write durable. An installed snapshot is returned so the caller loads it
    /// as the live state.
    pub(crate) fn execute(
        &mut self,
        id: ServerId,
        request: PersistRequest,
        staged: &Staged,
    ) -> Result<Option<SnapshotFile>, Violation> {
        match request {
            PersistRequest::Append(entries) => {
                for entry in entries {
                    self.append(id, entry)?;
                }
            }
            PersistRequest::Truncate { after } => {
                if after < self.snapshot_zxid() || !self.holds(after) {
                    return Err(Violation::new(
                        "§10.10 log shape",
                        format!("node {id} truncates to {after}, which its disk does not hold"),
                    ));
                }
                self.log.retain(|entry| entry.zxid <= after);
            }
            PersistRequest::InstallSnapshot {
                from,
                snapshot,
                entries,
            } => {
                let Some(bytes) = staged.get(&(from, snapshot)) else {
                    return Err(Violation::new(
                        "snapshot transfer",
                        format!(
                            "node {id} installs snapshot {snapshot} from {from}, never received"
                        ),
                    ));
                };
                self.snapshot = Some((snapshot, bytes.clone()));
                self.log.clear();
                for entry in entries {
                    self.append(id, entry)?;
                }
                return Ok(Some((snapshot, bytes.clone())));
            }
            PersistRequest::AcceptedEpoch(epoch) => {
                if epoch < self.accepted {
                    return Err(Violation::new(
                        "§10.8 epoch monotonicity",
                        format!("node {id} acceptedEpoch {} -> {epoch}", self.accepted),
                    ));
                }
                self.accepted = epoch;
            }
            PersistRequest::CurrentEpoch(epoch) => {
                if epoch < self.current || epoch > self.accepted {
                    return Err(Violation::new(
                        "§10.8 epoch monotonicity",
                        format!(
                            "node {id} currentEpoch {} -> {epoch} with acceptedEpoch {}",
                            self.current, self.accepted
                        ),
                    ));
                }
                self.current = epoch;
            }
        }
        Ok(None)
    }

    fn append(&mut self, id: ServerId, entry: Entry) -> Result<(), Violation> {
        let last = self.last();
        if !follows(last, entry.zxid) {
            return Err(Violation::new(
                "§10.10 log shape",
                format!("node {id} logs {} after {last}", entry.zxid),
            ));
        }
        self.log.push(entry);
        Ok(())
    }

    /// Writes a snapshot of applied (hence committed and durable) state at `zxid` and drops
    /// the log up to it, as a server purging old log files would.
    pub(crate) fn compact(&mut self, zxid: Zxid, bytes: Rc<Vec<u8>>) {
        if zxid <= self.snapshot_zxid() {
            return;
        }
        self.log.retain(|entry| entry.zxid > zxid);
        self.snapshot = Some((zxid, bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: u32, counter: u32) -> Entry {
        Entry {
            zxid: Zxid::new(epoch, counter),
            data: vec![1],
        }
    }

    #[test]
    fn rejects_holes_and_epoch_regressions() {
        let mut disk = Disk::default();
        let staged = Staged::new();
        let append = |entries| PersistRequest::Append(entries);
        assert!(disk
            .execute(1, append(vec![entry(1, 1), entry(1, 2)]), &staged)
            .is_ok());
        assert!(disk.execute(1, append(vec![entry(1, 4)]), &staged).is_err());
        assert!(disk.execute(1, append(vec![entry(3, 1)]), &staged).is_ok());
        assert!(disk
            .execute(
                1,
                PersistRequest::Truncate {
                    after: Zxid::new(1, 2)
                },
                &staged
            )
            .is_ok());
        assert_eq!(disk.last(), Zxid::new(1, 2));
        assert!(disk
            .execute(1, PersistRequest::CurrentEpoch(1), &staged)
            .is_err());
        assert!(disk
            .execute(1, PersistRequest::AcceptedEpoch(2), &staged)
            .is_ok());
        assert!(disk
            .execute(1, PersistRequest::AcceptedEpoch(1), &staged)
            .is_err());
        disk.compact(Zxid::new(1, 1), Rc::new(Vec::new()));
        assert!(disk.holds(Zxid::new(1, 1)) && disk.holds(Zxid::new(1, 2)));
        assert_eq!(disk.persisted().log.len(), 1);
    }
}
