//! [`LayerSelector`]: which simulcast layer an automatic viewer receives,
//! from its bandwidth estimate and the layers' measured bitrates. Pure and
//! clock-free: the caller passes `now`.
//!
//! Rules (the best SFUs agree on the shape, LiveKit and mediasoup alike):
//! - A viewer starts on the best layer whose measured bitrate fits in the
//!   estimate, never above the server's per-viewer maximum.
//! - Down at once when the estimate falls clearly below the current layer's
//!   bitrate (under [`DOWN_MARGIN`] of it): a stall costs more than a lower
//!   resolution. A shallower shortfall must last [`DOWN_HOLD`]: delay-based
//!   estimators dip by ~15% on receiver-side jitter (a busy phone, a CPU
//!   spike), and the jitter buffer rides out a second slightly over
//!   capacity better than the viewer rides out a needless switch. Not
//!   when the receiver has reported heavy loss ([`Link::congested`]):
//!   that is no jitter, and each step down waits for a keyframe anyway.
//! - Up only after a better layer has fit in [`HEADROOM`] of the estimate
//!   for [`UP_HOLD`] without a break, so a noisy estimate does not flap
//!   (the gap between "fits" and "fits with headroom" is the hysteresis).
//!   Each better layer keeps its own hold: the viewer climbs to the best
//!   one whose hold has passed, straight past layers in between, and an
//!   estimate that wavers around the top layer's threshold still lets the
//!   middle layer's hold complete.
//! - Traffic is proof too: a better layer also fits for climbing when the
//!   sender is already sustaining its rate on the viewer's link (media plus
//!   padding, no heavy loss reported) and the estimate covers it. The
//!   estimator only rises to 1.5x the traffic it sees acknowledged, by a
//!   few percent a second, so waiting for it to show the headroom above a
//!   layer the link already carries cost the climb to the top layer
//!   seconds (LiveKit likewise upgrades once a padding probe reaches its
//!   goal).
//! - The receiver's word outranks a dipping estimate: a layer the link
//!   keeps delivering without noticeable loss is not left (str0m replaces
//!   its estimate with each probe result, and a result measured over a few
//!   milliseconds on a loaded sender or receiver can come back far under
//!   the link). Climbing still needs
//!   the estimate.
//! - Below the per-viewer minimum, video pauses (audio continues).
//! - A manual choice is honoured even above what the link carries (it is
//!   the user's choice), but never above the maximum.

use std::time::{Duration, Instant};

use super::layers::{self, LayerChoice, LayerMeasure};

/// To climb, a layer must fit in this share of the estimate.
pub const HEADROOM: f64 = 0.85;
/// How long a better layer must keep fitting before switching up. The
/// estimate str0m reports is already the mean of its last 3 s, so a rise
/// has lasted before it shows; the hold is on top of that.
pub const UP_HOLD: Duration = Duration::from_secs(1);
/// An estimate under this share of the current layer's bitrate moves the
/// viewer down at once.
pub const DOWN_MARGIN: f64 = 0.75;
/// How long a shallower shortfall must last before moving down.
pub const DOWN_HOLD: Duration = Duration::from_secs(1);

/// The server's per-viewer bitrate bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    /// Below this estimate video pauses; 0 = never.
    pub min_bps: u64,
    /// A viewer never receives a layer above this; `None` = no limit.
    pub max_bps: Option<u64>,
}

/// What the selector knows of the viewer's link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// The bandwidth estimate; `None` while there is none worth using.
    pub estimate_bps: Option<u64>,
    /// The rate the sender is sustaining on the link now (media plus
    /// padding) with no noticeable loss reported; 0 when unknown.
    pub sustained_bps: u64,
    /// The rate the link has carried with no noticeable loss reported
    /// lately ([`CleanDelivery`](super::clean_delivery::CleanDelivery));
    /// a floor for staying on a layer, never a reason to climb.
    pub delivered_bps: u64,
    /// The receiver reported heavy loss lately
    /// ([`LossCap`](super::loss_cap::LossCap)): a shortfall is then
    /// congestion, not estimator jitter, and is acted on at once.
    pub congested: bool,
}

/// What the selector decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    Layer(u8),
    /// Video paused: the estimate is below the minimum.
    PausedLowBandwidth,
}

#[derive(Debug, Default, Clone)]
pub struct LayerSelector {
    current: Option<u8>,
    /// The better layers that fit with headroom, each with since when it
    /// has fit without a break.
    climb: Vec<(u8, Instant)>,
    /// Since when the estimate has been (shallowly) short of the current
    /// layer.
    shortfall_since: Option<Instant>,
    /// The estimate was restored from a measurement, not a fresh reading:
    /// the next selection climbs without the hold.
    trusted: bool,
}

impl LayerSelector {
    /// The layer to receive now, or `None` while no layer is active.
    pub fn select(
        &mut self,
        choice: LayerChoice,
        link: Link,
        layers: &[LayerMeasure],
        bounds: Bounds,
        now: Instant,
    ) -> Option<Selection> {
        self.select_within(choice, link, layers, bounds, usize::MAX, now)
    }

    /// The estimate the next selection sees was measured before (restored
    /// after a pause or a cap on the layers), not a fresh and possibly
    /// noisy reading: climbing to what fits it needs no hold.
    pub fn trust_estimate(&mut self) {
        self.trusted = true;
    }

    /// As [`select`](Self::select), an automatic choice taking none of the
    /// ranked layers beyond the first `usable` (what the player shows,
    /// [`ViewFit`](super::view_fit::ViewFit)). Better layers keep their
    /// climb holds meanwhile, so when the cap lifts a viewer whose estimate
    /// already fits them moves up at once, without a fresh hold.
    pub fn select_within(
        &mut self,
        choice: LayerChoice,
        link: Link,
        layers: &[LayerMeasure],
        bounds: Bounds,
        usable: usize,
        now: Instant,
    ) -> Option<Selection> {
        // Trust covers this selection only.
        let trusted = std::mem::take(&mut self.trusted);
        let ranked = layers::rank(layers);
        let lowest = *ranked.first()?;
        // Layers within the maximum; the lowest always stays available.
        let eligible: Vec<&LayerMeasure> = match bounds.max_bps {
            Some(max) => ranked.iter().copied().filter(|l| l.bps <= max).collect(),
            None => ranked.clone(),
        };
        let eligible = if eligible.is_empty() {
            vec![lowest]
        } else {
            eligible
        };
        // The cap, as a position among the eligible layers (never below the
        // lowest: it stays available).
        let usable = &ranked[..usable.clamp(1, ranked.len())];
        let cap = eligible
            .iter()
            .rposition(|l| usable.iter().any(|u| u.index == l.index))
            .unwrap_or(0);

        if choice != LayerChoice::Auto {
            let pick = layers::pick(choice, &eligible)?;
            self.climb.clear();
            self.shortfall_since = None;
            self.current = Some(pick);
            return Some(Selection::Layer(pick));
        }

        let Some(estimate) = link.estimate_bps else {
            // No estimate yet: start on the best eligible layer, as a
            // manual "high" would.
            let pick = eligible[cap].index;
            self.current = Some(pick);
            return Some(Selection::Layer(pick));
        };
        // Staying may also rest on what the link demonstrably carries.
        let stay_estimate = estimate.max(link.delivered_bps);
        if stay_estimate < bounds.min_bps {
            self.current = None;
            self.climb.clear();
            self.shortfall_since = None;
            return Some(Selection::PausedLowBandwidth);
        }
        // Staying needs the layer to fit the estimate (or the clean
        // delivery); climbing needs it to fit with headroom, for the hold:
        // that gap is the hysteresis.
        let fits = eligible
            .iter()
            .rposition(|l| l.bps <= stay_estimate)
            .unwrap_or(0);
        let budget = ((estimate as f64 * HEADROOM) as u64).max(link.sustained_bps.min(estimate));
        let fits_with_headroom = eligible.iter().rposition(|l| l.bps <= budget).unwrap_or(0);
        let current_pos = self
            .current
            .and_then(|c| eligible.iter().position(|l| l.index == c));
        if current_pos.is_none_or(|cur| eligible[cur].bps <= stay_estimate) {
            self.shortfall_since = None;
        }
        let pos = match current_pos {
            // First choice, or the current layer is gone: take what fits.
            None => fits,
            Some(cur) if eligible[cur].bps > stay_estimate => {
                self.climb.clear();
                let since = *self.shortfall_since.get_or_insert(now);
                let clearly_short = link.congested
                    || (stay_estimate as f64) < eligible[cur].bps as f64 * DOWN_MARGIN;
                if clearly_short || now.saturating_duration_since(since) >= DOWN_HOLD {
                    self.shortfall_since = None;
                    fits.min(cur)
                } else {
                    cur
                }
            }
            Some(cur) => {
                // Better layers that stopped fitting lose their hold.
                // A trusted estimate was measured carrying these layers:
                // what fits it is enough, without the headroom.
                let reach = if trusted { fits } else { fits_with_headroom };
                let better = &eligible[cur + 1..=reach.max(cur)];
                self.climb
                    .retain(|(layer, _)| better.iter().any(|l| l.index == *layer));
                let mut pos = cur;
                for (offset, layer) in better.iter().enumerate() {
                    let since = match self.climb.iter().find(|(l, _)| *l == layer.index) {
                        Some(&(_, since)) => since,
                        None => {
                            self.climb.push((layer.index, now));
                            now
                        }
                    };
                    if trusted || now.saturating_duration_since(since) >= UP_HOLD {
                        pos = cur + 1 + offset;
                    }
                }
                pos
            }
        };
        let pick = eligible[pos.min(cap)].index;
        self.current = Some(pick);
        Some(Selection::Layer(pick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<LayerMeasure> {
        vec![
            LayerMeasure {
                index: 0,
                dimensions: Some((1280, 720)),
                bps: 2_500_000,
                active: true,
            },
            LayerMeasure {
                index: 1,
                dimensions: Some((640, 360)),
                bps: 500_000,
                active: true,
            },
            LayerMeasure {
                index: 2,
                dimensions: Some((320, 180)),
                bps: 150_000,
                active: true,
            },
        ]
    }

    const HIGH: Option<Selection> = Some(Selection::Layer(0));
    const MID: Option<Selection> = Some(Selection::Layer(1));
    const LOW: Option<Selection> = Some(Selection::Layer(2));
    const PAUSED: Option<Selection> = Some(Selection::PausedLowBandwidth);

    /// Runs (time in ms, estimate kbit/s, choice) steps and returns what was
    /// selected at each.
    fn run(bounds: Bounds, steps: &[(u64, Option<u64>, LayerChoice)]) -> Vec<Option<Selection>> {
        let t0 = Instant::now();
        let mut selector = LayerSelector::default();
        let layers = layers();
        steps
            .iter()
            .map(|&(ms, kbps, choice)| {
                selector.select(
                    choice,
                    Link {
                        estimate_bps: kbps.map(|k| k * 1000),
                        sustained_bps: 0,
                        delivered_bps: 0,
                        congested: false,
                    },
                    &layers,
                    bounds,
                    t0 + Duration::from_millis(ms),
                )
            })
            .collect()
    }

    use LayerChoice::{Auto, High, Low};

    #[test]
    fn table_of_selections() {
        let none = Bounds::default();
        type Steps = Vec<(u64, Option<u64>, LayerChoice)>;
        let cases: Vec<(&str, Bounds, Steps, Vec<Option<Selection>>)> = vec![
            (
                "no estimate yet: best layer",
                none,
                vec![(0, None, Auto)],
                vec![HIGH],
            ),
            (
                "fibre: top layer",
                none,
                vec![(0, Some(10_000), Auto)],
                vec![HIGH],
            ),
            (
                "phone link: what fits",
                none,
                vec![(0, Some(700), Auto)],
                vec![MID],
            ),
            (
                "weak link: lowest",
                none,
                vec![(0, Some(100), Auto)],
                vec![LOW],
            ),
            (
                "step down is immediate",
                none,
                vec![(0, Some(10_000), Auto), (100, Some(400), Auto)],
                vec![HIGH, LOW],
            ),
            (
                "a shallow dip below the current layer is ridden out",
                none,
                vec![
                    (0, Some(10_000), Auto),
                    (100, Some(2_200), Auto),
                    (700, Some(2_300), Auto),
                    (900, Some(10_000), Auto),
                    (1_500, Some(2_200), Auto),
                ],
                vec![HIGH, HIGH, HIGH, HIGH, HIGH],
            ),
            (
                "a shallow shortfall that lasts moves down",
                none,
                vec![
                    (0, Some(10_000), Auto),
                    (100, Some(2_200), Auto),
                    (600, Some(2_200), Auto),
                    (1_100, Some(2_200), Auto),
                ],
                vec![HIGH, HIGH, HIGH, MID],
            ),
            (
                "step up waits for the hold",
                none,
                vec![
                    (0, Some(400), Auto),
                    (500, Some(10_000), Auto),
                    (1_400, Some(10_000), Auto),
                    (1_600, Some(10_000), Auto),
                ],
                vec![LOW, LOW, LOW, HIGH],
            ),
            (
                "a dip restarts the hold of what no longer fits (no flapping)",
                none,
                vec![
                    (0, Some(400), Auto),
                    (500, Some(10_000), Auto),
                    (1_000, Some(650), Auto),
                    (1_450, Some(10_000), Auto),
                    (1_550, Some(10_000), Auto),
                    (2_450, Some(10_000), Auto),
                ],
                // The dip ends the top layer's hold (it restarts at 1.45 s)
                // but not the middle one's, which still fits: middle 1 s
                // after it began to fit, top 1 s after its restart.
                vec![LOW, LOW, LOW, LOW, MID, HIGH],
            ),
            (
                "an estimate wavering at the top layer's threshold still climbs to the middle",
                none,
                vec![
                    (0, Some(200), Auto),
                    (250, Some(3_000), Auto),
                    (500, Some(2_800), Auto),
                    (750, Some(3_000), Auto),
                    (1_000, Some(2_800), Auto),
                    (1_200, Some(3_000), Auto),
                    (1_250, Some(2_800), Auto),
                ],
                vec![LOW, LOW, LOW, LOW, LOW, LOW, MID],
            ),
            (
                "slow ramp climbs one fit at a time",
                none,
                vec![
                    (0, Some(200), Auto),
                    (1_000, Some(700), Auto),
                    (3_100, Some(700), Auto),
                    (4_000, Some(3_000), Auto),
                    (6_100, Some(3_000), Auto),
                ],
                vec![LOW, LOW, MID, MID, HIGH],
            ),
            (
                "max bound caps even fibre",
                Bounds {
                    min_bps: 0,
                    max_bps: Some(1_000_000),
                },
                vec![(0, Some(10_000), Auto), (10, Some(10_000), High)],
                vec![MID, MID],
            ),
            (
                "below the minimum video pauses, and resumes",
                Bounds {
                    min_bps: 120_000,
                    max_bps: None,
                },
                vec![(0, Some(100), Auto), (100, Some(300), Auto)],
                vec![PAUSED, LOW],
            ),
            (
                "manual choice is honoured above the estimate",
                none,
                vec![(0, Some(100), High), (10, Some(100_000), Low)],
                vec![HIGH, LOW],
            ),
        ];
        for (name, bounds, steps, want) in cases {
            assert_eq!(run(bounds, &steps), want, "{name}");
        }
    }

    #[test]
    fn a_vanished_layer_is_left_at_once() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::default();
        let mut l = layers();
        assert_eq!(
            selector.select(Auto, fibre(), &l, Bounds::default(), t0),
            HIGH
        );
        l[0].active = false;
        assert_eq!(
            selector.select(
                Auto,
                fibre(),
                &l,
                Bounds::default(),
                t0 + Duration::from_millis(250)
            ),
            MID
        );
    }

    fn fibre() -> Link {
        Link {
            estimate_bps: Some(10_000_000),
            sustained_bps: 0,
            delivered_bps: 0,
            congested: false,
        }
    }

    /// Runs (ms, link) steps for an automatic viewer and returns what was
    /// selected at each.
    fn run_link_steps(steps: impl Iterator<Item = (u64, Link)>) -> Vec<Option<Selection>> {
        let t0 = Instant::now();
        let mut selector = LayerSelector::default();
        let l = layers();
        steps
            .map(|(ms, link)| {
                let now = t0 + Duration::from_millis(ms);
                selector.select(Auto, link, &l, Bounds::default(), now)
            })
            .collect()
    }

    /// Runs (ms, estimate, sustained, delivered) steps, rates in kbit/s.
    fn run_links(steps: &[(u64, u64, u64, u64)]) -> Vec<Option<Selection>> {
        run_link_steps(steps.iter().map(|&(ms, estimate, sustained, delivered)| {
            let link = Link {
                estimate_bps: Some(estimate * 1000),
                sustained_bps: sustained * 1000,
                delivered_bps: delivered * 1000,
                congested: false,
            };
            (ms, link)
        }))
    }

    /// Traffic proves a climb; clean delivery holds a layer, never climbs.
    #[test]
    fn table_of_links() {
        // Steps of (ms, estimate, sustained, delivered), kbit/s.
        type Steps = Vec<(u64, u64, u64, u64)>;
        let cases: Vec<(&str, Steps, Vec<Option<Selection>>)> = vec![
            (
                "sustaining the top layer's rate cleanly for the hold climbs without headroom",
                vec![
                    (0, 600, 600, 0),
                    (100, 2_600, 2_500, 0),
                    (1_100, 2_600, 2_500, 0),
                ],
                vec![MID, MID, HIGH],
            ),
            (
                "without the traffic the headroom is needed",
                vec![
                    (0, 600, 600, 0),
                    (100, 2_600, 600, 0),
                    (1_100, 2_600, 600, 0),
                ],
                vec![MID, MID, MID],
            ),
            (
                "traffic the estimate does not cover proves nothing",
                vec![
                    (0, 600, 600, 0),
                    (100, 2_400, 2_500, 0),
                    (1_100, 2_400, 2_500, 0),
                ],
                vec![MID, MID, MID],
            ),
            (
                "the traffic must last the hold",
                vec![
                    (0, 600, 600, 0),
                    (100, 2_600, 2_500, 0),
                    (600, 2_600, 600, 0),
                    (1_100, 2_600, 2_500, 0),
                    (2_100, 2_600, 2_500, 0),
                ],
                vec![MID, MID, MID, MID, HIGH],
            ),
            (
                "a deep dip of the estimate while the top layer arrives cleanly: stay",
                vec![
                    (0, 10_000, 0, 0),
                    (100, 1_000, 0, 2_600),
                    (1_500, 1_000, 0, 2_600),
                ],
                vec![HIGH, HIGH, HIGH],
            ),
            (
                "the same dip without clean delivery: down at once",
                vec![(0, 10_000, 0, 0), (100, 1_000, 0, 0)],
                vec![HIGH, MID],
            ),
            (
                "a floor under the layer does not hold it",
                vec![(0, 10_000, 0, 0), (100, 1_000, 0, 1_500)],
                vec![HIGH, MID],
            ),
            (
                "clean delivery never climbs",
                vec![(0, 600, 0, 0), (100, 600, 0, 2_600), (1_500, 600, 0, 2_600)],
                vec![MID, MID, MID],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run_links(&steps), want, "{name}");
        }
    }

    #[test]
    fn a_shallow_shortfall_under_heavy_loss_moves_down_at_once() {
        // Steps of (ms, estimate kbit/s, heavy loss reported lately).
        let run = |steps: &[(u64, u64, bool)]| {
            run_link_steps(steps.iter().map(|&(ms, estimate, congested)| {
                let link = Link {
                    estimate_bps: Some(estimate * 1000),
                    congested,
                    ..Link::default()
                };
                (ms, link)
            }))
        };
        // 2,200 is short of the top layer's 2,500 but above 75 % of it.
        assert_eq!(
            run(&[(0, 10_000, false), (100, 2_200, false), (600, 2_200, false)]),
            vec![HIGH, HIGH, HIGH],
            "estimate jitter: held"
        );
        assert_eq!(
            run(&[(0, 10_000, false), (100, 2_200, true)]),
            vec![HIGH, MID],
            "heavy loss: at once"
        );
        assert_eq!(
            run(&[(0, 10_000, false), (100, 3_000, true)]),
            vec![HIGH, HIGH],
            "heavy loss with the layer still fitting the capped estimate: stay"
        );
    }

    #[test]
    fn a_cap_on_usable_layers_holds_an_automatic_viewer_and_lifts_at_once() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let layers = layers();
        let link = |kbps: u64| Link {
            estimate_bps: Some(kbps * 1000),
            ..Link::default()
        };
        let none = Bounds::default();
        let mut s = LayerSelector::default();
        // (ms, estimate kbit/s, usable layers) → selection
        let steps = [
            // A player showing only the smallest layer's picture.
            (0, 10_000, 1, LOW),
            (500, 10_000, 1, LOW),
            // Growing it: the better layers' holds ran meanwhile.
            (1_500, 10_000, 2, MID),
            (1_600, 10_000, 3, HIGH),
            // Shrinking it moves down at once.
            (1_700, 10_000, 1, LOW),
            // A cap never hides the lowest layer, and 0 means the lowest.
            (1_800, 10_000, 0, LOW),
        ];
        for (ms, kbps, usable, want) in steps {
            let got = s.select_within(Auto, link(kbps), &layers, none, usable, at(ms));
            assert_eq!(got, want, "at {ms} ms with {usable} usable");
        }
        // Without an estimate the best usable layer, not the best layer.
        let mut s = LayerSelector::default();
        let no_estimate = Link::default();
        assert_eq!(
            s.select_within(Auto, no_estimate, &layers, none, 2, at(0)),
            MID
        );
        // A manual choice is not capped.
        let mut s = LayerSelector::default();
        assert_eq!(
            s.select_within(High, link(10_000), &layers, none, 1, at(0)),
            HIGH
        );
        // Without trust, 2.6 Mbit/s does not fit the 2.5 Mbit/s layer with
        // 15 % to spare: no climb.
        let mut s = LayerSelector::default();
        assert_eq!(
            s.select_within(Auto, link(300), &layers, none, 3, at(0)),
            LOW
        );
        assert_eq!(
            s.select_within(Auto, link(2_600), &layers, none, 3, at(10)),
            LOW
        );
        // A restored estimate is trusted: no hold and no headroom.
        let mut s = LayerSelector::default();
        assert_eq!(
            s.select_within(Auto, link(300), &layers, none, 3, at(0)),
            LOW
        );
        s.trust_estimate();
        assert_eq!(
            s.select_within(Auto, link(2_600), &layers, none, 3, at(10)),
            HIGH
        );
        // And with a large estimate.
        let mut s = LayerSelector::default();
        assert_eq!(
            s.select_within(Auto, link(300), &layers, none, 3, at(0)),
            LOW
        );
        s.trust_estimate();
        assert_eq!(
            s.select_within(Auto, link(10_000), &layers, none, 3, at(10)),
            HIGH
        );
        // The cap lifted before a better layer's hold passed: the hold still applies.
        let mut s = LayerSelector::default();
        assert_eq!(
            s.select_within(Auto, link(300), &layers, none, 1, at(0)),
            LOW
        );
        assert_eq!(
            s.select_within(Auto, link(10_000), &layers, none, 3, at(100)),
            LOW
        );
        assert_eq!(
            s.select_within(Auto, link(10_000), &layers, none, 3, at(1_100)),
            HIGH
        );
    }
}
