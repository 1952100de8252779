//! [`TrackClock`]: a track's 32-bit RTP timestamps as decode times on the
//! recording's one timeline, in the track's own timescale.
//!
//! Each publisher session (epoch) starts its tracks at their arrival time
//! since the recording began, so audio and video line up within the
//! jitter of their first packets, and a reconnect continues the timeline
//! where the wall clock says it is. Within an epoch, times follow the RTP
//! timestamps (unwrapped across 2^32) and never go backwards.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TrackClock {
    timescale: u32,
    /// The epoch's first RTP timestamp, unwrapped, and its decode time.
    anchor: Option<(i64, u64)>,
    /// The last unwrapped timestamp.
    last: i64,
    /// The decode time no later sample may precede (the end of the
    /// previous epoch's last sample).
    floor: u64,
}

impl TrackClock {
    pub fn new(timescale: u32) -> Self {
        TrackClock {
            timescale,
            anchor: None,
            last: 0,
            floor: 0,
        }
    }

    /// A new publisher session: the next timestamp is re-anchored.
    pub fn new_epoch(&mut self, floor: u64) {
        self.anchor = None;
        self.floor = self.floor.max(floor);
    }

    /// The decode time of a sample with RTP timestamp `ts` that arrived at
    /// `arrival`; `origin` is when the recording's timeline began.
    pub fn decode_time(&mut self, ts: u32, arrival: Instant, origin: Instant) -> u64 {
        match self.anchor {
            None => {
                let since = arrival.saturating_duration_since(origin);
                let at = self.ticks(since).max(self.floor);
                self.anchor = Some((i64::from(ts), at));
                self.last = i64::from(ts);
                at
            }
            Some((first, at)) => {
                // The nearest unwrapped value to the last one.
                let delta = i64::from(ts.wrapping_sub(self.last as u32) as i32);
                self.last += delta;
                let offset = (self.last - first).max(0) as u64;
                at + offset
            }
        }
    }

    fn ticks(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.timescale) / 1_000_000_000) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_unwrap_and_epochs_start_at_their_arrival() {
        let origin = Instant::now();
        let mut c = TrackClock::new(90_000);
        let at = |ms| origin + Duration::from_millis(ms);
        assert_eq!(c.decode_time(u32::MAX - 1499, at(0), origin), 0);
        assert_eq!(c.decode_time(u32::MAX, at(16), origin), 1499);
        // Wraps past 2^32.
        assert_eq!(c.decode_time(1500, at(33), origin), 3000);
        // A reordered older timestamp is earlier, not 2^32 later.
        assert_eq!(c.decode_time(0, at(34), origin), 1500);
        // A reconnect 10 s in, with unrelated timestamps.
        c.new_epoch(3000);
        assert_eq!(c.decode_time(777, at(10_000), origin), 900_000);
        assert_eq!(c.decode_time(777 + 3000, at(10_033), origin), 903_000);
    }

    #[test]
    fn a_new_epoch_never_starts_before_the_previous_one_ended() {
        let origin = Instant::now();
        let mut c = TrackClock::new(48_000);
        c.decode_time(0, origin, origin);
        c.new_epoch(96_000); // 2 s were written
        assert_eq!(
            c.decode_time(5, origin + Duration::from_secs(1), origin),
            96_000
        );
    }
}
