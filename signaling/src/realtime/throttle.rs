//! [`Throttle`]: "at most one push per interval, and none while nothing
//! changed" for pushes that summarize changes (reaction counts, alert
//! delivery status). Clock-free: the caller passes `now` and runs a timer
//! for the instant [`Throttle::request`] returns.
//!
//! Invariant: at most one flush is scheduled at a time, and two flushes are
//! never closer than the interval.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last_flush: Option<Instant>,
    scheduled: bool,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last_flush: None,
            scheduled: false,
        }
    }

    /// Something changed. Returns when to flush if no flush is scheduled
    /// yet (the caller must then call [`Throttle::flushed`] at that time);
    /// `None` when one already is.
    pub fn request(&mut self, now: Instant) -> Option<Instant> {
        if self.scheduled {
            return None;
        }
        self.scheduled = true;
        Some(match self.last_flush {
            Some(last) if last + self.every > now => last + self.every,
            _ => now,
        })
    }

    /// The scheduled flush ran at `now`.
    pub fn flushed(&mut self, now: Instant) {
        self.scheduled = false;
        self.last_flush = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_at_most_once_per_interval() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut t = Throttle::new(Duration::from_millis(250));
        // First change after idle: flush at once.
        assert_eq!(t.request(ms(0)), Some(ms(0)));
        assert_eq!(t.request(ms(1)), None, "already scheduled");
        t.flushed(ms(0));
        // A change 100 ms later waits for the interval.
        assert_eq!(t.request(ms(100)), Some(ms(250)));
        assert_eq!(t.request(ms(200)), None);
        t.flushed(ms(250));
        // Long idle: immediate again.
        assert_eq!(t.request(ms(5000)), Some(ms(5000)));
    }
}
