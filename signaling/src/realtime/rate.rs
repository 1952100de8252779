//! [`TokenBucket`]: a clock-free token-bucket rate limiter. The caller
//! passes `now`; nothing here reads a clock, so tests step time by hand.
//!
//! Invariant: `0 <= tokens <= capacity`; a take succeeds only with a whole
//! token available, and a refused take costs nothing.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Bucket size: how many takes may happen back to back.
    pub burst: f64,
}

/// Chat: 1 message per second, bursts of 5.
pub const CHAT: Rate = Rate {
    per_sec: 1.0,
    burst: 5.0,
};
/// Reactions: 5 per second (a burst of 5, too).
pub const REACTIONS: Rate = Rate {
    per_sec: 5.0,
    burst: 5.0,
};

/// Joins: each reads the broadcast, likes and alerts from the store and
/// sends the chat history, so a loop of them is a cheap amplifier. Bursts
/// of 4 (a page reloading, switching broadcasts), then one per 5 s.
pub const JOINS: Rate = Rate {
    per_sec: 0.2,
    burst: 4.0,
};
/// Likes: each is a store write; a burst of 5, then one per 2 s.
pub const LIKES: Rate = Rate {
    per_sec: 0.5,
    burst: 5.0,
};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate.burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(self.rate.burst);
        self.last = self.last.max(now);
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.check(now)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Whether a take would succeed now, without taking: `Err` says how
    /// long until one would.
    pub fn check(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.rate.per_sec,
            ))
        }
    }

    /// Whether the bucket is full again (its user is idle: it can be forgotten).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (milliseconds since start, expected outcome) for the chat rate.
    #[test]
    fn chat_allows_a_burst_of_five_then_one_per_second() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(CHAT, t0);
        let table: &[(u64, bool)] = &[
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, false), // burst spent
            (500, false),
            (1000, true), // one token back after 1 s
            (1000, false),
            (1999, false),
            (2000, true),
            (10_000, true), // refilled to 5 after a long pause, not more
            (10_000, true),
            (10_000, true),
            (10_000, true),
            (10_000, true),
            (10_000, false),
        ];
        for (i, &(ms, allowed)) in table.iter().enumerate() {
            let got = bucket.try_take(t0 + Duration::from_millis(ms)).is_ok();
            assert_eq!(got, allowed, "row {i}: take at {ms} ms");
        }
    }

    #[test]
    fn reactions_allow_five_per_second() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(REACTIONS, t0);
        let mut allowed = 0;
        // 100 taps evenly over 2 s: 5 at once + 5/s × 2 s.
        for i in 0..100u64 {
            if bucket.try_take(t0 + Duration::from_millis(i * 20)).is_ok() {
                allowed += 1;
            }
        }
        assert!((14..=15).contains(&allowed), "{allowed} taps allowed");
    }

    #[test]
    fn a_refusal_says_when_to_retry_and_costs_nothing() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(CHAT, t0);
        for _ in 0..5 {
            bucket.try_take(t0).unwrap();
        }
        let wait = bucket
            .try_take(t0 + Duration::from_millis(250))
            .unwrap_err();
        assert_eq!(wait.as_millis(), 750);
        assert!(bucket.try_take(t0 + Duration::from_millis(1000)).is_ok());
        assert!(!bucket.is_full(t0 + Duration::from_millis(1000)));
        assert!(bucket.is_full(t0 + Duration::from_millis(6000)));
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(CHAT, t0);
        for _ in 0..5 {
            bucket.try_take(t0).unwrap();
        }
        assert!(bucket.try_take(t0 - Duration::from_secs(5)).is_err());
    }
}
