//! [`ProbePacer`]: when to ask a viewer's estimator for another capacity
//! probe while the estimate is short of the layer the viewer could get.
//! Pure and clock-free.
//!
//! str0m probes when the desired rate rises; after a congestion episode its
//! estimate otherwise climbs slowly. After a probe that lifted the estimate
//! (the link has room) the next one follows soon ([`AFTER_GAIN`]) so the
//! estimate climbs in a few round trips; otherwise once per [`INTERVAL`].
//! (Backing off further after fruitless probes was tried: it spared a
//! saturated link a little loss but left a viewer whose link had recovered
//! on its low layer for seconds longer.)

use std::time::{Duration, Instant};

/// The wait after a probe that lifted nothing.
pub const INTERVAL: Duration = Duration::from_millis(1000);
/// The wait after a probe that lifted the estimate.
pub const AFTER_GAIN: Duration = Duration::from_millis(300);
/// A lift of the estimate by this share counts as a gain.
pub const GAIN: f64 = 1.1;

#[derive(Debug, Clone, Default)]
pub struct ProbePacer {
    /// The last probe: when, and the estimate then.
    last: Option<(Instant, Option<u64>)>,
}

impl ProbePacer {
    /// Whether to probe now, given the current estimate; records the probe
    /// when it says yes.
    pub fn due(&mut self, now: Instant, estimate: Option<u64>) -> bool {
        if let Some((at, before)) = self.last {
            let gained = match (before, estimate) {
                (Some(b), Some(e)) => e as f64 >= b as f64 * GAIN,
                (None, Some(_)) => true,
                _ => false,
            };
            let wait = if gained { AFTER_GAIN } else { INTERVAL };
            if now.saturating_duration_since(at) < wait {
                return false;
            }
        }
        self.last = Some((now, estimate));
        true
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
                "fruitless probes repeat every second",
                vec![
                    (0, Some(300)),
                    (999, Some(300)),
                    (1_000, Some(300)),
                    (1_999, Some(310)),
                    (2_000, Some(310)),
                ],
                vec![true, false, true, false, true],
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
                "the first estimate counts as a gain",
                vec![(0, None), (299, Some(300)), (300, Some(300))],
                vec![true, false, true],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&steps), want, "{name}");
        }
    }
}
