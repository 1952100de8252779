//! [`LossCap`]: caps a viewer's bandwidth estimate at what its receiver
//! says is arriving, while the estimator catches up. Pure and clock-free.
//!
//! str0m reports its estimate as the mean of the distinct values of the
//! last 3 s, so when a link shrinks the reported estimate stays near the
//! old rate for seconds while the bottleneck queue overflows. The
//! receiver's reports say it sooner: when one of them counts a heavy loss
//! ([`CONGESTED_LOSS`] or more of the packets sent), the link carried about
//! `sent × (1 − loss)`, and that is the estimate for the next
//! [`HOLD`] (the estimator's averaging window), or less if the estimator
//! already says less. A later heavy-loss report replaces the cap: reports
//! lag, and the latest one measures the link closest to how it is now.
//!
//! Invariants: a cap only ever lowers the estimate; it lapses after
//! [`HOLD`] unless a new heavy-loss report renews it; light loss (Wi-Fi,
//! a stray late packet) never caps.

use std::time::{Duration, Instant};

use super::bitrate::rate_bps;

/// A report counting this share of packets lost marks the link congested.
pub const CONGESTED_LOSS: f32 = 0.2;
/// How long a cap holds: str0m's estimate averages the last 3 s.
pub const HOLD: Duration = Duration::from_secs(3);
/// Reports closer together than this do not measure a rate.
const MIN_SPAN: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default)]
pub struct LossCap {
    /// The previous report: when, and the bytes sent by then.
    last: Option<(Instant, u64)>,
    /// The capped rate, and until when it holds.
    cap: Option<(u64, Instant)>,
}

impl LossCap {
    /// A sender report: the bytes sent so far on the viewer's video stream,
    /// and the fraction of packets its receiver reported lost since the
    /// previous report (`None` when no receiver report came in). Returns
    /// whether this report set a cap.
    pub fn on_report(&mut self, now: Instant, bytes_sent: u64, loss: Option<f32>) -> bool {
        let previous = self.last.replace((now, bytes_sent));
        let (Some((then, bytes_then)), Some(loss)) = (previous, loss) else {
            return false;
        };
        let span = now.saturating_duration_since(then);
        if span < MIN_SPAN || !(CONGESTED_LOSS..=1.0).contains(&loss) {
            return false;
        }
        let sent_bps = rate_bps(bytes_sent.saturating_sub(bytes_then), span);
        let delivered = (sent_bps * f64::from(1.0 - loss)).round() as u64;
        self.cap = Some((delivered, now + HOLD));
        true
    }

    /// Whether a heavy-loss report's cap holds now: the link is congested.
    pub fn capping(&self, now: Instant) -> bool {
        self.cap.is_some_and(|(_, until)| now < until)
    }

    /// The estimate to choose layers by: the estimator's, under the cap
    /// while one holds.
    pub fn apply(&self, now: Instant, estimate: Option<u64>) -> Option<u64> {
        match self.cap {
            Some((cap, until)) if now < until => Some(estimate.map_or(cap, |e| e.min(cap))),
            _ => estimate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of (ms, kbytes sent so far, loss, estimate kbit/s) → the
    /// estimate applied after each step, in kbit/s.
    fn run(steps: &[(u64, u64, Option<f32>, Option<u64>)]) -> Vec<Option<u64>> {
        let t0 = Instant::now();
        let mut cap = LossCap::default();
        steps
            .iter()
            .map(|&(ms, kbytes, loss, estimate)| {
                let now = t0 + Duration::from_millis(ms);
                cap.on_report(now, kbytes * 1000, loss);
                cap.apply(now, estimate.map(|e| e * 1000)).map(|e| e / 1000)
            })
            .collect()
    }

    #[test]
    fn table_of_caps() {
        type Steps = Vec<(u64, u64, Option<f32>, Option<u64>)>;
        let cases: Vec<(&str, Steps, Vec<Option<u64>>)> = vec![
            (
                "no loss: the estimate as is",
                vec![
                    (0, 0, None, Some(5_000)),
                    (500, 160, Some(0.0), Some(5_000)),
                ],
                vec![Some(5_000), Some(5_000)],
            ),
            (
                "light loss never caps",
                vec![
                    (0, 0, None, Some(5_000)),
                    (500, 160, Some(0.05), Some(5_000)),
                ],
                vec![Some(5_000), Some(5_000)],
            ),
            (
                // 160 kB in 0.5 s is 2,560 kbit/s; 85 % lost leaves 384.
                "heavy loss caps at what arrived",
                vec![
                    (0, 0, None, Some(5_000)),
                    (500, 160, Some(0.85), Some(5_000)),
                ],
                vec![Some(5_000), Some(384)],
            ),
            (
                "the estimator's lower value wins",
                vec![(0, 0, None, Some(5_000)), (500, 160, Some(0.85), Some(300))],
                vec![Some(5_000), Some(300)],
            ),
            (
                "a cap stands in for a missing estimate",
                vec![(0, 0, None, None), (500, 160, Some(0.85), None)],
                vec![None, Some(384)],
            ),
            (
                "the cap holds 3 s, then lapses",
                vec![
                    (0, 0, None, Some(5_000)),
                    (500, 160, Some(0.85), Some(5_000)),
                    (1_000, 175, None, Some(4_000)),
                    (3_499, 190, Some(0.0), Some(3_000)),
                    (3_500, 205, Some(0.0), Some(3_000)),
                ],
                vec![Some(5_000), Some(384), Some(384), Some(384), Some(3_000)],
            ),
            (
                // The latest report measures the link as it is now; an
                // older, deeper loss may be the queue the switch drained.
                "a renewed cap takes the latest measure",
                vec![
                    (0, 0, None, Some(5_000)),
                    (500, 160, Some(0.85), Some(5_000)),
                    // 37 kB in 0.5 s is 592 kbit/s; 30 % lost leaves 414.
                    (1_000, 197, Some(0.3), Some(5_000)),
                    (3_999, 200, None, Some(5_000)),
                    (4_000, 210, None, Some(5_000)),
                ],
                vec![Some(5_000), Some(384), Some(414), Some(414), Some(5_000)],
            ),
            (
                "reports too close together measure no rate",
                vec![
                    (0, 0, None, Some(5_000)),
                    (50, 160, Some(0.85), Some(5_000)),
                ],
                vec![Some(5_000), Some(5_000)],
            ),
            (
                "a nonsense loss fraction is ignored",
                vec![
                    (0, 0, None, Some(5_000)),
                    (500, 160, Some(1.5), Some(5_000)),
                ],
                vec![Some(5_000), Some(5_000)],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&steps), want, "{name}");
        }
    }
}
