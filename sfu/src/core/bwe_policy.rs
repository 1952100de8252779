//! [`BwePolicy`]: what a viewer's bandwidth estimator is told to sustain and
//! to probe for, from the viewer's choice, the layers it may get and its
//! link. Pure and clock-free; the worker applies the setting it returns to
//! the viewer's `Rtc` (`bwe().set_bitrate(sustain, desired)`).
//!
//! Rules:
//! - Sustain the layer being sent and probe toward the best layer the viewer
//!   may get, asking for that layer plus the selector's headroom (probes
//!   overshoot a little; the selector's fit test must pass).
//! - Once the (loss-capped) estimate is within the headroom of the next
//!   layer up and the receiver reports no noticeable loss, sustain that
//!   layer instead, with padding: the estimator only rises to 1.5x the
//!   traffic it sees acknowledged, so without traffic at that rate only
//!   probes lift it, and each probe result (a few packets over ~15 ms)
//!   replaces the estimate outright. Traffic the link carries at the next
//!   layer's rate is itself proof that the layer fits
//!   ([`Link::sustained_bps`]). Below that, or while loss is reported, no
//!   padding: padding a link that cannot carry the next layer only fills
//!   its queue.
//! - While the estimate is short of what is asked for and no padding runs,
//!   ask again when the [`ProbePacer`] says so (a small rise of the desired
//!   rate makes str0m probe).
//! - A viewer who chose a layer gets that layer: no padding or probes
//!   toward others (they would only cost its link).
//! - A setting is returned only when it changed.
//!
//! [`Link::sustained_bps`]: super::layer_selector::Link::sustained_bps

use std::time::Instant;

use super::layer_selector::HEADROOM;
use super::layers::LayerChoice;
use super::probe_pacer::ProbePacer;

/// What the estimator is told: keep `sustain` flowing (padding up to it),
/// and probe toward `desired`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BweSetting {
    pub sustain_bps: u64,
    pub desired_bps: u64,
}

/// One viewer's situation at a housekeeping tick or a new estimate.
#[derive(Clone, Copy, Debug)]
pub struct BweInput<'a> {
    pub choice: LayerChoice,
    /// Bitrates of the layers the viewer may get, ascending.
    pub eligible_bps: &'a [u64],
    /// The bitrate of the layer it is sent (0 for none).
    pub current_bps: u64,
    /// The raw estimate.
    pub estimate_bps: Option<u64>,
    /// The estimate after the heavy-loss cap.
    pub capped_estimate_bps: Option<u64>,
    /// No noticeable loss reported lately.
    pub quiet: bool,
}

#[derive(Debug, Clone, Default)]
pub struct BwePolicy {
    setting: BweSetting,
    /// A small rise of the desired rate that makes str0m probe again.
    probe_bump: u32,
    probe: ProbePacer,
    /// The estimate the next layer up needs (0 at the top or for a manual
    /// choice): an estimate that stays short of it is stuck.
    climb_wanted_bps: u64,
}

impl BwePolicy {
    /// The setting to apply now, if it changed.
    pub fn update(&mut self, input: BweInput, now: Instant) -> Option<BweSetting> {
        let current = input.current_bps;
        let next = input
            .eligible_bps
            .iter()
            .copied()
            .find(|bps| *bps > current)
            .unwrap_or(current);
        let covers_next = input
            .capped_estimate_bps
            .is_some_and(|e| e as f64 >= next as f64 * HEADROOM);
        let sustain = if covers_next && input.quiet {
            next
        } else {
            current
        };
        let auto = input.choice == LayerChoice::Auto;
        self.climb_wanted_bps = if next > current && auto {
            (next as f64 / HEADROOM) as u64
        } else {
            0
        };
        let best = input.eligible_bps.last().copied().unwrap_or(0);
        let setting = if auto {
            let mut desired = (best.max(current) as f64 / HEADROOM) as u64;
            let short = input.estimate_bps.is_some_and(|e| e < desired);
            let padding = sustain > current;
            if short && !padding && self.probe.due(now, input.estimate_bps) {
                self.probe_bump = (self.probe_bump + 1) % 16;
            }
            desired += desired * u64::from(self.probe_bump) * 2 / 100;
            BweSetting {
                sustain_bps: sustain,
                desired_bps: desired,
            }
        } else {
            BweSetting {
                sustain_bps: current,
                desired_bps: current,
            }
        };
        if setting == self.setting || setting.desired_bps == 0 {
            return None;
        }
        self.setting = setting;
        Some(setting)
    }

    /// What the sender sustains on the viewer's link (media plus padding).
    pub fn sustained_bps(&self) -> u64 {
        self.setting.sustain_bps
    }

    pub fn climb_wanted_bps(&self) -> u64 {
        self.climb_wanted_bps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LAYERS: [u64; 3] = [150_000, 500_000, 2_500_000];

    fn input(
        choice: LayerChoice,
        current: u64,
        estimate: Option<u64>,
        quiet: bool,
    ) -> BweInput<'static> {
        BweInput {
            choice,
            eligible_bps: &LAYERS,
            current_bps: current,
            estimate_bps: estimate,
            capped_estimate_bps: estimate,
            quiet,
        }
    }

    fn setting(sustain: u64, desired: u64) -> Option<BweSetting> {
        Some(BweSetting {
            sustain_bps: sustain,
            desired_bps: desired,
        })
    }

    #[test]
    fn table_of_settings() {
        use LayerChoice::*;
        let top = (2_500_000.0 / HEADROOM) as u64;
        // A short estimate with no padding running is due a probe at once:
        // the desired rate rises by 2 % so that str0m probes.
        let top_probing = top + top * 2 / 100;
        let cases = [
            (
                "auto, short of the next layer: sustain the current, probe for the top",
                input(Auto, 150_000, Some(300_000), true),
                setting(150_000, top_probing),
            ),
            (
                "auto, the estimate covers the next layer: pad up to it",
                input(Auto, 150_000, Some(600_000), true),
                setting(500_000, top),
            ),
            (
                "covers the next layer but loss reported: no padding, probe instead",
                input(Auto, 150_000, Some(600_000), false),
                setting(150_000, top_probing),
            ),
            (
                "a chosen layer: exactly that, no probes",
                input(Medium, 500_000, Some(5_000_000), true),
                setting(500_000, 500_000),
            ),
            (
                "nothing to send yet",
                BweInput {
                    eligible_bps: &[],
                    ..input(Low, 0, None, true)
                },
                None,
            ),
        ];
        for (name, input, want) in cases {
            let mut policy = BwePolicy::default();
            assert_eq!(policy.update(input, Instant::now()), want, "{name}");
        }
    }

    #[test]
    fn a_setting_is_returned_once_and_a_short_estimate_probes_again_each_second() {
        let t0 = Instant::now();
        let mut policy = BwePolicy::default();
        let short = input(LayerChoice::Auto, 150_000, Some(300_000), true);
        let first = policy.update(short, t0).expect("first setting");
        assert_eq!(policy.update(short, t0 + Duration::from_millis(500)), None);
        let again = policy
            .update(short, t0 + Duration::from_millis(1000))
            .expect("a probe a second later");
        assert!(
            again.desired_bps > first.desired_bps,
            "{again:?} vs {first:?}"
        );
        assert_eq!(again.sustain_bps, first.sustain_bps);
    }

    #[test]
    fn the_climb_target_is_the_next_layer_with_headroom_for_auto_viewers_only() {
        let mut policy = BwePolicy::default();
        policy.update(
            input(LayerChoice::Auto, 150_000, Some(300_000), true),
            Instant::now(),
        );
        assert_eq!(policy.climb_wanted_bps(), (500_000.0 / HEADROOM) as u64);
        policy.update(
            input(LayerChoice::Auto, 2_500_000, Some(3_000_000), true),
            Instant::now(),
        );
        assert_eq!(policy.climb_wanted_bps(), 0, "at the top");
        policy.update(
            input(LayerChoice::Low, 150_000, Some(300_000), true),
            Instant::now(),
        );
        assert_eq!(policy.climb_wanted_bps(), 0, "manual");
    }
}
