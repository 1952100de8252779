//! Alert scope matching and [`AlertTracker`], the delivered/acknowledged
//! counts of each alert. Clock-free: expiry is judged from `now_ms` (unix
//! milliseconds, the unit alerts carry).
//!
//! Invariants: "delivered" counts distinct connections an alert was queued
//! to (live, or in `joined`); "acked" counts distinct connections that
//! acknowledged it, and only an alert delivered to that connection can be
//! acknowledged by it, so `acked <= delivered` always.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::throttle::Throttle;

/// The scope that reaches every connected client, joined or not.
pub const SCOPE_ALL: &str = "all";
/// Moderators see status changes at most this often.
pub const STATUS_EVERY: Duration = Duration::from_millis(250);
/// Counts stay queryable this long after an alert expires.
const KEEP_AFTER_EXPIRY_MS: i64 = 3_600_000;
const MAX_TRACKED: usize = 1024;

/// Whether an alert with `scope` reaches a connection joined to `joined`.
pub fn in_scope(scope: &str, joined: Option<&str>) -> bool {
    scope == SCOPE_ALL || joined == Some(scope)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    /// No such alert (or its counts were forgotten).
    UnknownAlert,
    /// This connection was never sent the alert.
    NotDelivered,
}

#[derive(Debug)]
struct Tracked {
    expires_ms: i64,
    delivered: HashSet<u64>,
    acked: HashSet<u64>,
    status: Throttle,
}

#[derive(Debug, Default)]
pub struct AlertTracker {
    alerts: HashMap<i64, Tracked>,
}

impl AlertTracker {
    /// Starts counting for an alert (idempotent).
    pub fn track(&mut self, id: i64, expires_ms: i64, now_ms: i64) {
        self.prune(now_ms);
        self.alerts.entry(id).or_insert_with(|| Tracked {
            expires_ms,
            delivered: HashSet::new(),
            acked: HashSet::new(),
            status: Throttle::new(STATUS_EVERY),
        });
    }

    /// Records deliveries to these connections; returns the new total.
    pub fn delivered(&mut self, id: i64, conns: impl IntoIterator<Item = u64>) -> u64 {
        match self.alerts.get_mut(&id) {
            Some(t) => {
                t.delivered.extend(conns);
                t.delivered.len() as u64
            }
            None => 0,
        }
    }

    /// Takes back deliveries that failed (recorded before the fan-out so a
    /// quick acknowledgement is never refused); returns the new total.
    pub fn undeliver(&mut self, id: i64, conns: impl IntoIterator<Item = u64>) -> u64 {
        match self.alerts.get_mut(&id) {
            Some(t) => {
                for conn in conns {
                    t.delivered.remove(&conn);
                    t.acked.remove(&conn);
                }
                t.delivered.len() as u64
            }
            None => 0,
        }
    }

    /// Records an acknowledgement. Returns when to push a status to
    /// moderators if the caller must schedule one (see [`Throttle`]).
    pub fn ack(&mut self, id: i64, conn: u64, now: Instant) -> Result<Option<Instant>, AckError> {
        let t = self.alerts.get_mut(&id).ok_or(AckError::UnknownAlert)?;
        if !t.delivered.contains(&conn) {
            return Err(AckError::NotDelivered);
        }
        if t.acked.insert(conn) {
            Ok(t.status.request(now))
        } else {
            Ok(None) // a repeated ack changes nothing
        }
    }

    /// A scheduled status push runs: the counts to send.
    pub fn status_flushed(&mut self, id: i64, now: Instant) -> Option<(u64, u64)> {
        let t = self.alerts.get_mut(&id)?;
        t.status.flushed(now);
        Some((t.delivered.len() as u64, t.acked.len() as u64))
    }

    /// (delivered, acked).
    pub fn status(&self, id: i64) -> Option<(u64, u64)> {
        self.alerts
            .get(&id)
            .map(|t| (t.delivered.len() as u64, t.acked.len() as u64))
    }

    /// Forgets alerts long expired, and the oldest ones past a bound.
    fn prune(&mut self, now_ms: i64) {
        self.alerts
            .retain(|_, t| t.expires_ms.saturating_add(KEEP_AFTER_EXPIRY_MS) > now_ms);
        if self.alerts.len() >= MAX_TRACKED {
            let mut ids: Vec<i64> = self.alerts.keys().copied().collect();
            ids.sort_unstable();
            for id in &ids[..ids.len() + 1 - MAX_TRACKED] {
                self.alerts.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_all_reaches_everyone_a_stream_scope_only_its_room() {
        // (scope, joined, reached)
        let table = [
            ("all", None, true),
            ("all", Some("live"), true),
            ("live", Some("live"), true),
            ("live", Some("other"), false),
            ("live", None, false),
            ("ALL", None, false), // scopes are exact
        ];
        for (scope, joined, expected) in table {
            assert_eq!(in_scope(scope, joined), expected, "{scope} / {joined:?}");
        }
    }

    #[test]
    fn acks_count_once_per_delivered_connection() {
        let now = Instant::now();
        let mut tracker = AlertTracker::default();
        tracker.track(7, 10_000, 0);
        assert_eq!(tracker.delivered(7, [1, 2, 3]), 3);
        assert_eq!(tracker.delivered(7, [3, 4]), 4, "join after publish");
        // (conn, expected)
        let table = [
            (1, Ok(Some(now))),
            (1, Ok(None)), // repeat
            (2, Ok(None)), // status push already scheduled
            (9, Err(AckError::NotDelivered)),
        ];
        for (conn, expected) in table {
            assert_eq!(tracker.ack(7, conn, now), expected, "conn {conn}");
        }
        assert_eq!(tracker.ack(8, 1, now), Err(AckError::UnknownAlert));
        assert_eq!(tracker.status_flushed(7, now), Some((4, 2)));
        // The next change waits for the interval.
        assert_eq!(tracker.ack(7, 3, now), Ok(Some(now + STATUS_EVERY)));
        assert_eq!(tracker.status(7), Some((4, 3)));
        // A delivery that failed after all (the queue was full) is taken back.
        assert_eq!(tracker.undeliver(7, [3]), 3);
        assert_eq!(tracker.status(7), Some((3, 2)));
        assert_eq!(tracker.ack(7, 3, now), Err(AckError::NotDelivered));
    }

    #[test]
    fn expired_alerts_are_forgotten_an_hour_later() {
        let mut tracker = AlertTracker::default();
        tracker.track(1, 1_000, 0);
        tracker.track(2, 1_000, 1_000 + KEEP_AFTER_EXPIRY_MS - 1);
        assert!(tracker.status(1).is_some());
        tracker.track(3, 9_999_999, 1_000 + KEEP_AFTER_EXPIRY_MS);
        assert!(tracker.status(1).is_none());
        assert!(tracker.status(3).is_some());
    }

    #[test]
    fn tracking_is_bounded() {
        let mut tracker = AlertTracker::default();
        for id in 0..(MAX_TRACKED as i64 + 10) {
            tracker.track(id, i64::MAX / 2, 0);
        }
        assert_eq!(tracker.alerts.len(), MAX_TRACKED);
        assert!(tracker.status(0).is_none());
        assert!(tracker.status(MAX_TRACKED as i64 + 9).is_some());
    }
}
