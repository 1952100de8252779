//! Codec-aware inspection of incoming video payloads: does this packet start
//! a keyframe, and what frame size does the keyframe carry? Frame sizes rank
//! simulcast layers by what is sent, not by rid names.
//!
//! Every function here takes untrusted bytes: it never panics and never
//! indexes without a bound check.

use super::h264_sps;

/// The video codecs the SFU forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
    H265,
    Av1,
}

impl VideoCodec {
    /// Every codec, for tests and fuzzing that try each.
    pub const ALL: [VideoCodec; 5] = [
        VideoCodec::Vp8,
        VideoCodec::Vp9,
        VideoCodec::H264,
        VideoCodec::H265,
        VideoCodec::Av1,
    ];
}

/// What one packet says about keyframes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyframeInfo {
    /// Carries parameter sets (SPS/VPS) or is the first packet of a keyframe.
    pub starts_keyframe: bool,
    /// Whether it starts a keyframe only if it is also the first packet of its
    /// frame (an IDR slice without parameter sets in front of it).
    pub needs_frame_start: bool,
    /// Frame size, when the packet carries it (VP8 keyframe header, H264 SPS).
    pub dimensions: Option<(u16, u16)>,
}

pub fn inspect(codec: VideoCodec, payload: &[u8]) -> KeyframeInfo {
    match codec {
        VideoCodec::Vp8 => vp8(payload),
        VideoCodec::Vp9 => vp9(payload),
        VideoCodec::H264 => h264(payload),
        VideoCodec::H265 => h265(payload),
        VideoCodec::Av1 => av1(payload),
    }
}

/// Length of the VP8 payload descriptor (RFC 7741 §4.2), if well-formed.
fn vp8_descriptor_len(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    let mut len = 1;
    if first & 0x80 != 0 {
        let ext = *p.get(1)?;
        len += 1;
        if ext & 0x80 != 0 {
            len += if *p.get(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1;
        }
        if ext & 0x30 != 0 {
            len += 1;
        }
    }
    (len < p.len()).then_some(len)
}

fn vp8(p: &[u8]) -> KeyframeInfo {
    let Some(d) = vp8_descriptor_len(p) else {
        return KeyframeInfo::default();
    };
    let start_of_partition = p[0] & 0x10 != 0;
    let partition_zero = p[0] & 0x07 == 0;
    // P bit of the VP8 frame tag: 0 = key frame (RFC 6386 §9.1).
    let key = p.get(d).is_some_and(|b| b & 0x01 == 0);
    if !(start_of_partition && partition_zero && key) {
        return KeyframeInfo::default();
    }
    let header = &p[d..];
    let dimensions = (header.len() >= 10 && header[3..6] == [0x9d, 0x01, 0x2a]).then(|| {
        let w = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
        let h = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
        (w, h)
    });
    KeyframeInfo {
        starts_keyframe: true,
        needs_frame_start: false,
        dimensions,
    }
}

fn vp9(p: &[u8]) -> KeyframeInfo {
    // RFC 9628: B = beginning of frame, P = inter-picture predicted.
    let Some(&first) = p.first() else {
        return KeyframeInfo::default();
    };
    let begins = first & 0x08 != 0;
    let predicted = first & 0x40 != 0;
    KeyframeInfo {
        starts_keyframe: begins && !predicted,
        ..Default::default()
    }
}

fn av1(p: &[u8]) -> KeyframeInfo {
    // AV1 RTP aggregation header: N = first packet of a coded video sequence.
    KeyframeInfo {
        starts_keyframe: p.first().is_some_and(|b| b & 0x08 != 0),
        ..Default::default()
    }
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

fn h264(p: &[u8]) -> KeyframeInfo {
    let mut info = KeyframeInfo::default();
    let Some(&first) = p.first() else {
        return info;
    };
    let nal = |unit: &[u8], info: &mut KeyframeInfo| match unit.first().map(|b| b & 0x1f) {
        Some(H264_SPS) => {
            info.starts_keyframe = true;
            info.needs_frame_start = false;
            info.dimensions = h264_sps::dimensions(unit);
        }
        Some(H264_IDR) if !info.starts_keyframe => {
            info.starts_keyframe = true;
            info.needs_frame_start = true;
        }
        _ => {}
    };
    match first & 0x1f {
        H264_STAP_A => {
            let mut rest = &p[1..];
            while rest.len() >= 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(unit) = rest.get(2..2 + size) else {
                    break;
                };
                nal(unit, &mut info);
                rest = &rest[2 + size..];
            }
        }
        H264_FU_A => {
            if let Some(&fu) = p.get(1) {
                let start = fu & 0x80 != 0;
                if start && fu & 0x1f == H264_IDR {
                    info.starts_keyframe = true;
                    info.needs_frame_start = true;
                }
            }
        }
        1..=23 => nal(p, &mut info),
        _ => {}
    }
    info
}

fn h265(p: &[u8]) -> KeyframeInfo {
    let kind = |b: u8| (b >> 1) & 0x3f;
    let parameter_set = |t: u8| t == 32 || t == 33;
    let irap = |t: u8| (16..=21).contains(&t);
    let mut info = KeyframeInfo::default();
    let Some(&first) = p.first() else {
        return info;
    };
    match kind(first) {
        48 => {
            // Aggregation packet: 2-byte header, then size-prefixed units.
            let mut rest = p.get(2..).unwrap_or(&[]);
            while rest.len() >= 3 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let t = kind(rest[2]);
                if parameter_set(t) {
                    info.starts_keyframe = true;
                } else if irap(t) && !info.starts_keyframe {
                    info.starts_keyframe = true;
                    info.needs_frame_start = true;
                }
                rest = rest.get(2 + size..).unwrap_or(&[]);
            }
        }
        49 => {
            if let Some(&fu) = p.get(2) {
                if fu & 0x80 != 0 && irap(fu & 0x3f) {
                    info.starts_keyframe = true;
                    info.needs_frame_start = true;
                }
            }
        }
        t if parameter_set(t) => info.starts_keyframe = true,
        t if irap(t) => {
            info.starts_keyframe = true;
            info.needs_frame_start = true;
        }
        _ => {}
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8_key(w: u16, h: u16) -> Vec<u8> {
        let mut p = vec![0x90, 0x80, 0x80, 0x01]; // X, S; I; 15-bit PictureID 1
        p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]); // P=0 key frame
        p.extend_from_slice(&w.to_le_bytes());
        p.extend_from_slice(&h.to_le_bytes());
        p.extend_from_slice(&[0; 20]);
        p
    }

    #[test]
    fn table_of_keyframe_starts() {
        let sps_720p = [
            0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x06, 0xd0, 0xa1, 0x35,
        ];
        let mut stap = vec![H264_STAP_A];
        stap.extend_from_slice(&(sps_720p.len() as u16).to_be_bytes());
        stap.extend_from_slice(&sps_720p);
        stap.extend_from_slice(&[0x00, 0x02, 0x68, 0xce]); // PPS
        let cases: Vec<(&str, VideoCodec, Vec<u8>, KeyframeInfo)> = vec![
            (
                "vp8 keyframe with size",
                VideoCodec::Vp8,
                vp8_key(640, 360),
                KeyframeInfo {
                    starts_keyframe: true,
                    needs_frame_start: false,
                    dimensions: Some((640, 360)),
                },
            ),
            (
                "vp8 delta frame",
                VideoCodec::Vp8,
                vec![0x90, 0x80, 0x80, 0x01, 0x11, 0, 0],
                KeyframeInfo::default(),
            ),
            (
                "vp8 keyframe continuation",
                VideoCodec::Vp8,
                vec![0x80, 0x80, 0x80, 0x01, 0x10, 0, 0],
                KeyframeInfo::default(),
            ),
            (
                "vp8 truncated",
                VideoCodec::Vp8,
                vec![0x90, 0x80],
                KeyframeInfo::default(),
            ),
            ("empty", VideoCodec::H264, vec![], KeyframeInfo::default()),
            (
                "h264 stap-a sps+pps",
                VideoCodec::H264,
                stap,
                KeyframeInfo {
                    starts_keyframe: true,
                    needs_frame_start: false,
                    dimensions: Some((1280, 720)),
                },
            ),
            (
                "h264 fu-a idr start",
                VideoCodec::H264,
                vec![0x7c, 0x85, 0x88],
                KeyframeInfo {
                    starts_keyframe: true,
                    needs_frame_start: true,
                    dimensions: None,
                },
            ),
            (
                "h264 fu-a idr middle",
                VideoCodec::H264,
                vec![0x7c, 0x05, 0x88],
                KeyframeInfo::default(),
            ),
            (
                "h264 non-idr slice",
                VideoCodec::H264,
                vec![0x41, 0x9a],
                KeyframeInfo::default(),
            ),
            (
                "h264 stap-a lying about size",
                VideoCodec::H264,
                vec![24, 0xff, 0xff, 0x67],
                KeyframeInfo::default(),
            ),
            (
                "vp9 key start",
                VideoCodec::Vp9,
                vec![0x08, 0],
                KeyframeInfo {
                    starts_keyframe: true,
                    ..Default::default()
                },
            ),
            (
                "vp9 inter",
                VideoCodec::Vp9,
                vec![0x48, 0],
                KeyframeInfo::default(),
            ),
            (
                "av1 new sequence",
                VideoCodec::Av1,
                vec![0x18, 0],
                KeyframeInfo {
                    starts_keyframe: true,
                    ..Default::default()
                },
            ),
            (
                "h265 vps",
                VideoCodec::H265,
                vec![0x40, 0x01, 0x0c],
                KeyframeInfo {
                    starts_keyframe: true,
                    ..Default::default()
                },
            ),
        ];
        for (name, codec, payload, want) in cases {
            assert_eq!(inspect(codec, &payload), want, "{name}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 12345;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            for codec in VideoCodec::ALL {
                let _ = inspect(codec, &bytes);
            }
        }
    }
}
