//! Posters: a recording's (and a live broadcast's) picture, one keyframe of
//! its smallest rendition decoded with OpenH264 (Cisco's decoder, built
//! from source by the `openh264` crate) and written as a JPEG with the
//! pure-Rust `jpeg-encoder`. Only that one frame is decoded; the stream
//! itself is never transcoded.
//!
//! Invariants: a poster is made at most every [`POSTER_EVERY`] of recorded
//! time, off the recorder's task (a blocking thread), and a frame that
//! does not decode yields no poster rather than an error.

use std::time::Duration;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::h264::{nal_units, ParameterSets};

/// How often a live recording's poster is refreshed (in recorded time).
pub const POSTER_EVERY: Duration = Duration::from_secs(30);
const QUALITY: u8 = 80;

/// The JPEG of one keyframe sample (AVCC), or `None` if it does not decode.
pub fn poster_jpeg(sample: &[u8], params: &ParameterSets) -> Option<Vec<u8>> {
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
    let (rgb, w, h) = picture?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_that_is_not_h264_makes_no_poster() {
        let params = ParameterSets {
            sps: vec![0x67, 0x42, 0xe0, 0x1f],
            pps: vec![0x68, 0xce],
        };
        assert!(poster_jpeg(&[0, 0, 0, 3, 0x65, 0xff, 0xff], &params).is_none());
    }
}
