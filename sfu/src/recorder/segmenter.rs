//! [`Segmenter`]: one rendition's samples cut into media segments at video
//! keyframes, with the broadcast's audio interleaved by time.
//!
//! Invariants: a segment starts with a video sync sample and lasts at least
//! the target (unless it is the last of a part); audio samples go to the
//! segment whose time span holds their decode time; every sample's duration
//! is the distance to the next one (the last gets its predecessor's); the
//! pending bytes are bounded: past [`MAX_SEGMENT_BYTES`] the segment is
//! dropped and the rendition waits for the next keyframe.

use super::fmp4::{Sample, AUDIO_TIMESCALE, VIDEO_TIMESCALE};

/// A segment this large without a keyframe to cut at is given up.
/// (10 s of 12 Mbit/s fits.)
pub const MAX_SEGMENT_BYTES: usize = 16 << 20;
/// Duration of a first sample with no predecessor: one 30 fps frame, one
/// 20 ms Opus packet.
const DEFAULT_VIDEO_DURATION: u32 = VIDEO_TIMESCALE / 30;
const DEFAULT_AUDIO_DURATION: u32 = AUDIO_TIMESCALE / 50;

/// A finished segment's samples.
#[derive(Debug)]
pub struct Cut {
    pub video: Vec<Sample>,
    pub audio: Vec<Sample>,
}

impl Cut {
    /// In video ticks.
    pub fn duration(&self) -> u64 {
        self.video.iter().map(|s| u64::from(s.duration)).sum()
    }
}

#[derive(Debug)]
pub struct Segmenter {
    /// In video ticks.
    target: u64,
    video: Vec<Sample>,
    audio: Vec<Sample>,
    pending_bytes: usize,
    /// Segments given up for size.
    pub dropped: u64,
}

impl Segmenter {
    pub fn new(target_ticks: u64) -> Self {
        Segmenter {
            target: target_ticks,
            video: Vec::new(),
            audio: Vec::new(),
            pending_bytes: 0,
            dropped: 0,
        }
    }

    /// A video sample; returns the segment it closed, if it is a keyframe
    /// at or past the target.
    pub fn push_video(&mut self, sample: Sample) -> Option<Cut> {
        if self.video.is_empty() && !sample.sync {
            return None;
        }
        let mut cut = None;
        if let Some(first_dts) = self.video.first().map(|s| s.dts) {
            let last = self.video.last_mut().expect("video is not empty");
            last.duration = duration(last.dts, sample.dts, last.duration);
            if sample.sync && sample.dts.saturating_sub(first_dts) >= self.target {
                cut = Some(self.take(sample.dts));
            }
        }
        self.pending_bytes += sample.data.len();
        self.video.push(sample);
        if self.pending_bytes > MAX_SEGMENT_BYTES {
            self.video.clear();
            self.audio.clear();
            self.pending_bytes = 0;
            self.dropped += 1;
        }
        cut
    }

    /// An audio sample (48 kHz ticks); dropped while no video started.
    pub fn push_audio(&mut self, mut sample: Sample) {
        let Some(first) = self.video.first() else {
            return;
        };
        if audio_in_video_ticks(sample.dts) < first.dts {
            return;
        }
        if let Some(last) = self.audio.last_mut() {
            last.duration = duration(last.dts, sample.dts, last.duration);
        }
        sample.duration = self
            .audio
            .last()
            .map_or(DEFAULT_AUDIO_DURATION, |s| s.duration);
        self.pending_bytes += sample.data.len();
        self.audio.push(sample);
    }

    /// How long the pending samples last (video ticks).
    pub fn pending_ticks(&self) -> u64 {
        match (self.video.first(), self.video.last()) {
            (Some(first), Some(last)) => last.dts + u64::from(last.duration) - first.dts,
            _ => 0,
        }
    }

    /// Everything pending, as the last segment of a part (the publisher
    /// left, or the recording ends).
    pub fn flush(&mut self) -> Option<Cut> {
        let first_duration = self.video.first()?.duration;
        let last = self.video.last().expect("video is not empty");
        let end = last.dts
            + u64::from(if self.video.len() > 1 {
                self.video[self.video.len() - 2].duration
            } else {
                first_duration.max(DEFAULT_VIDEO_DURATION)
            });
        Some(self.take(end))
    }

    /// The pending samples before `end` (video ticks) as a segment.
    fn take(&mut self, end: u64) -> Cut {
        let video = std::mem::take(&mut self.video);
        let split = self
            .audio
            .iter()
            .position(|a| audio_in_video_ticks(a.dts) >= end)
            .unwrap_or(self.audio.len());
        let rest = self.audio.split_off(split);
        let audio = std::mem::replace(&mut self.audio, rest);
        let mut cut = Cut { video, audio };
        if let Some(last) = cut.video.last_mut() {
            last.duration = duration(last.dts, end, last.duration);
        }
        self.pending_bytes = self.audio.iter().map(|s| s.data.len()).sum();
        cut
    }
}

fn duration(from: u64, to: u64, fallback: u32) -> u32 {
    match to.checked_sub(from) {
        Some(d) if d > 0 => u32::try_from(d).unwrap_or(u32::MAX),
        _ => fallback.max(1),
    }
}

fn audio_in_video_ticks(dts: u64) -> u64 {
    dts * u64::from(VIDEO_TIMESCALE) / u64::from(AUDIO_TIMESCALE)
}

/// A new video sample's provisional duration.
pub fn first_video_duration() -> u32 {
    DEFAULT_VIDEO_DURATION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(dts: u64, sync: bool) -> Sample {
        Sample {
            dts,
            duration: first_video_duration(),
            sync,
            data: bytes::Bytes::from_static(&[1; 10]),
        }
    }

    fn a(dts: u64) -> Sample {
        Sample {
            dts,
            duration: 0,
            sync: true,
            data: bytes::Bytes::from_static(&[2; 3]),
        }
    }

    #[test]
    fn segments_start_at_keyframes_past_the_target_and_carry_their_audio() {
        // 30 fps video, keyframes every second, a 2 s target.
        let mut s = Segmenter::new(2 * 90_000);
        assert!(
            s.push_video(v(0, false)).is_none(),
            "no start before a keyframe"
        );
        let mut cuts = Vec::new();
        for frame in 0..=120u64 {
            let dts = frame * 3000;
            if let Some(c) = s.push_video(v(dts, frame % 30 == 0)) {
                cuts.push(c);
            }
            // One audio packet per frame (48 kHz ticks), interleaved as it
            // would arrive.
            s.push_audio(a(frame * 1600));
        }
        assert_eq!(cuts.len(), 2, "cut at 2 s and 4 s");
        assert_eq!(cuts[0].duration(), 180_000);
        assert_eq!(cuts[0].video.len(), 60);
        assert!(cuts[0].video[0].sync && !cuts[0].video[1].sync);
        // The audio of [0 s, 2 s), each packet as long as the gap to the next.
        assert_eq!(cuts[0].audio.len(), 60);
        assert!(cuts[0].audio.iter().all(|a| a.duration == 1600));
        assert_eq!(cuts[1].audio[0].dts, 96_000);
        let last = s.flush().expect("the frame at 4 s is pending");
        assert_eq!(last.video.len(), 1);
        assert!(last.video[0].sync);
    }

    #[test]
    fn a_segment_with_no_keyframe_to_cut_at_is_bounded() {
        let mut s = Segmenter::new(1);
        let big = Sample {
            dts: 0,
            duration: 1,
            sync: true,
            data: bytes::Bytes::from(vec![0; MAX_SEGMENT_BYTES / 2 + 1]),
        };
        s.push_video(big.clone());
        s.push_video(Sample {
            dts: 1,
            sync: false,
            ..big
        });
        assert_eq!(s.dropped, 1);
        assert!(s.flush().is_none());
    }
}
