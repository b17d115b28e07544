//! Per-op request latency histograms, found without a lock.
//!
//! The op label is any `&'static str`, so the set of series is not known up front. A
//! small open-addressed table of `OnceLock` slots maps a name to its histogram: the first
//! observation of an op claims a slot, and every later one only reads. ZooKeeper has
//! about 35 opcodes, so the table never fills in practice; if it does, the overflow is
//! counted under `op="other"` rather than blocking or allocating on the hot path.

use super::histogram::{Histogram, LATENCY_BOUNDS_NS};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

/// Slots in the table; a power of two so the probe wraps with a mask.
const SLOT_COUNT: usize = 64;

/// The label used once every slot is taken.
const OVERFLOW_OP: &str = "other";

#[derive(Debug)]
struct OpSlot {
    op: &'static str,
    histogram: Histogram,
}

#[derive(Debug)]
pub(crate) struct OpHistograms {
    slots: [OnceLock<OpSlot>; SLOT_COUNT],
    overflow: Histogram,
}

impl OpHistograms {
    pub(crate) fn new() -> OpHistograms {
        OpHistograms {
            slots: [const { OnceLock::new() }; SLOT_COUNT],
            overflow: Histogram::new(LATENCY_BOUNDS_NS),
        }
    }

    pub(crate) fn observe(&self, op: &'static str, elapsed: Duration) {
        self.histogram(op).observe(elapsed);
    }

    fn histogram(&self, op: &'static str) -> &Histogram {
        let start = fnv1a(op) as usize;
        for probe in 0..SLOT_COUNT {
            let slot = &self.slots[(start + probe) & (SLOT_COUNT - 1)];
            let claimed = slot.get_or_init(|| OpSlot {
                op,
                histogram: Histogram::new(LATENCY_BOUNDS_NS),
            });
            // Another op may have claimed this slot first (a collision or a race); probe on.
            if claimed.op == op {
                return &claimed.histogram;
            }
        }
        &self.overflow
    }

    /// Writes every observed op's samples, sorted by op so the output is stable.
    pub(crate) fn render(&self, out: &mut String, name: &str) -> fmt::Result {
        let mut slots: Vec<&OpSlot> = self.slots.iter().filter_map(OnceLock::get).collect();
        slots.sort_unstable_by_key(|slot| slot.op);
        for slot in slots {
            let labels = format!("op=\"{}\",", super::escape_label_value(slot.op));
            slot.histogram.render(out, name, &labels)?;
        }
        if self.slots.iter().all(|slot| slot.get().is_some()) {
            let labels = format!("op=\"{OVERFLOW_OP}\",");
            self.overflow.render(out, name, &labels)?;
        }
        Ok(())
    }
}

/// FNV-1a: tiny, no state, good enough to spread a few dozen short names.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
