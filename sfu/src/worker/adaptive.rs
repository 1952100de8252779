//! Per-viewer adaptive quality: the viewer's egress estimate (TWCC, or REMB
//! from receivers without TWCC) feeds its [`LayerSelector`]; the estimator is
//! told to sustain the current layer and to probe for the better one before
//! the selector may switch up.
//!
//! Invariant: a viewer's estimate is ignored for [`ESTIMATE_WARMUP`] after it
//! connects; until then it is the estimator's starting value, not a
//! measurement of the viewer's link.

use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};

use super::broadcast::Broadcast;
use super::session::{Role, ViewerState};
use super::Worker;
use crate::core::layer_selector::{Bounds, Selection};
use crate::core::layers::LayerChoice;
use crate::core::SourceKey;
use crate::ids::SessionId;

pub const ESTIMATE_WARMUP: Duration = Duration::from_secs(1);

/// The video source a viewer should receive now, by its choice, its
/// estimate and the bounds; records a pause for low bandwidth.
pub fn video_target(
    state: &mut ViewerState,
    broadcast: &Broadcast,
    bounds: Bounds,
    now: Instant,
) -> Option<SourceKey> {
    broadcast.publisher?;
    if !broadcast.layers_settled(now) {
        return None;
    }
    let measures = broadcast.measures(now);
    let estimate = state.estimate_bps.filter(|_| {
        state
            .connected_at
            .is_some_and(|t| now.saturating_duration_since(t) >= ESTIMATE_WARMUP)
    });
    match state
        .selector
        .select(state.choice, estimate, &measures, bounds, now)?
    {
        Selection::Layer(layer) => {
            state.paused_low_bandwidth = false;
            Some(SourceKey {
                epoch: broadcast.epoch,
                layer,
            })
        }
        Selection::PausedLowBandwidth => {
            state.paused_low_bandwidth = true;
            None
        }
    }
}

impl Worker {
    pub(super) fn on_estimate(&mut self, viewer: SessionId, kind: BweKind, now: Instant) {
        let estimate = match kind {
            BweKind::Twcc {
                estimate,
                can_probe: true,
            }
            | BweKind::Remb { estimate, .. } => Some(estimate.as_u64()),
            // Without feedback the estimator only repeats its last value;
            // that says nothing about the link, so choose as if unknown.
            BweKind::Twcc {
                can_probe: false, ..
            } => None,
            _ => return,
        };
        if let Some(Role::Viewer(v)) = self.sessions.get_mut(&viewer).map(|s| &mut s.role) {
            v.estimate_bps = estimate;
            tracing::debug!(session = %viewer, ?estimate, "egress estimate");
        }
        self.retarget_viewer(viewer, now);
        self.update_bwe(viewer, now);
    }

    /// Tells the viewer's estimator what to sustain (the current layer) and
    /// what to probe for (the better layer the selector is waiting on).
    pub(super) fn update_bwe(&mut self, viewer: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&viewer) else {
            return;
        };
        let Role::Viewer(state) = &mut session.role else {
            return;
        };
        let Some(broadcast) = self.broadcasts.get(&session.broadcast) else {
            return;
        };
        let measures = broadcast.measures(now);
        let mut eligible: Vec<u64> = measures
            .iter()
            .filter(|m| m.active && self.bounds.max_bps.is_none_or(|max| m.bps <= max))
            .map(|m| m.bps)
            .collect();
        eligible.sort_unstable();
        let current = state
            .video
            .as_ref()
            .and_then(|v| v.forwarder.target())
            .and_then(|t| measures.iter().find(|m| m.index == t.layer))
            .map_or(0, |m| m.bps);
        // Sustain (with padding if media falls short) the next layer up, so
        // the estimate can grow to show that it fits; probe toward the best
        // layer the viewer may get. At the top, sustain the top.
        let best = eligible.last().copied().unwrap_or(0);
        let next = eligible
            .iter()
            .copied()
            .find(|bps| *bps > current)
            .unwrap_or(current);
        let (current, desired) = if state.choice == LayerChoice::Auto {
            // Probing overshoots what it asks for a little; ask for the
            // layer plus its headroom so the selector's fit test can pass.
            let mut desired =
                (best.max(next) as f64 / crate::core::layer_selector::HEADROOM) as u64;
            // While the estimate is short of that, ask again when the probe
            // pacer says so (soon after a probe that found room, else every
            // second).
            let short = state.estimate_bps.is_some_and(|e| e < desired);
            if short && state.probe.due(now, state.estimate_bps) {
                state.probe_bump = (state.probe_bump + 1) % 16;
            }
            desired += desired * u64::from(state.probe_bump) * 2 / 100;
            (next, desired)
        } else {
            // A viewer who chose a layer gets that layer: no padding or
            // probes toward others (they would only cost its link).
            (current, current)
        };
        if (current, desired) == state.bwe_setting || desired == 0 {
            return;
        }
        state.bwe_setting = (current, desired);
        session
            .rtc
            .bwe()
            .set_bitrate(Bitrate::bps(current), Bitrate::bps(desired));
        self.input_drain(viewer, now);
    }
}
