//! [`Quota`]: a token bucket per key (an identity, a client address),
//! for writes that must not flood the database or other viewers
//! (comments). Clock-free: the caller passes `now`.
//!
//! Invariant: at most `max_tracked` keys are held. When full, keys whose
//! bucket has refilled (idle users) are forgotten, at most once a second;
//! if it is still full, a key it does not hold is refused, so a flood from
//! more keys than that waits instead of growing memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::realtime::rate::{Rate, TokenBucket};

/// How often a full map may be swept for idle keys.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Quota<K> {
    rate: Rate,
    max_tracked: usize,
    buckets: HashMap<K, TokenBucket>,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Quota<K> {
    pub fn new(rate: Rate, max_tracked: usize) -> Quota<K> {
        Quota {
            rate,
            max_tracked: max_tracked.max(1),
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Whether `key` may act now (without spending): `Err` says when.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.buckets.get_mut(key) {
            Some(bucket) => bucket.check(now),
            None => self.room(now),
        }
    }

    /// Spends one of `key`'s tokens, or says when one will be there.
    pub fn take(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.try_take(now);
        }
        self.room(now)?;
        let mut bucket = TokenBucket::new(self.rate, now);
        let taken = bucket.try_take(now);
        self.buckets.insert(key.clone(), bucket);
        taken
    }

    /// Keys held, for tests.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn room(&mut self, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() < self.max_tracked {
            return Ok(());
        }
        if self.last_sweep.is_none_or(|t| now >= t + SWEEP_EVERY) {
            self.last_sweep = Some(now);
            self.buckets.retain(|_, b| !b.is_full(now));
        }
        if self.buckets.len() < self.max_tracked {
            Ok(())
        } else {
            Err(SWEEP_EVERY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_sec: 0.5,
        burst: 3.0,
    };

    /// (ms since start, key, expected outcome)
    #[test]
    fn each_key_has_its_own_burst_and_refill() {
        let t0 = Instant::now();
        let mut q = Quota::new(RATE, 100);
        let table: &[(u64, &str, bool)] = &[
            (0, "ann", true),
            (0, "ann", true),
            (0, "ann", true),
            (0, "ann", false), // burst spent
            (0, "bob", true),  // another key is untouched
            (1_000, "ann", false),
            (2_000, "ann", true), // one token per 2 s
            (2_000, "ann", false),
            (60_000, "ann", true), // refilled to 3, not more
            (60_000, "ann", true),
            (60_000, "ann", true),
            (60_000, "ann", false),
        ];
        for (i, &(ms, key, ok)) in table.iter().enumerate() {
            let got = q.take(&key.to_string(), t0 + Duration::from_millis(ms));
            assert_eq!(got.is_ok(), ok, "row {i}: {key} at {ms} ms: {got:?}");
        }
    }

    #[test]
    fn a_refusal_says_when_and_a_check_spends_nothing() {
        let t0 = Instant::now();
        let mut q = Quota::new(RATE, 100);
        for _ in 0..3 {
            assert_eq!(q.check(&1u8, t0), Ok(()));
            q.take(&1u8, t0).unwrap();
        }
        assert_eq!(q.take(&1u8, t0), Err(Duration::from_secs(2)));
        assert_eq!(q.check(&1u8, t0), Err(Duration::from_secs(2)));
    }

    #[test]
    fn a_full_map_forgets_idle_keys_and_refuses_new_ones_while_all_are_busy() {
        let t0 = Instant::now();
        let mut q = Quota::new(RATE, 2);
        q.take(&1u8, t0).unwrap();
        q.take(&2u8, t0).unwrap();
        // Full, both busy: a third key waits.
        assert_eq!(q.take(&3u8, t0), Err(SWEEP_EVERY));
        assert_eq!(q.tracked(), 2);
        // Keys 1 and 2 refill within 2 s and are forgotten on the next sweep.
        assert_eq!(q.take(&3u8, t0 + Duration::from_secs(3)), Ok(()));
        assert_eq!(q.tracked(), 1);
    }
}
