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
use crate::core::{DownTrackState, SourceKey};
use crate::ids::SessionId;
use std::sync::atomic::Ordering::Relaxed;

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

/// The most a viewer's paced video may lag: when the oldest packet str0m's
/// pacer still holds for it is older than this, the viewer skips to the
/// next keyframe instead of falling further behind live.
pub const BACKLOG_LIMIT: Duration = Duration::from_millis(400);

impl Worker {
    /// Keeps a viewer near live when its link takes less than it is sent
    /// (a down-switch waits for a keyframe; the estimate lags a sudden
    /// drop): the pacer would otherwise hold seconds of video and send it
    /// late, filling the link with pictures the viewer no longer needs.
    pub(super) fn check_backlog(&mut self, viewer: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&viewer) else {
            return;
        };
        let Role::Viewer(state) = &mut session.role else {
            return;
        };
        let Some(track) = state.video.as_mut() else {
            return;
        };
        if state.replaying || track.forwarder.state() != DownTrackState::Forwarding {
            return;
        }
        let mid = track.mid;
        let lagging = session
            .rtc
            .direct_api()
            .stream_tx_by_mid(mid, None)
            .and_then(|stream| stream.queue_info().and_then(|q| q.first_unsent()))
            .is_some_and(|oldest| now.saturating_duration_since(oldest) > BACKLOG_LIMIT);
        if !lagging {
            return;
        }
        track.forwarder.resync();
        self.metrics.backlog_resyncs.fetch_add(1, Relaxed);
        tracing::debug!(session = %viewer, "video backlog over budget: skipping to the next keyframe");
        self.on_viewer_keyframe_request(viewer, mid, now);
    }

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
        self.check_backlog(viewer, now);
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
        // Probe toward the best layer the viewer may get. Sustain (with
        // padding where media falls short) the next layer up only once the
        // estimate covers it, so the estimate can confirm the headroom the
        // selector waits for; below that, padding toward a layer the link
        // cannot carry would only fill the bottleneck queue and cost media
        // packets, and capacity is found by probes instead. At the top,
        // sustain the top.
        let best = eligible.last().copied().unwrap_or(0);
        let next = eligible
            .iter()
            .copied()
            .find(|bps| *bps > current)
            .unwrap_or(current);
        let sustain = if state.estimate_bps.is_some_and(|e| e >= next) {
            next
        } else {
            current
        };
        // A viewer who chose a layer gets that layer: no padding or probes
        // toward others.
        let (current, desired) = if state.choice == LayerChoice::Auto {
            (sustain, best.max(next))
        } else {
            (current, current)
        };
        // Probing overshoots what it asks for a little; ask for the layer
        // plus its headroom so the selector's fit test can pass.
        let mut desired = (desired as f64 / crate::core::layer_selector::HEADROOM) as u64;
        // While the estimate is short of that, ask again when the probe
        // pacer says so (soon after a probe that found room, backing off
        // after fruitless ones): str0m probes when the desired rate rises,
        // and after a congestion episode its estimate otherwise climbs
        // slowly.
        let short = state.estimate_bps.is_some_and(|e| e < desired);
        if short && state.probe.due(now, state.estimate_bps) {
            state.probe_bump = (state.probe_bump + 1) % 16;
        }
        desired += desired * u64::from(state.probe_bump) * 2 / 100;
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
