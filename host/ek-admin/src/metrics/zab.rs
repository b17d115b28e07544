//! Replication (ZAB) metrics: the state the core copies in after every change, how the
//! leader synchronised learners, and how long proposals and commits take.
//!
//! The names carry a `zab_` prefix so they sort together and cannot collide with
//! ZooKeeper's own unprefixed names. Zxids and epochs are `u64` and rendered as
//! integers, never through `f64`, so values above 2^53 stay exact in the text.

use super::histogram::{Histogram, LATENCY_BOUNDS_NS};
use super::{write_header, LatencyStats, LatencySummary};
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How the leader synchronised a learner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncKind {
    /// Sent the committed proposals the learner was missing.
    Diff,
    /// Told the learner to truncate its log back to a zxid the leader has.
    Trunc,
    /// Sent a full snapshot of the tree.
    Snap,
}

impl SyncKind {
    /// Every kind, in the order rendered.
    pub const ALL: [SyncKind; 3] = [SyncKind::Diff, SyncKind::Trunc, SyncKind::Snap];

    /// The `kind` label value: `"diff"`, `"trunc"` or `"snap"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Diff => "diff",
            SyncKind::Trunc => "trunc",
            SyncKind::Snap => "snap",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The ZAB state of the node, copied in by the core with [`crate::Metrics::set_zab`]
/// after every change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZabGauges {
    /// `currentEpoch`: the epoch of the last NEWLEADER this node acknowledged.
    pub epoch: u64,
    /// `acceptedEpoch`: the highest epoch this node has accepted a NEWEPOCH for.
    pub accepted_epoch: u64,
    /// The last zxid written to the transaction log.
    pub last_zxid: u64,
    /// The last committed zxid applied to the tree.
    pub last_committed: u64,
    /// Votes needed for a quorum: `voters / 2 + 1`.
    pub quorum_size: u64,
    /// Voting members of the ensemble, this node included if it votes.
    pub voters: u64,
    /// Non-voting observers of the ensemble.
    pub observers: u64,
    /// On the leader: learners synced and heard from, the leader included; else 0.
    pub synced_learners: u64,
    /// The server id of the current leader, 0 if there is none.
    pub leader_id: u64,
}

/// The atomics behind [`ZabGauges`], the sync counters and the latency histograms.
#[derive(Debug)]
pub(crate) struct ZabMetrics {
    epoch: AtomicU64,
    accepted_epoch: AtomicU64,
    last_zxid: AtomicU64,
    last_committed: AtomicU64,
    quorum_size: AtomicU64,
    voters: AtomicU64,
    observers: AtomicU64,
    synced_learners: AtomicU64,
    leader_id: AtomicU64,

    /// Indexed by [`SyncKind::index`].
    syncs: [AtomicU64; SyncKind::ALL.len()],
    digest_mismatches: AtomicU64,

    proposal_latency: Histogram,
    proposal_stats: LatencyStats,
    commit_latency: Histogram,
    commit_stats: LatencyStats,
}

impl ZabMetrics {
    pub(crate) fn new() -> ZabMetrics {
        ZabMetrics {
            epoch: AtomicU64::new(0),
            accepted_epoch: AtomicU64::new(0),
            last_zxid: AtomicU64::new(0),
            last_committed: AtomicU64::new(0),
            quorum_size: AtomicU64::new(0),
            voters: AtomicU64::new(0),
            observers: AtomicU64::new(0),
            synced_learners: AtomicU64::new(0),
            leader_id: AtomicU64::new(0),
            syncs: [const { AtomicU64::new(0) }; SyncKind::ALL.len()],
            digest_mismatches: AtomicU64::new(0),
            proposal_latency: Histogram::new(LATENCY_BOUNDS_NS),
            proposal_stats: LatencyStats::new(),
            commit_latency: Histogram::new(LATENCY_BOUNDS_NS),
            commit_stats: LatencyStats::new(),
        }
    }

    pub(crate) fn set(&self, zab: &ZabGauges) {
        self.epoch.store(zab.epoch, Relaxed);
        self.accepted_epoch.store(zab.accepted_epoch, Relaxed);
        self.last_zxid.store(zab.last_zxid, Relaxed);
        self.last_committed.store(zab.last_committed, Relaxed);
        self.quorum_size.store(zab.quorum_size, Relaxed);
        self.voters.store(zab.voters, Relaxed);
        self.observers.store(zab.observers, Relaxed);
        self.synced_learners.store(zab.synced_learners, Relaxed);
        self.leader_id.store(zab.leader_id, Relaxed);
    }

    /// Each field is read on its own, so a racing [`ZabMetrics::set`] may show half of
    /// the new state; a scrape or `mntr` tolerates that.
    pub(crate) fn get(&self) -> ZabGauges {
        ZabGauges {
            epoch: self.epoch.load(Relaxed),
            accepted_epoch: self.accepted_epoch.load(Relaxed),
            last_zxid: self.last_zxid.load(Relaxed),
            last_committed: self.last_committed.load(Relaxed),
            quorum_size: self.quorum_size.load(Relaxed),
            voters: self.voters.load(Relaxed),
            observers: self.observers.load(Relaxed),
            synced_learners: self.synced_learners.load(Relaxed),
            leader_id: self.leader_id.load(Relaxed),
        }
    }

    pub(crate) fn inc_sync(&self, kind: SyncKind) {
        self.syncs[kind.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn syncs(&self, kind: SyncKind) -> u64 {
        self.syncs[kind.index()].load(Relaxed)
    }

    pub(crate) fn inc_digest_mismatch(&self) {
        self.digest_mismatches.fetch_add(1, Relaxed);
    }

    pub(crate) fn digest_mismatches(&self) -> u64 {
        self.digest_mismatches.load(Relaxed)
    }

    pub(crate) fn observe_proposal(&self, elapsed: Duration) {
        self.proposal_latency.observe(elapsed);
        self.proposal_stats.observe(super::duration_ns(elapsed));
    }

    pub(crate) fn observe_commit(&self, elapsed: Duration) {
        self.commit_latency.observe(elapsed);
        self.commit_stats.observe(super::duration_ns(elapsed));
    }

    pub(crate) fn proposal_summary(&self) -> LatencySummary {
        self.proposal_stats.summary()
    }

    pub(crate) fn commit_summary(&self) -> LatencySummary {
        self.commit_stats.summary()
    }

    pub(crate) fn render(&self, out: &mut String) -> fmt::Result {
        let zab = self.get();
        let gauges: [(&str, &str, u64); 9] = [
            ("zab_epoch", "Current ZAB epoch (currentEpoch).", zab.epoch),
            (
                "zab_accepted_epoch",
                "Highest ZAB epoch accepted (acceptedEpoch).",
                zab.accepted_epoch,
            ),
            (
                "zab_last_zxid",
                "Zxid of the last transaction logged.",
                zab.last_zxid,
            ),
            (
                "zab_last_committed_zxid",
                "Zxid of the last committed transaction applied.",
                zab.last_committed,
            ),
            (
                "zab_quorum_size",
                "Votes needed for a quorum.",
                zab.quorum_size,
            ),
            ("zab_voters", "Voting members of the ensemble.", zab.voters),
            ("zab_observers", "Observers of the ensemble.", zab.observers),
            (
                "zab_synced_learners",
                "On the leader, learners synced and heard from, itself included; else 0.",
                zab.synced_learners,
            ),
            (
                "zab_leader_id",
                "Server id of the current leader, 0 if none.",
                zab.leader_id,
            ),
        ];
        for (name, help, value) in gauges {
            write_header(out, name, help, "gauge")?;
            writeln!(out, "{name} {value}")?;
        }

        let name = "zab_syncs_total";
        write_header(
            out,
            name,
            "Learner synchronisations started by this leader, by kind.",
            "counter",
        )?;
        for kind in SyncKind::ALL {
            let count = self.syncs(kind);
            writeln!(out, "{name}{{kind=\"{}\"}} {count}", kind.as_str())?;
        }
        let name = "zab_digest_mismatches_total";
        write_header(
            out,
            name,
            "Tree digest mismatches detected; each one stops the replica serving.",
            "counter",
        )?;
        writeln!(out, "{name} {}", self.digest_mismatches())?;

        let name = "zab_proposal_latency_seconds";
        write_header(
            out,
            name,
            "On the leader, time from proposing a transaction to committing it.",
            "histogram",
        )?;
        self.proposal_latency.render(out, name, "")?;
        let name = "zab_commit_latency_seconds";
        write_header(
            out,
            name,
            "Time from logging or receiving a transaction to applying it once committed.",
            "histogram",
        )?;
        self.commit_latency.render(out, name, "")
    }
}
