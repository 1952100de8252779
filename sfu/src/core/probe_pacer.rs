//! [`ProbePacer`]: when to ask a viewer's estimator for another capacity
//! probe while the estimate is short of the layer the viewer could get.
//! Pure and clock-free.
//!
//! Probes are bursts above the current rate; on a link at its limit each
//! one overflows the bottleneck queue a little and costs media packets. So:
//! after a probe that lifted the estimate (the link has room), probe again
//! soon ([`AFTER_GAIN`]) so the estimate climbs quickly; after one that
//! lifted nothing, wait twice as long as before, up to [`MAX_INTERVAL`].

use std::time::{Duration, Instant};

/// The wait after a probe that lifted nothing, at first.
pub const BASE_INTERVAL: Duration = Duration::from_millis(1000);
/// The longest wait between probes.
pub const MAX_INTERVAL: Duration = Duration::from_millis(4000);
/// The wait after a probe that lifted the estimate.
pub const AFTER_GAIN: Duration = Duration::from_millis(300);
/// A lift of the estimate by this share counts as a gain.
pub const GAIN: f64 = 1.1;

#[derive(Debug, Clone, Default)]
pub struct ProbePacer {
    /// The last probe: when, and the estimate then.
    last: Option<(Instant, Option<u64>)>,
    /// The wait after a fruitless probe; doubles each time.
    backoff: Option<Duration>,
}

impl ProbePacer {
    /// Whether to probe now, given the current estimate; records the probe
    /// when it says yes.
    pub fn due(&mut self, now: Instant, estimate: Option<u64>) -> bool {
        let Some((at, before)) = self.last else {
            self.last = Some((now, estimate));
            return true;
        };
        let gained = match (before, estimate) {
            (Some(b), Some(e)) => e as f64 >= b as f64 * GAIN,
            (None, Some(_)) => true,
            _ => false,
        };
        let wait = if gained {
            AFTER_GAIN
        } else {
            self.backoff.unwrap_or(BASE_INTERVAL)
        };
        if now.saturating_duration_since(at) < wait {
            return false;
        }
        self.backoff = if gained {
            None
        } else {
            Some((self.backoff.unwrap_or(BASE_INTERVAL) * 2).min(MAX_INTERVAL))
        };
        self.last = Some((now, estimate));
        true
    }

    /// Forget the history (the viewer's situation changed, e.g. a new
    /// layer to reach): the next call probes at once.
    pub fn reset(&mut self) {
        *self = ProbePacer::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of (ms, estimate kbit/s) → whether a probe was due.
    fn run(steps: &[(u64, Option<u64>)]) -> Vec<bool> {
        let t0 = Instant::now();
        let mut pacer = ProbePacer::default();
        steps
            .iter()
            .map(|&(ms, kbps)| pacer.due(t0 + Duration::from_millis(ms), kbps.map(|k| k * 1000)))
            .collect()
    }

    #[test]
    fn table_of_probe_pacing() {
        type Steps = Vec<(u64, Option<u64>)>;
        let cases: Vec<(&str, Steps, Vec<bool>)> = vec![
            (
                "the first probe is at once",
                vec![(0, Some(300))],
                vec![true],
            ),
            (
                "fruitless probes back off 1 s, 2 s, 4 s, 4 s",
                vec![
                    (0, Some(300)),
                    (999, Some(300)),
                    (1_000, Some(300)),
                    (2_999, Some(300)),
                    (3_000, Some(300)),
                    (6_999, Some(300)),
                    (7_000, Some(300)),
                    (11_000, Some(300)),
                ],
                vec![true, false, true, false, true, false, true, true],
            ),
            (
                "a probe that lifted the estimate is followed soon",
                vec![
                    (0, Some(300)),
                    (300, Some(600)),
                    (600, Some(1_200)),
                    (900, Some(1_250)),
                    (1_599, Some(1_250)),
                    (1_600, Some(1_250)),
                ],
                vec![true, true, true, false, false, true],
            ),
            (
                "a gain after back-off resets it",
                vec![
                    (0, Some(300)),
                    (1_000, Some(300)),
                    (3_000, Some(300)),
                    (3_300, Some(900)),
                    (3_500, Some(900)),
                    (4_300, Some(900)),
                ],
                vec![true, true, true, true, false, true],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&steps), want, "{name}");
        }
    }
}
