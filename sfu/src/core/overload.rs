//! [`LoadGovernor`]: how loaded a media worker is, from the share of its
//! time it spends working (not waiting for the socket or a timer), and what
//! it sheds. Pure and clock-free; the worker feeds it every housekeeping
//! tick and applies the [`ShedLevel`] to its viewers' layer choice.
//!
//! A worker that falls behind must degrade, never collapse: when the
//! kernel's socket buffers overflow, every viewer loses random packets
//! (each one a broken frame until the next keyframe). So before that:
//! - Above [`SHED_ABOVE`] busy for [`RAISE_AFTER`] (or with a send backlog
//!   of [`BACKLOG_SHED_BYTES`]), the level rises by one: 1 takes every
//!   viewer off the top layer, 2 puts every viewer on the lowest, 3 leaves
//!   audio only. A switch waits for the target layer's keyframe, so after a
//!   rise the level holds for [`SETTLE`] before it may rise again.
//! - Below [`RECOVER_BELOW`] for [`LOWER_AFTER`], it falls by one (a
//!   viewer's climb back is cheap to undo, a flap is not).
//! - New viewers are admitted only at level 0 and while the steady busy
//!   share (smoothed over [`ADMIT_SMOOTHING`]) is below [`ADMIT_BELOW`]:
//!   admission control refuses a join (503) before the viewers already
//!   watching suffer. Smoothed, because a join storm's handshakes make a
//!   few ticks busy without saying what the joined viewers will cost; a
//!   storm that does overload the worker is caught by shedding.

use std::time::{Duration, Instant};

pub const SHED_ABOVE: f32 = 0.90;
pub const RECOVER_BELOW: f32 = 0.60;
pub const ADMIT_BELOW: f32 = 0.80;
/// Time constant of the busy share admission looks at.
pub const ADMIT_SMOOTHING: Duration = Duration::from_secs(2);
pub const RAISE_AFTER: Duration = Duration::from_millis(500);
pub const LOWER_AFTER: Duration = Duration::from_secs(5);
pub const SETTLE: Duration = Duration::from_secs(2);
/// Bytes waiting in the worker's own send backlog that count as falling
/// behind whatever the busy share says (the kernel pushes back).
pub const BACKLOG_SHED_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_LEVEL: u8 = 3;

/// What a worker sheds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShedLevel {
    #[default]
    None,
    /// No viewer on the top layer.
    TopLayer,
    /// Every viewer on the lowest layer.
    LowestOnly,
    /// Video paused for every viewer; audio continues.
    AudioOnly,
}

impl ShedLevel {
    fn from_u8(level: u8) -> ShedLevel {
        match level {
            0 => ShedLevel::None,
            1 => ShedLevel::TopLayer,
            2 => ShedLevel::LowestOnly,
            _ => ShedLevel::AudioOnly,
        }
    }

    /// The highest rank (0 = lowest) among `layers` ranked layers a viewer
    /// may receive, `None` for no video at all.
    pub fn max_rank(self, layers: usize) -> Option<usize> {
        let top = layers.checked_sub(1)?;
        match self {
            ShedLevel::None => Some(top),
            ShedLevel::TopLayer => Some(top.saturating_sub(1)),
            ShedLevel::LowestOnly => Some(0),
            ShedLevel::AudioOnly => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadGovernor {
    level: u8,
    busy: f32,
    /// `busy` smoothed over [`ADMIT_SMOOTHING`], and when it was updated.
    steady: Option<(f32, Instant)>,
    over_since: Option<Instant>,
    under_since: Option<Instant>,
    last_raise: Option<Instant>,
}

impl LoadGovernor {
    /// One tick's measurement: the share of the tick the worker was busy,
    /// and the bytes waiting in its send backlog. Returns the new level
    /// when it changed.
    pub fn on_tick(&mut self, now: Instant, busy: f32, backlog_bytes: usize) -> Option<ShedLevel> {
        self.busy = busy;
        self.steady = Some(match self.steady {
            None => (busy, now),
            Some((steady, at)) => {
                let dt = now.saturating_duration_since(at).as_secs_f32();
                let weight = 1.0 - (-dt / ADMIT_SMOOTHING.as_secs_f32()).exp();
                (steady + (busy - steady) * weight, now)
            }
        });
        let over = busy > SHED_ABOVE || backlog_bytes >= BACKLOG_SHED_BYTES;
        let under = busy < RECOVER_BELOW && backlog_bytes == 0;
        self.over_since = if over {
            self.over_since.or(Some(now))
        } else {
            None
        };
        self.under_since = if under {
            self.under_since.or(Some(now))
        } else {
            None
        };
        let settled = self
            .last_raise
            .is_none_or(|t| now.saturating_duration_since(t) >= SETTLE);
        let held = |since: Option<Instant>, hold| {
            since.is_some_and(|t| now.saturating_duration_since(t) >= hold)
        };
        if held(self.over_since, RAISE_AFTER) && settled && self.level < MAX_LEVEL {
            self.level += 1;
            self.last_raise = Some(now);
            self.over_since = None;
            return Some(self.level());
        }
        if held(self.under_since, LOWER_AFTER) && self.level > 0 {
            self.level -= 1;
            self.under_since = None;
            return Some(self.level());
        }
        None
    }

    pub fn level(&self) -> ShedLevel {
        ShedLevel::from_u8(self.level)
    }

    /// The latest busy share, 0–1.
    pub fn busy(&self) -> f32 {
        self.busy
    }

    /// The busy share smoothed over [`ADMIT_SMOOTHING`], 0–1.
    pub fn steady_busy(&self) -> f32 {
        self.steady.map_or(0.0, |(s, _)| s)
    }

    /// Whether a new viewer may join this worker.
    pub fn admits(&self) -> bool {
        self.level == 0 && self.steady_busy() < ADMIT_BELOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks of (ms, busy, backlog) → the level after each.
    fn run(ticks: &[(u64, f32, usize)]) -> Vec<ShedLevel> {
        let t0 = Instant::now();
        let mut g = LoadGovernor::default();
        ticks
            .iter()
            .map(|&(ms, busy, backlog)| {
                g.on_tick(t0 + Duration::from_millis(ms), busy, backlog);
                g.level()
            })
            .collect()
    }

    #[test]
    fn table_of_load_levels() {
        use ShedLevel::*;
        type Case<'a> = (&'a str, &'a [(u64, f32, usize)], &'a [ShedLevel]);
        let cases: &[Case] = &[
            (
                "idle stays at none",
                &[(0, 0.3, 0), (250, 0.3, 0), (500, 0.3, 0)],
                &[None, None, None],
            ),
            (
                "a single busy tick is noise",
                &[(0, 0.95, 0), (250, 0.5, 0), (500, 0.95, 0)],
                &[None, None, None],
            ),
            (
                "busy for half a second sheds the top layer",
                &[(0, 0.95, 0), (250, 0.95, 0), (500, 0.95, 0)],
                &[None, None, TopLayer],
            ),
            (
                "still busy: the next level only after the switch settled",
                &[
                    (0, 0.95, 0),
                    (500, 0.95, 0),
                    (1000, 0.95, 0),
                    (2000, 0.95, 0),
                    (2500, 0.95, 0),
                ],
                &[None, TopLayer, TopLayer, TopLayer, LowestOnly],
            ),
            (
                "a send backlog sheds even when the busy share looks fine",
                &[(0, 0.5, 3 << 20), (500, 0.5, 3 << 20)],
                &[None, TopLayer],
            ),
            (
                "recovery takes five quiet seconds",
                &[
                    (0, 0.95, 0),
                    (500, 0.95, 0),
                    (1000, 0.3, 0),
                    (5000, 0.3, 0),
                    (6000, 0.3, 0),
                ],
                &[None, TopLayer, TopLayer, TopLayer, None],
            ),
        ];
        for (name, ticks, want) in cases {
            assert_eq!(run(ticks), *want, "{name}");
        }
    }

    #[test]
    fn admission_stops_before_shedding_starts() {
        let mut g = LoadGovernor::default();
        let t0 = Instant::now();
        g.on_tick(t0, 0.5, 0);
        assert!(g.admits());
        let mut t = t0;
        for _ in 0..40 {
            t += Duration::from_millis(250);
            g.on_tick(t, 0.85, 0);
        }
        assert!(!g.admits(), "steadily busy above the admission bar");
        assert_eq!(g.level(), ShedLevel::None, "but nothing shed yet");
    }

    #[test]
    fn a_join_storm_s_busy_ticks_do_not_close_admission() {
        let mut g = LoadGovernor::default();
        let t0 = Instant::now();
        g.on_tick(t0, 0.4, 0);
        // A second of handshakes: busy ticks, under the shedding hold.
        for (i, busy) in [0.85, 0.88, 0.6, 0.87].into_iter().enumerate() {
            g.on_tick(t0 + Duration::from_millis(250 * (i as u64 + 1)), busy, 0);
            assert!(g.admits(), "tick {i}: steady {}", g.steady_busy());
        }
        assert_eq!(g.level(), ShedLevel::None);
    }

    #[test]
    fn the_highest_rank_each_level_allows() {
        use ShedLevel::*;
        let cases = [
            (None, 3, Some(2)),
            (TopLayer, 3, Some(1)),
            (TopLayer, 1, Some(0)),
            (LowestOnly, 3, Some(0)),
            (AudioOnly, 3, Option::None),
            (None, 0, Option::None),
        ];
        for (level, layers, want) in cases {
            assert_eq!(level.max_rank(layers), want, "{level:?} of {layers}");
        }
    }
}
