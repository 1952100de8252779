//! Synthetic media: the three simulcast VP8 layers of the fake encoder, their
//! RTP payloads, Opus-sized audio payloads, the send-time trailer and the VP8
//! parsing viewers need.
//!
//! Invariants:
//! - Every payload the publisher sends ends with a 10-byte trailer: `LT` then
//!   the send time as big-endian nanoseconds since [`epoch`] (a process-wide
//!   `Instant`). The server rewrites only the VP8 descriptor at the front, so
//!   viewers in the same process read the trailer back to get forwarding
//!   latency without a shared table.
//! - VP8 payloads carry a real descriptor (RFC 7741: X=1, I=1, 15-bit
//!   PictureID, S on a frame's first packet) and real frame headers: the
//!   3-byte frame tag, and on keyframes the start code `9d 01 2a` with
//!   little-endian width and height, which the server uses to rank layers.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One simulcast layer of the synthetic encoder.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    pub rid: &'static str,
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u32,
}

/// Bottom to top.
pub const LAYERS: [LayerSpec; 3] = [
    LayerSpec {
        rid: "l",
        width: 320,
        height: 180,
        bitrate_bps: 150_000,
    },
    LayerSpec {
        rid: "m",
        width: 640,
        height: 360,
        bitrate_bps: 500_000,
    },
    LayerSpec {
        rid: "h",
        width: 1280,
        height: 720,
        bitrate_bps: 2_500_000,
    },
];

pub const FPS: u32 = 30;
pub const FRAME_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / FPS as u64);
/// A keyframe every 2 s.
pub const KEYFRAME_EVERY: u64 = 2 * FPS as u64;
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
pub const VIDEO_CLOCK_PER_FRAME: u32 = 90_000 / FPS;
pub const AUDIO_CLOCK_PER_PACKET: u32 = 960;
/// The largest RTP payload we send (keeps SRTP packets under a 1200 MTU).
pub const MAX_PAYLOAD: usize = 1100;
const DESCRIPTOR_LEN: usize = 4;
pub const TRAILER_LEN: usize = 10;
const TRAILER_MAGIC: &[u8; 2] = b"LT";
/// An Opus packet of ~40 kbit/s at 20 ms.
const AUDIO_PAYLOAD_LEN: usize = 100;

/// The process-wide origin of send timestamps.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from [`epoch`] to `at` (0 before the epoch).
pub fn stamp(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

/// The send time a payload carries, if it came from our publisher.
pub fn read_stamp(payload: &[u8]) -> Option<u64> {
    let trailer = payload.get(payload.len().checked_sub(TRAILER_LEN)?..)?;
    if &trailer[..2] != TRAILER_MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(trailer[2..].try_into().ok()?))
}

fn push_trailer(payload: &mut Vec<u8>, sent: u64) {
    payload.extend_from_slice(TRAILER_MAGIC);
    payload.extend_from_slice(&sent.to_be_bytes());
}

impl LayerSpec {
    /// Keyframes are 3× an average frame and delta frames share the rest,
    /// so the layer averages `bitrate_bps` over a keyframe interval.
    pub fn frame_bytes(&self, keyframe: bool) -> usize {
        let average = (self.bitrate_bps / 8 / FPS) as usize;
        let n = KEYFRAME_EVERY as usize;
        if keyframe {
            3 * average
        } else {
            average * (n - 3) / (n - 1)
        }
    }
}

/// The RTP payloads of one VP8 frame, each at most [`MAX_PAYLOAD`] bytes.
pub fn vp8_frame(
    spec: &LayerSpec,
    keyframe: bool,
    picture_id: u16,
    frame_no: u64,
    sent: u64,
) -> Vec<Vec<u8>> {
    let size = spec.frame_bytes(keyframe);
    let first_partition = (size as u32 / 4).min(0x7_ffff);
    // Bit 0: inverse key-frame flag; bits 1-3: version 0; bit 4: show_frame.
    let tag: u32 = u32::from(!keyframe) | (1 << 4) | (first_partition << 5);
    let mut frame = Vec::with_capacity(size);
    frame.extend_from_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&spec.width.to_le_bytes());
        frame.extend_from_slice(&spec.height.to_le_bytes());
    }
    let mut filler = (frame_no as u32).wrapping_mul(2_654_435_761) | 1;
    while frame.len() < size {
        filler ^= filler << 13;
        filler ^= filler >> 17;
        filler ^= filler << 5;
        frame.push(filler as u8);
    }
    let picture_id = picture_id & 0x7fff;
    frame
        .chunks(MAX_PAYLOAD - DESCRIPTOR_LEN - TRAILER_LEN)
        .enumerate()
        .map(|(i, chunk)| {
            let mut payload = Vec::with_capacity(DESCRIPTOR_LEN + chunk.len() + TRAILER_LEN);
            payload.push(if i == 0 { 0x90 } else { 0x80 }); // X, S on the first, PID 0
            payload.push(0x80); // I: a PictureID follows
            payload.push(0x80 | (picture_id >> 8) as u8); // M: 15 bits
            payload.push(picture_id as u8);
            payload.extend_from_slice(chunk);
            push_trailer(&mut payload, sent);
            payload
        })
        .collect()
}

/// One Opus-sized audio payload: a TOC byte (CELT fullband 20 ms, mono),
/// filler, the trailer.
pub fn opus_payload(sent: u64) -> Vec<u8> {
    let mut payload = vec![0x55; AUDIO_PAYLOAD_LEN - TRAILER_LEN];
    payload[0] = 0xf8;
    push_trailer(&mut payload, sent);
    payload
}

/// What the first packet of a VP8 frame says about the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStart {
    pub keyframe: bool,
    /// From the keyframe header, when the start code is there.
    pub width: Option<u16>,
}

/// Parses the VP8 descriptor (RFC 7741 §4.2) and, on the first packet of
/// partition 0, the frame tag and keyframe header. `None` for other packets.
pub fn frame_start(payload: &[u8]) -> Option<FrameStart> {
    let first = *payload.first()?;
    let mut at = 1;
    if first & 0x80 != 0 {
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
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return None;
    }
    let frame = payload.get(at..)?;
    let keyframe = frame.first()? & 0x01 == 0;
    let width = (keyframe && frame.get(3..6) == Some(&[0x9d, 0x01, 0x2a]))
        .then(|| Some(u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff))
        .flatten();
    Some(FrameStart { keyframe, width })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_starts_with_a_keyframe_header_naming_its_width() {
        let packets = vp8_frame(&LAYERS[2], true, 0x1234, 7, 42);
        assert_eq!(
            frame_start(&packets[0]),
            Some(FrameStart {
                keyframe: true,
                width: Some(1280)
            })
        );
        assert!(packets[1..].iter().all(|p| frame_start(p).is_none()));
    }

    #[test]
    fn every_packet_carries_its_send_time_and_fits_the_payload_limit() {
        for keyframe in [true, false] {
            let packets = vp8_frame(&LAYERS[1], keyframe, 1, 1, 123_456_789);
            assert!(packets.iter().all(|p| p.len() <= MAX_PAYLOAD));
            assert!(packets.iter().all(|p| read_stamp(p) == Some(123_456_789)));
        }
        assert_eq!(read_stamp(&opus_payload(5)), Some(5));
    }

    #[test]
    fn a_delta_frame_start_is_not_a_keyframe() {
        let packets = vp8_frame(&LAYERS[0], false, 3, 3, 0);
        assert_eq!(
            frame_start(&packets[0]),
            Some(FrameStart {
                keyframe: false,
                width: None
            })
        );
    }

    #[test]
    fn layers_average_their_bitrate_over_a_keyframe_interval() {
        for spec in LAYERS {
            let n = KEYFRAME_EVERY as usize;
            let bytes = spec.frame_bytes(true) + (n - 1) * spec.frame_bytes(false);
            let bps = bytes as f64 * 8.0 / (n as f64 / f64::from(FPS));
            assert!(
                (bps / f64::from(spec.bitrate_bps) - 1.0).abs() < 0.02,
                "{}: {bps}",
                spec.rid
            );
        }
    }
}
