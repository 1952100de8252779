//! Per-viewer adaptive quality: the viewer's egress estimate (TWCC, or REMB
//! from receivers without TWCC) feeds its [`LayerSelector`]; the estimator is
//! told to sustain the current layer and to probe for the better one before
//! the selector may switch up.
//!
//! Invariant: a viewer's estimate is ignored for [`ESTIMATE_WARMUP`] after it
//! connects; until then it is the estimator's starting value and the
//! results of its first probes, which swing widely, not a measurement of
//! the viewer's link. A receiver report of heavy loss applies from the
//! start ([`LossCap`]), so a viewer on a weak link still moves down at once.
//!
//! [`LossCap`]: crate::core::loss_cap::LossCap

use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::stats::MediaEgressStats;

use super::broadcast::Broadcast;
use super::session::{Role, ViewerState};
use super::Worker;
use crate::core::layer_selector::{Bounds, Link, Selection, HEADROOM};
use crate::core::layers::LayerChoice;
use crate::core::SourceKey;
use crate::ids::SessionId;

pub const ESTIMATE_WARMUP: Duration = Duration::from_secs(2);

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
    let estimate = state.loss_cap.apply(now, estimate);
    // What the sender sustains (media plus padding, see `update_bwe`),
    // as long as the receiver reports no noticeable loss.
    let sustained_bps = if state.clean_delivery.quiet(now) {
        state.bwe_setting.0
    } else {
        0
    };
    let link = Link {
        estimate_bps: estimate,
        sustained_bps,
        delivered_bps: state.clean_delivery.floor_bps(now),
        congested: state.loss_cap.capping(now),
    };
    match state
        .selector
        .select(state.choice, link, &measures, bounds, now)?
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

    /// The viewer's sender statistics: RTT and loss for the viewer API; a
    /// heavy-loss report caps the estimate at once ([`LossCap`]), and an
    /// estimate contradicted by clean delivery restarts the estimator
    /// ([`StaleEstimate`]).
    ///
    /// [`LossCap`]: crate::core::loss_cap::LossCap
    /// [`StaleEstimate`]: crate::core::stale_estimate::StaleEstimate
    pub(super) fn on_egress_stats(
        &mut self,
        viewer: SessionId,
        stats: &MediaEgressStats,
        now: Instant,
    ) {
        let Some(session) = self.sessions.get_mut(&viewer) else {
            return;
        };
        let Role::Viewer(v) = &mut session.role else {
            return;
        };
        if v.audio.as_ref().is_some_and(|t| t.mid == stats.mid) {
            v.audio_bytes_sent = stats.bytes;
            return;
        }
        // Video's report speaks for the viewer's link.
        if v.video.as_ref().is_none_or(|t| t.mid != stats.mid) {
            return;
        }
        v.rtt = stats.rtt.or(v.rtt);
        v.loss = stats.loss.or(v.loss);
        let capped = v.loss_cap.on_report(now, stats.bytes, stats.loss);
        // The estimate covers the whole transport, audio included.
        let total_sent = stats.bytes + v.audio_bytes_sent;
        // Video alone: the floor is compared with video layers.
        v.clean_delivery.on_report(now, stats.bytes, stats.loss);
        let wanted = v.climb_wanted_bps;
        let restart = (v.choice == LayerChoice::Auto)
            .then(|| {
                v.stale_estimate
                    .on_report(now, total_sent, stats.loss, v.estimate_bps, wanted)
            })
            .flatten();
        if let Some(rate) = restart {
            tracing::debug!(session = %viewer, estimate = ?v.estimate_bps, rate, "stale estimate: estimator restarted");
            session.rtc.bwe().reset(Bitrate::bps(rate));
            self.input_drain(viewer, now);
        }
        if capped {
            tracing::debug!(session = %viewer, loss = ?stats.loss, "heavy loss: estimate capped");
            self.retarget_viewer(viewer, now);
            self.update_bwe(viewer, now);
        }
    }

    /// Tells the viewer's estimator what to sustain and what to probe for
    /// (the best layer the viewer may get).
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
        // Sustain the layer being sent, and probe toward the best layer the
        // viewer may get. Once the estimate is within the selector's
        // headroom of the next layer up, sustain that layer instead, with
        // padding: the estimator only rises to 1.5x the traffic it sees
        // acknowledged, so without real traffic at that rate only probes
        // can lift it, and each probe result (a cluster of a few packets
        // over about 15 ms, whose measured rate varies with scheduling at
        // either end) replaces the estimate; and traffic the link carries at the next
        // layer's rate is itself proof that the layer fits (the selector's
        // `Link::sustained_bps`). Below that, or within 3 s of a receiver
        // report of noticeable loss, no padding: padding a link that cannot
        // carry the next layer only fills its queue, and the loss-based
        // estimator then falls under the layer being sent and bars the
        // probes that would find the link freed.
        let next = eligible
            .iter()
            .copied()
            .find(|bps| *bps > current)
            .unwrap_or(current);
        let covers_next = state
            .loss_cap
            .apply(now, state.estimate_bps)
            .is_some_and(|e| e as f64 >= next as f64 * HEADROOM);
        let sustain = if covers_next && state.clean_delivery.quiet(now) {
            next
        } else {
            current
        };
        // What the viewer could climb to next, with the selector's headroom
        // (0 at the top): an estimate short of it that does not move is
        // stuck (StaleEstimate).
        state.climb_wanted_bps = if next > current && state.choice == LayerChoice::Auto {
            (next as f64 / HEADROOM) as u64
        } else {
            0
        };
        let best = eligible.last().copied().unwrap_or(0);
        let (current, desired) = if state.choice == LayerChoice::Auto {
            // Probing overshoots what it asks for a little; ask for the
            // layer plus its headroom so the selector's fit test can pass.
            let mut desired = (best.max(current) as f64 / HEADROOM) as u64;
            // While the estimate is short of that, ask again when the probe
            // pacer says so (soon after a probe that found room, else every
            // second): str0m probes when the desired rate rises. Not while
            // padding toward the next layer: real traffic then lifts the
            // estimate, and every probe result replaces it outright, high
            // or low (a cluster of a few packets, measured over
            // milliseconds), which kept breaking the hold
            // the selector needs to climb.
            let short = state.estimate_bps.is_some_and(|e| e < desired);
            let padding = sustain > current;
            if short && !padding && state.probe.due(now, state.estimate_bps) {
                state.probe_bump = (state.probe_bump + 1) % 16;
            }
            desired += desired * u64::from(state.probe_bump) * 2 / 100;
            (sustain, desired)
        } else {
            // A viewer who chose a layer gets that layer: no padding or
            // probes toward others (they would only cost its link).
            (current, current)
        };
        if (current, desired) == state.bwe_setting || desired == 0 {
            return;
        }
        state.bwe_setting = (current, desired);
        tracing::debug!(session = %viewer, sustain = current, desired, estimate = ?state.estimate_bps, "bwe setting");
        session
            .rtc
            .bwe()
            .set_bitrate(Bitrate::bps(current), Bitrate::bps(desired));
        self.input_drain(viewer, now);
    }
}
