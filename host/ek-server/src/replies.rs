//! The per-connection reply queue. ZooKeeper clients require replies in request order, and a
//! read must see the session's earlier writes, so a connection's requests complete in FIFO
//! order even though writes wait for the log while later requests arrive.

use ek_jute::Request;
use ek_types::{OpCode, Zxid};
use std::collections::VecDeque;
use std::time::Instant;

/// One request of a connection, from arrival to reply.
#[derive(Debug)]
pub(crate) enum Entry {
    /// The reply is encoded and waits only for the entries before it.
    Ready {
        /// The whole reply frame.
        frame: Vec<u8>,
        /// Close the connection once this reply is out (closeSession).
        close_after: bool,
    },
    /// A reply that may leave only once the tree has applied `until`: a write refused by
    /// prep, whose refusal may rest on txns not yet committed (ZooKeeper sends such
    /// refusals through its pipeline for the same reason). With an empty frame it is a
    /// barrier: a resumed session's reads wait for its writes still in flight.
    Held {
        /// The zxid the tree must have applied.
        until: Zxid,
        /// The reply frame, or empty for a barrier.
        frame: Vec<u8>,
    },
    /// A write waiting for its txn to commit.
    Waiting {
        /// The txn's zxid; `None` for a write forwarded to the leader, whose zxid this node
        /// learns only when the txn (carrying the session and xid) commits.
        zxid: Option<Zxid>,
        /// The request's xid.
        xid: i32,
        /// When the request arrived, for latency metrics.
        started: Instant,
        /// The request's op name, for metrics.
        op: &'static str,
        /// The opcode of each op of the request: a create's reply record depends on it.
        opcodes: Vec<OpCode>,
    },
    /// A `sync` waiting for ZAB to report that everything the leader had proposed when it
    /// saw the sync is applied here.
    Syncing {
        /// The ZAB sync id.
        id: u64,
        /// The reply frame.
        frame: Vec<u8>,
    },
    /// A read that must run after the writes before it are applied.
    Deferred {
        /// The request's xid.
        xid: i32,
        /// The request.
        request: Request,
        /// When the request arrived.
        started: Instant,
    },
}

/// How a `Waiting` entry is found when its txn commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitKey {
    /// A write this node proposed, by zxid.
    Zxid(Zxid),
    /// A write forwarded to the leader, by the request's xid.
    Forwarded(i32),
}

impl WaitKey {
    fn matches(self, entry: &Entry) -> bool {
        match (self, entry) {
            (WaitKey::Zxid(zxid), Entry::Waiting { zxid: Some(z), .. }) => *z == zxid,
            (
                WaitKey::Forwarded(xid),
                Entry::Waiting {
                    zxid: None, xid: x, ..
                },
            ) => *x == xid,
            _ => false,
        }
    }
}

/// FIFO of a connection's unanswered requests.
#[derive(Debug, Default)]
pub(crate) struct ReplyQueue {
    entries: VecDeque<Entry>,
}

impl ReplyQueue {
    /// Whether nothing is outstanding, so a read can be answered at once.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
    }

    /// Replaces the `Waiting` entry of `zxid` with its reply. Returns the xid, start time and
    /// op name of the request, or `None` if no entry waits for that zxid.
    pub(crate) fn complete(
        &mut self,
        key: WaitKey,
        frame: Vec<u8>,
        close_after: bool,
    ) -> Option<(i32, Instant, &'static str)> {
        let slot = self.entries.iter_mut().find(|entry| key.matches(entry))?;
        let (xid, started, op) = match slot {
            Entry::Waiting {
                xid, started, op, ..
            } => (*xid, *started, *op),
            _ => return None,
        };
        *slot = Entry::Ready { frame, close_after };
        Some((xid, started, op))
    }

    /// The xid and op opcodes of the request waiting under `key`.
    pub(crate) fn waiting(&self, key: WaitKey) -> Option<(i32, &[OpCode])> {
        self.entries.iter().find_map(|entry| match entry {
            Entry::Waiting { xid, opcodes, .. } if key.matches(entry) => {
                Some((*xid, opcodes.as_slice()))
            }
            _ => None,
        })
    }

    /// Releases the `sync` with ZAB sync id `id`; false if no entry has it.
    pub(crate) fn sync_done(&mut self, id: u64) -> bool {
        for entry in self.entries.iter_mut() {
            if let Entry::Syncing { id: i, frame } = entry {
                if *i == id {
                    let frame = std::mem::take(frame);
                    *entry = Entry::Ready {
                        frame,
                        close_after: false,
                    };
                    return true;
                }
            }
        }
        false
    }

    /// Takes the entry at the head if it can go out now that the tree has applied
    /// `applied`: a ready reply, a held reply whose zxid is applied, or a deferred read
    /// (which the caller runs now that everything before it is done).
    pub(crate) fn pop_ready(&mut self, applied: Zxid) -> Option<Entry> {
        // `Syncing` and `Waiting` entries block the queue until they are completed.
        match self.entries.front() {
            Some(Entry::Ready { .. }) | Some(Entry::Deferred { .. }) => self.entries.pop_front(),
            Some(Entry::Held { until, .. }) if *until <= applied => self.entries.pop_front(),
            _ => None,
        }
    }

    /// Whether a held entry still waits in the queue.
    pub(crate) fn has_held(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| matches!(entry, Entry::Held { .. }))
    }

    /// Takes every entry, for failing them all.
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        self.entries.drain(..).collect()
    }
}

/// Sets the zxid of an encoded reply frame (`len | xid | zxid | err ...`) to the zxid the
/// tree has applied when the reply leaves, so the zxids a client sees never go backwards.
pub(crate) fn stamp_zxid(frame: &mut [u8], zxid: Zxid) {
    if let Some(field) = frame.get_mut(8..16) {
        field.copy_from_slice(&zxid.0.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(byte: u8) -> Entry {
        Entry::Ready {
            frame: vec![byte; 20],
            close_after: false,
        }
    }

    #[test]
    fn replies_leave_in_request_order() {
        let mut queue = ReplyQueue::default();
        let started = Instant::now();
        queue.push(Entry::Waiting {
            zxid: Some(Zxid(5)),
            xid: 1,
            started,
            op: "create",
            opcodes: vec![OpCode::Create],
        });
        queue.push(ready(2));
        // The write at the head blocks the reply behind it.
        assert!(queue.pop_ready(Zxid(100)).is_none());
        assert_eq!(
            queue.waiting(WaitKey::Zxid(Zxid(5))).map(|(xid, _)| xid),
            Some(1)
        );
        assert!(queue
            .complete(WaitKey::Zxid(Zxid(5)), vec![1; 20], false)
            .is_some());
        assert!(
            matches!(queue.pop_ready(Zxid(5)), Some(Entry::Ready { frame, .. }) if frame[0] == 1)
        );
        assert!(
            matches!(queue.pop_ready(Zxid(5)), Some(Entry::Ready { frame, .. }) if frame[0] == 2)
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn held_replies_wait_for_their_zxid() {
        let mut queue = ReplyQueue::default();
        queue.push(Entry::Held {
            until: Zxid(7),
            frame: vec![3; 20],
        });
        queue.push(ready(4));
        assert!(queue.has_held());
        assert!(queue.pop_ready(Zxid(6)).is_none());
        assert!(matches!(queue.pop_ready(Zxid(7)), Some(Entry::Held { .. })));
        assert!(!queue.has_held());
        assert!(queue.pop_ready(Zxid(7)).is_some());
    }

    #[test]
    fn completing_an_unknown_zxid_changes_nothing() {
        let mut queue = ReplyQueue::default();
        queue.push(ready(1));
        assert!(queue
            .complete(WaitKey::Zxid(Zxid(9)), vec![], false)
            .is_none());
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn stamping_sets_the_header_zxid_only() {
        let mut frame = vec![0u8; 20];
        stamp_zxid(&mut frame, Zxid(0x0102_0304_0506_0708));
        assert_eq!(&frame[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&frame[..8], &[0; 8]);
        let mut short = vec![0u8; 4];
        stamp_zxid(&mut short, Zxid(1));
        assert_eq!(short, vec![0; 4]);
    }
}
