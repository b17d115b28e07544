//! A fixed-bucket histogram of durations, updated with relaxed atomics only.

use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (ns) for request and fsync latencies: 50 µs .. 10 s. Most reads on a
/// healthy node finish well under a millisecond, so the low end is dense.
pub(crate) const LATENCY_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds (ns) for snapshot durations: 1 ms .. 120 s. A snapshot writes the whole
/// tree, so it is orders of magnitude slower than a request.
pub(crate) const SNAPSHOT_BOUNDS_NS: &[u64] = &[
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    120_000_000_000,
];

/// Counts per bucket (not cumulative; the renderer accumulates) plus the sum.
///
/// The count is not stored: it is the total of the buckets, so a scrape racing with an
/// observation always sees `_count` equal to the `+Inf` bucket.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds_ns: &'static [u64],
    /// One more slot than `bounds_ns`: the last is the `+Inf` overflow.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds_ns: &'static [u64]) -> Histogram {
        debug_assert!(bounds_ns.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds_ns,
            buckets: (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, elapsed: Duration) {
        let elapsed_ns = duration_ns(elapsed);
        // `le` is inclusive: the first bound >= the value.
        let index = self.bounds_ns.partition_point(|&bound| bound < elapsed_ns);
        self.buckets[index].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(elapsed_ns, Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` samples. `labels` is either empty or
    /// `key="value",` pairs each ending in a comma, placed before `le`.
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) -> fmt::Result {
        let mut cumulative: u64 = 0;
        for (bucket, bound_ns) in self.buckets.iter().zip(self.bounds_ns) {
            cumulative += bucket.load(Relaxed);
            let bound_s = ns_to_seconds(*bound_ns);
            writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{bound_s}\"}} {cumulative}"
            )?;
        }
        cumulative += self.buckets[self.bounds_ns.len()].load(Relaxed);
        writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}")?;
        let sum_s = ns_to_seconds(self.sum_ns.load(Relaxed));
        let labels = labels.trim_end_matches(',');
        if labels.is_empty() {
            writeln!(out, "{name}_sum {sum_s}")?;
            writeln!(out, "{name}_count {cumulative}")
        } else {
            writeln!(out, "{name}_sum{{{labels}}} {sum_s}")?;
            writeln!(out, "{name}_count{{{labels}}} {cumulative}")
        }
    }
}

/// A duration in whole nanoseconds, saturating at about 584 years.
pub(crate) fn duration_ns(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Seconds as f64; `Display` of f64 never uses an exponent and always round-trips.
fn ns_to_seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}
