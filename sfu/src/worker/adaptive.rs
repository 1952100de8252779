//! Per-viewer layer choice and adaptive quality: which source each of a
//! viewer's DownTracks follows, from its choice, its bandwidth estimate
//! ([`LayerSelector`]), its worker's load ([`ShedLevel`]) and the Mirror's
//! layers; what its estimator is told ([`BwePolicy`]); and what its
//! receiver reports change ([`LossCap`], [`StaleEstimate`]).
//!
//! Invariant: a viewer's estimate is ignored for [`ESTIMATE_WARMUP`] after
//! it connects; until then it is the estimator's starting value and the
//! results of its first probes, which swing widely, not a measurement of
//! the viewer's link. A receiver report of heavy loss applies from the
//! start ([`LossCap`]), so a viewer on a weak link still moves down at once.
//!
//! [`LayerSelector`]: crate::core::layer_selector::LayerSelector
//! [`ShedLevel`]: crate::core::overload::ShedLevel
//! [`BwePolicy`]: crate::core::bwe_policy::BwePolicy
//! [`LossCap`]: crate::core::loss_cap::LossCap
//! [`StaleEstimate`]: crate::core::stale_estimate::StaleEstimate

use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::stats::MediaEgressStats;

use super::mirror::{Mirror, LAYER_STOPPED_AFTER};
use super::session::{viewer_pt, Limit, SessionKey, ViewerState};
use super::Worker;
use crate::core::bwe_policy::BweInput;
use crate::core::layer_selector::{Bounds, Link, Selection};
use crate::core::layers::{self, LayerChoice, LayerMeasure};
use crate::core::overload::ShedLevel;
use crate::core::SourceKey;
use crate::ids::BroadcastName;

pub const ESTIMATE_WARMUP: Duration = Duration::from_secs(2);

/// The video source a viewer should receive now, by its choice, its
/// estimate, the bounds and its worker's shed level; records why it is
/// held back.
pub fn video_target(
    state: &mut ViewerState,
    mirror: &Mirror,
    bounds: Bounds,
    shed: ShedLevel,
    now: Instant,
) -> Option<SourceKey> {
    if state.held_until.is_some_and(|until| now < until) {
        state.limit = Limit::AdBreak;
        return None;
    }
    if state.view.video_paused(now) {
        state.limit = Limit::Hidden;
        return None;
    }
    let epoch = mirror.audio_target()?.epoch;
    if !mirror.layers_settled(now) {
        return None;
    }
    let measures = mirror.measures(now);
    // An automatic choice takes no layer larger than the player shows.
    let ranked = layers::rank(&measures);
    let usable = match state.choice {
        LayerChoice::Auto => state.view.usable(&ranked),
        _ => ranked.len(),
    };
    let top_usable = usable
        .checked_sub(1)
        .and_then(|i| ranked.get(i))
        .map(|l| l.index);
    let capped = usable < ranked.len();
    let estimate = state.estimate_bps.filter(|_| {
        state
            .connected_at
            .is_some_and(|t| now.saturating_duration_since(t) >= ESTIMATE_WARMUP)
    });
    let estimate = state.loss_cap.apply(now, estimate);
    // What the sender sustains (media plus padding, see `update_bwe`), as
    // long as the receiver reports no noticeable loss.
    let sustained_bps = if state.clean_delivery.quiet(now) {
        state.bwe.sustained_bps()
    } else {
        0
    };
    let link = Link {
        estimate_bps: estimate,
        sustained_bps,
        delivered_bps: state.clean_delivery.floor_bps(now),
        congested: state.loss_cap.capping(now),
    };
    let selected =
        state
            .selector
            .select_within(state.choice, link, &measures, bounds, usable, now)?;
    let layer = match selected {
        Selection::Layer(layer) => layer,
        Selection::PausedLowBandwidth => {
            state.limit = Limit::LowBandwidth;
            return None;
        }
    };
    // The worker's load caps every viewer, whatever it chose.
    let rank = ranked.iter().position(|m| m.index == layer);
    let Some(max_rank) = shed.max_rank(ranked.len()) else {
        state.limit = Limit::ServerLoad;
        return None;
    };
    let layer = match rank {
        Some(r) if r > max_rank => {
            state.limit = Limit::ServerLoad;
            ranked[max_rank].index
        }
        _ => {
            state.limit = if capped && top_usable == Some(layer) {
                Limit::PlayerSize
            } else {
                Limit::None
            };
            layer
        }
    };
    Some(SourceKey { epoch, layer })
}

/// The layers worth probing for: for an automatic choice, up to the
/// smallest that covers the viewer's player ([`ViewFit`]). Padding toward
/// a layer the player cannot show would spend the bandwidth its cap saves;
/// growing the player therefore climbs at the estimator's pace.
///
/// [`ViewFit`]: crate::core::view_fit::ViewFit
fn fitted(state: &ViewerState, all: &[LayerMeasure]) -> Vec<LayerMeasure> {
    if state.choice != LayerChoice::Auto {
        return all.to_vec();
    }
    let ranked = layers::rank(all);
    let usable = state.view.usable(&ranked);
    if usable == ranked.len() {
        return all.to_vec();
    }
    ranked[..usable].iter().map(|l| **l).collect()
}

impl Worker {
    /// Recomputes the targets of every viewer of a Mirror.
    pub(super) fn retarget_mirror(&mut self, name: &BroadcastName, now: Instant) {
        let Some(mirror) = self.mirrors.get(name) else {
            return;
        };
        let viewers = mirror.viewers.clone();
        for key in viewers {
            self.retarget_viewer(key, now);
        }
    }

    /// Points a connected viewer's DownTracks at the sources its choice
    /// selects; a viewer that gains a video target with no picture of it
    /// yet is served from the target layer's GopCache at once, else a
    /// keyframe is requested upstream.
    pub(super) fn retarget_viewer(&mut self, key: SessionKey, now: Instant) {
        let shed = self.governor.level();
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let name = session.broadcast.clone();
        let Some(mirror) = self.mirrors.get(&name) else {
            return;
        };
        let rtc = &session.rtc;
        let super::session::Role::Viewer(state) = &mut session.role else {
            return;
        };
        if !state.connected {
            return;
        }
        let info = mirror.info.clone();
        let epoch = info.as_ref().map(|i| i.epoch);
        for (track, spec) in [
            (state.audio.as_mut(), info.as_ref().and_then(|i| i.audio)),
            (
                state.video.as_mut(),
                info.as_ref().and_then(|i| i.video.map(|(_, s)| s)),
            ),
        ] {
            let (Some(track), Some(spec), Some(epoch)) = (track, spec, epoch) else {
                continue;
            };
            if track.pt_epoch != Some(epoch) {
                track.pt = viewer_pt(rtc, track.mid, &spec);
                track.pt_epoch = Some(epoch);
                if track.pt.is_none() {
                    tracing::info!(codec = ?spec.codec, "viewer did not negotiate the publisher's codec");
                }
            }
        }
        let held = state.held_until.is_some_and(|until| now < until);
        if let Some(audio) = state.audio.as_mut() {
            audio
                .forwarder
                .set_target(mirror.audio_target().filter(|_| !held));
        }
        if state.video.is_none() {
            return;
        }
        let target = video_target(state, mirror, self.bounds, shed, now);
        let Some(video) = state.video.as_mut() else {
            return;
        };
        if video.forwarder.target() == target {
            return;
        }
        state.switches += 1;
        state.switch_decided = Some(now);
        // The cached GOP is served to a viewer with no picture yet, and to
        // one moving to a new publisher session (nothing of it was seen).
        // Within a session it is not: replaying would rewind the picture.
        let current = video.forwarder.current();
        let serve_cached = current.is_none_or(|c| target.is_some_and(|t| t.epoch != c.epoch));
        video.forwarder.set_target(target);
        let Some(target) = target else {
            return;
        };
        let Some(layer) = mirror.layers.get(usize::from(target.layer)) else {
            return;
        };
        // A paused or stopped layer's cache is stale: wait for it to resume.
        let fresh = layer.meter.active(now, LAYER_STOPPED_AFTER);
        if serve_cached && fresh && !layer.gop.is_empty() {
            let cached = layer.gop.packets().to_vec();
            let bps = layer.meter.bps();
            self.start_replay(key, target, cached, bps, now);
        } else {
            self.upstream(&name, super::bus::Upstream::KeyframeRequest(target.layer));
        }
    }

    pub(super) fn on_estimate(&mut self, key: SessionKey, kind: BweKind, now: Instant) {
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
        if let Some(v) = self.sessions.get_mut(key).and_then(|s| s.viewer_mut()) {
            v.estimate_bps = estimate;
            if !matches!(v.limit, Limit::PlayerSize | Limit::Hidden | Limit::AdBreak) {
                v.free_estimate_bps = estimate.or(v.free_estimate_bps);
            }
        }
        self.retarget_viewer(key, now);
        self.update_bwe(key, now);
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
        key: SessionKey,
        stats: &MediaEgressStats,
        now: Instant,
    ) {
        // Over ICE-TCP the worker sees the link's loss itself: datagrams
        // its connection's full queue refused (the receiver's reports
        // miss them when resends fill the gaps late).
        let tcp = self.sessions.get(key).and_then(|s| {
            s.addrs
                .iter()
                .rev()
                .find_map(|a| self.egress.tcp.get(a))
                .map(|l| l.counts())
        });
        let Some(v) = self.sessions.get_mut(key).and_then(|s| s.viewer_mut()) else {
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
        v.video_bytes_sent = stats.bytes;
        let tcp_loss = tcp.and_then(|(sent, refused)| {
            let (last_sent, last_refused) = std::mem::replace(&mut v.tcp_counts, (sent, refused));
            let (sent, refused) = (
                sent.saturating_sub(last_sent),
                refused.saturating_sub(last_refused),
            );
            (sent + refused > 0).then(|| refused as f32 / (sent + refused) as f32)
        });
        let loss = match (stats.loss, tcp_loss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        v.rtt = stats.rtt.or(v.rtt);
        v.loss = loss.or(v.loss);
        let capped = v.loss_cap.on_report(now, stats.bytes, loss);
        // The estimate covers the whole transport, audio included.
        let total_sent = stats.bytes + v.audio_bytes_sent;
        // Video alone: the floor is compared with video layers.
        v.clean_delivery.on_report(now, stats.bytes, loss);
        let wanted = v.bwe.climb_wanted_bps();
        let restart = (v.choice == LayerChoice::Auto)
            .then(|| {
                v.stale_estimate
                    .on_report(now, total_sent, loss, v.estimate_bps, wanted)
            })
            .flatten();
        if let Some(rate) = restart {
            tracing::debug!(estimate = ?v.estimate_bps, rate, "stale estimate: estimator restarted");
            self.call(key, now, |rtc| {
                rtc.bwe().reset(Bitrate::bps(rate));
                Ok(())
            });
        }
        if capped {
            self.retarget_viewer(key, now);
            self.update_bwe(key, now);
        }
    }

    /// A viewer whose video was capped to its player or paused while hidden
    /// may take more now: its estimator, sunk to the little traffic it saw,
    /// restarts from what the link carried before ([`ViewerState::free_estimate_bps`]).
    ///
    /// [`ViewerState::free_estimate_bps`]: super::session::ViewerState::free_estimate_bps
    pub(super) fn restore_estimate(&mut self, key: SessionKey, now: Instant) {
        let Some(v) = self.sessions.get_mut(key).and_then(|s| s.viewer_mut()) else {
            return;
        };
        // Never measured uncapped (capped from the start): start from the
        // estimator's starting value, as a new viewer does.
        let free = v
            .free_estimate_bps
            .unwrap_or(crate::sdp::VIEWER_INITIAL_ESTIMATE.as_u64());
        if v.estimate_bps.is_some_and(|e| e >= free) {
            return;
        }
        v.estimate_bps = Some(free);
        v.selector.trust_estimate();
        self.call(key, now, |rtc| {
            rtc.bwe().reset(Bitrate::bps(free));
            Ok(())
        });
    }

    /// Tells the viewer's estimator what to sustain and what to probe for.
    pub(super) fn update_bwe(&mut self, key: SessionKey, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(mirror) = self.mirrors.get(&session.broadcast) else {
            return;
        };
        let Some(state) = session.viewer_mut() else {
            return;
        };
        let all = mirror.measures(now);
        // Nothing is probed for beyond what the player shows.
        let measures = fitted(state, &all);
        let mut eligible: Vec<u64> = measures
            .iter()
            .filter(|m| m.active && self.bounds.max_bps.is_none_or(|max| m.bps <= max))
            .map(|m| m.bps)
            .collect();
        eligible.sort_unstable();
        let current_bps = state
            .video
            .as_ref()
            .and_then(|v| v.forwarder.target())
            .and_then(|t| measures.iter().find(|m| m.index == t.layer))
            .map_or(0, |m| m.bps);
        let input = BweInput {
            choice: state.choice,
            eligible_bps: &eligible,
            current_bps,
            estimate_bps: state.estimate_bps,
            capped_estimate_bps: state.loss_cap.apply(now, state.estimate_bps),
            quiet: state.clean_delivery.quiet(now),
        };
        let Some(setting) = state.bwe.update(input, now) else {
            return;
        };
        self.call(key, now, |rtc| {
            rtc.bwe().set_bitrate(
                Bitrate::bps(setting.sustain_bps),
                Bitrate::bps(setting.desired_bps),
            );
            Ok(())
        });
    }
}
