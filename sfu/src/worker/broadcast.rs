//! [`Broadcast`]: what the worker knows of one live stream — its publisher
//! session, the epoch (bumped on every publisher reconnect), the incoming
//! video layers with their GopCaches and measurements, and the viewers.

use std::time::{Duration, Instant, SystemTime};

use str0m::format::CodecSpec;
use str0m::rtp::Ssrc;

use crate::core::bitrate::BitrateMeter;
use crate::core::gop_cache::GopCache;
use crate::core::keyframe::VideoCodec;
use crate::core::layers::LayerMeasure;
use crate::core::throttle::KeyframeThrottle;
use crate::core::SourceKey;
use crate::ids::{BroadcastName, SessionId};

/// A layer counts as active while it sent within this long.
pub const LAYER_ACTIVE_WITHIN: Duration = Duration::from_secs(1);
/// …and as stopped sooner, once silent this long while a sibling layer
/// sent within [`LAYER_SIBLING_RECENT`].
pub const LAYER_STOPPED_AFTER: Duration = Duration::from_millis(400);
pub const LAYER_SIBLING_RECENT: Duration = Duration::from_millis(150);

/// How long after a publisher's first video packet viewers may wait for
/// every announced layer to show its frame size before one is chosen.
pub const LAYER_SETTLE: Duration = Duration::from_millis(1200);

/// Simulcast allows at most four layers per track here.
pub const MAX_LAYERS: usize = 4;

/// One incoming video layer (one RID or SSRC) of the current epoch.
#[derive(Debug)]
pub struct LayerIn {
    /// The SSRC it arrives on, for keyframe requests.
    pub ssrc: Ssrc,
    pub gop: GopCache,
    pub meter: BitrateMeter,
    pub dimensions: Option<(u16, u16)>,
    pub throttle: KeyframeThrottle,
    /// RTP timestamp of the previous packet: a new value starts a frame.
    pub last_ts: Option<u32>,
    /// The publisher's name for the layer, when it has one.
    pub rid: Option<str0m::media::Rid>,
    /// When a viewer last received or targeted this layer.
    pub last_wanted: Instant,
}

/// A layer no viewer received or targeted for this long is paused at a
/// publisher that obeys pause requests.
pub const LAYER_UNUSED_PAUSE: Duration = Duration::from_secs(10);

impl LayerIn {
    /// Whether the publisher should stop encoding this layer now.
    pub fn paused(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_wanted) >= LAYER_UNUSED_PAUSE
    }

    pub fn new(ssrc: Ssrc, rid: Option<str0m::media::Rid>, now: Instant) -> Self {
        LayerIn {
            ssrc,
            rid,
            last_wanted: now,
            gop: GopCache::default(),
            meter: BitrateMeter::default(),
            dimensions: None,
            throttle: KeyframeThrottle::default(),
            last_ts: None,
        }
    }
}

#[derive(Debug)]
pub struct Broadcast {
    pub name: BroadcastName,
    pub publisher: Option<SessionId>,
    /// Incremented per publisher session; part of every [`SourceKey`].
    pub epoch: u32,
    pub video_codec: Option<(VideoCodec, CodecSpec)>,
    pub audio_codec: Option<CodecSpec>,
    pub audio_ssrc: Option<Ssrc>,
    pub layers: Vec<LayerIn>,
    pub viewers: Vec<SessionId>,
    /// When the current publisher's first media arrived.
    pub live_since: Option<SystemTime>,
    /// When the publisher last sent media, for the takeover rule.
    pub last_media: Option<Instant>,
    /// Layers the publisher's offer announced (1 without simulcast).
    pub expected_layers: usize,
    /// The publisher obeys layer pause requests (a browser on /ws): its
    /// paused layers stay selectable, and selecting one resumes it.
    pub controllable: bool,
    /// When this epoch's first video packet arrived.
    pub first_video: Option<Instant>,
}

impl Broadcast {
    pub fn new(name: BroadcastName) -> Self {
        Broadcast {
            name,
            publisher: None,
            epoch: 0,
            video_codec: None,
            audio_codec: None,
            audio_ssrc: None,
            layers: Vec::new(),
            viewers: Vec::new(),
            live_since: None,
            last_media: None,
            expected_layers: 1,
            controllable: false,
            first_video: None,
        }
    }

    /// A new publisher session starts a new epoch with no layers yet.
    pub fn start_epoch(&mut self, publisher: SessionId, expected_layers: usize) {
        self.publisher = Some(publisher);
        self.expected_layers = expected_layers.clamp(1, MAX_LAYERS);
        self.controllable = false;
        self.first_video = None;
        self.epoch = self.epoch.wrapping_add(1);
        self.layers.clear();
        self.video_codec = None;
        self.audio_codec = None;
        self.audio_ssrc = None;
        self.live_since = None;
        self.last_media = None;
    }

    /// The publisher left: keep viewers (they resume on the next epoch) but
    /// never serve them a stale GOP.
    pub fn end_publisher(&mut self) {
        self.publisher = None;
        self.live_since = None;
        for layer in &mut self.layers {
            layer.gop.clear();
        }
    }

    /// Whether the publisher sent media recently enough that a second
    /// publish must be refused rather than treated as a reconnect.
    pub fn publisher_is_healthy(&self, now: Instant) -> bool {
        self.publisher.is_some()
            && self
                .last_media
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_millis(1500))
    }

    pub fn measures(&self, now: Instant) -> Vec<LayerMeasure> {
        // A layer that went silent while a sibling still sends has stopped
        // (an encoder dropping it under load, a browser disabling it): its
        // viewers should move within a second. All layers silent together
        // is a static screen or a stall, not a stopped layer.
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
                    || (self.controllable && l.paused(now)),
            })
            .collect()
    }

    /// Whether layers can be ranked: every announced layer has shown its
    /// frame size, or long enough has passed for bitrates to tell. Choosing
    /// earlier would start a `low` viewer on whichever layer came first.
    pub fn layers_settled(&self, now: Instant) -> bool {
        let all_sized = self.layers.len() >= self.expected_layers
            && self.layers.iter().all(|l| l.dimensions.is_some());
        all_sized
            || self
                .first_video
                .is_some_and(|t| now.saturating_duration_since(t) >= LAYER_SETTLE)
    }

    pub fn audio_target(&self) -> Option<SourceKey> {
        self.publisher.map(|_| SourceKey {
            epoch: self.epoch,
            layer: 0,
        })
    }
}
