//! [`CleanDelivery`]: the rate a viewer's link has demonstrably carried —
//! sent, and reported by the receiver as arriving without noticeable loss —
//! over the last [`WINDOW`]. Pure and clock-free.
//!
//! It is a floor under the estimate when deciding whether a viewer must
//! leave its layer: an estimate that dips below a layer the receiver keeps
//! getting cleanly is wrong (str0m replaces its estimate with each probe
//! result, high or low, and a result measured over a few milliseconds on a
//! loaded sender or receiver can come back far under the link), and moving
//! the viewer down for it costs a picture for nothing. A link that really
//! narrows
//! shows loss within a report or two, which ends the floor at once (and
//! [`LossCap`](super::loss_cap::LossCap) caps the estimate).
//!
//! It also says whether the link is [`quiet`](CleanDelivery::quiet): no
//! report of noticeable loss for [`QUIET_FOR`]. Padding toward a better
//! layer waits for that, so a link that padding fills to the brim backs off
//! instead of losing packets every second.
//!
//! Invariants: the floor is 0 unless every receiver report of the last
//! [`WINDOW`] counted at most [`NOTICEABLE_LOSS`] lost and the samples span
//! at least [`MIN_SPAN`]; it is never used to climb.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::bitrate::rate_bps;

/// A report counting more than this share lost is noticeable loss.
pub const NOTICEABLE_LOSS: f32 = 0.02;
/// How long after a noticeable loss the link counts as quiet again.
pub const QUIET_FOR: Duration = Duration::from_secs(3);
/// How far back the delivered rate is measured.
pub const WINDOW: Duration = Duration::from_secs(2);
/// The shortest span that measures a rate.
pub const MIN_SPAN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default)]
pub struct CleanDelivery {
    /// (when, bytes sent by then), oldest first, within [`WINDOW`].
    samples: VecDeque<(Instant, u64)>,
    /// The latest report of noticeable loss.
    lossy_at: Option<Instant>,
}

impl CleanDelivery {
    /// A sender report: bytes sent so far to the viewer and the fraction
    /// its receiver reported lost since the previous report (`None` when
    /// no receiver report came in).
    pub fn on_report(&mut self, now: Instant, bytes_sent: u64, loss: Option<f32>) {
        if loss.is_some_and(|l| !(0.0..=NOTICEABLE_LOSS).contains(&l)) {
            self.lossy_at = Some(now);
        }
        self.samples.push_back((now, bytes_sent));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// The rate delivered cleanly over the last [`WINDOW`], or 0.
    pub fn floor_bps(&self, now: Instant) -> u64 {
        if self
            .lossy_at
            .is_some_and(|t| now.saturating_duration_since(t) <= WINDOW)
        {
            return 0;
        }
        let (Some(&(first, bytes_first)), Some(&(last, bytes_last))) =
            (self.samples.front(), self.samples.back())
        else {
            return 0;
        };
        let span = last.saturating_duration_since(first);
        if span < MIN_SPAN {
            return 0;
        }
        rate_bps(bytes_last.saturating_sub(bytes_first), span) as u64
    }

    /// Whether no report has counted noticeable loss for [`QUIET_FOR`].
    pub fn quiet(&self, now: Instant) -> bool {
        self.lossy_at
            .is_none_or(|t| now.saturating_duration_since(t) >= QUIET_FOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of (ms, bytes sent so far, loss) → the floor in kbit/s after
    /// each.
    fn run(steps: &[(u64, u64, Option<f32>)]) -> Vec<u64> {
        let t0 = Instant::now();
        let mut delivery = CleanDelivery::default();
        steps
            .iter()
            .map(|&(ms, bytes, loss)| {
                let now = t0 + Duration::from_millis(ms);
                delivery.on_report(now, bytes, loss);
                delivery.floor_bps(now) / 1000
            })
            .collect()
    }

    #[test]
    fn table_of_floors() {
        // 325 bytes a millisecond is 2,600 kbit/s.
        let clean = |ms: u64| (ms, ms * 325, Some(0.0));
        type Steps = Vec<(u64, u64, Option<f32>)>;
        let cases: Vec<(&str, Steps, Vec<u64>)> = vec![
            (
                "a second of clean reports measures the rate",
                vec![clean(0), clean(500), clean(1_000), clean(1_500)],
                vec![0, 0, 2_600, 2_600],
            ),
            (
                "intervals without a receiver report still count",
                vec![clean(0), (500, 162_500, None), (1_000, 325_000, None)],
                vec![0, 0, 2_600],
            ),
            (
                "noticeable loss ends the floor for the window",
                vec![
                    clean(0),
                    clean(1_000),
                    (1_500, 487_500, Some(0.05)),
                    clean(3_000),
                    clean(4_000),
                ],
                vec![0, 2_600, 0, 0, 2_600],
            ),
            (
                "only the last 2 s count",
                vec![
                    (0, 0, Some(0.0)),
                    (1_000, 100_000, Some(0.0)),
                    (3_000, 750_000, Some(0.0)),
                ],
                vec![0, 800, 2_600],
            ),
            (
                "a nonsense loss fraction counts as loss",
                vec![clean(0), (1_000, 325_000, Some(-1.0))],
                vec![0, 0],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&steps), want, "{name}");
        }
    }

    #[test]
    fn quiet_after_3_s_without_noticeable_loss() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut delivery = CleanDelivery::default();
        assert!(delivery.quiet(t0), "quiet before any report");
        delivery.on_report(at(0), 0, Some(0.02));
        assert!(delivery.quiet(at(0)), "2 % is not noticeable");
        delivery.on_report(at(500), 10_000, Some(0.05));
        assert!(!delivery.quiet(at(500)));
        delivery.on_report(at(1_000), 20_000, None);
        assert!(!delivery.quiet(at(3_499)));
        assert!(delivery.quiet(at(3_500)));
    }
}
