//! [`Deadline`]: wakes the worker at an instant, to within a fraction of a
//! millisecond.
//!
//! Why not `tokio::time::sleep_until`: tokio's timer wheel has millisecond
//! ticks and fires on the first tick after the deadline, about 1.2 ms late
//! on this project's machines. str0m sends a probe cluster as bursts at
//! least 2 ms apart, each sized for its 2 ms slot, and measures the rate it
//! actually achieved; woken 1.2 ms late for every burst, a probe went out at
//! under two thirds of its target, and the viewer's estimate climbed by
//! that much less on every probe. On Linux a `timerfd` wakes within about
//! 0.1 ms; elsewhere tokio's timer is used.
//!
//! Invariant: [`Deadline::wait_until`] never returns before `at` (a timer
//! left over from an earlier, cancelled wait is re-armed, not trusted), and
//! it is cancel-safe: dropping the future leaves nothing to clean up.

use std::time::Instant;

#[cfg(target_os = "linux")]
mod imp {
    use std::time::Instant;

    use nix::errno::Errno;
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;

    /// `timer` is `None` when no timerfd could be had (out of
    /// descriptors): tokio's timer then serves, coarser but correct.
    /// `armed` is the instant the timerfd is set for, so the worker's loop
    /// (a wait per wake-up, mostly for the same instant) re-arms it only
    /// when the instant changes.
    pub struct Deadline {
        timer: Option<AsyncFd<TimerFd>>,
        armed: Option<Instant>,
    }

    impl Deadline {
        pub fn new() -> Self {
            // `AsyncFd::new` is deprecated because an arbitrary `AsRawFd`
            // may close or swap its descriptor while registered (tokio
            // #8587); its replacement is `unsafe`, which this workspace
            // forbids. A `TimerFd` owns its descriptor from creation to
            // drop and always returns that one, which is exactly the
            // condition `register` asks the caller to uphold.
            #[allow(deprecated)]
            let register = AsyncFd::new;
            let timer = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .map_err(std::io::Error::from)
            .and_then(register);
            let timer = timer
                .map_err(|e| {
                    tracing::warn!(error = %e, "no timerfd: pacing and probes use tokio's millisecond timer");
                })
                .ok();
            Self { timer, armed: None }
        }

        pub async fn wait_until(&mut self, at: Instant) {
            let Some(timer) = &self.timer else {
                return tokio::time::sleep_until(at.into()).await;
            };
            loop {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                if self.armed != Some(at) {
                    // Relative: `Instant` gives no absolute CLOCK_MONOTONIC
                    // value; the microseconds between reading the clock
                    // and arming are negligible next to what this replaces.
                    let set = timer.get_ref().set(
                        Expiration::OneShot(TimeSpec::from_duration(left)),
                        TimerSetTimeFlags::empty(),
                    );
                    if set.is_err() {
                        // Not for a valid timerfd and a positive duration.
                        return tokio::time::sleep_until(at.into()).await;
                    }
                    self.armed = Some(at);
                }
                let Ok(mut ready) = timer.readable().await else {
                    return tokio::time::sleep_until(at.into()).await;
                };
                match timer.get_ref().wait() {
                    // Expired; the loop re-checks the clock, so an
                    // expiration left from an earlier instant re-arms.
                    Ok(()) => self.armed = None,
                    Err(Errno::EAGAIN) => ready.clear_ready(),
                    Err(_) => return tokio::time::sleep_until(at.into()).await,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::Instant;

    pub struct Deadline;

    impl Deadline {
        pub fn new() -> Self {
            Self
        }

        pub async fn wait_until(&mut self, at: Instant) {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

/// A reusable precise timer, one per worker.
pub struct Deadline(imp::Deadline);

impl Deadline {
    pub fn new() -> Self {
        Self(imp::Deadline::new())
    }

    /// Completes at `at` (at once if it has passed).
    pub async fn wait_until(&mut self, at: Instant) {
        self.0.wait_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Never early, and on Linux closer than tokio's millisecond timer:
    /// over 2 ms waits, interleaved so both see the same load, the median
    /// lateness is below tokio's (about 0.1 ms against 1.2 ms here).
    #[tokio::test(flavor = "current_thread")]
    async fn wakes_at_the_deadline_not_a_tick_later() {
        let mut deadline = Deadline::new();
        let (mut ours, mut tokios) = (Vec::new(), Vec::new());
        for _ in 0..40 {
            let at = Instant::now() + Duration::from_millis(2);
            deadline.wait_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke before the deadline");
            ours.push(now - at);
            let at = Instant::now() + Duration::from_millis(2);
            tokio::time::sleep_until(at.into()).await;
            tokios.push(Instant::now() - at);
        }
        ours.sort();
        tokios.sort();
        let (ours, tokios) = (ours[ours.len() / 2], tokios[tokios.len() / 2]);
        if cfg!(target_os = "linux") {
            assert!(
                ours < tokios,
                "median lateness {ours:?}, tokio's {tokios:?}"
            );
        }
    }

    /// A wait that was cancelled (its future dropped, as `select!` does
    /// when another branch wins) leaves no expiration that could end the
    /// next wait early.
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_wait_does_not_end_the_next_early() {
        let mut deadline = Deadline::new();
        let soon = Instant::now() + Duration::from_millis(1);
        tokio::select! {
            _ = deadline.wait_until(soon) => {}
            _ = std::future::ready(()) => {}
        }
        // The first timer expires unseen.
        std::thread::sleep(Duration::from_millis(3));
        let at = Instant::now() + Duration::from_millis(20);
        deadline.wait_until(at).await;
        assert!(Instant::now() >= at);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_passed_deadline_returns_at_once() {
        let mut deadline = Deadline::new();
        let started = Instant::now();
        let passed = started
            .checked_sub(Duration::from_millis(5))
            .unwrap_or(started);
        deadline.wait_until(passed).await;
        assert!(started.elapsed() < Duration::from_millis(5));
    }
}
