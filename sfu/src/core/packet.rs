//! [`SourcePacket`]: one incoming RTP packet as the fan-out sees it. Parsed
//! once on arrival by the Source and shared as an `Arc<SourcePacket>` by
//! every Mirror, GopCache, packet store and viewer: nothing is copied per
//! viewer.

use std::sync::Arc;
use std::time::Instant;

use str0m::rtp::{ExtensionValues, Vp8Descriptor};

/// An incoming media packet, ready to be forwarded to any number of viewers.
#[derive(Clone, Debug)]
pub struct SourcePacket {
    /// Extended (rollover-counted) sequence number from the publisher.
    pub seq: u64,
    /// RTP timestamp in the codec's clock.
    pub ts: u32,
    pub marker: bool,
    /// Header extension values worth passing on (audio level, orientation).
    pub ext: ExtensionValues,
    /// The RTP payload, shared by every viewer.
    pub payload: Arc<[u8]>,
    /// When it reached the server; used as the wallclock of the rewrite.
    pub arrival: Instant,
    /// First packet of a keyframe: a viewer may start (or switch) here.
    pub keyframe_start: bool,
    /// VP8 descriptor fields the Forwarder rewrites, when the codec is VP8.
    pub vp8: Option<Vp8Fields>,
    /// The frame size a keyframe packet carries (VP8 header, H264 SPS), as
    /// the Source parsed it once for every Mirror.
    pub dimensions: Option<(u16, u16)>,
}

/// The parts of a VP8 payload descriptor the Forwarder rewrites.
#[derive(Clone, Copy, Debug)]
pub struct Vp8Fields {
    pub descriptor: Vp8Descriptor,
    /// PictureID and the mask of its width (0x7f or 0x7fff).
    pub picture_id: Option<(u16, u16)>,
    pub tl0_pic_idx: Option<u8>,
}

impl Vp8Fields {
    /// Parses the descriptor; `None` for a payload that is not valid VP8.
    pub fn parse(payload: &[u8]) -> Option<Vp8Fields> {
        let descriptor = Vp8Descriptor::parse(payload).ok()?;
        let picture_id = descriptor.picture_id().map(|pid| {
            // The M bit of the first PictureID octet says 15-bit; it sits
            // right after the extension octet (offset 2) when I is set.
            let wide = payload.get(2).is_some_and(|b| b & 0x80 != 0);
            (pid, if wide { 0x7fff } else { 0x7f })
        });
        Some(Vp8Fields {
            descriptor,
            picture_id,
            tl0_pic_idx: descriptor.tl0_pic_idx(),
        })
    }
}

/// Keeps only the extension values a viewer should see; transport ones
/// (mid, rid, transport-cc, abs-send-time) are the viewer session's own.
pub fn forwardable_ext(ext: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: ext.audio_level,
        voice_activity: ext.voice_activity,
        video_orientation: ext.video_orientation,
        video_content_type: ext.video_content_type,
        ..Default::default()
    }
}
