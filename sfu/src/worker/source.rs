//! [`Source`]: the publisher side of one broadcast, on the worker that owns
//! the publisher's `Rtc`. It classifies each incoming packet (track and
//! layer), parses it once into an `Arc<SourcePacket>` (keyframe start,
//! frame size, VP8 fields), keeps the latest GOP of every layer for Mirrors
//! that link later, throttles keyframe requests (at most one PLI per layer
//! per 500 ms, whatever the number of viewers) and pauses layers no Mirror
//! wants at a publisher that obeys. It knows nothing of viewers: it talks
//! to Mirrors only through [`super::bus`] messages.
//!
//! Invariants: a new publisher session starts a new epoch (unique on the
//! node) with no layers; packets of a session that is not the current
//! publisher are ignored; every Mirror sees an [`EpochInfo`] before the
//! first packet of its epoch.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use str0m::format::{Codec, CodecSpec};
use str0m::media::{MediaKind, Rid};
use str0m::rtp::{RtpPacket, Ssrc};

use super::bus::{EpochInfo, TrackRef};
use super::session::PublisherState;
use crate::core::bitrate::BitrateMeter;
use crate::core::gop_cache::GopCache;
use crate::core::keyframe::{self, VideoCodec};
use crate::core::packet::{forwardable_ext, Vp8Fields};
use crate::core::throttle::KeyframeThrottle;
use crate::core::SourcePacket;
use crate::ids::{BroadcastName, SessionId};

/// Simulcast allows at most four layers per track here.
pub const MAX_LAYERS: usize = 4;
/// A layer no Mirror received or targeted for this long is paused at a
/// publisher that obeys pause requests.
pub const LAYER_UNUSED_PAUSE: Duration = Duration::from_secs(10);
/// A layer with a packet this recent is still arriving.
const LAYER_ARRIVING: Duration = Duration::from_secs(2);
/// A publisher that sent media within this long is live: a second publish
/// is refused (409) rather than treated as a reconnect.
pub const HEALTHY_WITHIN: Duration = Duration::from_millis(1500);

/// One incoming video layer of the current epoch.
#[derive(Debug)]
pub struct SourceLayer {
    /// The SSRC it arrives on, for keyframe requests.
    pub ssrc: Ssrc,
    pub rid: Option<Rid>,
    pub throttle: KeyframeThrottle,
    /// RTP timestamp of the previous packet: a new value starts a frame.
    last_ts: Option<u32>,
    pub gop: GopCache,
    pub meter: BitrateMeter,
    pub dimensions: Option<(u16, u16)>,
    /// When some Mirror last received or targeted this layer.
    pub last_wanted: Instant,
    /// When its last packet, and its last keyframe, arrived.
    last_packet: Option<Instant>,
    last_keyframe: Option<Instant>,
}

#[derive(Debug)]
pub struct Source {
    pub name: BroadcastName,
    pub publisher: Option<SessionId>,
    pub epoch: u32,
    pub expected_layers: usize,
    pub controllable: bool,
    pub video_codec: Option<(VideoCodec, CodecSpec)>,
    pub audio_codec: Option<CodecSpec>,
    pub layers: Vec<SourceLayer>,
    pub live_since: Option<SystemTime>,
    pub last_media: Option<Instant>,
    pub first_video: Option<Instant>,
    /// Other workers with a Mirror of this broadcast (fed over the bus).
    pub links: Vec<usize>,
    /// Paused layers as last announced.
    paused: u8,
    /// What Mirrors last heard; re-sent whenever it changes.
    info_dirty: bool,
}

/// What ingesting one packet produced.
pub struct Ingested {
    pub track: TrackRef,
    pub packet: Arc<SourcePacket>,
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

impl Source {
    /// Whether its video codec is one the recorder records.
    pub fn records(&self) -> bool {
        self.video_codec
            .is_some_and(|(c, _)| crate::recorder::records(c))
    }

    pub fn new(name: BroadcastName) -> Self {
        Source {
            name,
            publisher: None,
            epoch: 0,
            expected_layers: 1,
            controllable: false,
            video_codec: None,
            audio_codec: None,
            layers: Vec::new(),
            live_since: None,
            last_media: None,
            first_video: None,
            links: Vec::new(),
            paused: 0,
            info_dirty: true,
        }
    }

    /// Whether the current publisher sent media recently enough that a
    /// second publish must be refused rather than treated as a reconnect.
    pub fn publisher_is_healthy(&self, now: Instant) -> bool {
        self.publisher.is_some()
            && self
                .last_media
                .is_some_and(|t| now.saturating_duration_since(t) < HEALTHY_WITHIN)
    }

    /// A new publisher session: a new epoch with no layers yet.
    pub fn start_epoch(&mut self, publisher: SessionId, epoch: u32, expected_layers: usize) {
        self.publisher = Some(publisher);
        self.epoch = epoch;
        self.expected_layers = expected_layers.clamp(1, MAX_LAYERS);
        self.controllable = false;
        self.video_codec = None;
        self.audio_codec = None;
        self.layers.clear();
        self.live_since = None;
        self.last_media = None;
        self.first_video = None;
        self.paused = 0;
        self.info_dirty = true;
    }

    /// The publisher left: viewers stay (they resume on the next epoch) but
    /// are never served a stale GOP.
    pub fn end_publisher(&mut self) {
        self.publisher = None;
        self.live_since = None;
        for layer in &mut self.layers {
            layer.gop.clear();
        }
        self.info_dirty = true;
    }

    pub fn set_controllable(&mut self) {
        self.controllable = true;
        self.info_dirty = true;
    }

    /// What Mirrors must know of this epoch.
    pub fn info(&self) -> Arc<EpochInfo> {
        Arc::new(EpochInfo {
            epoch: self.epoch,
            live: self.publisher.is_some(),
            expected_layers: self.expected_layers,
            video: self.video_codec,
            audio: self.audio_codec,
            controllable: self.controllable,
            paused: self.paused,
        })
    }

    /// The info, if it changed since it was last taken.
    pub fn take_info_change(&mut self) -> Option<Arc<EpochInfo>> {
        std::mem::take(&mut self.info_dirty).then(|| self.info())
    }

    /// Parses one packet of the current publisher into a shared
    /// [`SourcePacket`]; `None` for padding or what cannot be forwarded.
    pub fn ingest(
        &mut self,
        track: TrackRef,
        layer_rid: Option<Rid>,
        spec: CodecSpec,
        pkt: &RtpPacket,
        now: Instant,
    ) -> Result<Option<Ingested>, crate::metrics::DropReason> {
        if pkt.payload.is_empty() {
            // Padding used for bandwidth probing carries nothing to forward.
            return Ok(None);
        }
        self.last_media = Some(now);
        if self.live_since.is_none() {
            self.live_since = Some(SystemTime::now());
            self.info_dirty = true;
            tracing::info!(broadcast = %self.name, "broadcast is live");
        }
        let mut packet = SourcePacket {
            seq: *pkt.seq_no,
            ts: pkt.header.timestamp,
            marker: pkt.header.marker,
            ext: forwardable_ext(&pkt.header.ext_vals),
            payload: pkt.payload.clone(),
            // When the datagram was read: a wait inside str0m counts as delay.
            arrival: pkt.timestamp,
            keyframe_start: false,
            vp8: None,
            dimensions: None,
        };
        match track {
            TrackRef::Audio => {
                if self.audio_codec != Some(spec) {
                    self.audio_codec = Some(spec);
                    self.info_dirty = true;
                }
                Ok(Some(Ingested {
                    track,
                    packet: Arc::new(packet),
                }))
            }
            TrackRef::Video { layer } => {
                let codec =
                    video_codec(spec.codec).ok_or(crate::metrics::DropReason::UnknownTrack)?;
                if self.video_codec != Some((codec, spec)) {
                    self.video_codec = Some((codec, spec));
                    self.info_dirty = true;
                }
                if self.first_video.is_none() {
                    self.first_video = Some(now);
                    self.info_dirty = true;
                }
                while self.layers.len() <= usize::from(layer) {
                    self.layers.push(SourceLayer {
                        ssrc: pkt.header.ssrc,
                        rid: layer_rid,
                        throttle: KeyframeThrottle::default(),
                        last_ts: None,
                        gop: GopCache::default(),
                        meter: BitrateMeter::default(),
                        dimensions: None,
                        last_wanted: now,
                        last_packet: None,
                        last_keyframe: None,
                    });
                    self.info_dirty = true;
                }
                let l = &mut self.layers[usize::from(layer)];
                l.ssrc = pkt.header.ssrc;
                let info = keyframe::inspect(codec, &pkt.payload);
                let frame_start = l.last_ts != Some(packet.ts);
                packet.keyframe_start =
                    info.starts_keyframe && (!info.needs_frame_start || frame_start);
                if codec == VideoCodec::Vp8 {
                    packet.vp8 = Vp8Fields::parse(&pkt.payload);
                }
                packet.dimensions = info.dimensions;
                if info.dimensions.is_some() && l.dimensions != info.dimensions {
                    l.dimensions = info.dimensions;
                }
                l.meter.record(now, pkt.payload.len());
                l.last_ts = Some(packet.ts);
                l.last_packet = Some(now);
                if packet.keyframe_start {
                    l.last_keyframe = Some(now);
                }
                let packet = Arc::new(packet);
                l.gop.push(&packet);
                Ok(Some(Ingested { track, packet }))
            }
        }
    }

    /// A Mirror's report of the layers its viewers receive or target.
    pub fn on_wanted(&mut self, layers: u8, now: Instant) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            if layers & (1 << i) != 0 {
                l.last_wanted = now;
            }
        }
    }

    /// Recomputes which layers an obedient publisher should pause; marks
    /// the info changed when that changed.
    pub fn update_paused(&mut self, now: Instant) {
        let paused = self
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| now.saturating_duration_since(l.last_wanted) >= LAYER_UNUSED_PAUSE)
            .fold(0u8, |m, (i, _)| m | (1 << i));
        let paused = if self.controllable { paused } else { 0 };
        if paused != self.paused {
            self.paused = paused;
            self.info_dirty = true;
        }
    }

    pub fn layer_paused(&self, layer: usize) -> bool {
        self.paused & (1 << layer) != 0
    }

    /// The SSRC to send a keyframe request for `layer` to, if the throttle
    /// allows one now.
    pub fn keyframe_request(&mut self, layer: u8, now: Instant) -> Option<Ssrc> {
        let l = self.layers.get_mut(usize::from(layer))?;
        l.throttle.allow(now).then_some(l.ssrc)
    }

    /// The SSRCs of the layers still arriving whose last keyframe is at
    /// least `interval` old, each through its keyframe throttle: a recorded
    /// broadcast is cut into segments at keyframes, and a browser sends
    /// one only when asked (OBS ignores the request and keeps its GOP).
    pub fn keyframes_due(&mut self, now: Instant, interval: Duration) -> Vec<Ssrc> {
        self.layers
            .iter_mut()
            .filter(|l| {
                let arriving = l
                    .last_packet
                    .is_some_and(|t| now.saturating_duration_since(t) < LAYER_ARRIVING);
                let due = l
                    .last_keyframe
                    .is_none_or(|t| now.saturating_duration_since(t) >= interval);
                arriving && due
            })
            .filter_map(|l| l.throttle.allow(now).then_some(l.ssrc))
            .collect()
    }

    /// The cached GOP of every layer, for a Mirror that just linked (its
    /// first viewers start at once, as on the Source's own worker).
    pub fn cached(&self) -> Vec<(TrackRef, Arc<SourcePacket>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.gop
                    .packets()
                    .iter()
                    .map(move |p| (TrackRef::Video { layer: i as u8 }, p.clone()))
            })
            .collect()
    }
}

/// Which track (and layer) a publisher's packet belongs to; learned on the
/// SSRC's first packet from str0m's stream table.
pub fn classify(
    state: &mut PublisherState,
    stream: Option<(str0m::media::Mid, Option<Rid>)>,
    pkt: &RtpPacket,
) -> Option<TrackRef> {
    let ssrc = pkt.header.ssrc;
    if let Some(track) = state.tracks.get(&ssrc) {
        return Some(*track);
    }
    let (mid, rid) = stream.or_else(|| {
        pkt.header
            .ext_vals
            .mid
            .map(|m| (m, pkt.header.ext_vals.rid))
    })?;
    let kind = state.media.iter().find(|m| m.mid == mid)?.kind;
    let track = match kind {
        MediaKind::Audio => TrackRef::Audio,
        MediaKind::Video => {
            let index =
                match state.layer_keys.iter().position(|(r, s)| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(ssrc: u32, now: Instant) -> SourceLayer {
        SourceLayer {
            ssrc: ssrc.into(),
            rid: None,
            throttle: KeyframeThrottle::default(),
            last_ts: None,
            gop: GopCache::default(),
            meter: BitrateMeter::default(),
            dimensions: None,
            last_wanted: now,
            last_packet: None,
            last_keyframe: None,
        }
    }

    fn source_with_layers(n: u32, now: Instant) -> Source {
        let mut s = Source::new(BroadcastName::new("live"));
        s.start_epoch(SessionId::random(), 7, n as usize);
        for i in 0..n {
            s.layers.push(layer(100 + i, now));
        }
        s
    }

    #[test]
    fn every_change_mirrors_must_know_is_announced_once() {
        let now = Instant::now();
        let mut s = source_with_layers(1, now);
        let first = s.take_info_change().expect("a new epoch is announced");
        assert_eq!(
            (first.epoch, first.live, first.expected_layers),
            (7, true, 1)
        );
        assert!(s.take_info_change().is_none(), "nothing changed since");
        s.set_controllable();
        assert!(s.take_info_change().expect("controllable").controllable);
        s.end_publisher();
        let ended = s.take_info_change().expect("the publisher left");
        assert!(!ended.live);
        assert!(
            s.cached().is_empty(),
            "no stale GOP for a Mirror linking now"
        );
    }

    #[test]
    fn keyframes_are_asked_of_arriving_layers_whose_last_one_is_old() {
        let t0 = Instant::now();
        let mut s = source_with_layers(3, t0);
        let every = Duration::from_secs(4);
        s.layers[0].last_packet = Some(t0);
        s.layers[0].last_keyframe = Some(t0);
        s.layers[1].last_packet = Some(t0);
        // Layer 2 never arrived: nothing to ask.
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(
            s.keyframes_due(t0, every),
            vec![Ssrc::from(101)],
            "no keyframe yet"
        );
        s.layers[1].last_keyframe = Some(t0);
        s.layers[0].last_packet = Some(at(4));
        s.layers[1].last_packet = Some(at(4));
        assert_eq!(s.keyframes_due(at(3), every), vec![]);
        assert_eq!(
            s.keyframes_due(at(4), every),
            vec![Ssrc::from(100), Ssrc::from(101)]
        );
        // A layer that stopped arriving (the publisher dropped it) is left.
        assert_eq!(s.keyframes_due(at(9), every), vec![]);
    }

    #[test]
    fn keyframe_requests_are_throttled_per_layer_whatever_the_viewers() {
        let now = Instant::now();
        let mut s = source_with_layers(2, now);
        assert_eq!(s.keyframe_request(0, now), Some(100.into()));
        // A hundred viewers' requests within the throttle window: none.
        for i in 0..100 {
            assert_eq!(s.keyframe_request(0, now + Duration::from_millis(i)), None);
        }
        assert_eq!(
            s.keyframe_request(1, now),
            Some(101.into()),
            "layers are independent"
        );
        assert_eq!(
            s.keyframe_request(0, now + Duration::from_secs(1)),
            Some(100.into())
        );
        assert_eq!(s.keyframe_request(5, now), None, "no such layer");
    }

    #[test]
    fn unwanted_layers_pause_only_at_an_obedient_publisher() {
        let now = Instant::now();
        let mut s = source_with_layers(3, now);
        s.take_info_change();
        let later = now + LAYER_UNUSED_PAUSE;
        s.on_wanted(0b010, later);
        s.update_paused(later);
        assert!(
            s.take_info_change().is_none(),
            "a publisher that ignores pauses is never paused"
        );
        s.set_controllable();
        s.take_info_change();
        s.update_paused(later);
        let info = s.take_info_change().expect("pauses changed");
        assert_eq!(info.paused, 0b101, "only the wanted layer keeps sending");
        assert!(s.layer_paused(0) && !s.layer_paused(1));
        // A Mirror wants layer 0 again: it resumes.
        s.on_wanted(0b001, later);
        s.update_paused(later);
        assert_eq!(s.take_info_change().expect("resumed").paused, 0b100);
    }

    #[test]
    fn a_new_epoch_forgets_the_old_layers() {
        let now = Instant::now();
        let mut s = source_with_layers(3, now);
        s.start_epoch(SessionId::random(), 8, 9);
        assert!(s.layers.is_empty());
        assert_eq!(s.expected_layers, MAX_LAYERS, "clamped");
        assert_eq!(s.take_info_change().expect("announced").epoch, 8);
        assert!(!s.publisher_is_healthy(now), "no media yet");
    }
}
