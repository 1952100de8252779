//! Measurements shared between threads: [`Histograms`] (owned by one viewer
//! thread each, merged at the end) and [`Live`] (relaxed atomics a viewer
//! thread stores every housekeeping tick and the progress line reads).
//!
//! Invariants: a histogram is written by one thread only; `Live` values are
//! totals *stored* (not added) by their one owning thread, so a reader sees
//! a value at most one tick old and never a double count.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Latency, TTFF and connect-time histograms of one thread.
pub struct Histograms {
    /// Forwarding latency, µs (publisher write → viewer arrival), in the
    /// steady window only (after every join settled).
    pub latency_us: Histogram<u64>,
    /// The same over the whole run, joins and GOP replays included.
    pub latency_all_us: Histogram<u64>,
    /// POST → first complete keyframe, ms.
    pub ttff_ms: Histogram<u64>,
    /// POST → ICE + DTLS connected, ms.
    pub connect_ms: Histogram<u64>,
    /// Whether the steady window has begun (set by the owning thread).
    pub steady: bool,
}

fn histogram(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, 3)
        .expect("1 ≤ max and 3 significant digits are valid bounds")
}

impl Default for Histograms {
    fn default() -> Self {
        Histograms {
            latency_us: histogram(60_000_000),
            latency_all_us: histogram(60_000_000),
            ttff_ms: histogram(600_000),
            connect_ms: histogram(600_000),
            steady: false,
        }
    }
}

impl Histograms {
    pub fn merge(&mut self, other: &Histograms) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.latency_all_us.add(&other.latency_all_us);
        let _ = self.ttff_ms.add(&other.ttff_ms);
        let _ = self.connect_ms.add(&other.connect_ms);
    }
}

/// p50/p99/p99.9/max of a histogram.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "count": h.len(),
        "p50": h.value_at_quantile(0.5),
        "p99": h.value_at_quantile(0.99),
        "p99_9": h.value_at_quantile(0.999),
        "max": h.max(),
    })
}

/// One viewer thread's running totals, for the progress line.
#[derive(Debug, Default)]
pub struct Live {
    pub viewers: AtomicU64,
    pub connected: AtomicU64,
    pub first_frames: AtomicU64,
    pub failed: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub lost: AtomicU64,
}

/// A plain copy of [`Live`] values (or of their sum over threads).
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveSnapshot {
    pub viewers: u64,
    pub connected: u64,
    pub first_frames: u64,
    pub failed: u64,
    pub packets: u64,
    pub bytes: u64,
    pub lost: u64,
}

impl Live {
    pub fn store(&self, s: &LiveSnapshot) {
        self.viewers.store(s.viewers, Relaxed);
        self.connected.store(s.connected, Relaxed);
        self.first_frames.store(s.first_frames, Relaxed);
        self.failed.store(s.failed, Relaxed);
        self.packets.store(s.packets, Relaxed);
        self.bytes.store(s.bytes, Relaxed);
        self.lost.store(s.lost, Relaxed);
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            viewers: self.viewers.load(Relaxed),
            connected: self.connected.load(Relaxed),
            first_frames: self.first_frames.load(Relaxed),
            failed: self.failed.load(Relaxed),
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            lost: self.lost.load(Relaxed),
        }
    }
}

impl std::ops::Add for LiveSnapshot {
    type Output = LiveSnapshot;
    fn add(self, o: LiveSnapshot) -> LiveSnapshot {
        LiveSnapshot {
            viewers: self.viewers + o.viewers,
            connected: self.connected + o.connected,
            first_frames: self.first_frames + o.first_frames,
            failed: self.failed + o.failed,
            packets: self.packets + o.packets,
            bytes: self.bytes + o.bytes,
            lost: self.lost + o.lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histograms_hold_both_threads_values() {
        let (mut a, mut b) = (Histograms::default(), Histograms::default());
        a.latency_us.saturating_record(100);
        b.latency_us.saturating_record(10_000);
        a.merge(&b);
        assert_eq!((a.latency_us.len(), a.latency_us.max() / 100), (2, 100));
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        assert_eq!(percentiles(&Histograms::default().ttff_ms), Value::Null);
    }
}
