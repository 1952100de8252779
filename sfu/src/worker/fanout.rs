//! The hot path: a Mirror's packet to each of its viewers that wants it.
//! Per viewer: [`Forwarder::translate`] (sequence number, timestamp, VP8
//! picture id), then str0m's direct send (patch 1 in
//! `vendor/str0m/PATCHES.md`), which writes the SRTP-protected datagram
//! straight into an [`Egress`] slot; the slots leave in `sendmmsg` batches.
//! No payload copy, no allocation, no retransmission cache per viewer: the
//! layer's packet store answers NACKs ([`super::nack`]).
//!
//! Invariant: the viewer list is walked as it is; a viewer that fails
//! during the walk is queued in `failed` and ended after it (ending it
//! mid-walk would edit the list being walked).
//!
//! [`Forwarder::translate`]: crate::core::Forwarder::translate

use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use str0m::media::Mid;
use str0m::rtp::{DirectSendError, RtpWrite};

use super::bus::{TrackRef, Upstream};
use super::egress::Class;
use super::guard::Io;
use super::replay::Replay;
use super::session::{Role, Session, SessionKey};
use super::Worker;
use crate::core::{SourceKey, SourcePacket, Translated};
use crate::ids::BroadcastName;
use crate::metrics::DropReason;

/// What became of one packet for one viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    Sent,
    /// The viewer does not want this source (or is not connected yet).
    NotWanted,
    /// Queued behind the viewer's GOP replay.
    Deferred,
    Dropped(DropReason),
    /// The viewer's session panicked: end it.
    Failed,
}

/// Writes one source packet to one viewer.
pub fn forward<S: AsFd>(
    session: &mut Session,
    io: &mut Io<'_, S>,
    source: SourceKey,
    is_video: bool,
    pkt: &Arc<SourcePacket>,
    now: Instant,
    from_replay: bool,
) -> Forwarded {
    let Role::Viewer(state) = &mut session.role else {
        return Forwarded::NotWanted;
    };
    if !state.connected {
        return Forwarded::NotWanted;
    }
    let replaying = state.replaying;
    let Some(track) = state.track(is_video) else {
        return Forwarded::NotWanted;
    };
    if !track.forwarder.wants(source) {
        return Forwarded::NotWanted;
    }
    // While a GOP is replayed, live packets queue behind it: the viewer
    // then receives in sequence order and never NACKs packets that are
    // merely not yet replayed.
    if is_video && replaying && !from_replay {
        return Forwarded::Deferred;
    }
    if track.pt_epoch != Some(source.epoch) {
        return Forwarded::Dropped(DropReason::CodecMismatch);
    }
    let Some(pt) = track.pt else {
        io.metrics.count_drop(DropReason::CodecMismatch);
        return Forwarded::Dropped(DropReason::CodecMismatch);
    };
    let translated = match track.forwarder.translate(source, pkt, now) {
        Ok(t) => t,
        Err(reason) => {
            io.metrics.count_drop(reason);
            return Forwarded::Dropped(reason);
        }
    };
    let mid = track.mid;
    let configure = !track.stream_configured;
    track.stream_configured = true;
    if configure && is_video {
        // The viewer's first video packet: how long its join took.
        io.metrics
            .join_time
            .record(now.saturating_duration_since(session.created));
    }
    if translated.switched && is_video {
        if let Some(decided) = state.switch_decided.take() {
            io.metrics
                .layer_switch
                .record(now.saturating_duration_since(decided));
        }
    }
    let class = if is_video {
        Class::Bulk
    } else {
        Class::Priority
    };
    match send(
        session,
        io,
        mid,
        pt,
        &translated,
        pkt,
        now,
        configure,
        false,
        class,
    ) {
        Ok(()) => {
            io.metrics.inc(&io.metrics.packets_forwarded);
            Forwarded::Sent
        }
        Err(Some(reason)) => Forwarded::Dropped(reason),
        Err(None) => Forwarded::Failed,
    }
}

/// The direct send of one rewritten packet: `Err(None)` when str0m
/// panicked (the session must end), `Err(Some(reason))` when it sent
/// nothing.
#[allow(clippy::too_many_arguments)]
pub fn send<S: AsFd>(
    session: &mut Session,
    io: &mut Io<'_, S>,
    mid: Mid,
    pt: str0m::media::Pt,
    translated: &Translated,
    pkt: &SourcePacket,
    now: Instant,
    configure: bool,
    resend: bool,
    class: Class,
) -> Result<(), Option<DropReason>> {
    #[cfg(feature = "fault-injection")]
    let fault = session.fault;
    let rtc = &mut session.rtc;
    let egress = &mut *io.egress;
    let (socket, metrics) = (io.socket, io.metrics);
    let sent = catch_unwind(AssertUnwindSafe(|| {
        #[cfg(feature = "fault-injection")]
        if fault {
            panic!("fault injected: session panic while forwarding");
        }
        let mut api = rtc.direct_api();
        if configure {
            if let Some(stream) = api.stream_tx_by_mid(mid, None) {
                // This worker answers NACKs from the layer's packet store
                // (and caps resends with its own budget): the stream's RTX
                // cache and its byte histories would only cost memory.
                stream.set_nack_passthrough(true);
                stream.set_rtx_cache(0, std::time::Duration::ZERO, None);
            }
        }
        let mut write = RtpWrite::new(
            pt,
            translated.seq.into(),
            translated.ts,
            pkt.arrival,
            pkt.payload.clone(),
        )
        .marker(pkt.marker)
        .ext_vals(pkt.ext.clone());
        if let Some(patch) = translated.vp8_patch {
            write = write.vp8_patch(patch);
        }
        let slot = egress.slot(socket, metrics);
        api.send_rtp_now(mid, None, write, resend, now, slot)
    }));
    match sent {
        Ok(Ok(destination)) => {
            egress.commit(destination, class);
            Ok(())
        }
        // Not connected yet or no stream: nothing is lost that the viewer
        // had, its first keyframe comes from the GopCache or the next one.
        Ok(Err(DirectSendError::NotConnected | DirectSendError::NoSuchStream)) => {
            Err(Some(DropReason::WaitingKeyframe))
        }
        Ok(Err(_)) => {
            metrics.count_drop(DropReason::CodecMismatch);
            Err(Some(DropReason::CodecMismatch))
        }
        Err(_) => Err(None),
    }
}

impl Worker {
    /// A Mirror's packet to its viewers.
    pub(super) fn fan_out(
        &mut self,
        name: &BroadcastName,
        track: TrackRef,
        pkt: &Arc<SourcePacket>,
        now: Instant,
    ) {
        let Some(mirror) = self.mirrors.get_mut(name) else {
            return;
        };
        let Some(epoch) = mirror.epoch() else {
            return;
        };
        if mirror.on_packet(track, pkt, now) {
            // Before forwarding: the packet that changed the layers may be
            // the very keyframe a retargeted viewer needs to start on.
            self.retarget_mirror(name, now);
        }
        let (is_video, layer) = match track {
            TrackRef::Audio => (false, 0),
            TrackRef::Video { layer } => (true, layer),
        };
        let source = SourceKey { epoch, layer };
        let Worker {
            mirrors,
            sessions,
            socket,
            egress,
            metrics,
            replays,
            failed,
            ..
        } = self;
        let Some(mirror) = mirrors.get(name) else {
            return;
        };
        let mut io = Io {
            socket: &*socket,
            egress,
            metrics,
        };
        let mut wants_keyframe = false;
        let mut sent = false;
        for &key in &mirror.viewers {
            let Some(session) = sessions.get_mut(key) else {
                continue;
            };
            match forward(session, &mut io, source, is_video, pkt, now, false) {
                Forwarded::Sent => sent = true,
                // Until the keyframe comes, ask again (the throttle spaces
                // requests): an encoder may ignore a request that arrives
                // right after it produced a keyframe for another layer.
                Forwarded::Dropped(DropReason::WaitingKeyframe | DropReason::SwitchPending) => {
                    wants_keyframe = true
                }
                Forwarded::Deferred => {
                    if let Some(r) = replays.iter_mut().find(|r| r.viewer == key) {
                        r.push(pkt.clone());
                    }
                }
                Forwarded::Failed => failed.push(key),
                _ => {}
            }
        }
        if sent {
            self.metrics
                .forward_delay
                .record(now.saturating_duration_since(pkt.arrival));
        }
        if is_video && wants_keyframe {
            self.upstream(name, Upstream::KeyframeRequest(layer));
        }
    }

    /// Starts a paced replay of `layer`'s cached GOP to a viewer with no
    /// picture of this source yet.
    pub(super) fn start_replay(
        &mut self,
        key: SessionKey,
        source: SourceKey,
        packets: Vec<Arc<SourcePacket>>,
        layer_bps: u64,
        now: Instant,
    ) {
        self.metrics
            .add(&self.metrics.gop_cache_packets, packets.len() as u64);
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let id = session.id;
        if let Some(v) = session.viewer_mut() {
            v.replaying = true;
        }
        self.replays.retain(|r| r.viewer != key);
        self.replays
            .push(Replay::new(key, id, source, packets, layer_bps, now));
        self.advance_replays(now);
    }

    /// Sends what each paced GOP replay may send now; drops finished ones
    /// and those whose viewer left or moved to another source.
    pub(super) fn advance_replays(&mut self, now: Instant) {
        let mut replays = std::mem::take(&mut self.replays);
        let Worker {
            sessions,
            socket,
            egress,
            metrics,
            failed,
            ..
        } = self;
        let mut io = Io {
            socket: &*socket,
            egress,
            metrics,
        };
        replays.retain_mut(|replay| {
            let Some(session) = sessions.get_checked(replay.viewer, replay.id) else {
                return false;
            };
            let wanted = session
                .viewer()
                .and_then(|v| v.video.as_ref())
                .is_some_and(|t| t.forwarder.wants(replay.source));
            if wanted {
                let (source, viewer) = (replay.source, replay.viewer);
                for pkt in replay.due(now) {
                    if forward(session, &mut io, source, true, pkt, now, true) == Forwarded::Failed
                    {
                        failed.push(viewer);
                        return false;
                    }
                }
            }
            let keep = wanted && !replay.done();
            if !keep {
                if let Some(v) = session.viewer_mut() {
                    v.replaying = false;
                }
            }
            keep
        });
        // Replays started while these were advanced are kept too.
        replays.append(&mut self.replays);
        self.replays = replays;
    }

    /// A viewer asked for a keyframe (PLI/FIR): ask the Source for the
    /// layer that viewer receives, within the throttle.
    pub(super) fn on_viewer_keyframe_request(&mut self, key: SessionKey, mid: Mid) {
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        let Some(video) = session
            .viewer()
            .and_then(|v| v.video.as_ref())
            .filter(|v| v.mid == mid)
        else {
            return;
        };
        let Some(source) = video.forwarder.current().or(video.forwarder.target()) else {
            return;
        };
        let name = session.broadcast.clone();
        self.upstream(&name, Upstream::KeyframeRequest(source.layer));
    }

    /// Tells each Source which layers this worker's viewers receive or
    /// target (and the layer below each: a viewer whose layer stops falls
    /// back at once instead of waiting for a resume).
    pub(super) fn report_wanted_layers(&mut self, now: Instant) {
        let mut reports: Vec<(BroadcastName, u8)> = Vec::new();
        for (name, mirror) in &self.mirrors {
            let Some(epoch) = mirror.epoch() else {
                continue;
            };
            let measures: Vec<_> = mirror
                .measures(now)
                .into_iter()
                .map(|m| crate::core::layers::LayerMeasure { active: true, ..m })
                .collect();
            let ranked: Vec<u8> = crate::core::layers::rank(&measures)
                .iter()
                .map(|m| m.index)
                .collect();
            let mut wanted = 0u8;
            for &key in &mirror.viewers {
                let Some(video) = self
                    .sessions
                    .get(key)
                    .and_then(|s| s.viewer())
                    .and_then(|v| v.video.as_ref())
                else {
                    continue;
                };
                for source in [video.forwarder.current(), video.forwarder.target()]
                    .into_iter()
                    .flatten()
                    .filter(|s| s.epoch == epoch)
                {
                    wanted |= 1 << source.layer;
                    let below = ranked
                        .iter()
                        .position(|l| *l == source.layer)
                        .and_then(|p| p.checked_sub(1));
                    if let Some(p) = below {
                        wanted |= 1 << ranked[p];
                    }
                }
            }
            reports.push((name.clone(), wanted));
        }
        for (name, wanted) in reports {
            if wanted != 0 {
                self.upstream(&name, Upstream::Wanted(wanted));
            }
        }
    }
}
