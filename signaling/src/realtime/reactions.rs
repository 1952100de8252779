//! [`ReactionAggregator`]: one room's reaction taps summed per emoji and
//! flushed as one `reactions` message at most every [`FLUSH_EVERY`], so
//! N viewers tapping costs N inbound messages and one outbound message per
//! viewer per flush, never N². Clock-free.
//!
//! Invariant: a flush returns exactly the taps added since the previous
//! flush (nothing lost, nothing counted twice).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::throttle::Throttle;

/// The emoji a client may send.
pub const EMOJI: [&str; 6] = ["❤️", "😂", "😮", "👏", "🔥", "😢"];
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// The whitelisted emoji equal to `s`.
pub fn emoji(s: &str) -> Option<&'static str> {
    EMOJI.iter().copied().find(|e| *e == s)
}

#[derive(Debug)]
pub struct ReactionAggregator {
    counts: [u64; EMOJI.len()],
    throttle: Throttle,
}

impl Default for ReactionAggregator {
    fn default() -> Self {
        ReactionAggregator {
            counts: [0; EMOJI.len()],
            throttle: Throttle::new(FLUSH_EVERY),
        }
    }
}

impl ReactionAggregator {
    /// Counts one tap of a whitelisted emoji (others are ignored: the
    /// caller validated). Returns when to flush if the caller must schedule
    /// a flush.
    pub fn add(&mut self, emoji: &str, now: Instant) -> Option<Instant> {
        let index = EMOJI.iter().position(|e| *e == emoji)?;
        self.counts[index] += 1;
        self.throttle.request(now)
    }

    /// The counts since the last flush (non-zero ones), and resets them.
    pub fn flush(&mut self, now: Instant) -> Option<BTreeMap<&'static str, u64>> {
        self.throttle.flushed(now);
        let counts: BTreeMap<_, _> = EMOJI
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| (*e, n))
            .collect();
        self.counts = [0; EMOJI.len()];
        (!counts.is_empty()).then_some(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_taps_become_one_summary_per_flush() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut agg = ReactionAggregator::default();
        assert_eq!(agg.add("🔥", ms(0)), Some(ms(0)));
        let first = agg.flush(ms(0)).unwrap();
        assert_eq!(first, BTreeMap::from([("🔥", 1)]));
        // 1000 taps within the next interval: one flush at 250 ms.
        let mut schedules = Vec::new();
        for i in 0..1000u64 {
            let emoji = EMOJI[(i % 3) as usize];
            if let Some(at) = agg.add(emoji, ms(1 + i / 5)) {
                schedules.push(at);
            }
        }
        assert_eq!(schedules, vec![ms(250)]);
        let second = agg.flush(ms(250)).unwrap();
        assert_eq!(
            second,
            BTreeMap::from([("❤️", 334), ("😂", 333), ("😮", 333)])
        );
        assert_eq!(agg.flush(ms(600)), None, "nothing since");
    }

    #[test]
    fn only_whitelisted_emoji_are_accepted() {
        for (input, expected) in [
            ("❤️", Some("❤️")),
            ("🔥", Some("🔥")),
            ("❤", None), // without the variation selector
            ("💩", None),
            ("", None),
            ("🔥🔥", None),
        ] {
            assert_eq!(emoji(input), expected, "{input:?}");
        }
        let mut agg = ReactionAggregator::default();
        assert_eq!(agg.add("💩", Instant::now()), None);
        assert_eq!(agg.flush(Instant::now()), None);
    }
}
