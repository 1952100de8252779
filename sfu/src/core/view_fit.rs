//! What a viewer's player can show (LiveKit calls it adaptive stream): the
//! picture size it renders in device pixels, and whether it is visible.
//! Its player reports both; [`ViewFit`] turns them into a cap on the
//! layers an automatic choice may take and a pause of video while hidden.
//!
//! Invariants:
//! - a cap never removes every layer: the smallest one that covers the
//!   player, else the best one, stays available; a player that reported
//!   nothing (or a zero size) is not capped;
//! - a manual layer choice is not capped (the caller skips the cap);
//! - video pauses only once the player has been hidden for the whole grace
//!   period ([`HIDDEN_GRACE`]), so a quick tab switch costs nothing; audio
//!   never pauses for this.

use std::time::{Duration, Instant};

use super::layers::LayerMeasure;

/// How long a hidden player keeps its video.
pub const HIDDEN_GRACE: Duration = Duration::from_secs(5);

/// The largest picture side a report may give: beyond any display.
pub const MAX_SIDE: u32 = 16_384;

/// A player's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewport {
    /// The rendered picture in device pixels (CSS pixels ×
    /// `devicePixelRatio`); 0 × 0 when unknown.
    pub width: u32,
    pub height: u32,
    /// Page visible (picture-in-picture counts as visible).
    pub visible: bool,
}

/// The latest report of one viewer and since when it is hidden.
#[derive(Clone, Copy, Debug, Default)]
pub struct ViewFit {
    last: Option<Viewport>,
    size: Option<(u32, u32)>,
    hidden_since: Option<Instant>,
}

impl ViewFit {
    pub fn report(&mut self, viewport: Viewport, now: Instant) {
        self.last = Some(viewport);
        self.size = (viewport.width > 0 && viewport.height > 0)
            .then_some((viewport.width, viewport.height));
        if viewport.visible {
            self.hidden_since = None;
        } else if self.hidden_since.is_none() {
            self.hidden_since = Some(now);
        }
    }

    /// The latest report, as given.
    pub fn last(&self) -> Option<Viewport> {
        self.last
    }

    pub fn hidden(&self) -> bool {
        self.hidden_since.is_some()
    }

    /// Hidden for at least the grace period: video pauses.
    pub fn video_paused(&self, now: Instant) -> bool {
        self.hidden_since
            .is_some_and(|since| now.saturating_duration_since(since) >= HIDDEN_GRACE)
    }

    /// How many of the `ranked` layers (worst first) the player can use:
    /// up to the smallest whose measured size covers its picture. Layers
    /// of unknown size rank lowest and never count as covering.
    pub fn usable(&self, ranked: &[&LayerMeasure]) -> usize {
        let Some((width, height)) = self.size else {
            return ranked.len();
        };
        ranked
            .iter()
            .position(|l| {
                l.dimensions
                    .is_some_and(|(w, h)| covers((w, h), width, height))
            })
            .map_or(ranked.len(), |i| i + 1)
    }
}

/// A layer covers a picture when it has at least its pixels on both
/// sides, so scaling it up never softens the picture.
fn covers((w, h): (u16, u16), width: u32, height: u32) -> bool {
    u32::from(w) >= width && u32::from(h) >= height
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(index: u8, dimensions: Option<(u16, u16)>) -> LayerMeasure {
        LayerMeasure {
            index,
            dimensions,
            bps: 100_000 * (u64::from(index) + 1),
            active: true,
        }
    }

    fn view(width: u32, height: u32, visible: bool) -> Viewport {
        Viewport {
            width,
            height,
            visible,
        }
    }

    #[test]
    fn the_cap_is_the_smallest_layer_that_covers_the_picture() {
        let low = layer(2, Some((320, 180)));
        let mid = layer(1, Some((640, 360)));
        let high = layer(0, Some((1280, 720)));
        let ranked = [&low, &mid, &high];
        let cases = [
            // (picture, usable layers)
            ((0, 0), 3),
            ((320, 180), 1),
            ((200, 100), 1),
            ((321, 180), 2),
            ((640, 360), 2),
            ((960, 540), 3),
            ((1280, 720), 3),
            // Larger than every layer: the best one.
            ((2560, 1440), 3),
            // Portrait picture in a wide player: height decides.
            ((300, 500), 3),
        ];
        let now = Instant::now();
        for ((w, h), usable) in cases {
            let mut fit = ViewFit::default();
            fit.report(view(w, h, true), now);
            assert_eq!(fit.usable(&ranked), usable, "picture {w}×{h}");
        }
    }

    #[test]
    fn layers_of_unknown_size_never_cover() {
        let unknown = layer(2, None);
        let mid = layer(1, Some((640, 360)));
        let ranked = [&unknown, &mid];
        let mut fit = ViewFit::default();
        fit.report(view(100, 100, true), Instant::now());
        assert_eq!(fit.usable(&ranked), 2);
        let only_unknown = [&unknown];
        assert_eq!(fit.usable(&only_unknown), 1);
        assert_eq!(fit.usable(&[]), 0);
    }

    #[test]
    fn video_pauses_only_after_the_page_stays_hidden_for_the_grace() {
        let t0 = Instant::now();
        let mut fit = ViewFit::default();
        assert!(!fit.video_paused(t0));
        fit.report(view(640, 360, false), t0);
        assert!(fit.hidden());
        assert!(!fit.video_paused(t0 + HIDDEN_GRACE - Duration::from_millis(1)));
        // A repeated hidden report keeps the first moment.
        fit.report(view(640, 360, false), t0 + Duration::from_secs(3));
        assert!(fit.video_paused(t0 + HIDDEN_GRACE));
        // Visible again resumes at once; hiding again restarts the grace.
        fit.report(view(640, 360, true), t0 + Duration::from_secs(6));
        assert!(!fit.video_paused(t0 + Duration::from_secs(6)));
        fit.report(view(640, 360, false), t0 + Duration::from_secs(7));
        assert!(!fit.video_paused(t0 + Duration::from_secs(11)));
        assert!(fit.video_paused(t0 + Duration::from_secs(12)));
    }
}
