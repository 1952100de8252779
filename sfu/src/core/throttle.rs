//! [`KeyframeThrottle`]: at most one keyframe request per layer per interval,
//! however many viewers ask. LiveKit and mediasoup throttle the same way; a
//! PLI storm makes a publisher's encoder spend its bitrate on keyframes.

use std::time::{Duration, Instant};

pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Default, Clone)]
pub struct KeyframeThrottle {
    last: Option<Instant>,
}

impl KeyframeThrottle {
    /// True (and records the request) when a request may go upstream now.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_within_the_interval_are_suppressed() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::default();
        let allowed: Vec<bool> = [0, 100, 499, 500, 600, 1000]
            .iter()
            .map(|ms| throttle.allow(t0 + Duration::from_millis(*ms)))
            .collect();
        assert_eq!(allowed, [true, false, false, true, false, true]);
    }
}
