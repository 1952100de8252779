//! The hot path: an incoming publisher packet becomes a [`SourcePacket`],
//! feeds its layer's GopCache and meter, and is written to every viewer
//! whose Forwarder wants that source. Also viewer (re)targeting, GopCache
//! replay on join, and throttled keyframe requests upstream.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::rtp::StreamTx;
use str0m::rtp::{RtpPacket, RtpWrite};

use super::broadcast::{LayerIn, MAX_LAYERS};
use super::replay::Replay;
use super::session::{drain, viewer_pt, Io, Role, TrackRef};
use super::Worker;
use crate::core::keyframe::{self, VideoCodec};
use crate::core::packet::{forwardable_ext, Vp8Fields};
use crate::core::{SourceKey, SourcePacket};
use crate::ids::SessionId;
use crate::metrics::DropReason;

/// How old a packet a viewer may still have resent. Live playback at
/// sub-second latency cannot use a frame completed later than this, and
/// after a congestion episode the receiver NACKs hundreds of packets sent
/// before its layer switch: answering those from a 3 s cache (str0m's
/// default) sent bursts of up to a megabit a second of useless resends into
/// the link that had just overflowed. A second still allows several
/// attempts on a 300 ms round trip.
const RESEND_MAX_AGE: Duration = Duration::from_secs(1);
/// Resend cache size: a second of a 10 Mbit/s layer.
const RESEND_MAX_PACKETS: usize = 1024;
/// str0m's default: queued resends are dropped when they exceed this share.
const RESEND_RATIO_CAP: f32 = 0.15;

/// Video skips str0m's pacer, for every viewer (audio always does), as
/// mediasoup and LiveKit forward: the publisher's encoder already paces
/// its frames, and a second pacer only moves the bottleneck queue from the
/// network into the SFU.
///
/// The pacer sends at 1.1× the viewer's bandwidth estimate. Whenever the
/// estimate lags the link (after a congestion episode it under-reads for
/// seconds; for a viewer who chose a layer it settles at that layer's
/// average, since nothing is probed above it) the queue grew behind every
/// 3× keyframe, then was force-drained in a burst at its 2 s limit: latency
/// of seconds and loss on exactly the constrained links the estimate is
/// meant to protect. Padding and probes still go through the pacer, which
/// counts the unpaced video against its budget.
///
/// Resends answer NACKs for packets up to [`RESEND_MAX_AGE`] old.
fn configure_video_stream(stream: &mut StreamTx) {
    stream.set_unpaced(true);
    stream.set_rtx_cache(RESEND_MAX_PACKETS, RESEND_MAX_AGE, Some(RESEND_RATIO_CAP));
}

fn video_codec(codec: Codec) -> Option<VideoCodec> {
    Some(match codec {
        Codec::Vp8 => VideoCodec::Vp8,
        Codec::Vp9 => VideoCodec::Vp9,
        Codec::H264 => VideoCodec::H264,
        Codec::H265 => VideoCodec::H265,
        Codec::Av1 => VideoCodec::Av1,
        _ => return None,
    })
}

impl Worker {
    /// Which track (and layer) an incoming packet belongs to; learned on
    /// the SSRC's first packet from str0m's stream table.
    fn classify(&mut self, publisher: SessionId, pkt: &RtpPacket) -> Option<TrackRef> {
        let session = self.sessions.get_mut(&publisher)?;
        let Role::Publisher(state) = &mut session.role else {
            return None;
        };
        let ssrc = pkt.header.ssrc;
        if let Some(track) = state.tracks.get(&ssrc) {
            return Some(*track);
        }
        let (mid, rid) = {
            let stream = session
                .rtc
                .direct_api()
                .stream_rx(&ssrc)
                .map(|s| (s.mid(), s.rid()));
            stream.or_else(|| {
                pkt.header
                    .ext_vals
                    .mid
                    .map(|m| (m, pkt.header.ext_vals.rid))
            })?
        };
        let kind = state.media.iter().find(|m| m.mid == mid)?.kind;
        let track = match kind {
            MediaKind::Audio => TrackRef::Audio,
            MediaKind::Video => {
                let index = match state.layer_keys.iter().position(|(r, s)| {
                    (rid.is_some() && *r == rid) || (rid.is_none() && *s == ssrc)
                }) {
                    Some(i) => i,
                    None if state.layer_keys.len() < MAX_LAYERS => {
                        state.layer_keys.push((rid, ssrc));
                        state.layer_keys.len() - 1
                    }
                    None => return None,
                };
                TrackRef::Video { layer: index as u8 }
            }
        };
        state.tracks.insert(ssrc, track);
        Some(track)
    }

    pub(super) fn on_publisher_rtp(&mut self, publisher: SessionId, pkt: RtpPacket, now: Instant) {
        self.metrics.packets_in.fetch_add(1, Relaxed);
        let Some(track) = self.classify(publisher, &pkt) else {
            self.metrics.count_drop(DropReason::UnknownTrack);
            return;
        };
        let Some(session) = self.sessions.get_mut(&publisher) else {
            return;
        };
        let Role::Publisher(state) = &mut session.role else {
            return;
        };
        let layer_rid = match track {
            TrackRef::Video { layer } => state.layer_keys.get(usize::from(layer)).and_then(|k| k.0),
            TrackRef::Audio => None,
        };
        let pt = pkt.header.payload_type;
        let spec = match state.codecs.get(&pt) {
            Some(spec) => *spec,
            None => {
                let Some(params) = session
                    .rtc
                    .codec_config()
                    .params()
                    .iter()
                    .find(|p| p.pt() == pt)
                else {
                    self.metrics.count_drop(DropReason::UnknownTrack);
                    return;
                };
                state.codecs.insert(pt, params.spec());
                params.spec()
            }
        };
        let broadcast_name = session.broadcast.clone();
        let Some(broadcast) = self.broadcasts.get_mut(&broadcast_name) else {
            return;
        };
        if broadcast.publisher != Some(publisher) {
            return;
        }
        if pkt.payload.is_empty() {
            // Padding used for bandwidth probing carries nothing to forward.
            return;
        }
        broadcast.last_media = Some(now);
        if broadcast.live_since.is_none() {
            broadcast.live_since = Some(SystemTime::now());
            tracing::info!(broadcast = %broadcast.name, "broadcast is live");
        }

        let mut source_packet = SourcePacket {
            seq: *pkt.seq_no,
            ts: pkt.header.timestamp,
            marker: pkt.header.marker,
            ext: forwardable_ext(&pkt.header.ext_vals),
            payload: pkt.payload.clone(),
            arrival: now,
            keyframe_start: false,
            vp8: None,
        };
        let mut layers_changed = false;
        let source = match track {
            TrackRef::Audio => {
                layers_changed |= broadcast.audio_codec != Some(spec);
                broadcast.audio_codec = Some(spec);
                broadcast.audio_ssrc = Some(pkt.header.ssrc);
                SourceKey {
                    epoch: broadcast.epoch,
                    layer: 0,
                }
            }
            TrackRef::Video { layer } => {
                let Some(codec) = video_codec(spec.codec) else {
                    self.metrics.count_drop(DropReason::UnknownTrack);
                    return;
                };
                if broadcast
                    .video_codec
                    .is_none_or(|(c, s)| c != codec || s != spec)
                {
                    broadcast.video_codec = Some((codec, spec));
                }
                if broadcast.first_video.is_none() {
                    broadcast.first_video = Some(now);
                }
                while broadcast.layers.len() <= usize::from(layer) {
                    broadcast
                        .layers
                        .push(LayerIn::new(pkt.header.ssrc, layer_rid, now));
                    layers_changed = true;
                }
                let l = &mut broadcast.layers[usize::from(layer)];
                l.ssrc = pkt.header.ssrc;
                let info = keyframe::inspect(codec, &pkt.payload);
                let frame_start = l.last_ts != Some(source_packet.ts);
                source_packet.keyframe_start =
                    info.starts_keyframe && (!info.needs_frame_start || frame_start);
                if codec == VideoCodec::Vp8 {
                    source_packet.vp8 = Vp8Fields::parse(&pkt.payload);
                }
                if let Some(dims) = info.dimensions {
                    if l.dimensions != Some(dims) {
                        l.dimensions = Some(dims);
                        layers_changed = true;
                    }
                }
                let was_active = l.meter.active(now, super::broadcast::LAYER_ACTIVE_WITHIN);
                l.meter.record(now, pkt.payload.len());
                layers_changed |= !was_active;
                l.last_ts = Some(source_packet.ts);
                l.gop.push(&source_packet);
                SourceKey {
                    epoch: broadcast.epoch,
                    layer,
                }
            }
        };

        let is_video = matches!(track, TrackRef::Video { .. });
        if layers_changed {
            // Before forwarding: the packet that changed the layers may be
            // the very keyframe a retargeted viewer needs to start on.
            self.retarget_broadcast(&broadcast_name, now);
        }
        let Some(broadcast) = self.broadcasts.get_mut(&broadcast_name) else {
            return;
        };
        let viewers = std::mem::take(&mut broadcast.viewers);
        let mut wants_keyframe = false;
        for viewer in &viewers {
            match self.forward_to(*viewer, is_video, source, &source_packet, now, false) {
                // Until the keyframe comes, ask again (the throttle spaces
                // requests): an encoder may ignore a request that arrives
                // right after it produced a keyframe for another layer.
                Some(DropReason::WaitingKeyframe | DropReason::SwitchPending) => {
                    wants_keyframe = true
                }
                Some(DropReason::Deferred) => {
                    if let Some(replay) = self.replays.iter_mut().find(|r| r.viewer == *viewer) {
                        replay.push(source_packet.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(b) = self.broadcasts.get_mut(&broadcast_name) {
            b.viewers = viewers;
        }
        if let (TrackRef::Video { layer }, true) = (track, wants_keyframe) {
            self.request_keyframe(publisher, layer, now);
        }
    }

    /// Writes one source packet to one viewer. Returns the drop reason when
    /// the viewer wanted the source but could not take this packet.
    fn forward_to(
        &mut self,
        viewer: SessionId,
        is_video: bool,
        source: SourceKey,
        pkt: &SourcePacket,
        now: Instant,
        from_replay: bool,
    ) -> Option<DropReason> {
        let broadcast_epoch = source.epoch;
        let session = self.sessions.get_mut(&viewer)?;
        let Role::Viewer(state) = &mut session.role else {
            return None;
        };
        if !state.connected {
            return None;
        }
        let track = if is_video {
            state.video.as_mut()?
        } else {
            state.audio.as_mut()?
        };
        if !track.forwarder.wants(source) {
            return None;
        }
        // While a GOP is replayed, live packets queue behind it: the viewer
        // then receives in sequence order and never NACKs packets that are
        // merely not yet replayed.
        if is_video && state.replaying && !from_replay {
            return Some(DropReason::Deferred);
        }
        let track = if is_video {
            state.video.as_mut()?
        } else {
            state.audio.as_mut()?
        };
        if track.pt_epoch != Some(broadcast_epoch) {
            return Some(DropReason::CodecMismatch);
        }
        let Some(pt) = track.pt else {
            self.metrics.count_drop(DropReason::CodecMismatch);
            return Some(DropReason::CodecMismatch);
        };
        let translated = match track.forwarder.translate(source, pkt, now) {
            Ok(t) => t,
            Err(reason) => {
                self.metrics.count_drop(reason);
                return Some(reason);
            }
        };
        if translated.switched && is_video {
            if let Some(decided) = state.switch_decided.take() {
                self.metrics
                    .layer_switch
                    .record(now.saturating_duration_since(decided));
            }
        }
        let mid = track.mid;
        let configured = &mut track.stream_configured;
        let mut io = Io {
            socket: &self.socket,
            metrics: &self.metrics,
            queue: &mut self.send_queue,
        };
        let events = &mut self.events;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut api = session.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(mid, None) else {
                return Ok(None);
            };
            // Once the stream exists: a viewer whose stream is not there yet
            // still gets it set up on a later packet.
            if is_video && !*configured {
                configure_video_stream(stream);
                *configured = true;
            }
            let mut write = RtpWrite::new(
                pt,
                translated.seq.into(),
                translated.ts,
                pkt.arrival,
                pkt.payload.clone(),
            )
            .marker(pkt.marker)
            .ext_vals(pkt.ext.clone())
            .nackable(is_video);
            if let Some(patch) = translated.vp8_patch {
                write = write.vp8_patch(patch);
            }
            stream.write_rtp(write);
            drain(&mut session.rtc, &mut io, events).map(Some)
        }));
        match result {
            Ok(Ok(Some(timeout))) => {
                self.metrics.packets_forwarded.fetch_add(1, Relaxed);
                self.schedule(viewer, timeout, now);
                if !self.events.is_empty() {
                    self.handle_events(viewer, now);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(_)) | Err(_) => self.fail_session(viewer, now),
        }
        None
    }

    /// Recomputes every viewer's targets after the layers changed.
    pub(super) fn retarget_broadcast(&mut self, name: &crate::ids::BroadcastName, now: Instant) {
        let Some(broadcast) = self.broadcasts.get(name) else {
            return;
        };
        let viewers = broadcast.viewers.clone();
        for viewer in viewers {
            self.retarget_viewer(viewer, now);
        }
    }

    /// Points a connected viewer's DownTracks at the sources its choice
    /// selects; a viewer that gains a video target is served from the
    /// target layer's GopCache at once, else a keyframe is requested.
    pub(super) fn retarget_viewer(&mut self, viewer: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&viewer) else {
            return;
        };
        let Role::Viewer(state) = &mut session.role else {
            return;
        };
        if !state.connected {
            return;
        }
        let Some(broadcast) = self.broadcasts.get(&session.broadcast) else {
            return;
        };
        let epoch = broadcast.epoch;
        for (track, spec) in [
            (state.audio.as_mut(), broadcast.audio_codec),
            (state.video.as_mut(), broadcast.video_codec.map(|(_, s)| s)),
        ] {
            let Some(track) = track else { continue };
            if let Some(spec) = spec {
                if track.pt_epoch != Some(epoch) {
                    track.pt = viewer_pt(&session.rtc, track.mid, &spec);
                    track.pt_epoch = Some(epoch);
                    if track.pt.is_none() {
                        tracing::info!(session = %viewer, codec = ?spec.codec, "viewer did not negotiate the publisher's codec");
                    }
                }
            }
        }
        if let Some(audio) = state.audio.as_mut() {
            audio.forwarder.set_target(broadcast.audio_target());
        }
        if state.video.is_none() {
            return;
        }
        let target = super::adaptive::video_target(state, broadcast, self.bounds, now);
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
        let layer = &broadcast.layers[usize::from(target.layer)];
        // A paused or stopped layer's cache is stale: wait for it to resume.
        let fresh = layer
            .meter
            .active(now, super::broadcast::LAYER_STOPPED_AFTER);
        if serve_cached && fresh && !layer.gop.is_empty() {
            let cached: Vec<SourcePacket> = layer.gop.packets().to_vec();
            self.metrics
                .gop_cache_packets
                .fetch_add(cached.len() as u64, Relaxed);
            let replay = Replay::new(viewer, target, cached, layer.meter.bps(), now);
            self.replays.retain(|r| r.viewer != viewer);
            self.set_replaying(viewer, true);
            self.replays.push(replay);
            self.advance_replays(now);
        } else {
            let publisher = broadcast.publisher;
            if let Some(publisher) = publisher {
                self.request_keyframe(publisher, target.layer, now);
            }
        }
    }

    /// Sends what each paced GOP replay may send now; drops finished ones
    /// and those whose viewer left or moved to another source.
    pub(super) fn advance_replays(&mut self, now: Instant) {
        let mut replays = std::mem::take(&mut self.replays);
        replays.retain_mut(|replay| {
            let wanted = self
                .sessions
                .get(&replay.viewer)
                .is_some_and(|s| match &s.role {
                    Role::Viewer(v) => v
                        .video
                        .as_ref()
                        .is_some_and(|t| t.forwarder.wants(replay.source)),
                    Role::Publisher(_) => false,
                });
            let (viewer, source) = (replay.viewer, replay.source);
            if wanted {
                for pkt in replay.due(now) {
                    self.forward_to(viewer, true, source, pkt, now, true);
                }
            }
            let keep = wanted && !replay.done();
            if !keep {
                self.set_replaying(viewer, false);
            }
            keep
        });
        // Replays started while these were advanced are kept too.
        replays.append(&mut self.replays);
        self.replays = replays;
    }

    /// Marks a viewer's GOP replay as running or over.
    fn set_replaying(&mut self, viewer: SessionId, replaying: bool) {
        if let Some(Role::Viewer(v)) = self.sessions.get_mut(&viewer).map(|s| &mut s.role) {
            v.replaying = replaying;
        }
    }

    /// A viewer asked for a keyframe (PLI/FIR): ask the publisher for the
    /// layer that viewer receives, within the throttle.
    pub(super) fn on_viewer_keyframe_request(&mut self, viewer: SessionId, mid: Mid, now: Instant) {
        let Some(session) = self.sessions.get(&viewer) else {
            return;
        };
        let Role::Viewer(state) = &session.role else {
            return;
        };
        let Some(video) = state.video.as_ref().filter(|v| v.mid == mid) else {
            return;
        };
        let Some(source) = video.forwarder.current().or(video.forwarder.target()) else {
            return;
        };
        let Some(publisher) = self
            .broadcasts
            .get(&session.broadcast)
            .and_then(|b| b.publisher)
        else {
            return;
        };
        self.request_keyframe(publisher, source.layer, now);
    }

    pub(super) fn request_keyframe(&mut self, publisher: SessionId, layer: u8, now: Instant) {
        let Some(session) = self.sessions.get_mut(&publisher) else {
            return;
        };
        let Some(broadcast) = self.broadcasts.get_mut(&session.broadcast) else {
            return;
        };
        let Some(l) = broadcast.layers.get_mut(usize::from(layer)) else {
            return;
        };
        if !l.throttle.allow(now) {
            return;
        }
        let ssrc = l.ssrc;
        if let Some(stream) = session.rtc.direct_api().stream_rx(&ssrc) {
            stream.request_keyframe(KeyframeRequestKind::Pli);
            self.metrics.keyframe_requests.fetch_add(1, Relaxed);
        }
        self.input_drain(publisher, now);
    }

    /// Drains a session after a write that was not an input.
    pub(super) fn input_drain(&mut self, id: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut io = Io {
            socket: &self.socket,
            metrics: &self.metrics,
            queue: &mut self.send_queue,
        };
        let events = &mut self.events;
        match catch_unwind(AssertUnwindSafe(|| {
            drain(&mut session.rtc, &mut io, events)
        })) {
            Ok(Ok(timeout)) => self.schedule(id, timeout, now),
            _ => self.fail_session(id, now),
        }
        if !self.events.is_empty() {
            self.handle_events(id, now);
        }
    }
}
