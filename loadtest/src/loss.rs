//! [`SeqTracker`]: unrecovered loss on one received RTP stream.
//!
//! A sequence number is *missing* from the moment a later one arrives; it is
//! *lost* if it is still missing [`SeqTracker::window`] later (str0m NACKs
//! it meanwhile and a retransmission may fill it). Clock-free: every call
//! takes `now`.
//!
//! Invariants: `missing` only holds numbers below `highest`, each inserted
//! once; a gap larger than [`MAX_TRACKED_GAP`] is counted lost at once so
//! memory stays bounded whatever the input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Gaps wider than this are not waited for: no NACK window repairs them.
pub const MAX_TRACKED_GAP: u64 = 4096;

#[derive(Debug)]
pub struct SeqTracker {
    window: Duration,
    highest: Option<u64>,
    /// Missing sequence number → when it went missing.
    missing: BTreeMap<u64, Instant>,
    pub received: u64,
    /// Missing numbers that arrived later (retransmitted or reordered).
    pub recovered: u64,
    pub lost: u64,
}

impl SeqTracker {
    pub fn new(window: Duration) -> SeqTracker {
        SeqTracker {
            window,
            highest: None,
            missing: BTreeMap::new(),
            received: 0,
            recovered: 0,
            lost: 0,
        }
    }

    /// Records an arrival of extended sequence number `seq` (str0m gives
    /// extended numbers, so no wrap handling here). Duplicates are ignored.
    pub fn arrive(&mut self, seq: u64, now: Instant) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.received += 1;
            return;
        };
        if seq > highest {
            let gap = seq - highest - 1;
            if gap > MAX_TRACKED_GAP {
                self.lost += gap;
            } else {
                for s in highest + 1..seq {
                    self.missing.insert(s, now);
                }
            }
            self.highest = Some(seq);
            self.received += 1;
        } else if self.missing.remove(&seq).is_some() {
            self.recovered += 1;
            self.received += 1;
        }
    }

    /// Counts as lost what has been missing longer than the window.
    pub fn expire(&mut self, now: Instant) {
        self.missing.retain(|_, since| {
            let expired = now.saturating_duration_since(*since) >= self.window;
            if expired {
                self.lost += 1;
            }
            !expired
        });
    }

    /// Numbers missing but still inside their window.
    pub fn pending(&self) -> usize {
        self.missing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(1);

    #[test]
    fn a_gap_filled_within_the_window_is_not_lost() {
        let t = Instant::now();
        let mut s = SeqTracker::new(WINDOW);
        for seq in [10, 11, 13] {
            s.arrive(seq, t);
        }
        s.arrive(12, t + Duration::from_millis(300));
        s.expire(t + Duration::from_secs(2));
        assert_eq!((s.received, s.recovered, s.lost), (4, 1, 0));
    }

    #[test]
    fn a_gap_still_open_after_the_window_is_lost() {
        let t = Instant::now();
        let mut s = SeqTracker::new(WINDOW);
        for seq in [10, 14] {
            s.arrive(seq, t);
        }
        s.expire(t + Duration::from_millis(999));
        assert_eq!((s.lost, s.pending()), (0, 3));
        s.expire(t + WINDOW);
        assert_eq!((s.lost, s.pending()), (3, 0));
    }

    #[test]
    fn duplicates_and_late_arrivals_after_expiry_count_nothing() {
        let t = Instant::now();
        let mut s = SeqTracker::new(WINDOW);
        for seq in [1, 3, 3, 1] {
            s.arrive(seq, t);
        }
        s.expire(t + WINDOW);
        s.arrive(2, t + WINDOW * 2);
        assert_eq!((s.received, s.lost), (2, 1));
    }

    #[test]
    fn a_huge_gap_is_lost_at_once_without_tracking_each_number() {
        let t = Instant::now();
        let mut s = SeqTracker::new(WINDOW);
        s.arrive(0, t);
        s.arrive(1_000_000, t);
        assert_eq!((s.lost, s.pending()), (999_999, 0));
    }
}
