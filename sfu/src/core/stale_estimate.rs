//! [`StaleEstimate`]: notices when a viewer's bandwidth estimate is stale
//! while the link delivers cleanly, and says to restart the estimator.
//! Pure and clock-free.
//!
//! Two ways an estimate goes stale:
//! - **Held down.** After a congestion episode str0m's loss-based estimator
//!   keeps lowering its estimate for seconds after the loss has stopped,
//!   then climbs slowly, and while it reports itself loss-limited it allows
//!   no probes. A viewer moved to the low layer by a bottleneck kept an
//!   estimate at or under that layer's rate long after the bottleneck had
//!   gone. A healthy estimator on a clean link rises to 1.5x the rate it
//!   sees delivered (its increase limit); one that stays under
//!   [`HELD_DOWN`] of that rate is remembering congestion that has ended.
//! - **Stuck.** Short of what the viewer could use, an application-limited
//!   sender's estimate can only grow through probes; when none of them has
//!   lifted it for [`STUCK_FOR`] (the estimator bars probes after a loss
//!   episode, or their results keep coming back low) it sits at 1.5x the
//!   layer being sent, seconds after the link freed.
//!
//! A restarted estimator begins from the estimate (or the delivered rate,
//! if higher) and probes at once: a few short clusters at 3x and 6x, which
//! a link that is still narrow simply does not carry, as it does not carry
//! the periodic probes WebRTC senders make anyway.
//!
//! Invariants: a restart needs [`CLEAN_FOR`] of receiver reports with at
//! most [`CLEAN_LOSS`] lost; restarts are at least [`RESTART_INTERVAL`]
//! apart; an estimate that covers what the viewer wants is never stuck; a
//! viewer with nothing better to climb to is restarted only when its
//! estimate is under what it receives cleanly.

use std::time::{Duration, Instant};

use super::bitrate::rate_bps;

/// Reports with at most this share lost count as clean: classic GCC's
/// loss controller holds its rate between 2 % and 10 % loss and only
/// lowers it above.
pub const CLEAN_LOSS: f32 = 0.1;
/// How long reports must have been clean.
pub const CLEAN_FOR: Duration = Duration::from_secs(2);
/// An estimate under this multiple of the rate delivered cleanly is held
/// down (a free estimator would be near 1.5x).
pub const HELD_DOWN: f64 = 1.2;
/// How long an estimate short of what the viewer wants may go without
/// rising by [`RISE`] before it counts as stuck.
pub const STUCK_FOR: Duration = Duration::from_secs(3);
/// A rise by this factor counts as progress.
pub const RISE: f64 = 1.1;
/// The least time between two restarts.
pub const RESTART_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct StaleEstimate {
    /// Since when receiver reports have been clean, and the bytes sent by
    /// then.
    clean_since: Option<(Instant, u64)>,
    /// Since when the estimate has not risen, and its value then.
    flat_since: Option<(Instant, u64)>,
    last_restart: Option<Instant>,
}

impl StaleEstimate {
    /// A sender report: bytes sent so far to the viewer, the fraction lost
    /// its receiver reported since the previous report (`None` when no
    /// receiver report came in), the estimator's current estimate, and the
    /// rate the viewer could use (its best layer with headroom). Returns
    /// the rate to restart the estimator from, if the estimate is stale.
    pub fn on_report(
        &mut self,
        now: Instant,
        bytes_sent: u64,
        loss: Option<f32>,
        estimate: Option<u64>,
        wanted_bps: u64,
    ) -> Option<u64> {
        match loss {
            Some(l) if l <= CLEAN_LOSS => {
                self.clean_since.get_or_insert((now, bytes_sent));
            }
            Some(_) => self.clean_since = None,
            // No receiver report since the last one: nothing learned.
            None => {}
        }
        let estimate = estimate?;
        match self.flat_since {
            Some((_, base)) if (estimate as f64) < base as f64 * RISE => {}
            _ => self.flat_since = Some((now, estimate)),
        }
        let (since, bytes_then) = self.clean_since?;
        let clean_for = now.saturating_duration_since(since);
        if clean_for < CLEAN_FOR {
            return None;
        }
        if self
            .last_restart
            .is_some_and(|t| now.saturating_duration_since(t) < RESTART_INTERVAL)
        {
            return None;
        }
        let delivered = rate_bps(bytes_sent.saturating_sub(bytes_then), clean_for) as u64;
        // With a better layer to climb to, the estimate needs room above
        // what arrives; on the best layer already, it only must not
        // contradict it (restarting sends probes, for nothing to gain).
        let held_down_under = if wanted_bps > 0 { HELD_DOWN } else { 1.0 };
        let held_down = (estimate as f64) < delivered as f64 * held_down_under;
        let stuck = estimate < wanted_bps
            && self
                .flat_since
                .is_some_and(|(t, _)| now.saturating_duration_since(t) >= STUCK_FOR);
        if !held_down && !stuck {
            return None;
        }
        self.last_restart = Some(now);
        // Measure afresh from here.
        self.clean_since = Some((now, bytes_sent));
        self.flat_since = None;
        Some(delivered.max(estimate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of (ms, bytes sent so far, loss, estimate kbit/s) → the rate
    /// in kbit/s to restart from, if any; the viewer wants 150 kbit/s, so
    /// only a held-down estimate restarts.
    fn run(steps: &[(u64, u64, Option<f32>, Option<u64>)]) -> Vec<Option<u64>> {
        run_wanting(150, steps)
    }

    fn run_wanting(
        wanted_kbps: u64,
        steps: &[(u64, u64, Option<f32>, Option<u64>)],
    ) -> Vec<Option<u64>> {
        let t0 = Instant::now();
        let mut stale = StaleEstimate::default();
        steps
            .iter()
            .map(|&(ms, bytes, loss, estimate)| {
                stale
                    .on_report(
                        t0 + Duration::from_millis(ms),
                        bytes,
                        loss,
                        estimate.map(|e| e * 1000),
                        wanted_kbps * 1000,
                    )
                    .map(|r| r / 1000)
            })
            .collect()
    }

    #[test]
    fn table_of_restarts() {
        type Steps = Vec<(u64, u64, Option<f32>, Option<u64>)>;
        // 25 bytes a millisecond is 200 kbit/s sent.
        let clean = |ms: u64, estimate: u64| (ms, ms * 25, Some(0.0), Some(estimate));
        let unreported = |ms: u64, estimate: u64| (ms, ms * 25, None, Some(estimate));
        let cases: Vec<(&str, Steps, Vec<Option<u64>>)> = vec![
            (
                "an estimate under what arrived cleanly for 2 s restarts",
                vec![
                    clean(0, 150),
                    clean(500, 150),
                    clean(1_900, 150),
                    clean(2_000, 150),
                ],
                vec![None, None, None, Some(200)],
            ),
            (
                "an estimate that rose above what is sent is left alone",
                vec![clean(0, 200), clean(2_000, 240), clean(2_500, 300)],
                vec![None, None, None],
            ),
            (
                "loss over 10 % restarts the clean time",
                vec![
                    clean(0, 100),
                    (500, 12_500, Some(0.15), Some(100)),
                    clean(1_000, 100),
                    clean(2_500, 100),
                    clean(3_000, 100),
                ],
                vec![None, None, None, None, Some(200)],
            ),
            (
                "light loss keeps it",
                vec![
                    clean(0, 100),
                    (1_000, 25_000, Some(0.05), Some(100)),
                    clean(2_000, 100),
                ],
                vec![None, None, Some(200)],
            ),
            (
                "intervals without a receiver report keep the clean time",
                vec![
                    clean(0, 100),
                    unreported(1_000, 100),
                    unreported(1_900, 100),
                    unreported(2_000, 100),
                ],
                vec![None, None, None, Some(200)],
            ),
            (
                "restarts are at least 5 s apart",
                vec![
                    clean(0, 100),
                    clean(2_000, 100),
                    clean(2_500, 100),
                    clean(6_900, 100),
                    clean(7_000, 100),
                ],
                vec![None, Some(200), None, None, Some(200)],
            ),
            (
                "no estimate, no restart",
                vec![(0, 0, Some(0.0), None), (2_500, 62_500, Some(0.0), None)],
                vec![None, None],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&steps), want, "{name}");
        }
    }

    #[test]
    fn table_of_stuck_estimates() {
        type Steps = Vec<(u64, u64, Option<f32>, Option<u64>)>;
        // 25 bytes a millisecond is 200 kbit/s sent; the viewer wants 3 Mbit/s.
        let clean = |ms: u64, estimate: u64| (ms, ms * 25, Some(0.0), Some(estimate));
        let cases: Vec<(&str, Steps, Vec<Option<u64>>)> = vec![
            (
                "an estimate short of what is wanted and flat for 3 s restarts from itself",
                vec![
                    clean(0, 300),
                    clean(2_000, 310),
                    clean(2_900, 320),
                    clean(3_000, 320),
                ],
                vec![None, None, None, Some(320)],
            ),
            (
                "a rising estimate is not stuck",
                vec![
                    clean(0, 300),
                    clean(1_500, 340),
                    clean(3_000, 380),
                    clean(4_000, 400),
                ],
                vec![None, None, None, None],
            ),
            (
                "an estimate that covers what is wanted is never stuck",
                vec![clean(0, 3_000), clean(3_000, 3_000), clean(6_000, 3_000)],
                vec![None, None, None],
            ),
            (
                "a lossy link is not restarted",
                vec![
                    clean(0, 300),
                    (2_500, 62_500, Some(0.2), Some(300)),
                    (3_000, 75_000, Some(0.2), Some(300)),
                ],
                vec![None, None, None],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run_wanting(3_000, &steps), want, "{name}");
        }
    }

    #[test]
    fn on_the_best_layer_only_an_estimate_under_what_arrives_restarts() {
        // 25 bytes a millisecond is 200 kbit/s sent; nothing better wanted.
        let clean = |ms: u64, estimate: u64| (ms, ms * 25, Some(0.0), Some(estimate));
        type Steps = Vec<(u64, u64, Option<f32>, Option<u64>)>;
        let cases: Vec<(&str, Steps, Vec<Option<u64>>)> = vec![
            (
                "an estimate a little above what arrives is left alone",
                vec![clean(0, 220), clean(2_000, 220), clean(4_000, 220)],
                vec![None, None, None],
            ),
            (
                "an estimate under what arrives restarts",
                vec![clean(0, 150), clean(2_000, 150)],
                vec![None, Some(200)],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run_wanting(0, &steps), want, "{name}");
        }
    }
}
