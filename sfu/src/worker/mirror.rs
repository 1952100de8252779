//! [`Mirror`]: one worker's copy of a broadcast for its own viewers: per
//! layer a GopCache (instant start), a packet store (NACKs of every viewer
//! of the layer answered from one buffer), a bitrate meter and the measured
//! frame size; the epoch it follows; and the list of its local viewers.
//! It is fed only by [`super::bus::Downstream`] messages, so it works the
//! same whether its Source is on this worker, another worker or (later)
//! another node.
//!
//! Invariants: the layers hold packets of the current epoch only (a new
//! epoch clears them, a publisher that left clears the GOPs); `viewers`
//! lists exactly the viewer sessions of this broadcast on this worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bus::{EpochInfo, TrackRef};
use super::session::SessionKey;
use super::source::MAX_LAYERS;
use crate::core::bitrate::BitrateMeter;
use crate::core::gop_cache::GopCache;
use crate::core::layers::LayerMeasure;
use crate::core::{PacketStore, SourceKey, SourcePacket};

/// A layer counts as active while it sent within this long.
pub const LAYER_ACTIVE_WITHIN: Duration = Duration::from_secs(1);
/// …and as stopped sooner, once silent this long while a sibling layer
/// sent within [`LAYER_SIBLING_RECENT`].
pub const LAYER_STOPPED_AFTER: Duration = Duration::from_millis(400);
pub const LAYER_SIBLING_RECENT: Duration = Duration::from_millis(150);
/// How long after an epoch's first video packet viewers may wait for every
/// announced layer to show its frame size before one is chosen.
pub const LAYER_SETTLE: Duration = Duration::from_millis(1200);

#[derive(Debug, Default)]
pub struct MirrorLayer {
    pub gop: GopCache,
    pub store: PacketStore,
    pub meter: BitrateMeter,
    pub dimensions: Option<(u16, u16)>,
}

#[derive(Debug)]
pub struct Mirror {
    pub info: Option<Arc<EpochInfo>>,
    pub layers: Vec<MirrorLayer>,
    pub viewers: Vec<SessionKey>,
    /// The worker whose Source feeds this Mirror (where upstream messages
    /// go), once it has heard from it.
    pub source_worker: Option<usize>,
    /// When this epoch's first video packet arrived here.
    first_video: Option<Instant>,
}

impl Mirror {
    pub fn new() -> Self {
        Mirror {
            info: None,
            layers: Vec::new(),
            viewers: Vec::new(),
            source_worker: None,
            first_video: None,
        }
    }

    pub fn epoch(&self) -> Option<u32> {
        self.info.as_ref().map(|i| i.epoch)
    }

    /// The publisher left: nothing of its epoch may be served any more.
    pub fn on_ended(&mut self) {
        for l in &mut self.layers {
            l.gop.clear();
            l.store.clear();
        }
        if let Some(info) = &mut self.info {
            Arc::make_mut(info).live = false;
        }
    }

    /// Adopts the Source's epoch info; returns whether viewers must be
    /// retargeted (a new epoch, codecs or layers known, pauses changed).
    pub fn on_epoch(&mut self, info: Arc<EpochInfo>) -> bool {
        let new_epoch = self.epoch() != Some(info.epoch);
        if new_epoch {
            self.layers.clear();
            self.first_video = None;
        } else if !info.live {
            for l in &mut self.layers {
                l.gop.clear();
                l.store.clear();
            }
        }
        self.info = Some(info);
        true
    }

    /// Records one packet of the current epoch; returns whether the layers
    /// changed (a new layer, a frame size, a layer back from silence), so
    /// viewers are retargeted before it is forwarded (it may be the very
    /// keyframe a retargeted viewer starts on).
    pub fn on_packet(&mut self, track: TrackRef, pkt: &Arc<SourcePacket>, now: Instant) -> bool {
        let TrackRef::Video { layer } = track else {
            return false;
        };
        let index = usize::from(layer);
        if index >= MAX_LAYERS {
            return false;
        }
        let mut changed = false;
        if self.first_video.is_none() {
            self.first_video = Some(now);
        }
        while self.layers.len() <= index {
            self.layers.push(MirrorLayer::default());
            changed = true;
        }
        let l = &mut self.layers[index];
        if let Some(dims) = pkt.dimensions {
            if l.dimensions != Some(dims) {
                l.dimensions = Some(dims);
                changed = true;
            }
        }
        changed |= !l.meter.active(now, LAYER_ACTIVE_WITHIN);
        l.meter.record(now, pkt.payload.len());
        l.gop.push(pkt);
        l.store.push(pkt);
        changed
    }

    fn paused(&self, layer: usize) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.controllable && i.paused & (1 << layer) != 0)
    }

    /// Every layer's measure. A layer that went silent while a sibling
    /// still sends has stopped (an encoder dropping it under load, a
    /// browser disabling it): its viewers should move within a second. All
    /// layers silent together is a static screen or a stall. A paused layer
    /// of an obedient publisher stays selectable: selecting it resumes it.
    pub fn measures(&self, now: Instant) -> Vec<LayerMeasure> {
        let sibling_sending = |i: usize| {
            self.layers
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.meter.active(now, LAYER_SIBLING_RECENT))
        };
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerMeasure {
                index: i as u8,
                dimensions: l.dimensions,
                bps: l.meter.bps(),
                active: (l.meter.active(now, LAYER_ACTIVE_WITHIN)
                    && (l.meter.active(now, LAYER_STOPPED_AFTER) || !sibling_sending(i)))
                    || self.paused(i),
            })
            .collect()
    }

    /// Whether layers can be ranked: every announced layer has shown its
    /// frame size, or long enough has passed for bitrates to tell.
    pub fn layers_settled(&self, now: Instant) -> bool {
        let expected = self.info.as_ref().map_or(1, |i| i.expected_layers);
        let all_sized =
            self.layers.len() >= expected && self.layers.iter().all(|l| l.dimensions.is_some());
        all_sized
            || self
                .first_video
                .is_some_and(|t| now.saturating_duration_since(t) >= LAYER_SETTLE)
    }

    /// The audio source of the current epoch, while a publisher is live.
    pub fn audio_target(&self) -> Option<SourceKey> {
        let info = self.info.as_ref().filter(|i| i.live)?;
        Some(SourceKey {
            epoch: info.epoch,
            layer: 0,
        })
    }

    pub fn remove_viewer(&mut self, key: SessionKey) {
        self.viewers.retain(|v| *v != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keyframe::VideoCodec;

    fn info(epoch: u32, live: bool, expected_layers: usize) -> Arc<EpochInfo> {
        Arc::new(EpochInfo {
            epoch,
            live,
            expected_layers,
            video: Some((VideoCodec::Vp8, vp8_spec())),
            audio: None,
            controllable: false,
            paused: 0,
        })
    }

    fn vp8_spec() -> str0m::format::CodecSpec {
        str0m::format::CodecSpec {
            codec: str0m::format::Codec::Vp8,
            clock_rate: str0m::media::Frequency::NINETY_KHZ,
            channels: None,
            format: Default::default(),
        }
    }

    fn packet(seq: u64, keyframe: bool, dims: Option<(u16, u16)>, t: Instant) -> Arc<SourcePacket> {
        Arc::new(SourcePacket {
            seq,
            ts: seq as u32 * 3000,
            marker: true,
            ext: Default::default(),
            payload: Arc::from(vec![0u8; 1000]),
            arrival: t,
            keyframe_start: keyframe,
            vp8: None,
            dimensions: dims,
        })
    }

    const LAYER0: TrackRef = TrackRef::Video { layer: 0 };
    const LAYER1: TrackRef = TrackRef::Video { layer: 1 };

    #[test]
    fn packets_fill_the_layers_gop_and_store_without_copying() {
        let t = Instant::now();
        let mut m = Mirror::new();
        m.on_epoch(info(1, true, 2));
        let key = packet(10, true, Some((1280, 720)), t);
        assert!(m.on_packet(LAYER0, &key, t), "a new layer is a change");
        assert!(!m.on_packet(LAYER0, &packet(11, false, None, t), t));
        assert_eq!(m.layers[0].dimensions, Some((1280, 720)));
        assert_eq!(m.layers[0].gop.packets().len(), 2);
        assert!(
            Arc::ptr_eq(m.layers[0].store.get(10).expect("stored"), &key),
            "the store holds the Source's Arc, not a copy"
        );
        assert!(!m.layers_settled(t), "layer 1 has not shown its size");
        assert!(m.on_packet(LAYER1, &packet(500, true, Some((640, 360)), t), t));
        assert!(m.layers_settled(t));
        assert_eq!(m.audio_target(), Some(SourceKey { epoch: 1, layer: 0 }));
    }

    #[test]
    fn a_new_epoch_clears_the_layers_and_an_ended_one_serves_nothing() {
        let t = Instant::now();
        let mut m = Mirror::new();
        m.on_epoch(info(1, true, 1));
        m.on_packet(LAYER0, &packet(1, true, Some((320, 180)), t), t);
        m.on_ended();
        assert!(
            m.layers[0].gop.packets().is_empty(),
            "no stale GOP after the publisher left"
        );
        assert!(
            m.layers[0].store.get(1).is_none(),
            "no resend of the old epoch"
        );
        assert_eq!(
            m.audio_target(),
            None,
            "nothing to follow while nobody publishes"
        );
        assert_eq!(m.epoch(), Some(1));

        m.on_epoch(info(2, true, 1));
        assert!(m.layers.is_empty(), "a new epoch starts with no layers");
        assert_eq!(m.epoch(), Some(2));
        // The same epoch announced again (e.g. a pause change) keeps them.
        m.on_packet(LAYER0, &packet(1, true, Some((320, 180)), t), t);
        m.on_epoch(info(2, true, 1));
        assert_eq!(m.layers.len(), 1);
    }

    #[test]
    fn a_silent_layer_stops_while_its_sibling_sends() {
        let t = Instant::now();
        let mut m = Mirror::new();
        m.on_epoch(info(1, true, 2));
        m.on_packet(LAYER0, &packet(1, true, Some((1280, 720)), t), t);
        m.on_packet(LAYER1, &packet(1, true, Some((640, 360)), t), t);
        let later = t + LAYER_STOPPED_AFTER + Duration::from_millis(10);
        m.on_packet(LAYER1, &packet(2, false, None, later), later);
        let active: Vec<bool> = m.measures(later).iter().map(|l| l.active).collect();
        assert_eq!(
            active,
            [false, true],
            "layer 0 went silent while layer 1 sends"
        );
        // All silent together is a static screen: both stay.
        let still = t + Duration::from_millis(300);
        let active: Vec<bool> = m.measures(still).iter().map(|l| l.active).collect();
        assert_eq!(active, [true, true]);
    }

    #[test]
    fn viewers_leave_exactly_once() {
        let mut m = Mirror::new();
        let (a, b) = (SessionKey(1), SessionKey(2));
        m.viewers = vec![a, b];
        m.remove_viewer(a);
        m.remove_viewer(a);
        assert_eq!(m.viewers, [b]);
    }
}
