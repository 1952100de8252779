//! [`BitrateMeter`]: bits per second over fixed one-second windows. Used to
//! rank simulcast layers by what the publisher really sends. Also
//! [`rate_bps`], the rate of a byte count over a span.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// Bits per second for `bytes` over `span`; the caller ensures the span is
/// long enough to mean something (never zero).
pub fn rate_bps(bytes: u64, span: Duration) -> f64 {
    bytes as f64 * 8.0 / span.as_secs_f64()
}

#[derive(Debug, Default, Clone)]
pub struct BitrateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    last_bps: u64,
    last_packet: Option<Instant>,
}

impl BitrateMeter {
    pub fn record(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW {
            // A window that ran long (a pause) is averaged over its length.
            self.last_bps = self.bytes * 8 * 1000 / (elapsed.as_millis().max(1) as u64);
            self.window_start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
        self.last_packet = Some(now);
    }

    /// The last complete window's rate; 0 before the first window closes.
    pub fn bps(&self) -> u64 {
        self.last_bps
    }

    /// Whether a packet arrived within `within` of `now`.
    pub fn active(&self, now: Instant, within: Duration) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) <= within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kilobyte_every_10ms_is_800_kbps() {
        let t0 = Instant::now();
        let mut meter = BitrateMeter::default();
        for i in 0..=200 {
            meter.record(t0 + Duration::from_millis(i * 10), 1000);
        }
        assert_eq!(meter.bps(), 800_000);
    }

    #[test]
    fn a_silent_layer_is_inactive() {
        let t0 = Instant::now();
        let mut meter = BitrateMeter::default();
        meter.record(t0, 100);
        assert!(!meter.active(t0 + Duration::from_secs(2), Duration::from_secs(1)));
    }
}
