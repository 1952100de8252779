//! [`Recording`]: one broadcast's recording as a value: it takes the
//! Source's messages (epochs, packets, the publisher's end) and returns
//! what to write and what to tell the control plane ([`Output`]); the
//! driver (`recorder/mod.rs`) does the I/O. Clock passed in.
//!
//! Renditions are the simulcast layers, known by their frame size (a
//! reconnecting publisher's layers continue the renditions of the same
//! size whatever order they arrive in). Each publisher session is a part:
//! its own init segment, a discontinuity in the playlists.
//!
//! Invariants: nothing is written before the first keyframe (then the
//! recording has started); a rendition holds one codec in one container
//! ([`super::codec`]); at most [`MAX_RENDITIONS`] renditions (a
//! publisher that keeps reconnecting at new sizes adds no more); a rendition's init segment is written before
//! its first media segment of a part; playlists list only segments already
//! written, so a crash loses at most the segments being assembled; the
//! segments `index.m3u8` does not list yet span less than half the DVR
//! window, and `live.m3u8` lists them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use str0m::format::Codec;

use super::assemble::{Frame, FrameAssembler};
use super::codec::{Container, FrameReader, TrackConfig};
use super::fmp4::{Sample, AUDIO_TIMESCALE, VIDEO_TIMESCALE};
use super::playlist::{self, Listing, SegmentEntry, Variant};
use super::segmenter::{first_video_duration, Cut, Segmenter};
use super::timeline::TrackClock;
use super::{LayerSummary, RecordingEvent, RecordingSummary};
use crate::core::keyframe::VideoCodec;
use crate::core::{h264_sps, SourcePacket};
use crate::ids::{BroadcastName, SessionId};
use crate::worker::{EpochInfo, TrackRef, MAX_LAYERS};

/// The DVR window unless configured: 30 minutes.
pub const DEFAULT_DVR_WINDOW: Duration = Duration::from_secs(30 * 60);

/// Renditions one recording keeps at most.
pub const MAX_RENDITIONS: usize = 8;

/// What the driver does for a recording.
#[derive(Debug)]
pub enum Output {
    Put {
        path: String,
        data: Bytes,
    },
    /// Decode this keyframe sample into the recording's poster.
    Poster {
        path: String,
        sample: Bytes,
        config: TrackConfig,
    },
    Event(RecordingEvent),
}

#[derive(Debug)]
struct Rendition {
    name: String,
    dims: (u16, u16),
    container: Container,
    /// The latest keyframe's (H264: its SPS/PPS).
    config: Option<TrackConfig>,
    clock: TrackClock,
    segmenter: Segmenter,
    segments: Vec<SegmentEntry>,
    /// The part this rendition was last opened in (at a keyframe).
    init_part: Option<u32>,
    /// The part whose init segment was written (with its first media
    /// segment, when the broadcast's audio is known best).
    init_written: Option<u32>,
    next_seq: u32,
    bytes: u64,
    peak_bps: u64,
    /// Where the last written segment ends (video ticks).
    end_ticks: u64,
    /// Segments the last `index.m3u8` written lists.
    indexed: usize,
}

/// A layer of the current publisher session.
#[derive(Debug)]
struct Layer {
    assembler: FrameAssembler,
    reader: Option<FrameReader>,
    rendition: Option<usize>,
}

#[derive(Debug)]
pub struct Recording {
    pub id: String,
    broadcast: BroadcastName,
    segment_target: Duration,
    /// How far back the playlists reach while recording.
    dvr_window: Duration,
    /// The first keyframe's arrival, and the wall clock then.
    origin: Option<(Instant, SystemTime)>,
    epoch: Option<u32>,
    /// The first publisher session, for the index.
    publisher: Option<SessionId>,
    part: u32,
    part_has_video: bool,
    recordable: bool,
    video_codec: Option<VideoCodec>,
    audio_channels: Option<u16>,
    audio_clock: TrackClock,
    layers: Vec<Layer>,
    renditions: Vec<Rendition>,
    /// When the publisher left (the reconnect grace runs from here).
    pub left_at: Option<Instant>,
    /// Recorded time (video ticks) of the last poster.
    poster_at: Option<u64>,
    frames: Vec<Frame>,
}

impl Recording {
    pub fn new(id: String, broadcast: BroadcastName, segment_target: Duration) -> Self {
        Recording {
            id,
            broadcast,
            segment_target,
            dvr_window: DEFAULT_DVR_WINDOW,
            origin: None,
            epoch: None,
            publisher: None,
            part: 0,
            part_has_video: false,
            recordable: false,
            video_codec: None,
            audio_channels: None,
            audio_clock: TrackClock::new(AUDIO_TIMESCALE),
            layers: Vec::new(),
            renditions: Vec::new(),
            left_at: None,
            poster_at: None,
            frames: Vec::new(),
        }
    }

    /// How far back a live viewer may rewind while this is recording.
    pub fn with_dvr_window(mut self, window: Duration) -> Self {
        self.dvr_window = window;
        self
    }

    pub fn started(&self) -> bool {
        self.origin.is_some()
    }

    /// Recorded time so far, pending samples included (the longest
    /// rendition).
    pub fn seconds(&self) -> f64 {
        self.renditions
            .iter()
            .map(|r| r.seconds() + r.segmenter.pending_ticks() as f64 / f64::from(VIDEO_TIMESCALE))
            .fold(0.0, f64::max)
    }

    /// The next recording of the same publisher session, for when this one
    /// reached its maximum length: it starts at the next keyframe.
    pub fn successor(&self, id: String) -> Recording {
        let mut next = Recording::new(id, self.broadcast.clone(), self.segment_target)
            .with_dvr_window(self.dvr_window);
        next.epoch = self.epoch;
        next.publisher = self.publisher;
        next.recordable = self.recordable;
        next.video_codec = self.video_codec;
        next.audio_channels = self.audio_channels;
        next
    }

    /// The Source announced (or re-announced) its publisher session.
    pub fn on_epoch(
        &mut self,
        info: &EpochInfo,
        publisher: Option<SessionId>,
        out: &mut Vec<Output>,
    ) {
        if !info.live {
            return;
        }
        self.left_at = None;
        self.video_codec = info.video.map(|(codec, _)| codec);
        self.recordable = self.video_codec.is_some_and(super::records);
        let audio = info
            .audio
            .filter(|a| a.codec == Codec::Opus)
            .map(|a| u16::from(a.channels.unwrap_or(2).clamp(1, 2)));
        let gained_audio = self.audio_channels.is_none() && audio.is_some();
        if self.epoch == Some(info.epoch) {
            // The audio showed up after an init segment of this part was
            // written without it: a new part, whose init segments have it.
            let part = self.part;
            if gained_audio && self.renditions.iter().any(|r| r.init_written == Some(part)) {
                self.end_part(out);
            }
            self.audio_channels = audio;
            return;
        }
        self.audio_channels = audio;
        if self.epoch.is_some() {
            self.end_part(out);
        }
        self.epoch = Some(info.epoch);
        if self.publisher.is_none() {
            self.publisher = publisher;
        }
        self.layers.clear();
    }

    /// The publisher left: what is pending is written; the recording may
    /// still continue if it comes back within the grace.
    pub fn on_ended(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.end_part(out);
        self.epoch = None;
        self.left_at = Some(now);
    }

    fn end_part(&mut self, out: &mut Vec<Output>) {
        for i in 0..self.renditions.len() {
            if let Some(cut) = self.renditions[i].segmenter.flush() {
                self.write_segment(i, cut, out);
            }
            let r = &mut self.renditions[i];
            r.clock.new_epoch(r.end_ticks);
        }
        self.audio_clock.new_epoch(0);
        if self.part_has_video {
            self.part += 1;
            self.part_has_video = false;
        }
        self.layers.clear();
    }

    pub fn on_packet(
        &mut self,
        track: TrackRef,
        packet: &Arc<SourcePacket>,
        out: &mut Vec<Output>,
    ) {
        if !self.recordable || self.epoch.is_none() {
            return;
        }
        match track {
            TrackRef::Video { layer } => self.on_video(usize::from(layer), packet, out),
            TrackRef::Audio => self.on_audio(packet),
        }
    }

    fn on_audio(&mut self, packet: &Arc<SourcePacket>) {
        let (Some((origin, _)), Some(_)) = (self.origin, self.audio_channels) else {
            return;
        };
        let dts = self
            .audio_clock
            .decode_time(packet.ts, packet.arrival, origin);
        let data = Bytes::from_owner(packet.payload.clone());
        for l in &self.layers {
            if let Some(r) = l.rendition {
                self.renditions[r].segmenter.push_audio(Sample {
                    dts,
                    duration: 0,
                    sync: true,
                    data: data.clone(),
                });
            }
        }
    }

    fn on_video(&mut self, layer: usize, packet: &Arc<SourcePacket>, out: &mut Vec<Output>) {
        if layer >= MAX_LAYERS {
            return;
        }
        if self.layers.len() <= layer {
            let codec = self.video_codec;
            self.layers.resize_with(layer + 1, || Layer {
                assembler: FrameAssembler::default(),
                reader: codec.and_then(FrameReader::new),
                rendition: None,
            });
        }
        let mut frames = std::mem::take(&mut self.frames);
        self.layers[layer].assembler.push(packet, &mut frames);
        for frame in frames.drain(..) {
            self.on_frame(layer, &frame, out);
        }
        self.frames = frames;
    }

    fn on_frame(&mut self, layer: usize, frame: &Frame, out: &mut Vec<Output>) {
        let Some(first) = frame.packets.first() else {
            return; // the assembler never emits an empty frame
        };
        let Some((data, config)) = self.layers[layer]
            .reader
            .as_mut()
            .and_then(|r| r.read(frame))
        else {
            return;
        };
        let rendition = match self.layers[layer].rendition {
            Some(r) => r,
            None => {
                let Some(config) = &config else {
                    return; // wait for a keyframe (H264: one with its SPS/PPS)
                };
                let dims = first.dimensions.or_else(|| match config {
                    TrackConfig::H264(params) => h264_sps::dimensions(&params.sps),
                    TrackConfig::Vp8 => None,
                });
                let Some(dims) = dims else {
                    return;
                };
                let Some(r) = self.rendition_for(dims, config.container()) else {
                    return;
                };
                self.layers[layer].rendition = Some(r);
                r
            }
        };
        let arrival = first.arrival;
        if self.origin.is_none() {
            let wall = SystemTime::now()
                .checked_sub(Instant::now().saturating_duration_since(arrival))
                .unwrap_or_else(SystemTime::now);
            self.origin = Some((arrival, wall));
            out.push(Output::Event(RecordingEvent::Started {
                id: self.id.clone(),
                broadcast: self.broadcast.as_str().to_string(),
                publisher: self.publisher,
                started_at: wall,
            }));
        }
        let (origin, _) = self.origin.expect("set above");
        let part = self.part;
        let r = &mut self.renditions[rendition];
        if let Some(c) = config.filter(|c| c.container() == r.container) {
            r.config = Some(c);
        }
        if r.init_part != Some(part) {
            // A part of a rendition starts at a keyframe.
            if r.config.is_none() || !frame.keyframe {
                return;
            }
            r.init_part = Some(part);
        }
        let dts = r.clock.decode_time(frame.ts, arrival, origin);
        self.part_has_video = true;
        let cut = r.segmenter.push_video(Sample {
            dts,
            duration: first_video_duration(),
            sync: frame.keyframe,
            data: data.into(),
        });
        if let Some(cut) = cut {
            self.write_segment(rendition, cut, out);
        }
    }

    /// The rendition of this frame size and container not yet fed by
    /// another layer of this session, or a new one (none past
    /// [`MAX_RENDITIONS`]).
    fn rendition_for(&mut self, dims: (u16, u16), container: Container) -> Option<usize> {
        let taken: Vec<usize> = self.layers.iter().filter_map(|l| l.rendition).collect();
        if let Some(i) = (0..self.renditions.len()).find(|&i| {
            let r = &self.renditions[i];
            r.dims == dims && r.container == container && !taken.contains(&i)
        }) {
            return Some(i);
        }
        if self.renditions.len() >= MAX_RENDITIONS {
            return None;
        }
        let base = format!("{}p", dims.1);
        let mut name = base.clone();
        let mut n = 2;
        while self.renditions.iter().any(|r| r.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.renditions.push(Rendition {
            name,
            dims,
            container,
            config: None,
            clock: TrackClock::new(VIDEO_TIMESCALE),
            segmenter: Segmenter::new(
                (self.segment_target.as_secs_f64() * f64::from(VIDEO_TIMESCALE)) as u64,
            ),
            segments: Vec::new(),
            init_part: None,
            init_written: None,
            next_seq: 0,
            bytes: 0,
            peak_bps: 0,
            end_ticks: 0,
            indexed: 0,
        });
        Some(self.renditions.len() - 1)
    }

    fn write_segment(&mut self, rendition: usize, cut: Cut, out: &mut Vec<Output>) {
        let (Some((_, wall)), Some(head)) = (self.origin, cut.video.first()) else {
            return; // a cut always starts with its keyframe
        };
        let (head_dts, keyframe) = (head.dts, head.data.clone());
        let part = self.part;
        let r = &mut self.renditions[rendition];
        let seq = r.next_seq;
        let Some(config) = &r.config else {
            return; // set by the keyframe that opened the rendition
        };
        let data = match config.media_segment(seq, &cut.video, &cut.audio) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(recording = %self.id, "media segment: {e}");
                return;
            }
        };
        if r.init_written != Some(part) {
            match config.init_segment(r.dims, self.audio_channels) {
                Ok(init) => out.push(Output::Put {
                    path: format!("{}/{}/{}", self.id, r.name, r.container.init_file(part)),
                    data: init.into(),
                }),
                Err(e) => {
                    tracing::warn!(recording = %self.id, "init segment: {e}");
                    return;
                }
            }
            r.init_written = Some(part);
        }
        r.next_seq += 1;
        r.end_ticks = head_dts + cut.duration();
        let seconds = cut.duration() as f64 / f64::from(VIDEO_TIMESCALE);
        let start = head_dts as f64 / f64::from(VIDEO_TIMESCALE);
        let file = r.container.segment_file(seq);
        let bytes = data.len() as u64;
        r.bytes += bytes;
        if seconds > 0.5 {
            r.peak_bps = r.peak_bps.max((bytes as f64 * 8.0 / seconds) as u64);
        }
        r.segments.push(SegmentEntry {
            part,
            init: r.container.init_file(part),
            file: file.clone(),
            seconds,
            bytes,
            starts: wall + Duration::from_secs_f64(start),
        });
        let first = r.segments.len() == 1;
        out.push(Output::Put {
            path: format!("{}/{}/{file}", self.id, r.name),
            data: data.into(),
        });
        // The complete playlist only every half window of recorded time
        // (rewriting it each segment would write the square of the
        // recording's length); what it lacks is less than half the window,
        // so the live window (at least the whole window) lists it, and a
        // restart merges the two (`closing`).
        let unindexed: f64 = r.segments[r.indexed..].iter().map(|s| s.seconds).sum();
        if r.indexed == 0 || unindexed >= self.dvr_window.as_secs_f64() / 2.0 {
            out.push(Output::Put {
                path: format!("{}/{}/index.m3u8", self.id, r.name),
                data: playlist::media_playlist(&r.segments, Listing::Growing).into(),
            });
            r.indexed = r.segments.len();
        }
        out.push(Output::Put {
            path: format!("{}/{}/live.m3u8", self.id, r.name),
            data: playlist::media_playlist(&r.segments, Listing::Window(self.dvr_window)).into(),
        });
        if first {
            out.push(self.master(false));
        }
        self.maybe_poster(rendition, keyframe, head_dts, out);
        out.push(Output::Event(RecordingEvent::Progress(self.summary())));
    }

    /// A new poster from the smallest rendition's segment that starts at
    /// `at`, when none was made in the last [`super::poster::POSTER_EVERY`].
    fn maybe_poster(&mut self, rendition: usize, keyframe: Bytes, at: u64, out: &mut Vec<Output>) {
        let area = |r: &Rendition| u32::from(r.dims.0) * u32::from(r.dims.1);
        let smallest = self.renditions.iter().map(area).min();
        let r = &self.renditions[rendition];
        let every = super::poster::POSTER_EVERY.as_secs() * u64::from(VIDEO_TIMESCALE);
        let due = self
            .poster_at
            .is_none_or(|last| at >= last + every || at < last);
        let Some(config) = r.config.clone() else {
            return;
        };
        if smallest == Some(area(r)) && due {
            self.poster_at = Some(at);
            out.push(Output::Poster {
                path: format!("{}/poster.jpg", self.id),
                sample: keyframe,
                config,
            });
        }
    }

    /// A rendition's RFC 6381 codecs, audio included.
    fn codecs(&self, r: &Rendition) -> String {
        let video = r
            .config
            .as_ref()
            .map_or("avc1.42e01f".into(), TrackConfig::codec_string);
        match self.audio_channels {
            Some(_) => format!("{video},opus"),
            None => video,
        }
    }

    fn master(&self, ended: bool) -> Output {
        let mut variants: Vec<Variant> = self
            .renditions
            .iter()
            .filter(|r| !r.segments.is_empty())
            .map(|r| Variant {
                name: r.name.clone(),
                peak_bps: r.peak_bps.max(r.average_bps()),
                average_bps: r.average_bps(),
                width: r.dims.0,
                height: r.dims.1,
                codecs: self.codecs(r),
            })
            .collect();
        // Largest first: players that take the first variant start high.
        variants.sort_by_key(|v| std::cmp::Reverse(u32::from(v.width) * u32::from(v.height)));
        Output::Put {
            path: format!("{}/master.m3u8", self.id),
            data: playlist::master_playlist(&variants, ended).into(),
        }
    }

    pub fn summary(&self) -> RecordingSummary {
        let mut layers: Vec<LayerSummary> = self
            .renditions
            .iter()
            .filter(|r| !r.segments.is_empty())
            .map(|r| LayerSummary {
                name: r.name.clone(),
                width: r.dims.0,
                height: r.dims.1,
                codecs: self.codecs(r),
                bytes: r.bytes,
                bitrate_bps: r.average_bps(),
                segments: r.segments.len(),
                seconds: r.seconds(),
            })
            .collect();
        layers.sort_by_key(|l| std::cmp::Reverse(u32::from(l.width) * u32::from(l.height)));
        RecordingSummary {
            id: self.id.clone(),
            seconds: layers.iter().map(|l| l.seconds).fold(0.0, f64::max),
            layers,
        }
    }

    /// The recording is over: pending segments written, playlists closed.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        self.end_part(out);
        if !self.renditions.iter().any(|r| !r.segments.is_empty()) {
            if self.started() {
                out.push(Output::Event(RecordingEvent::Discarded {
                    id: self.id.clone(),
                }));
            }
            return;
        }
        for r in &self.renditions {
            if !r.segments.is_empty() {
                // Both: a viewer still on `live.m3u8` sees the end too.
                let done = Bytes::from(playlist::media_playlist(&r.segments, Listing::Ended));
                for file in ["index.m3u8", "live.m3u8"] {
                    out.push(Output::Put {
                        path: format!("{}/{}/{file}", self.id, r.name),
                        data: done.clone(),
                    });
                }
            }
        }
        out.push(self.master(true));
        out.push(Output::Event(RecordingEvent::Finished(self.summary())));
    }
}

impl Rendition {
    fn seconds(&self) -> f64 {
        self.segments.iter().map(|s| s.seconds).sum()
    }

    fn average_bps(&self) -> u64 {
        let s = self.seconds();
        if s > 0.0 {
            (self.bytes as f64 * 8.0 / s) as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
