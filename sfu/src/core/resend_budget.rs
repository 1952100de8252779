//! [`ResendBudget`]: how many bytes of NACK resends one viewer may get.
//! After a congestion episode a receiver NACKs hundreds of packets at once;
//! resending all of them into the link that just overflowed only deepens
//! the loss (str0m caps its own resends at 15 % of the stream; LiveKit
//! likewise limits NACK responses). A token bucket: bursts up to
//! [`CAPACITY`] (a joiner repairing its replayed keyframe), refilled at
//! [`SHARE`] of the viewer's layer bitrate, never slower than [`MIN_RATE`].

use std::time::Instant;

pub const CAPACITY: f64 = 128.0 * 1024.0;
pub const SHARE: f64 = 0.25;
/// Bytes per second.
pub const MIN_RATE: f64 = 25_000.0;

#[derive(Debug, Clone)]
pub struct ResendBudget {
    tokens: f64,
    last: Option<Instant>,
}

impl Default for ResendBudget {
    fn default() -> Self {
        ResendBudget {
            tokens: CAPACITY,
            last: None,
        }
    }
}

impl ResendBudget {
    /// Takes `bytes` if the budget allows, given the layer's bitrate.
    pub fn take(&mut self, now: Instant, bytes: usize, layer_bps: u64) -> bool {
        if let Some(last) = self.last {
            let rate = (layer_bps as f64 / 8.0 * SHARE).max(MIN_RATE);
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(CAPACITY);
        }
        self.last = Some(now);
        if self.tokens < bytes as f64 {
            return false;
        }
        self.tokens -= bytes as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_rate_is_a_share_of_the_layer() {
        let t0 = Instant::now();
        let mut b = ResendBudget::default();
        let bps = 2_000_000; // 250 kB/s: refill 62.5 kB/s
        let burst = (0..200).take_while(|_| b.take(t0, 1000, bps)).count();
        assert_eq!(burst, 131, "128 KiB at once");
        assert!(!b.take(t0, 1000, bps));
        // 100 ms later: 6.25 kB back.
        let t1 = t0 + Duration::from_millis(100);
        let refilled = (0..20).take_while(|_| b.take(t1, 1000, bps)).count();
        assert_eq!(refilled, 6);
    }

    #[test]
    fn a_quiet_layer_still_gets_the_minimum_rate() {
        let t0 = Instant::now();
        let mut b = ResendBudget::default();
        while b.take(t0, 1000, 0) {}
        assert!(
            b.take(t0 + Duration::from_millis(100), 1000, 0),
            "25 kB/s × 0.1 s"
        );
    }
}
