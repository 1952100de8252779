//! Tests of [`Recording`](super::Recording): the state machine by table, and
//! the driver's maximum-length roll-over.

use std::time::Duration;

use str0m::format::CodecSpec;
use str0m::media::Frequency;

use super::*;
use crate::core::keyframe::VideoCodec;

const SPS: [u8; 9] = [0x67, 0x42, 0xe0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5];
const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

pub(super) fn epoch(n: u32) -> EpochInfo {
    EpochInfo {
        epoch: n,
        live: true,
        expected_layers: 1,
        video: Some((
            VideoCodec::H264,
            CodecSpec {
                codec: Codec::H264,
                clock_rate: Frequency::NINETY_KHZ,
                channels: None,
                format: Default::default(),
            },
        )),
        audio: Some(CodecSpec {
            codec: Codec::Opus,
            clock_rate: Frequency::FORTY_EIGHT_KHZ,
            channels: Some(2),
            format: Default::default(),
        }),
        controllable: false,
        paused: 0,
    }
}

/// Frame `n` of a 30 fps stream (a keyframe every 30 frames) as one
/// packet: a STAP-A with SPS, PPS and an IDR slice, or a P slice.
pub(super) fn frame(n: u64, dims: (u16, u16), t0: Instant) -> Arc<SourcePacket> {
    let key = n % 30 == 0;
    let payload = if key {
        let mut p = vec![0x18, 0, SPS.len() as u8];
        p.extend_from_slice(&SPS);
        p.extend_from_slice(&[0, PPS.len() as u8]);
        p.extend_from_slice(&PPS);
        p.extend_from_slice(&[0, 3, 0x65, 0x88, 0x84]);
        p
    } else {
        vec![0x41, 0x9a, n as u8]
    };
    frame_packet(n, payload, dims, t0)
}

/// Frame `n` of a 30 fps stream (a keyframe every 30 frames) as one
/// packet carrying `payload`.
fn frame_packet(n: u64, payload: Vec<u8>, dims: (u16, u16), t0: Instant) -> Arc<SourcePacket> {
    let key = n % 30 == 0;
    Arc::new(SourcePacket {
        seq: 1000 + n,
        ts: (n * 3000) as u32,
        marker: true,
        ext: Default::default(),
        payload: Arc::from(payload),
        arrival: t0 + Duration::from_millis(n * 1000 / 30),
        keyframe_start: key,
        vp8: None,
        dimensions: key.then_some(dims),
    })
}

/// Recording `v1` of broadcast `live`, cut every 2 s.
fn recording() -> Recording {
    Recording::new(
        "v1".into(),
        BroadcastName::new("live"),
        Duration::from_secs(2),
    )
}

fn puts(out: &[Output]) -> Vec<&str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Put { path, .. } => Some(path.rsplit_once('/').map_or(path.as_str(), |p| p.1)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_session_becomes_init_then_keyframe_cut_segments_listed_after_they_are_written() {
    let t0 = Instant::now();
    let mut r = recording();
    let mut out = Vec::new();
    r.on_epoch(&epoch(1), None, &mut out);
    for n in 0..=90 {
        r.on_packet(
            TrackRef::Video { layer: 0 },
            &frame(n, (320, 180), t0),
            &mut out,
        );
    }
    // Started, init, then at 2 s (frame 60) the first segment, its
    // playlist and the master; the keyframes at 1 s and 3 s were too
    // early to cut at.
    assert!(matches!(
        out[0],
        Output::Event(RecordingEvent::Started { .. })
    ));
    assert_eq!(
        puts(&out),
        [
            "init-0.mp4",
            "seg-0.m4s",
            "index.m3u8",
            "live.m3u8",
            "master.m3u8"
        ]
    );
    assert!(out.iter().any(|o| matches!(o, Output::Poster { .. })));
    let mut end = Vec::new();
    r.finish(&mut end);
    assert_eq!(
        puts(&end),
        [
            // The complete playlist waits for half the DVR window.
            "seg-1.m4s",
            "live.m3u8",
            "index.m3u8",
            "live.m3u8",
            "master.m3u8"
        ]
    );
    let Some(Output::Event(RecordingEvent::Finished(summary))) = end.last() else {
        panic!("finishing reports the summary last");
    };
    assert_eq!(summary.layers[0].name, "180p");
    assert_eq!(summary.layers[0].segments, 2);
    assert!(
        (summary.seconds - 91.0 / 30.0).abs() < 0.01,
        "{}",
        summary.seconds
    );
}

#[test]
fn renditions_are_bounded_whatever_a_publisher_reconnects_with() {
    let t0 = Instant::now();
    let mut r = recording();
    let mut out = Vec::new();
    for e in 0..(MAX_RENDITIONS as u32 + 4) {
        r.on_epoch(&epoch(e + 1), None, &mut out);
        let dims = (320 + 16 * e as u16, 180);
        r.on_packet(TrackRef::Video { layer: 0 }, &frame(0, dims, t0), &mut out);
    }
    assert_eq!(r.renditions.len(), MAX_RENDITIONS);
}

mod driver {
    use std::time::Duration;

    use object_store::memory::InMemory;

    use super::super::*;
    use super::{epoch, frame};
    use crate::metrics::Metrics;
    use crate::recorder::{spawn, RecorderConfig, Tapped};
    use crate::worker::Downstream;

    #[tokio::test]
    async fn a_recording_past_its_maximum_length_is_finished_and_the_broadcast_goes_on_in_a_new_one(
    ) {
        let (events_tx, mut events) = tokio::sync::mpsc::channel(256);
        let config = RecorderConfig {
            segment_target: Duration::from_secs(1),
            max_length: Duration::from_secs(2),
            ..RecorderConfig::default()
        };
        let (tap, task) = spawn(Arc::new(InMemory::new()), config, events_tx);
        let metrics = Metrics::default();
        let send = |msg| {
            tap.offer(
                Tapped {
                    broadcast: BroadcastName::new("live"),
                    publisher: None,
                    msg,
                },
                &metrics,
            )
        };
        send(Downstream::Epoch(Arc::new(epoch(1))));
        let t0 = Instant::now();
        for n in 0..=150 {
            send(Downstream::Packet(
                TrackRef::Video { layer: 0 },
                frame(n, (320, 180), t0),
            ));
        }
        drop(tap);
        task.await
            .expect("the recorder ends when its taps are gone");
        let mut started = Vec::new();
        let mut finished = Vec::new();
        while let Ok(e) = events.try_recv() {
            match e {
                RecordingEvent::Started { id, .. } => started.push(id),
                RecordingEvent::Finished(s) => finished.push((s.id, s.seconds)),
                _ => {}
            }
        }
        // 5 s of video in recordings of at most 2 s (cut at 1 s keyframes).
        assert_eq!(started.len(), 3, "{started:?}");
        assert_eq!(finished.len(), 3);
        assert!(
            finished.iter().all(|(_, s)| *s <= 2.0 + 1e-6),
            "{finished:?}"
        );
        assert!(
            finished.iter().map(|(_, s)| s).sum::<f64>() >= 4.0,
            "{finished:?}"
        );
    }
}

fn vp8_epoch(n: u32) -> EpochInfo {
    let mut e = epoch(n);
    e.video = Some((
        VideoCodec::Vp8,
        CodecSpec {
            codec: Codec::Vp8,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: Default::default(),
        },
    ));
    e
}

/// Frame `n` of a 30 fps VP8 stream (a keyframe every 30 frames) as one
/// packet: a payload descriptor (S=1) and the frame's first bytes.
fn vp8_frame(n: u64, (w, h): (u16, u16), t0: Instant) -> Arc<SourcePacket> {
    let key = n % 30 == 0;
    let mut payload = vec![0x10];
    if key {
        payload.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
        payload.extend_from_slice(&w.to_le_bytes());
        payload.extend_from_slice(&h.to_le_bytes());
    } else {
        payload.extend_from_slice(&[0x31, 0x01, 0x00, n as u8]);
    }
    frame_packet(n, payload, (w, h), t0)
}

#[test]
fn a_vp8_session_is_recorded_as_webm_and_an_h264_one_of_the_same_size_is_another_rendition() {
    let t0 = Instant::now();
    let mut r = recording();
    let mut out = Vec::new();
    r.on_epoch(&vp8_epoch(1), None, &mut out);
    for n in 0..=60 {
        let p = vp8_frame(n, (320, 180), t0);
        r.on_packet(TrackRef::Video { layer: 0 }, &p, &mut out);
    }
    assert_eq!(
        puts(&out),
        [
            "init-0.webm",
            "seg-0.webm",
            "index.m3u8",
            "live.m3u8",
            "master.m3u8"
        ]
    );
    let master = out.iter().find_map(|o| match o {
        Output::Put { path, data } if path.ends_with("master.m3u8") => {
            Some(String::from_utf8_lossy(data).into_owned())
        }
        _ => None,
    });
    assert!(master.is_some_and(|m| m.contains("CODECS=\"vp8,opus\"")));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Poster {
            config: TrackConfig::Vp8,
            ..
        }
    )));
    // The publisher comes back in H264 at the same size: fMP4 cannot
    // continue a WebM rendition, so it is a rendition of its own.
    r.on_epoch(&epoch(2), None, &mut out);
    for n in 0..=60 {
        r.on_packet(
            TrackRef::Video { layer: 0 },
            &frame(n, (320, 180), t0),
            &mut out,
        );
    }
    let mut end = Vec::new();
    r.finish(&mut end);
    let Some(Output::Event(RecordingEvent::Finished(summary))) = end.last() else {
        panic!("finishing reports the summary last");
    };
    let renditions: Vec<(&str, &str)> = summary
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.codecs.as_str()))
        .collect();
    assert_eq!(
        renditions,
        [("180p", "vp8,opus"), ("180p-2", "avc1.42e01e,opus")]
    );
}

#[test]
fn the_complete_playlist_is_rewritten_every_half_window_and_the_live_one_every_segment() {
    let t0 = Instant::now();
    let mut r = recording().with_dvr_window(Duration::from_secs(10));
    let mut out = Vec::new();
    r.on_epoch(&epoch(1), None, &mut out);
    // 2 s segments (a keyframe every second, cut every 2 s): 10 of them.
    for n in 0..=630 {
        r.on_packet(
            TrackRef::Video { layer: 0 },
            &frame(n, (320, 180), t0),
            &mut out,
        );
    }
    let files = puts(&out);
    let count = |name: &str| files.iter().filter(|f| **f == name).count();
    let segments = files.iter().filter(|f| f.ends_with(".m4s")).count();
    assert_eq!(segments, 10);
    assert_eq!(count("live.m3u8"), segments);
    // The first segment, then each time 5 s (half the window) are unlisted:
    // after segments 1, 4, 7 and 10.
    assert_eq!(count("index.m3u8"), 4, "{files:?}");
}

#[test]
fn audio_known_only_after_an_init_segment_was_written_starts_a_part_whose_init_has_it() {
    let t0 = Instant::now();
    let mut r = recording();
    let mut out = Vec::new();
    let mut silent = epoch(1);
    silent.audio = None;
    r.on_epoch(&silent, None, &mut out);
    for n in 0..=60 {
        r.on_packet(
            TrackRef::Video { layer: 0 },
            &frame(n, (320, 180), t0),
            &mut out,
        );
    }
    // The same session, now with its audio.
    r.on_epoch(&epoch(1), None, &mut out);
    for n in 61..=150 {
        r.on_packet(
            TrackRef::Video { layer: 0 },
            &frame(n, (320, 180), t0),
            &mut out,
        );
    }
    r.finish(&mut out);
    let inits: Vec<(&str, bool)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Put { path, data } if path.contains("/init-") => Some((
                path.rsplit('/').next().unwrap_or_default(),
                data.windows(4).any(|w| w == b"Opus"),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(inits, [("init-0.mp4", false), ("init-1.mp4", true)]);
}
