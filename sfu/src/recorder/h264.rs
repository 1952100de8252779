//! H264 frames for MP4: RTP payloads (RFC 6184: single NAL unit, STAP-A,
//! FU-A) become one length-prefixed (AVCC) sample with str0m's own
//! depacketizer; the sequence and picture parameter sets are kept for the
//! `avcC` box, and the RFC 6381 codec string for HLS is read off the SPS.
//!
//! The parameter sets stay in the samples too (OBS repeats them before
//! every IDR): decoders accept that in `avc1`, and a segment then decodes
//! on its own.

use str0m::unversioned::H264Depacketizer;

use super::assemble::Frame;

const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

impl ParameterSets {
    /// `avc1.PPCCLL`: profile, constraint flags and level from the SPS.
    pub fn codec_string(&self) -> String {
        match self.sps.get(1..4) {
            Some(b) => format!("avc1.{:02x}{:02x}{:02x}", b[0], b[1], b[2]),
            None => "avc1.42e01f".to_string(),
        }
    }
}

/// One frame's payloads as an AVCC sample; `None` when a payload is not
/// valid H264 packetization (the frame is dropped, never half-written).
pub fn sample(frame: &Frame, depacketizer: &mut H264Depacketizer) -> Option<Vec<u8>> {
    depacketizer.is_avc = true;
    // Room for the length prefixes that replace the payload headers.
    frame.depacketized(depacketizer, 64)
}

/// The SPS and PPS a sample carries, if it carries both.
pub fn parameter_sets(sample: &[u8]) -> Option<ParameterSets> {
    let (mut sps, mut pps) = (None, None);
    for nal in nal_units(sample) {
        match nal.first().map(|b| b & 0x1f) {
            Some(NAL_SPS) if sps.is_none() => sps = Some(nal.to_vec()),
            Some(NAL_PPS) if pps.is_none() => pps = Some(nal.to_vec()),
            _ => {}
        }
    }
    Some(ParameterSets {
        sps: sps?,
        pps: pps?,
    })
}

/// The NAL units of a length-prefixed sample (a truncated tail is ignored).
pub fn nal_units(sample: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = sample;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let nal = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(nal)
    })
}

#[cfg(test)]
mod tests {
    use super::super::assemble::payload_packet as packet;
    use super::*;

    #[test]
    fn stap_a_and_fu_a_become_one_length_prefixed_sample() {
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac];
        let pps = [0x68, 0xee, 0x3c];
        // STAP-A with SPS and PPS.
        let mut stap = vec![0x18, 0, sps.len() as u8];
        stap.extend_from_slice(&sps);
        stap.extend_from_slice(&[0, pps.len() as u8]);
        stap.extend_from_slice(&pps);
        // An IDR slice (type 5) in two FU-A fragments.
        let fu_start = [0x7c, 0x85, 1, 2, 3];
        let fu_end = [0x7c, 0x45, 4, 5];
        let frame = Frame {
            ts: 0,
            keyframe: true,
            packets: vec![
                packet(0, &stap, false),
                packet(1, &fu_start, false),
                packet(2, &fu_end, true),
            ],
        };
        let s = sample(&frame, &mut H264Depacketizer::default()).expect("valid payloads");
        let nals: Vec<&[u8]> = nal_units(&s).collect();
        assert_eq!(nals, vec![&sps[..], &pps[..], &[0x65, 1, 2, 3, 4, 5][..]]);
        let ps = parameter_sets(&s).expect("both sets");
        assert_eq!(ps.codec_string(), "avc1.64001f");
    }

    #[test]
    fn a_sample_without_parameter_sets_has_none() {
        assert_eq!(parameter_sets(&[0, 0, 0, 2, 0x41, 0x9a]), None);
        assert_eq!(nal_units(&[0, 0, 0, 9, 1]).count(), 0);
    }
}
