//! Posters: a recording's (and a live broadcast's) picture, one keyframe of
//! its smallest rendition decoded and written as a JPEG with the pure-Rust
//! `jpeg-encoder`. H264 is decoded with OpenH264 (Cisco's decoder, built
//! from source by the `openh264` crate); a VP8 keyframe is exactly what a
//! lossy WebP image holds, so it is wrapped in a WebP header and decoded
//! with `image-webp` (image-rs, pure Rust). Only that one frame is decoded;
//! the stream itself is never transcoded.
//!
//! Invariants: a poster is made at most every [`POSTER_EVERY`] of recorded
//! time, off the recorder's task (a blocking thread), and a frame that
//! does not decode yields no poster rather than an error.

use std::time::Duration;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::codec::TrackConfig;
use super::h264::{nal_units, ParameterSets};

/// How often a live recording's poster is refreshed (in recorded time).
pub const POSTER_EVERY: Duration = Duration::from_secs(30);
const QUALITY: u8 = 80;
/// The largest VP8 picture decoded for a poster (3840x2160).
const MAX_PIXELS: u64 = 3840 * 2160;

/// The JPEG of one keyframe sample, or `None` if it does not decode.
pub fn poster_jpeg(sample: &[u8], config: &TrackConfig) -> Option<Vec<u8>> {
    let (rgb, w, h) = match config {
        TrackConfig::H264(params) => h264_picture(sample, params)?,
        TrackConfig::Vp8 => vp8_picture(sample)?,
    };
    let mut out = Vec::with_capacity(w * h / 4);
    jpeg_encoder::Encoder::new(&mut out, QUALITY)
        .encode(
            &rgb,
            u16::try_from(w).ok()?,
            u16::try_from(h).ok()?,
            jpeg_encoder::ColorType::Rgb,
        )
        .ok()?;
    Some(out)
}

/// An AVCC keyframe as RGB.
fn h264_picture(sample: &[u8], params: &ParameterSets) -> Option<(Vec<u8>, usize, usize)> {
    let mut decoder = Decoder::new().ok()?;
    let mut picture = None;
    let nals = [params.sps.as_slice(), params.pps.as_slice()]
        .into_iter()
        .chain(nal_units(sample));
    let mut unit = Vec::with_capacity(sample.len() + 8);
    for nal in nals {
        unit.clear();
        unit.extend_from_slice(&[0, 0, 0, 1]);
        unit.extend_from_slice(nal);
        if let Ok(Some(yuv)) = decoder.decode(&unit) {
            let (w, h) = yuv.dimensions();
            let mut rgb = vec![0u8; w * h * 3];
            yuv.write_rgb8(&mut rgb);
            picture = Some((rgb, w, h));
            break;
        }
    }
    picture
}

/// A VP8 keyframe as RGB: the frame in a `RIFF`/`WEBP`/`VP8 ` chunk (the
/// WebP container, RFC 9649 §2.5) is a lossy WebP image.
fn vp8_picture(frame: &[u8]) -> Option<(Vec<u8>, usize, usize)> {
    let len = u32::try_from(frame.len()).ok()?;
    let padded = len + (len & 1);
    let mut riff = Vec::with_capacity(frame.len() + 21);
    riff.extend_from_slice(b"RIFF");
    riff.extend_from_slice(&(padded.checked_add(12)?).to_le_bytes());
    riff.extend_from_slice(b"WEBPVP8 ");
    riff.extend_from_slice(&len.to_le_bytes());
    riff.extend_from_slice(frame);
    if len & 1 == 1 {
        riff.push(0);
    }
    let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(riff)).ok()?;
    if decoder.has_alpha() {
        return None; // a lossy VP8 chunk alone has none
    }
    let (w, h) = decoder.dimensions();
    // The frame size is the publisher's word: no picture larger than 4K is
    // decoded (its buffer would be the publisher's to size).
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return None;
    }
    let mut rgb = vec![0u8; decoder.output_buffer_size()?];
    decoder.read_image(&mut rgb).ok()?;
    Some((rgb, usize::try_from(w).ok()?, usize::try_from(h).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_that_is_not_h264_makes_no_poster() {
        let params = ParameterSets {
            sps: vec![0x67, 0x42, 0xe0, 0x1f],
            pps: vec![0x68, 0xce],
        };
        let config = TrackConfig::H264(params);
        assert!(poster_jpeg(&[0, 0, 0, 3, 0x65, 0xff, 0xff], &config).is_none());
    }

    #[test]
    fn a_vp8_keyframe_becomes_a_jpeg_of_its_size() {
        // A 16x16 grey VP8 keyframe (libvpx, one macroblock).
        let frame = include_bytes!("testdata/keyframe-16x16.vp8");
        let jpeg = poster_jpeg(frame, &TrackConfig::Vp8).expect("decodes");
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
        assert!(poster_jpeg(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 1], &TrackConfig::Vp8).is_none());
        // A keyframe header claiming 16383x16383 is not decoded.
        let mut huge = frame.to_vec();
        huge[6..10].copy_from_slice(&[0xff, 0x3f, 0xff, 0x3f]);
        assert!(poster_jpeg(&huge, &TrackConfig::Vp8).is_none());
    }
}
