//! [`AdSeat`]: what the ad server knows of one websocket connection — who
//! watches there (and whether that account is ad-free), which media
//! sessions it holds, and the break it is in. Kept on the connection's hub
//! handle, so a break reaches every member of a room without asking each
//! connection's task.
//!
//! Invariants: an ad-free seat never enters a break; a seat is in at most
//! one break, which ends at its time even if no one says so; every media
//! session the seat gains during a break is held for the rest of it.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use relaycast_sfu::SessionId;

/// One seat's part in a break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatBreak {
    pub break_id: i64,
    /// The ad server's session for this seat in this break (random; the
    /// key of its tracking events).
    pub session: String,
    pub until: Instant,
}

#[derive(Debug, Default)]
pub struct AdSeat {
    inner: Mutex<SeatState>,
}

#[derive(Debug, Default)]
struct SeatState {
    /// The identity id watching here ("" before one is known).
    viewer: String,
    ad_free: bool,
    sessions: Vec<SessionId>,
    current: Option<SeatBreak>,
}

/// A break a seat entered: what to tell it and what to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    pub seat: SeatBreak,
    pub viewer: String,
    pub sessions: Vec<SessionId>,
}

impl AdSeat {
    fn lock(&self) -> MutexGuard<'_, SeatState> {
        // Only plain field edits happen under it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who watches here now (after `auth`), and whether they are ad-free;
    /// becoming ad-free leaves a running break (its sessions are returned,
    /// to resume).
    pub fn set_viewer(&self, viewer: &str, ad_free: bool) -> Option<(SeatBreak, Vec<SessionId>)> {
        let mut s = self.lock();
        s.viewer = viewer.to_owned();
        s.ad_free = ad_free;
        if ad_free {
            s.current.take().map(|b| (b, s.sessions.clone()))
        } else {
            None
        }
    }

    pub fn is_ad_free(&self) -> bool {
        self.lock().ad_free
    }

    /// A media session of this connection started; how long to hold its
    /// video when the seat is in a break.
    pub fn add_session(&self, id: SessionId, now: Instant) -> Option<Duration> {
        let mut s = self.lock();
        if !s.sessions.contains(&id) {
            s.sessions.push(id);
        }
        s.current
            .as_ref()
            .map(|b| b.until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    pub fn remove_session(&self, id: SessionId) {
        self.lock().sessions.retain(|s| *s != id);
    }

    /// Enters break `break_id` until `until`, unless the seat is ad-free
    /// or already in it; `session` makes the ad server's session id.
    pub fn enter(
        &self,
        break_id: i64,
        until: Instant,
        now: Instant,
        session: impl FnOnce() -> String,
    ) -> Option<Entered> {
        let mut s = self.lock();
        if s.ad_free {
            return None;
        }
        if s.current
            .as_ref()
            .is_some_and(|b| b.break_id == break_id && now < b.until)
        {
            return None;
        }
        let seat = SeatBreak {
            break_id,
            session: session(),
            until,
        };
        s.current = Some(seat.clone());
        Some(Entered {
            seat,
            viewer: s.viewer.clone(),
            sessions: s.sessions.clone(),
        })
    }

    /// The break the seat is in at `now`.
    pub fn current(&self, now: Instant) -> Option<SeatBreak> {
        self.lock().current.clone().filter(|b| now < b.until)
    }

    /// Leaves `break_id` (its pod finished); the sessions to resume.
    pub fn leave(&self, break_id: i64) -> Option<(SeatBreak, Vec<SessionId>)> {
        let mut s = self.lock();
        if s.current.as_ref().is_some_and(|b| b.break_id == break_id) {
            let left = s.current.take()?;
            Some((left, s.sessions.clone()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_is_in_one_break_at_a_time_and_holds_what_it_gains() {
        let seat = AdSeat::default();
        let t0 = Instant::now();
        let a = SessionId::random();
        assert_eq!(seat.add_session(a, t0), None, "no break: nothing held");
        seat.set_viewer("u-1", false);
        let until = t0 + Duration::from_secs(30);
        let entered = seat.enter(7, until, t0, || "s1".into()).unwrap();
        assert_eq!(
            (entered.viewer.as_str(), entered.sessions.clone()),
            ("u-1", vec![a])
        );
        assert_eq!(
            seat.enter(7, until, t0, || "s2".into()),
            None,
            "already in it"
        );
        let b = SessionId::random();
        assert_eq!(
            seat.add_session(b, t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(20)),
            "a session started mid-break is held for the rest"
        );
        assert_eq!(seat.current(t0).map(|b| b.session), Some("s1".into()));
        assert_eq!(seat.current(until), None, "over at its time");
        assert_eq!(seat.leave(8), None, "not that break");
        let (left, sessions) = seat.leave(7).unwrap();
        assert_eq!((left.break_id, sessions), (7, vec![a, b]));
        assert_eq!(seat.current(t0), None);
    }

    #[test]
    fn an_ad_free_seat_never_enters_and_leaves_on_becoming_ad_free() {
        let seat = AdSeat::default();
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(30);
        seat.set_viewer("u-2", false);
        seat.enter(1, until, t0, || "s".into()).unwrap();
        let (left, _) = seat.set_viewer("u-2", true).unwrap();
        assert_eq!(left.break_id, 1);
        assert_eq!(seat.enter(2, until, t0, || "s".into()), None);
        assert!(seat.is_ad_free());
    }
}
