//! Recording at ingest: every broadcast becomes an on-demand video with one
//! HLS rendition per simulcast layer, without transcoding.
//!
//! The worker that owns a broadcast's Source offers each of its messages
//! (epochs, packets, the publisher's end) to the [`RecorderTap`], a bounded
//! channel: when the recorder cannot keep up the message is dropped and
//! counted (`DropReason::RecorderBackpressure`), ingest never waits. The
//! recorder is one task off the media threads: it reassembles frames
//! ([`assemble`]), cuts keyframe-aligned CMAF segments ([`segmenter`],
//! [`fmp4`]) and writes them with their playlists ([`playlist`]) to an
//! `object_store` (the data dir, or S3-compatible storage shared by
//! nodes). The control plane hears of each recording through
//! [`RecordingEvent`]s and keeps the index.
//!
//! Codecs: H264 (what OBS sends) in fragmented MP4 and VP8 (what browsers
//! send by default) in WebM ([`codec`]), each with Opus audio. Broadcasts
//! in other video codecs (VP9, AV1, HEVC) are not recorded yet.
//!
//! Invariants: the media path's only cost is one `try_send` of an `Arc`;
//! writes of one recording happen in order (segment, then the playlist
//! that lists it); a publisher that reconnects within
//! [`RecorderConfig::reconnect_grace`] continues the same recording.

mod assemble;
mod closing;
mod codec;
mod download_webm;
mod fmp4;
mod h264;
mod playlist;
mod poster;
mod progressive;
mod recording;
mod repair;
mod segmenter;
mod timeline;
mod webm;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ids::{BroadcastName, SessionId};
use crate::metrics::{DropReason, Metrics};
use crate::worker::Downstream;
pub use playlist::rfc3339;
pub use progressive::{progressive, Progressive, ProgressiveError};
use recording::{Output, Recording};
pub use repair::close_playlists;

/// Settings of the recorder (all documented in the configuration).
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Segments are cut at the first keyframe at least this long after the
    /// previous cut.
    pub segment_target: Duration,
    /// A publisher back within this long continues the same recording.
    pub reconnect_grace: Duration,
    /// Messages waiting for the recorder at most; more are dropped.
    pub queue: usize,
    /// A recording this long is finished and the broadcast goes on in a
    /// new one (bounds a 24/7 channel's playlists).
    pub max_length: Duration,
    /// How far back a live viewer may rewind a recording in progress.
    pub dvr_window: Duration,
    /// A recorded layer whose last keyframe is this old is asked for one
    /// (a browser sends keyframes only when asked; zero: never ask).
    pub keyframe_interval: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            segment_target: Duration::from_secs(2),
            reconnect_grace: Duration::from_secs(30),
            queue: 8192,
            max_length: Duration::from_secs(12 * 3600),
            dvr_window: recording::DEFAULT_DVR_WINDOW,
            keyframe_interval: Duration::from_secs(4),
        }
    }
}

/// One rendition of a recording, as the index keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSummary {
    /// Its directory and name in the master playlist (`720p`).
    pub name: String,
    pub width: u16,
    pub height: u16,
    /// RFC 6381 codecs, as in the master playlist (`vp8,opus`); empty
    /// when unknown (a rendition a restart found).
    pub codecs: String,
    pub bytes: u64,
    pub bitrate_bps: u64,
    pub segments: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSummary {
    pub id: String,
    pub seconds: f64,
    pub layers: Vec<LayerSummary>,
}

/// What the control plane hears of recordings.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordingEvent {
    /// The first keyframe arrived: the recording exists.
    Started {
        id: String,
        broadcast: String,
        publisher: Option<SessionId>,
        started_at: SystemTime,
    },
    /// A segment was written.
    Progress(RecordingSummary),
    /// Done: every playlist is closed.
    Finished(RecordingSummary),
    /// It started but never wrote a segment; nothing is kept.
    Discarded { id: String },
}

/// A Source's message on its way to the recorder.
#[derive(Debug)]
pub(crate) struct Tapped {
    pub broadcast: BroadcastName,
    pub publisher: Option<SessionId>,
    pub msg: Downstream,
}

/// The workers' side of the recorder's queue.
#[derive(Clone, Debug)]
pub struct RecorderTap {
    tx: mpsc::Sender<Tapped>,
    /// [`RecorderConfig::keyframe_interval`], which the workers apply.
    pub(crate) keyframe_interval: Duration,
}

impl RecorderTap {
    /// Never waits: a full queue drops the message and counts it.
    pub(crate) fn offer(&self, msg: Tapped, metrics: &Metrics) {
        if self.tx.try_send(msg).is_err() {
            metrics.count_drop(DropReason::RecorderBackpressure);
        }
    }
}

/// Whether broadcasts in this video codec are recorded (their layers are
/// then never paused at the publisher).
pub fn records(codec: crate::core::keyframe::VideoCodec) -> bool {
    use crate::core::keyframe::VideoCodec;
    matches!(codec, VideoCodec::H264 | VideoCodec::Vp8)
}

/// The recorder's handling of one frame of a single packet carrying
/// `payload`, for fuzzing: both depacketizers, the segment of each
/// container, a VP8 keyframe's poster.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_frame(payload: &[u8]) {
    use crate::core::keyframe::VideoCodec;
    let frame = assemble::Frame {
        ts: 0,
        keyframe: true,
        packets: vec![std::sync::Arc::new(crate::core::SourcePacket {
            seq: 0,
            ts: 0,
            marker: true,
            ext: Default::default(),
            payload: std::sync::Arc::from(payload),
            arrival: Instant::now(),
            keyframe_start: true,
            vp8: None,
            dimensions: None,
        })],
    };
    for codec in [VideoCodec::H264, VideoCodec::Vp8] {
        let Some((data, config)) = codec::FrameReader::new(codec).and_then(|mut r| r.read(&frame))
        else {
            continue;
        };
        let sample = fmp4::Sample {
            dts: 0,
            duration: 3000,
            sync: true,
            data: data.clone().into(),
        };
        if let Some(config) = config {
            let _ = config.init_segment((640, 360), Some(2));
            let _ = config.media_segment(0, &[sample], &[]);
            if config == codec::TrackConfig::Vp8 {
                let _ = poster::poster_jpeg(&data, &config);
            }
        }
    }
}

/// A fresh recording id: `v` and 32 hex digits (128 random bits), longer
/// than any channel name so `/watch/{id}` cannot be mistaken for a stream.
pub fn new_recording_id() -> String {
    format!("v{:032x}", SessionId::random().0)
}

/// Starts the recorder task; it ends (finishing every recording) once
/// every tap is dropped.
pub fn spawn(
    store: Arc<dyn ObjectStore>,
    config: RecorderConfig,
    events: mpsc::Sender<RecordingEvent>,
) -> (RecorderTap, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.queue.max(16));
    let tap = RecorderTap {
        tx,
        keyframe_interval: config.keyframe_interval,
    };
    let driver = Driver {
        store,
        config,
        events,
        recordings: HashMap::new(),
        out: Vec::new(),
        failed_writes: 0,
    };
    (tap, tokio::spawn(driver.run(rx)))
}

struct Driver {
    store: Arc<dyn ObjectStore>,
    config: RecorderConfig,
    events: mpsc::Sender<RecordingEvent>,
    recordings: HashMap<BroadcastName, Recording>,
    out: Vec<Output>,
    failed_writes: u64,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Tapped>) {
        loop {
            let grace_ends = self
                .recordings
                .values()
                .filter_map(|r| r.left_at)
                .min()
                .map(|t| t + self.config.reconnect_grace);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(t) => self.on_message(t),
                    None => break,
                },
                _ = sleep_until(grace_ends), if grace_ends.is_some() => self.expire(Instant::now()),
            }
            self.apply().await;
        }
        for (_, mut r) in self.recordings.drain() {
            r.finish(&mut self.out);
        }
        self.apply().await;
    }

    fn on_message(&mut self, t: Tapped) {
        let (target, window) = (self.config.segment_target, self.config.dvr_window);
        match t.msg {
            Downstream::Epoch(info) => {
                if !info.live {
                    return;
                }
                let r = self
                    .recordings
                    .entry(t.broadcast.clone())
                    .or_insert_with(|| {
                        Recording::new(new_recording_id(), t.broadcast, target)
                            .with_dvr_window(window)
                    });
                r.on_epoch(&info, t.publisher, &mut self.out);
            }
            Downstream::Packet(track, packet) => {
                let max = self.config.max_length.as_secs_f64();
                if let Some(r) = self.recordings.get_mut(&t.broadcast) {
                    // At a keyframe that would go past the maximum length,
                    // the recording ends and this keyframe starts the next.
                    let video = matches!(track, crate::worker::TrackRef::Video { .. });
                    if video && packet.keyframe_start && r.seconds() >= max {
                        let next = r.successor(new_recording_id());
                        let mut done = std::mem::replace(r, next);
                        done.finish(&mut self.out);
                    }
                    r.on_packet(track, &packet, &mut self.out);
                }
            }
            Downstream::Ended => {
                if let Some(r) = self.recordings.get_mut(&t.broadcast) {
                    r.on_ended(Instant::now(), &mut self.out);
                }
            }
        }
    }

    /// Recordings whose publisher did not come back in time are finished.
    fn expire(&mut self, now: Instant) {
        let grace = self.config.reconnect_grace;
        let done: Vec<BroadcastName> = self
            .recordings
            .iter()
            .filter(|(_, r)| {
                r.left_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= grace)
            })
            .map(|(b, _)| b.clone())
            .collect();
        for b in done {
            if let Some(mut r) = self.recordings.remove(&b) {
                r.finish(&mut self.out);
            }
        }
    }

    async fn apply(&mut self) {
        for output in std::mem::take(&mut self.out) {
            match output {
                Output::Put { path, data } => {
                    let payload = PutPayload::from_bytes(data);
                    if let Err(e) = self.store.put(&Path::from(path.as_str()), payload).await {
                        self.failed_writes += 1;
                        if self.failed_writes.is_power_of_two() {
                            tracing::warn!(
                                failed = self.failed_writes,
                                "recording write {path}: {e}"
                            );
                        }
                    }
                }
                Output::Poster {
                    path,
                    sample,
                    config,
                } => {
                    let jpeg =
                        tokio::task::spawn_blocking(move || poster::poster_jpeg(&sample, &config))
                            .await
                            .ok()
                            .flatten();
                    if let Some(jpeg) = jpeg {
                        let payload = PutPayload::from(jpeg);
                        if let Err(e) = self.store.put(&Path::from(path.as_str()), payload).await {
                            tracing::warn!("poster {path}: {e}");
                        }
                    }
                }
                Output::Event(e) => {
                    if self.events.send(e).await.is_err() {
                        // The control plane is gone (shutting down): the
                        // files are still written; the index is repaired
                        // at the next start.
                    }
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_that_falls_behind_costs_the_tap_a_counted_drop_never_a_wait() {
        // Nobody drains this queue: a recorder stuck on a slow disk.
        let (tx, _stuck) = mpsc::channel(16);
        let tap = RecorderTap {
            tx,
            keyframe_interval: Duration::ZERO,
        };
        let metrics = Metrics::default();
        for _ in 0..100 {
            tap.offer(
                Tapped {
                    broadcast: BroadcastName::new("live"),
                    publisher: None,
                    msg: Downstream::Ended,
                },
                &metrics,
            );
        }
        assert_eq!(metrics.drops(DropReason::RecorderBackpressure), 84);
    }
}
