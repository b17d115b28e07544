//! The in-memory view of this server's log: every logged txn that is not yet applied, plus
//! up to `diff_window` applied ones (ZooKeeper's committed log, the DIFF source).
//!
//! It refuses non-contiguous appends (ZOOKEEPER-4925): within an epoch counters go up by
//! one; a new epoch may only start later than the last txn. So a DIFF served from here never
//! has a hole.

use crate::types::Entry;
use ek_types::Zxid;
use std::collections::VecDeque;

/// True if a txn with zxid `next` may directly follow the txn `prev` in a history: the
/// next counter of the same epoch, or the first txn (counter `first_counter + 1`, normally 1)
/// of a later epoch. Without the second condition a lost first PROPOSAL of an epoch would go
/// unnoticed.
pub(crate) fn follows(prev: Zxid, next: Zxid, first_counter: u32) -> bool {
    if next.epoch() == prev.epoch() {
        prev.counter().checked_add(1) == Some(next.counter())
    } else {
        next.epoch() > prev.epoch() && first_counter.checked_add(1) == Some(next.counter())
    }
}

/// A contiguous run of entries after `base`, the zxid of the txn just before the first one
/// (or of the snapshot the run starts after; `Zxid::ZERO` for an empty history).
#[derive(Clone, Debug, Default)]
pub(crate) struct Log {
    first_counter: u32,
    base: Zxid,
    entries: VecDeque<Entry>,
}

impl Log {
    /// A log after `base` holding `entries`; `Err(zxid)` names the first entry that does not
    /// follow its predecessor.
    pub(crate) fn new(base: Zxid, entries: Vec<Entry>, first_counter: u32) -> Result<Log, Zxid> {
        let mut log = Log {
            first_counter,
            base,
            entries: VecDeque::with_capacity(entries.len()),
        };
        for entry in entries {
            let zxid = entry.zxid;
            log.append(entry).map_err(|()| zxid)?;
        }
        Ok(log)
    }

    /// True if `next` may directly follow `prev` (see [`follows`]).
    pub(crate) fn follows(&self, prev: Zxid, next: Zxid) -> bool {
        follows(prev, next, self.first_counter)
    }

    /// The zxid before the first entry.
    pub(crate) fn base(&self) -> Zxid {
        self.base
    }

    /// The last logged zxid (`base` if empty).
    pub(crate) fn last(&self) -> Zxid {
        self.entries.back().map_or(self.base, |entry| entry.zxid)
    }

    fn position(&self, zxid: Zxid) -> Result<usize, usize> {
        self.entries.binary_search_by(|entry| entry.zxid.cmp(&zxid))
    }

    /// True if `zxid` names a txn of this history that we know: the base or an entry.
    pub(crate) fn contains(&self, zxid: Zxid) -> bool {
        zxid == self.base || self.position(zxid).is_ok()
    }

    /// The entry with this zxid.
    pub(crate) fn get(&self, zxid: Zxid) -> Option<&Entry> {
        self.position(zxid).ok().map(|index| &self.entries[index])
    }

    /// The first entry with a zxid greater than `zxid`.
    pub(crate) fn first_after(&self, zxid: Zxid) -> Option<&Entry> {
        let index = match self.position(zxid) {
            Ok(index) => index + 1,
            Err(index) => index,
        };
        self.entries.get(index)
    }

    /// The last known zxid below `zxid` (an entry or the base).
    pub(crate) fn last_before(&self, zxid: Zxid) -> Zxid {
        let index = match self.position(zxid) {
            Ok(index) | Err(index) => index,
        };
        if index == 0 {
            self.base
        } else {
            self.entries[index - 1].zxid
        }
    }

    /// Entries with `after < zxid <= up_to`, in order.
    pub(crate) fn range(&self, after: Zxid, up_to: Zxid) -> impl Iterator<Item = &Entry> {
        let start = match self.position(after) {
            Ok(index) => index + 1,
            Err(index) => index,
        };
        self.entries
            .range(start..)
            .take_while(move |entry| entry.zxid <= up_to)
    }

    /// Appends `entry` if it directly follows the last txn.
    pub(crate) fn append(&mut self, entry: Entry) -> Result<(), ()> {
        if !self.follows(self.last(), entry.zxid) {
            return Err(());
        }
        self.entries.push_back(entry);
        Ok(())
    }

    /// Drops every entry after `zxid`; false (and no change) if `zxid` is not known.
    pub(crate) fn truncate_after(&mut self, zxid: Zxid) -> bool {
        if zxid == self.base {
            self.entries.clear();
            return true;
        }
        match self.position(zxid) {
            Ok(index) => {
                self.entries.truncate(index + 1);
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets everything; the history now starts after a snapshot at `base`.
    pub(crate) fn reset(&mut self, base: Zxid) {
        self.base = base;
        self.entries.clear();
    }

    /// Forgets applied entries (≤ `applied`) beyond the newest `keep` of them.
    pub(crate) fn trim(&mut self, keep: usize, applied: Zxid) {
        let applied_count = match self.position(applied) {
            Ok(index) => index + 1,
            Err(index) => index,
        };
        let excess = applied_count.saturating_sub(keep);
        for _ in 0..excess {
            if let Some(entry) = self.entries.pop_front() {
                self.base = entry.zxid;
            }
        }
    }
}

/// splitmix64: a tiny deterministic PRNG for session nonces and election jitter.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        self.next_u64() % max.saturating_add(1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: u32, counter: u32) -> Entry {
        Entry {
            zxid: Zxid::new(epoch, counter),
            data: vec![counter as u8],
        }
    }

    #[test]
    fn refuses_holes_and_accepts_epoch_jumps() {
        let mut log = Log::default();
        assert!(log.append(entry(1, 1)).is_ok());
        assert!(log.append(entry(1, 3)).is_err());
        assert!(log.append(entry(1, 2)).is_ok());
        assert!(
            log.append(entry(3, 2)).is_err(),
            "a lost first txn of an epoch"
        );
        assert!(log.append(entry(3, 1)).is_ok());
        assert!(log.append(entry(2, 5)).is_err());
        assert_eq!(log.last(), Zxid::new(3, 1));
        assert!(log.contains(Zxid::ZERO));
        assert_eq!(log.last_before(Zxid::new(2, 7)), Zxid::new(1, 2));
        assert_eq!(
            log.first_after(Zxid::new(1, 2)).unwrap().zxid,
            Zxid::new(3, 1)
        );
    }

    #[test]
    fn truncate_and_trim() {
        let mut log = Log::new(Zxid::ZERO, (1..=6).map(|c| entry(1, c)).collect(), 0).unwrap();
        assert!(!log.truncate_after(Zxid::new(2, 1)));
        assert!(log.truncate_after(Zxid::new(1, 4)));
        assert_eq!(log.last(), Zxid::new(1, 4));
        log.trim(2, Zxid::new(1, 3));
        assert_eq!(log.base(), Zxid::new(1, 1));
        assert_eq!(
            log.range(Zxid::ZERO, Zxid::new(1, 3))
                .map(|e| e.zxid)
                .collect::<Vec<_>>(),
            vec![Zxid::new(1, 2), Zxid::new(1, 3)]
        );
    }
}
