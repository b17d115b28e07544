//! Latency recording (HDR histograms in microseconds) and the summaries reports print.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::mix::OpKind;

/// The largest latency a histogram holds, in µs (one hour); longer ones are clamped.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits kept: 3 gives 0.1% resolution at every magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Adds one latency to `histogram`, clamped to the histogram's range.
pub(crate) fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(latency_us.max(1));
}

/// What a session saw of one op kind: latencies of the successes, count of the errors.
#[derive(Clone, Debug)]
pub(crate) struct OpStats {
    /// Latency of each successful op, µs.
    pub(crate) latency_us: Histogram<u64>,
    /// Ops answered with a non-zero error code (or a failed op inside a multi).
    pub(crate) errors: u64,
}

impl Default for OpStats {
    fn default() -> OpStats {
        OpStats {
            latency_us: new_histogram(),
            errors: 0,
        }
    }
}

/// Per-kind statistics of one session, or of a whole run once merged.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recorder {
    per_op: [OpStats; OpKind::ALL.len()],
}

impl Recorder {
    /// Records one answered op.
    pub(crate) fn record(&mut self, kind: OpKind, latency: Duration, ok: bool) {
        let stats = &mut self.per_op[kind.index()];
        if ok {
            record(&mut stats.latency_us, latency);
        } else {
            stats.errors += 1;
        }
    }

    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.per_op.iter_mut().zip(&other.per_op) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.latency_us.add(&theirs.latency_us);
            mine.errors += theirs.errors;
        }
    }

    /// The statistics of one kind.
    pub(crate) fn get(&self, kind: OpKind) -> &OpStats {
        &self.per_op[kind.index()]
    }
}

/// Latency percentiles of a histogram, in milliseconds with microsecond resolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// The largest latency seen.
    pub max_ms: f64,
    /// The mean.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// The percentiles of `histogram` (µs); all zero when it is empty.
    pub(crate) fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us_to_ms(us as f64);
        LatencySummary {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            mean_ms: us_to_ms(histogram.mean()),
        }
    }

    /// `p50=0.412ms p90=… p99=… p99.9=… max=…`, for human lines.
    pub(crate) fn human(&self) -> String {
        format!(
            "p50={} p90={} p99={} p99.9={} max={}",
            human_ms(self.p50_ms),
            human_ms(self.p90_ms),
            human_ms(self.p99_ms),
            human_ms(self.p999_ms),
            human_ms(self.max_ms)
        )
    }
}

/// Microseconds to milliseconds, rounded to the microsecond.
pub(crate) fn us_to_ms(us: f64) -> f64 {
    (us).round() / 1000.0
}

/// A duration in milliseconds, rounded to the microsecond.
pub(crate) fn duration_ms(duration: Duration) -> f64 {
    us_to_ms(duration.as_secs_f64() * 1e6)
}

/// A duration in seconds, rounded to the microsecond.
pub(crate) fn duration_secs(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e6
}

/// A rate rounded to one decimal.
pub(crate) fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// `0.412ms`, `12.3ms`, `1234ms`: three significant-ish digits, always in ms.
pub(crate) fn human_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3}ms")
    } else if ms < 100.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.0}ms")
    }
}
