//! The node's metrics: updated from the hot path with relaxed atomics (no locks), and
//! rendered in the Prometheus text exposition format, version 0.0.4.
//!
//! Names follow Apache ZooKeeper's Prometheus metrics, which are unprefixed
//! (`znode_count`, `packets_received`, ...). Replication metrics, which ZooKeeper does
//! not export this way, are ours and share a `zab_` prefix. Durations are exported in
//! seconds.
//!
//! Two views of the same events exist on purpose. The Prometheus counters and histograms
//! only ever grow, as Prometheus expects. The four-letter words `srvr`/`mntr` print
//! latency min/avg/max and packet counts "since the last `srst`", so those are kept
//! beside them and [`Metrics::reset`] clears only that view.

mod histogram;
mod ops;
mod zab;

#[cfg(test)]
mod tests;

use histogram::{duration_ns, Histogram, LATENCY_BOUNDS_NS, SNAPSHOT_BOUNDS_NS};
use ops::OpHistograms;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use zab::ZabMetrics;
pub use zab::{SyncKind, ZabGauges};

/// The Content-Type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Point-in-time sizes of the node, copied in by the node (usually from the
/// [`crate::AdminState`] refresh hook, right before a scrape).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Znodes in the data tree, the root included.
    pub znode_count: u64,
    /// Registered watches (one per path and watcher).
    pub watch_count: u64,
    /// Live sessions known cluster-wide.
    pub global_sessions: u64,
    /// Open client connections on this node.
    pub num_alive_connections: u64,
    /// Requests received but not yet answered.
    pub outstanding_requests: u64,
    /// Ephemeral znodes in the tree.
    pub ephemerals_count: u64,
    /// Bytes of paths plus data in the tree, as ZooKeeper approximates it.
    pub approximate_data_size: u64,
    /// The zxid of the last transaction applied to the tree.
    pub last_processed_zxid: u64,
}

/// The role of the node, as `srvr` prints it after `Mode:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// Electing a leader or syncing; not serving clients yet.
    #[default]
    Looking,
    /// A single node that is its own quorum.
    Standalone,
    /// The leader of an ensemble.
    Leader,
    /// A voting follower.
    Follower,
    /// A non-voting observer.
    Observer,
    /// Partitioned from the quorum and serving reads only.
    ReadOnly,
}

impl ServerState {
    /// Every state, in the order rendered.
    pub const ALL: [ServerState; 6] = [
        ServerState::Looking,
        ServerState::Standalone,
        ServerState::Leader,
        ServerState::Follower,
        ServerState::Observer,
        ServerState::ReadOnly,
    ];

    /// The name ZooKeeper prints (`mntr`'s `zk_server_state`, `srvr`'s `Mode:`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Looking => "looking",
            ServerState::Standalone => "standalone",
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Observer => "observer",
            ServerState::ReadOnly => "read-only",
        }
    }

    fn from_index(index: u8) -> ServerState {
        ServerState::ALL
            .get(usize::from(index))
            .copied()
            .unwrap_or_default()
    }

    fn index(self) -> u8 {
        self as u8
    }
}

/// Request latency since the last [`Metrics::reset`], for `srvr`/`mntr`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Fastest request, ms (0 when none was observed).
    pub min_ms: f64,
    /// Mean request latency, ms (0 when none was observed).
    pub avg_ms: f64,
    /// Slowest request, ms (0 when none was observed).
    pub max_ms: f64,
    /// Requests observed.
    pub count: u64,
}

/// Resettable latency statistics for the four-letter words.
#[derive(Debug)]
struct LatencyStats {
    /// `u64::MAX` until the first observation.
    min_ns: AtomicU64,
    max_ns: AtomicU64,
    total_ns: AtomicU64,
    count: AtomicU64,
}

impl LatencyStats {
    fn new() -> LatencyStats {
        LatencyStats {
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed_ns: u64) {
        self.min_ns.fetch_min(elapsed_ns, Relaxed);
        self.max_ns.fetch_max(elapsed_ns, Relaxed);
        self.total_ns.fetch_add(elapsed_ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Each field is read on its own, so a concurrent observation may be half counted;
    /// fine for a human-read summary.
    fn summary(&self) -> LatencySummary {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return LatencySummary::default();
        }
        let ns_to_ms = |ns: u64| ns as f64 / 1e6;
        let min_ns = self.min_ns.load(Relaxed);
        LatencySummary {
            min_ms: if min_ns == u64::MAX {
                0.0
            } else {
                ns_to_ms(min_ns)
            },
            avg_ms: ns_to_ms(self.total_ns.load(Relaxed)) / count as f64,
            max_ms: ns_to_ms(self.max_ns.load(Relaxed)),
            count,
        }
    }

    fn reset(&self) {
        self.count.store(0, Relaxed);
        self.total_ns.store(0, Relaxed);
        self.min_ns.store(u64::MAX, Relaxed);
        self.max_ns.store(0, Relaxed);
    }
}

/// A monotonic counter plus the value it had at the last reset, so the four-letter
/// words can show "since `srst`" without Prometheus ever seeing the counter go down.
#[derive(Debug, Default)]
struct Counter {
    total: AtomicU64,
    at_reset: AtomicU64,
}

impl Counter {
    fn inc(&self) {
        self.add(1);
    }

    fn add(&self, count: u64) {
        self.total.fetch_add(count, Relaxed);
    }

    fn get(&self) -> u64 {
        self.total.load(Relaxed)
    }

    fn since_reset(&self) -> u64 {
        self.get().saturating_sub(self.at_reset.load(Relaxed))
    }

    fn reset(&self) {
        self.at_reset.store(self.get(), Relaxed);
    }
}

/// All metrics of one node. `Send + Sync`; the node shares it in an `Arc`, and every
/// update is a handful of relaxed atomic operations.
#[derive(Debug)]
pub struct Metrics {
    znode_count: AtomicU64,
    watch_count: AtomicU64,
    global_sessions: AtomicU64,
    num_alive_connections: AtomicU64,
    outstanding_requests: AtomicU64,
    ephemerals_count: AtomicU64,
    approximate_data_size: AtomicU64,
    last_processed_zxid: AtomicU64,
    snapshot_size_bytes: AtomicU64,
    server_state: AtomicU8,

    packets_received: Counter,
    packets_sent: Counter,
    fsync_count: AtomicU64,
    snapshot_count: AtomicU64,
    connection_rejected: AtomicU64,
    bad_frames: AtomicU64,

    request_latency: OpHistograms,
    request_stats: LatencyStats,
    fsync_latency: Histogram,
    snapshot_duration: Histogram,

    zab: ZabMetrics,
    /// Series rendered by embedders (the plugin host), appended after the node's own.
    extra: Extra,
}

#[derive(Default)]
struct Extra(std::sync::Mutex<Vec<ExtraRenderer>>);

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Extra")
    }
}

/// Appends Prometheus text for series the node does not own.
pub type ExtraRenderer = Box<dyn Fn(&mut String) + Send + Sync>;

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// All zero, state [`ServerState::Looking`].
    pub fn new() -> Metrics {
        Metrics {
            znode_count: AtomicU64::new(0),
            watch_count: AtomicU64::new(0),
            global_sessions: AtomicU64::new(0),
            num_alive_connections: AtomicU64::new(0),
            outstanding_requests: AtomicU64::new(0),
            ephemerals_count: AtomicU64::new(0),
            approximate_data_size: AtomicU64::new(0),
            last_processed_zxid: AtomicU64::new(0),
            snapshot_size_bytes: AtomicU64::new(0),
            server_state: AtomicU8::new(ServerState::default().index()),
            packets_received: Counter::default(),
            packets_sent: Counter::default(),
            fsync_count: AtomicU64::new(0),
            snapshot_count: AtomicU64::new(0),
            connection_rejected: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            request_latency: OpHistograms::new(),
            request_stats: LatencyStats::new(),
            fsync_latency: Histogram::new(LATENCY_BOUNDS_NS),
            snapshot_duration: Histogram::new(SNAPSHOT_BOUNDS_NS),
            zab: ZabMetrics::new(),
            extra: Extra::default(),
        }
    }

    /// Adds `render`, called on every `/metrics` request to append series of its own
    /// (complete Prometheus text: HELP, TYPE and samples).
    pub fn add_renderer(&self, render: ExtraRenderer) {
        if let Ok(mut extra) = self.extra.0.lock() {
            extra.push(render);
        }
    }

    /// Records one answered request. `op` is the label value, ZooKeeper's op name
    /// (`"getData"`, `"setData"`, ...). The first request of each op claims a slot; every
    /// later one only does atomic adds.
    pub fn observe_request(&self, op: &'static str, elapsed: Duration) {
        self.request_latency.observe(op, elapsed);
        self.request_stats.observe(duration_ns(elapsed));
    }

    /// Records one fsync of the transaction log; also counts it in `fsync_count`.
    pub fn observe_fsync(&self, elapsed: Duration) {
        self.fsync_latency.observe(elapsed);
        self.fsync_count.fetch_add(1, Relaxed);
    }

    /// Records one finished snapshot: its size on disk and how long it took.
    pub fn observe_snapshot(&self, size_bytes: u64, elapsed: Duration) {
        self.snapshot_duration.observe(elapsed);
        self.snapshot_size_bytes.store(size_bytes, Relaxed);
        self.snapshot_count.fetch_add(1, Relaxed);
    }

    /// Overwrites every gauge of [`Gauges`].
    pub fn set_gauges(&self, gauges: &Gauges) {
        self.znode_count.store(gauges.znode_count, Relaxed);
        self.watch_count.store(gauges.watch_count, Relaxed);
        self.global_sessions.store(gauges.global_sessions, Relaxed);
        self.num_alive_connections
            .store(gauges.num_alive_connections, Relaxed);
        self.outstanding_requests
            .store(gauges.outstanding_requests, Relaxed);
        self.ephemerals_count
            .store(gauges.ephemerals_count, Relaxed);
        self.approximate_data_size
            .store(gauges.approximate_data_size, Relaxed);
        self.last_processed_zxid
            .store(gauges.last_processed_zxid, Relaxed);
    }

    /// The gauges as last set.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            znode_count: self.znode_count.load(Relaxed),
            watch_count: self.watch_count.load(Relaxed),
            global_sessions: self.global_sessions.load(Relaxed),
            num_alive_connections: self.num_alive_connections.load(Relaxed),
            outstanding_requests: self.outstanding_requests.load(Relaxed),
            ephemerals_count: self.ephemerals_count.load(Relaxed),
            approximate_data_size: self.approximate_data_size.load(Relaxed),
            last_processed_zxid: self.last_processed_zxid.load(Relaxed),
        }
    }

    /// Size of the last snapshot written, bytes.
    pub fn snapshot_size_bytes(&self) -> u64 {
        self.snapshot_size_bytes.load(Relaxed)
    }

    /// Sets the node's role.
    pub fn set_server_state(&self, state: ServerState) {
        self.server_state.store(state.index(), Relaxed);
    }

    /// The node's role.
    pub fn server_state(&self) -> ServerState {
        ServerState::from_index(self.server_state.load(Relaxed))
    }

    /// ZAB state, set by the core after every change.
    pub fn set_zab(&self, zab: &ZabGauges) {
        self.zab.set(zab);
    }

    /// The ZAB state as last set (all zero before the first [`Metrics::set_zab`]).
    pub fn zab(&self) -> ZabGauges {
        self.zab.get()
    }

    /// The leader started synchronising a learner this way.
    pub fn inc_learner_sync(&self, kind: SyncKind) {
        self.zab.inc_sync(kind);
    }

    /// Learner synchronisations of `kind` this node started as leader, since it started.
    pub fn learner_syncs(&self, kind: SyncKind) -> u64 {
        self.zab.syncs(kind)
    }

    /// Leader: a proposal committed `elapsed` after it was proposed.
    pub fn observe_proposal(&self, elapsed: Duration) {
        self.zab.observe_proposal(elapsed);
    }

    /// Any node: a committed txn was applied `elapsed` after this node logged/received it
    /// (commit latency).
    pub fn observe_commit(&self, elapsed: Duration) {
        self.zab.observe_commit(elapsed);
    }

    /// The replica detected a digest mismatch and stopped serving.
    pub fn inc_digest_mismatch(&self) {
        self.zab.inc_digest_mismatch();
    }

    /// Digest mismatches detected since the node started.
    pub fn digest_mismatches(&self) -> u64 {
        self.zab.digest_mismatches()
    }

    /// Proposal latency since the node started (not cleared by [`Metrics::reset`]).
    pub fn proposal_latency_summary(&self) -> LatencySummary {
        self.zab.proposal_summary()
    }

    /// Commit latency since the node started (not cleared by [`Metrics::reset`]).
    pub fn commit_latency_summary(&self) -> LatencySummary {
        self.zab.commit_summary()
    }

    /// Counts one client packet (request frame) received.
    pub fn inc_packets_received(&self) {
        self.packets_received.inc();
    }

    /// Counts one client packet (response or notification frame) sent.
    pub fn inc_packets_sent(&self) {
        self.packets_sent.inc();
    }

    /// Counts `count` packets sent to clients at once (one flush of a connection).
    pub fn add_packets_sent(&self, count: u64) {
        self.packets_sent.add(count);
    }

    /// Counts one client connection refused (connection limit, or not serving).
    pub fn inc_connection_rejected(&self) {
        self.connection_rejected.fetch_add(1, Relaxed);
    }

    /// Counts one client frame that failed to decode.
    pub fn inc_bad_frames(&self) {
        self.bad_frames.fetch_add(1, Relaxed);
    }

    /// Packets received since the last [`Metrics::reset`] (`srvr`'s `Received:`).
    pub fn packets_received(&self) -> u64 {
        self.packets_received.since_reset()
    }

    /// Packets sent since the last [`Metrics::reset`] (`srvr`'s `Sent:`).
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent.since_reset()
    }

    /// Request latency since the last [`Metrics::reset`] (`srvr`'s `Latency min/avg/max`).
    pub fn latency_summary(&self) -> LatencySummary {
        self.request_stats.summary()
    }

    /// `srst`: restarts the latency summary and the packet counts that the four-letter
    /// words print. The Prometheus series are untouched, since counters that go down
    /// would read as a restart of the node.
    pub fn reset(&self) {
        self.request_stats.reset();
        self.packets_received.reset();
        self.packets_sent.reset();
    }

    /// Every metric in the Prometheus text exposition format 0.0.4 (serve it with
    /// [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_into(&mut out)
            .expect("formatting into a String never fails");
        if let Ok(extra) = self.extra.0.lock() {
            for render in extra.iter() {
                render(&mut out);
            }
        }
        out
    }

    fn render_into(&self, out: &mut String) -> fmt::Result {
        let gauges: [(&str, &str, u64); 9] = [
            (
                "znode_count",
                "Znodes in the data tree.",
                self.znode_count.load(Relaxed),
            ),
            (
                "watch_count",
                "Registered watches.",
                self.watch_count.load(Relaxed),
            ),
            (
                "global_sessions",
                "Live sessions in the ensemble.",
                self.global_sessions.load(Relaxed),
            ),
            (
                "num_alive_connections",
                "Open client connections.",
                self.num_alive_connections.load(Relaxed),
            ),
            (
                "outstanding_requests",
                "Requests received but not yet answered.",
                self.outstanding_requests.load(Relaxed),
            ),
            (
                "ephemerals_count",
                "Ephemeral znodes.",
                self.ephemerals_count.load(Relaxed),
            ),
            (
                "approximate_data_size",
                "Approximate bytes of paths and data in the tree.",
                self.approximate_data_size.load(Relaxed),
            ),
            (
                "last_processed_zxid",
                "Zxid of the last transaction applied.",
                self.last_processed_zxid.load(Relaxed),
            ),
            (
                "snapshot_size_bytes",
                "Size of the last snapshot written, in bytes.",
                self.snapshot_size_bytes.load(Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            write_header(out, name, help, "gauge")?;
            writeln!(out, "{name} {value}")?;
        }

        let counters: [(&str, &str, u64); 6] = [
            (
                "packets_received",
                "Client packets received.",
                self.packets_received.get(),
            ),
            (
                "packets_sent",
                "Client packets sent.",
                self.packets_sent.get(),
            ),
            (
                "fsync_count",
                "Fsyncs of the transaction log.",
                self.fsync_count.load(Relaxed),
            ),
            (
                "snapshot_count",
                "Snapshots written.",
                self.snapshot_count.load(Relaxed),
            ),
            (
                "connection_rejected",
                "Client connections refused.",
                self.connection_rejected.load(Relaxed),
            ),
            (
                "bad_frames",
                "Client frames that failed to decode.",
                self.bad_frames.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            write_header(out, name, help, "counter")?;
            writeln!(out, "{name} {value}")?;
        }

        let name = "request_latency_seconds";
        write_header(
            out,
            name,
            "Time from receiving a request to answering it, by op.",
            "histogram",
        )?;
        self.request_latency.render(out, name)?;
        let name = "fsync_latency_seconds";
        write_header(
            out,
            name,
            "Time of one fsync of the transaction log.",
            "histogram",
        )?;
        self.fsync_latency.render(out, name, "")?;
        let name = "snapshot_duration_seconds";
        write_header(out, name, "Time to write one snapshot.", "histogram")?;
        self.snapshot_duration.render(out, name, "")?;

        self.render_server_info(out)?;
        self.zab.render(out)
    }

    fn render_server_info(&self, out: &mut String) -> fmt::Result {
        write_header(
            out,
            "server_info",
            "Build of this node; the value is always 1.",
            "gauge",
        )?;
        let version = escape_label_value(env!("CARGO_PKG_VERSION"));
        writeln!(out, "server_info{{version=\"{version}\"}} 1")?;
        write_header(
            out,
            "server_state",
            "1 for the node's current role, else 0.",
            "gauge",
        )?;
        let current = self.server_state();
        for state in ServerState::ALL {
            let value = u8::from(state == current);
            writeln!(out, "server_state{{state=\"{}\"}} {value}", state.as_str())?;
        }
        Ok(())
    }
}

/// `# HELP` and `# TYPE` lines. Help texts here are static and contain no `\` or newline,
/// which are the only characters the format would need escaped.
fn write_header(out: &mut String, name: &str, help: &str, kind: &str) -> fmt::Result {
    debug_assert!(!help.contains(['\\', '\n']));
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// Escapes a label value as the text format requires: `\`, `"` and newline.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            _ => escaped.push(ch),
        }
    }
    escaped
}
