//! What differs between the recorded video codecs, behind one face: how a
//! frame's RTP payloads become one sample ([`FrameReader`]), what a
//! rendition's init segment needs and which container holds its segments
//! ([`TrackConfig`], [`Container`]).
//!
//! H264 goes into CMAF fragmented MP4 ([`super::fmp4`]); VP8 into WebM
//! ([`super::webm`]), the only container Chromium's Media Source Extensions
//! accept VP8 in (`MediaSource.isTypeSupported('video/mp4;
//! codecs="vp08.00.10.08"')` is false in Chromium 14x, `video/webm;
//! codecs="vp8, opus"` true). Audio is Opus in both.
//!
//! Invariants: a rendition's segments and init segments are all of one
//! container (its codec is fixed by its first keyframe); a frame whose
//! payloads do not depacketize yields no sample, never half of one.

use str0m::unversioned::{H264Depacketizer, Vp8Depacketizer};

use super::assemble::Frame;
use super::fmp4::{self, Fmp4Error, Sample};
use super::h264::{self, ParameterSets};
use super::webm::{self, WebmError};
use crate::core::keyframe::VideoCodec;

/// The container of a rendition's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Fmp4,
    Webm,
}

impl Container {
    /// The init segment of a part (a publisher session).
    pub fn init_file(self, part: u32) -> String {
        match self {
            Container::Fmp4 => format!("init-{part}.mp4"),
            Container::Webm => format!("init-{part}.webm"),
        }
    }

    pub fn segment_file(self, seq: u32) -> String {
        match self {
            Container::Fmp4 => format!("seg-{seq}.m4s"),
            Container::Webm => format!("seg-{seq}.webm"),
        }
    }

    /// The container of a segment file, by its name.
    pub fn of_file(file: &str) -> Option<Container> {
        if file.ends_with(".m4s") {
            Some(Container::Fmp4)
        } else if file.ends_with(".webm") {
            Some(Container::Webm)
        } else {
            None
        }
    }
}

/// What a rendition's init segment is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackConfig {
    H264(ParameterSets),
    Vp8,
}

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error(transparent)]
    Fmp4(#[from] Fmp4Error),
    #[error(transparent)]
    Webm(#[from] WebmError),
}

impl TrackConfig {
    pub fn container(&self) -> Container {
        match self {
            TrackConfig::H264(_) => Container::Fmp4,
            TrackConfig::Vp8 => Container::Webm,
        }
    }

    /// The RFC 6381 codec string of the video, for the master playlist.
    pub fn codec_string(&self) -> String {
        match self {
            TrackConfig::H264(params) => params.codec_string(),
            TrackConfig::Vp8 => "vp8".into(),
        }
    }

    pub fn init_segment(
        &self,
        dims: (u16, u16),
        audio_channels: Option<u16>,
    ) -> Result<Vec<u8>, MuxError> {
        Ok(match self {
            TrackConfig::H264(params) => fmp4::init_segment(params, dims, audio_channels)?,
            TrackConfig::Vp8 => webm::init_segment(dims, audio_channels)?,
        })
    }

    /// One media segment; `video` starts with a keyframe.
    pub fn media_segment(
        &self,
        seq: u32,
        video: &[Sample],
        audio: &[Sample],
    ) -> Result<Vec<u8>, MuxError> {
        Ok(match self {
            TrackConfig::H264(_) => fmp4::media_segment(seq, video, audio)?,
            TrackConfig::Vp8 => webm::media_segment(video, audio)?,
        })
    }
}

/// One layer's depacketizer.
#[derive(Debug)]
pub enum FrameReader {
    H264(H264Depacketizer),
    Vp8(Vp8Depacketizer),
}

impl FrameReader {
    /// The reader of a recorded codec; `None` for one not recorded.
    pub fn new(codec: VideoCodec) -> Option<FrameReader> {
        match codec {
            VideoCodec::H264 => Some(FrameReader::H264(H264Depacketizer::default())),
            VideoCodec::Vp8 => Some(FrameReader::Vp8(Vp8Depacketizer::default())),
            _ => None,
        }
    }

    /// The frame as one sample and, for a keyframe that carries it, the
    /// configuration of its track.
    pub fn read(&mut self, frame: &Frame) -> Option<(Vec<u8>, Option<TrackConfig>)> {
        match self {
            FrameReader::H264(depacketizer) => {
                let data = h264::sample(frame, depacketizer)?;
                let config = frame
                    .keyframe
                    .then(|| h264::parameter_sets(&data))
                    .flatten()
                    .map(TrackConfig::H264);
                Some((data, config))
            }
            FrameReader::Vp8(depacketizer) => {
                let data = frame.depacketized(depacketizer, 0)?;
                Some((data, frame.keyframe.then_some(TrackConfig::Vp8)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::assemble::payload_packet as packet;
    use super::*;

    #[test]
    fn vp8_payload_descriptors_are_stripped_and_the_partitions_joined() {
        // S=1 PID=0 with a picture id (X, I, 7-bit), then a continuation.
        let first = [0x90, 0x80, 0x05, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        let second = [0x80, 0x80, 0x05, 0xaa, 0xbb];
        let frame = Frame {
            ts: 0,
            keyframe: true,
            packets: vec![packet(0, &first, false), packet(1, &second, true)],
        };
        let mut reader = FrameReader::new(VideoCodec::Vp8).expect("VP8 is recorded");
        let (data, config) = reader.read(&frame).expect("valid payloads");
        assert_eq!(data, vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0xaa, 0xbb]);
        assert_eq!(config, Some(TrackConfig::Vp8));
        assert_eq!(config.map(|c| c.container()), Some(Container::Webm));
    }

    #[test]
    fn file_names_follow_the_container() {
        assert_eq!(Container::Webm.segment_file(3), "seg-3.webm");
        assert_eq!(Container::Fmp4.init_file(1), "init-1.mp4");
        assert_eq!(Container::of_file("seg-9.webm"), Some(Container::Webm));
        assert_eq!(Container::of_file("seg-9.m4s"), Some(Container::Fmp4));
        assert_eq!(Container::of_file("index.m3u8"), None);
    }
}
