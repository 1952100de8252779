//! [`ChatGate`]: who may chat in one room right now — the per-user rate
//! limit, moderator-set slow mode, and mutes. Clock-free: every call takes
//! `now`.
//!
//! Order of checks: mute, then slow mode, then the rate limit, so a refused
//! message never consumes a rate-limit token or restarts the slow-mode
//! interval. Moderators are exempt from slow mode and the rate limit (they
//! must be able to speak during a flood), never from validation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::rate::{TokenBucket, CHAT};

/// Why a chat message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Muted until this long from now.
    Muted(Duration),
    /// Slow mode: the next message is allowed this long from now.
    SlowMode(Duration),
    RateLimited(Duration),
}

/// Forgotten entries are pruned once the maps grow past this.
const PRUNE_ABOVE: usize = 4096;
/// Longest mute or slow-mode interval a moderator can set (one day).
pub const MAX_SECS: u32 = 86_400;

#[derive(Debug, Default)]
pub struct ChatGate {
    slow: Duration,
    last_sent: HashMap<String, Instant>,
    mutes: HashMap<String, Instant>,
    buckets: HashMap<String, TokenBucket>,
}

impl ChatGate {
    /// Slow mode interval in whole seconds (0 = off).
    pub fn slow_secs(&self) -> u32 {
        self.slow.as_secs() as u32
    }

    pub fn set_slow(&mut self, secs: u32) {
        self.slow = Duration::from_secs(secs.min(MAX_SECS).into());
    }

    /// Mutes `user` for `secs` from `now` (0 unmutes); returns the end.
    pub fn mute(&mut self, user: &str, secs: u32, now: Instant) -> Instant {
        let until = now + Duration::from_secs(secs.min(MAX_SECS).into());
        if secs == 0 {
            self.mutes.remove(user);
        } else {
            self.mutes.insert(user.to_owned(), until);
        }
        until
    }

    /// Admits one message from `user` (recording it) or says why not.
    pub fn admit(&mut self, user: &str, moderator: bool, now: Instant) -> Result<(), Refusal> {
        if let Some(&until) = self.mutes.get(user) {
            if until > now {
                return Err(Refusal::Muted(until - now));
            }
            self.mutes.remove(user);
        }
        if moderator {
            return Ok(());
        }
        if let Some(&last) = self.last_sent.get(user) {
            let next = last + self.slow;
            if next > now {
                return Err(Refusal::SlowMode(next - now));
            }
        }
        self.buckets
            .entry(user.to_owned())
            .or_insert_with(|| TokenBucket::new(CHAT, now))
            .try_take(now)
            .map_err(Refusal::RateLimited)?;
        self.last_sent.insert(user.to_owned(), now);
        self.prune(now);
        Ok(())
    }

    /// Keeps memory bounded by forgetting users who could send again anyway.
    fn prune(&mut self, now: Instant) {
        if self.buckets.len() > PRUNE_ABOVE {
            self.buckets.retain(|_, b| !b.is_full(now));
        }
        if self.last_sent.len() > PRUNE_ABOVE {
            let slow = self.slow;
            self.last_sent.retain(|_, &mut last| last + slow > now);
        }
        if self.mutes.len() > PRUNE_ABOVE {
            self.mutes.retain(|_, &mut until| until > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn slow_mode_spaces_a_users_messages_but_not_others() {
        let t0 = Instant::now();
        let mut gate = ChatGate::default();
        gate.set_slow(10);
        assert_eq!(gate.slow_secs(), 10);
        // (ms, user, moderator, expected)
        let table: &[(u64, &str, bool, Result<(), Refusal>)] = &[
            (0, "a", false, Ok(())),
            (
                1000,
                "a",
                false,
                Err(Refusal::SlowMode(Duration::from_secs(9))),
            ),
            (1000, "b", false, Ok(())),
            (2000, "m", true, Ok(())),
            (2500, "m", true, Ok(())), // moderators are exempt
            (10_000, "a", false, Ok(())),
        ];
        for (i, &(ms, user, moderator, expected)) in table.iter().enumerate() {
            assert_eq!(gate.admit(user, moderator, at(t0, ms)), expected, "row {i}");
        }
    }

    #[test]
    fn slow_mode_off_leaves_the_rate_limit() {
        let t0 = Instant::now();
        let mut gate = ChatGate::default();
        gate.set_slow(5);
        gate.set_slow(0);
        for _ in 0..5 {
            assert_eq!(gate.admit("a", false, t0), Ok(()));
        }
        assert_eq!(
            gate.admit("a", false, t0),
            Err(Refusal::RateLimited(Duration::from_secs(1)))
        );
    }

    #[test]
    fn a_muted_user_is_refused_until_the_mute_ends() {
        let t0 = Instant::now();
        let mut gate = ChatGate::default();
        let until = gate.mute("a", 30, t0);
        assert_eq!(until, at(t0, 30_000));
        assert_eq!(
            gate.admit("a", false, at(t0, 10_000)),
            Err(Refusal::Muted(Duration::from_secs(20)))
        );
        // Mutes apply to moderators too (a moderator can mute a rogue one).
        gate.mute("m", 5, t0);
        assert!(matches!(gate.admit("m", true, t0), Err(Refusal::Muted(_))));
        assert_eq!(gate.admit("a", false, at(t0, 30_000)), Ok(()));
        gate.mute("b", 30, t0);
        gate.mute("b", 0, t0);
        assert_eq!(gate.admit("b", false, t0), Ok(()));
    }

    #[test]
    fn refused_messages_cost_no_rate_tokens() {
        let t0 = Instant::now();
        let mut gate = ChatGate::default();
        gate.mute("a", 1, t0);
        for _ in 0..20 {
            assert!(gate.admit("a", false, t0).is_err());
        }
        for _ in 0..5 {
            assert_eq!(gate.admit("a", false, at(t0, 1000)), Ok(()));
        }
    }

    #[test]
    fn intervals_are_capped_at_a_day() {
        let t0 = Instant::now();
        let mut gate = ChatGate::default();
        gate.set_slow(u32::MAX);
        assert_eq!(gate.slow_secs(), MAX_SECS);
        assert_eq!(
            gate.mute("a", u32::MAX, t0),
            t0 + Duration::from_secs(86_400)
        );
    }
}
