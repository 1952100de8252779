//! Synthetic media: the simulcast layers and pacing constants of the fake
//! encoder, VP8 frames carrying a [`FrameTag`], their RTP payloads, Opus
//! payloads, and the parser viewers use to read VP8 back.

use std::time::Duration;

use bytes::Bytes;

pub struct LayerSpec {
    pub rid: &'static str,
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u32,
}

/// Top to bottom; the index is what frame tags call "layer".
pub const LAYERS: [LayerSpec; 3] = [
    LayerSpec {
        rid: "h",
        width: 1280,
        height: 720,
        bitrate_bps: 2_500_000,
    },
    LayerSpec {
        rid: "m",
        width: 640,
        height: 360,
        bitrate_bps: 500_000,
    },
    LayerSpec {
        rid: "l",
        width: 320,
        height: 180,
        bitrate_bps: 150_000,
    },
];
pub const LOW_LAYER_INDEX: u8 = 2;

pub const FPS: u32 = 30;
pub const KEYFRAME_EVERY: u64 = FPS as u64; // one keyframe per second
pub const FRAME_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / FPS as u64);
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
pub const MAX_RTP_PAYLOAD: usize = 1100;
pub const VP8_DESCRIPTOR_LEN: usize = 4;

impl LayerSpec {
    /// Keyframes are 3× an average frame, delta frames make up the rest, so
    /// the layer averages `bitrate_bps`.
    pub fn frame_bytes(&self, keyframe: bool) -> usize {
        let average = (self.bitrate_bps / 8 / FPS) as usize;
        if keyframe {
            3 * average
        } else {
            average * 27 / 29
        }
    }
}

/// Identifies a frame end to end, whatever the server rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTag {
    pub generation: u8,
    pub layer: u8,
    pub frame_no: u32,
}

pub const TAG_MAGIC: &[u8; 2] = b"RC";

/// A VP8 frame: the 3-byte frame tag (key-frame bit 0 = keyframe,
/// show_frame = 1), for keyframes the start code and 16-bit little-endian
/// width/height, then our tag, then filler.
pub fn vp8_frame(spec: &LayerSpec, keyframe: bool, tag: FrameTag) -> Vec<u8> {
    let size = spec.frame_bytes(keyframe);
    let first_partition_size = (size as u32 / 4).min(0x7_ffff);
    // Bit 0: P (0 = keyframe); bits 1-3: version 0; bit 4: show_frame.
    let frame_tag: u32 = u32::from(!keyframe) | (1 << 4) | (first_partition_size << 5);
    let mut frame = Vec::with_capacity(size);
    frame.extend_from_slice(&frame_tag.to_le_bytes()[..3]);
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&spec.width.to_le_bytes());
        frame.extend_from_slice(&spec.height.to_le_bytes());
    }
    frame.extend_from_slice(TAG_MAGIC);
    frame.push(tag.generation);
    frame.push(tag.layer);
    frame.extend_from_slice(&tag.frame_no.to_be_bytes());
    let mut filler = tag.frame_no.wrapping_mul(2_654_435_761);
    while frame.len() < size {
        filler = filler.rotate_left(5) ^ 0x9e37_79b9;
        frame.push(filler as u8);
    }
    frame
}

/// RTP payloads of one frame, each ≤ 1100 bytes: a VP8 payload descriptor
/// (X=1, S on the first packet, partition index 0, I=1 with a 15-bit
/// PictureID) followed by a slice of the frame.
pub fn vp8_payloads(frame: &[u8], picture_id: u16) -> Vec<Bytes> {
    frame
        .chunks(MAX_RTP_PAYLOAD - VP8_DESCRIPTOR_LEN)
        .enumerate()
        .map(|(i, chunk)| {
            let mut payload = Vec::with_capacity(VP8_DESCRIPTOR_LEN + chunk.len());
            payload.push(if i == 0 { 0x90 } else { 0x80 }); // X, S, PID=0
            payload.push(0x80); // I
            payload.push(0x80 | (picture_id >> 8) as u8); // M=1: 15-bit PictureID
            payload.push(picture_id as u8);
            payload.extend_from_slice(chunk);
            Bytes::from(payload)
        })
        .collect()
}

/// ~100 bytes: a TOC byte (CELT fullband 20 ms, mono, one frame), then
/// "A", the publisher generation and a counter, then filler.
pub fn opus_payload(generation: u8, n: u32) -> Bytes {
    let mut payload = vec![0xf8, b'A', generation];
    payload.extend_from_slice(&n.to_be_bytes());
    payload.resize(100, 0x55);
    Bytes::from(payload)
}

/// What the first packet of a VP8 frame tells (None for other packets).
#[derive(Debug)]
pub struct Vp8FrameStart {
    pub keyframe: bool,
    pub width: Option<u16>,
    pub tag: Option<FrameTag>,
}

/// Parses the VP8 payload descriptor (RFC 7741 §4.2) and, on the first
/// packet of partition 0, the VP8 payload header (§4.3) and keyframe header.
pub fn parse_vp8(payload: &[u8]) -> Option<Vp8FrameStart> {
    let first = *payload.first()?;
    let (extended, start, partition) = (first & 0x80 != 0, first & 0x10 != 0, first & 0x07);
    let mut at = 1;
    if extended {
        let x = *payload.get(1)?;
        at = 2;
        if x & 0x80 != 0 {
            at += if *payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    if !start || partition != 0 {
        return None;
    }
    let frame = payload.get(at..)?;
    let keyframe = frame.first()? & 0x01 == 0;
    let (width, rest) = if keyframe {
        if frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
            return Some(Vp8FrameStart {
                keyframe,
                width: None,
                tag: None,
            });
        }
        let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
        (Some(width), frame.get(10..))
    } else {
        (None, frame.get(3..))
    };
    let tag = rest
        .filter(|r| r.len() >= 8 && &r[..2] == TAG_MAGIC)
        .map(|r| FrameTag {
            generation: r[2],
            layer: r[3],
            frame_no: u32::from_be_bytes([r[4], r[5], r[6], r[7]]),
        });
    Some(Vp8FrameStart {
        keyframe,
        width,
        tag,
    })
}
