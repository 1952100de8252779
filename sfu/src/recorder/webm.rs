//! WebM for one VP8 rendition, the container Chromium's Media Source
//! Extensions play VP8 in (they refuse `vp08` in MP4): an init segment
//! (EBML header, a `Segment` of unknown size, `Info`, `Tracks` with a VP8
//! track and, when the broadcast has audio, an Opus track) and media
//! segments of `Cluster`s, the WebM byte stream format of MSE. The EBML
//! elements are encoded by the `webm-iterable` crate; this module only
//! chooses them.
//!
//! Invariants: track 1 is video, track 2 audio; timestamps are
//! milliseconds (`TimestampScale` 1,000,000 ns) on the recording's
//! timeline, so segments of one rendition play one after another in any
//! order they are appended; every media segment starts with a cluster whose
//! first block is a video keyframe; a block's timestamp relative to its
//! cluster always fits in 16 bits (a longer segment is split into several
//! clusters).

use webm_iterable::errors::TagWriterError;
use webm_iterable::matroska_spec::{Master, MatroskaSpec as M, SimpleBlock};
use webm_iterable::{WebmWriter, WriteOptions};

use super::fmp4::{Sample, AUDIO_TIMESCALE, AUDIO_TRACK, VIDEO_TIMESCALE, VIDEO_TRACK};

/// Segment-level element ids the download writes around the clusters.
pub const SEGMENT_ID: u32 = 0x1853_8067;
pub const INFO_ID: u32 = 0x1549_A966;
pub const TRACKS_ID: u32 = 0x1654_AE6B;
pub const CUES_ID: u32 = 0x1C53_BB6B;

/// A cluster spans at most this much (well inside the ±32.767 s a block's
/// 16-bit relative timestamp reaches).
const CLUSTER_SPAN_MS: u64 = 30_000;
/// A `Segment` id (4 bytes) and the 8-byte unknown size the writer puts
/// before the clusters of a media segment.
const UNKNOWN_SEGMENT_HEADER: usize = 12;
/// RFC 7845's pre-skip at 48 kHz (what WebRTC's Opus encoder uses), as the
/// Opus track's codec delay; and the pre-roll a decoder needs after a seek.
const OPUS_PRE_SKIP: u16 = 312;
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

#[derive(Debug, thiserror::Error)]
#[error("webm encoding: {0}")]
pub struct WebmError(#[from] TagWriterError);

fn full(children: Vec<M>) -> Master<M> {
    Master::Full(children)
}

/// The EBML header every WebM file starts with.
pub fn ebml_header() -> M {
    M::Ebml(full(vec![
        M::EbmlVersion(1),
        M::EbmlReadVersion(1),
        M::EbmlMaxIdLength(4),
        M::EbmlMaxSizeLength(8),
        M::DocType("webm".into()),
        M::DocTypeVersion(4),
        M::DocTypeReadVersion(2),
    ]))
}

/// `Info`: millisecond timestamps; `duration_ms` for a finished file.
pub fn info(duration_ms: Option<f64>) -> M {
    let mut children = vec![
        M::TimestampScale(1_000_000),
        M::MuxingApp("relaycast".into()),
        M::WritingApp("relaycast".into()),
    ];
    if let Some(d) = duration_ms {
        children.push(M::Duration(d));
    }
    M::Info(full(children))
}

fn tracks((width, height): (u16, u16), audio_channels: Option<u16>) -> M {
    let mut entries = vec![M::TrackEntry(full(vec![
        M::TrackNumber(u64::from(VIDEO_TRACK)),
        M::TrackUID(u64::from(VIDEO_TRACK)),
        M::TrackType(1),
        M::CodecID("V_VP8".into()),
        M::Video(full(vec![
            M::PixelWidth(u64::from(width)),
            M::PixelHeight(u64::from(height)),
        ])),
    ]))];
    if let Some(channels) = audio_channels {
        entries.push(M::TrackEntry(full(vec![
            M::TrackNumber(u64::from(AUDIO_TRACK)),
            M::TrackUID(u64::from(AUDIO_TRACK)),
            M::TrackType(2),
            M::CodecID("A_OPUS".into()),
            M::CodecPrivate(opus_head(channels)),
            M::CodecDelay(u64::from(OPUS_PRE_SKIP) * 1_000_000_000 / u64::from(AUDIO_TIMESCALE)),
            M::SeekPreRoll(OPUS_SEEK_PRE_ROLL_NS),
            M::Audio(full(vec![
                M::SamplingFrequency(f64::from(AUDIO_TIMESCALE)),
                M::Channels(u64::from(channels)),
            ])),
        ])));
    }
    M::Tracks(full(entries))
}

/// RFC 7845 §5.1 identification header: what WebM's Opus `CodecPrivate`
/// holds (channel mapping family 0: mono or stereo).
fn opus_head(channels: u16) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1);
    head.push(channels as u8);
    head.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&AUDIO_TIMESCALE.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// The init segment of a rendition: everything before the first cluster,
/// in a `Segment` of unknown size (a live stream's, which MSE accepts).
pub fn init_segment(dims: (u16, u16), audio_channels: Option<u16>) -> Result<Vec<u8>, WebmError> {
    let mut w = WebmWriter::new(Vec::with_capacity(256));
    w.write(&ebml_header())?;
    w.write_advanced(
        &M::Segment(Master::Start),
        WriteOptions::is_unknown_sized_element(),
    )?;
    w.write(&info(None))?;
    w.write(&tracks(dims, audio_channels))?;
    w.flush()?;
    Ok(w.into_inner()?)
}

/// The `Tracks` element of an init segment written by [`init_segment`]
/// (for the download's header): the bytes from its id to its end.
pub fn tracks_of(init: &[u8]) -> Option<&[u8]> {
    let mut at = element(init, 0)?.end; // the EBML header
    let segment = element(init, at)?;
    if segment.id != SEGMENT_ID {
        return None;
    }
    at = segment.body;
    while at < init.len() {
        let e = element(init, at)?;
        if e.id == TRACKS_ID {
            return init.get(at..e.end);
        }
        at = e.end;
    }
    None
}

/// Whether a `Tracks` element (as [`tracks_of`] finds it) has an audio
/// track.
pub fn has_audio(tracks: &[u8]) -> bool {
    tracks.windows(6).any(|w| w == b"A_OPUS")
}

/// One EBML element found in a buffer.
struct Element {
    id: u32,
    /// Where its body starts and ends (an unknown size ends at the buffer's end).
    body: usize,
    end: usize,
}

/// An element at `at` that lies wholly in `buf`.
fn element(buf: &[u8], at: usize) -> Option<Element> {
    let e = header(buf, at)?;
    (e.end <= buf.len()).then_some(e)
}

/// An element's header at `at`; its end may lie past the buffer's.
fn header(buf: &[u8], at: usize) -> Option<Element> {
    let first = *buf.get(at)?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return None;
    }
    let id = buf
        .get(at..at + id_len)?
        .iter()
        .fold(0u32, |v, &b| (v << 8) | u32::from(b));
    let size_at = at + id_len;
    let lead = *buf.get(size_at)?;
    let size_len = lead.leading_zeros() as usize + 1;
    if size_len > 8 {
        return None;
    }
    let raw = buf.get(size_at..size_at + size_len)?;
    let mask = if size_len == 8 { 0 } else { 0xffu8 >> size_len };
    let mut size = u64::from(raw[0] & mask);
    for &b in &raw[1..] {
        size = (size << 8) | u64::from(b);
    }
    let body = size_at + size_len;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    let end = if unknown {
        buf.len()
    } else {
        body.checked_add(usize::try_from(size).ok()?)?
    };
    Some(Element { id, body, end })
}

/// An EBML element header with an 8-byte size (the download's `Segment`).
pub fn header_with_size(id: u32, size: u64) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out
}

/// A block on the recording's timeline.
struct Timed<'a> {
    ms: u64,
    track: u32,
    sample: &'a Sample,
}

/// One media segment: `video` must start with a keyframe; `audio` may be
/// empty. Blocks are interleaved by time.
pub fn media_segment(video: &[Sample], audio: &[Sample]) -> Result<Vec<u8>, WebmError> {
    let mut blocks: Vec<Timed> = video
        .iter()
        .map(|s| Timed {
            ms: s.dts * 1000 / u64::from(VIDEO_TIMESCALE),
            track: VIDEO_TRACK,
            sample: s,
        })
        .chain(audio.iter().map(|s| Timed {
            ms: s.dts * 1000 / u64::from(AUDIO_TIMESCALE),
            track: AUDIO_TRACK,
            sample: s,
        }))
        .collect();
    // Stable: the keyframe stays ahead of audio of the same millisecond.
    blocks.sort_by_key(|b| (b.ms, b.track != VIDEO_TRACK));
    // Audio from before the keyframe would open the segment without it.
    let head = video
        .first()
        .map_or(0, |s| s.dts * 1000 / u64::from(VIDEO_TIMESCALE));
    blocks.retain(|b| b.ms >= head);
    let size: usize = blocks.iter().map(|b| b.sample.data.len() + 8).sum();
    let mut w = WebmWriter::new(Vec::with_capacity(size + 64));
    // The writer checks each element's place: clusters go inside a
    // segment, opened here with an unknown size and cut off below.
    w.write_advanced(
        &M::Segment(Master::Start),
        WriteOptions::is_unknown_sized_element(),
    )?;
    let mut cluster: Option<u64> = None;
    for b in &blocks {
        let start = match cluster {
            Some(start) if b.ms < start + CLUSTER_SPAN_MS => start,
            _ => {
                if cluster.is_some() {
                    w.write(&M::Cluster(Master::End))?;
                }
                w.write(&M::Cluster(Master::Start))?;
                w.write(&M::Timestamp(b.ms))?;
                cluster = Some(b.ms);
                b.ms
            }
        };
        let relative = i16::try_from(b.ms - start).expect("a cluster spans under 32.767 s");
        let keyframe = b.track == AUDIO_TRACK || b.sample.sync;
        let block = SimpleBlock::new_uncheked(
            &b.sample.data,
            u64::from(b.track),
            relative,
            false,
            None,
            false,
            keyframe,
        );
        w.write(&M::from(block))?;
    }
    if cluster.is_some() {
        w.write(&M::Cluster(Master::End))?;
    }
    w.flush()?;
    let mut out = w.into_inner()?;
    out.drain(..UNKNOWN_SEGMENT_HEADER.min(out.len()));
    Ok(out)
}

/// The first cluster's timestamp (ms) of a media segment, from its first
/// bytes (a few dozen suffice).
pub fn segment_start_ms(segment: &[u8]) -> Option<u64> {
    let cluster = header(segment, 0)?;
    let stamp = element(segment, cluster.body)?;
    (stamp.id == 0xE7).then(|| {
        segment[stamp.body..stamp.end]
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dts: u64, sync: bool, len: usize, byte: u8) -> Sample {
        Sample {
            dts,
            duration: 0,
            sync,
            data: bytes::Bytes::from(vec![byte; len]),
        }
    }

    #[test]
    fn the_init_segment_opens_a_segment_and_carries_both_tracks() {
        let init = init_segment((640, 360), Some(2)).expect("encodes");
        assert_eq!(&init[..4], &[0x1a, 0x45, 0xdf, 0xa3], "EBML header first");
        let tracks = tracks_of(&init).expect("a Tracks element");
        assert_eq!(&tracks[..4], &TRACKS_ID.to_be_bytes());
        let text = String::from_utf8_lossy(tracks);
        assert!(text.contains("V_VP8") && text.contains("A_OPUS") && text.contains("OpusHead"));
        assert!(has_audio(tracks));
        let video_only = init_segment((320, 180), None).expect("encodes");
        assert!(!has_audio(tracks_of(&video_only).expect("tracks")));
    }

    #[test]
    fn a_media_segment_is_clusters_that_start_with_the_keyframe() {
        // 90 kHz video from 2 s, 48 kHz audio from 1.99 s (dropped: before
        // the keyframe) to 2.04 s.
        let video = [
            sample(180_000, true, 100, 0xaa),
            sample(183_000, false, 50, 0xbb),
        ];
        let audio = [
            sample(95_520, true, 10, 0x01),
            sample(96_000, true, 10, 0x02),
            sample(96_960, true, 10, 0x03),
        ];
        let seg = media_segment(&video, &audio).expect("encodes");
        assert_eq!(&seg[..4], &[0x1f, 0x43, 0xb6, 0x75], "a Cluster first");
        assert_eq!(segment_start_ms(&seg), Some(2000));
        assert_eq!(
            segment_start_ms(&seg[..24]),
            Some(2000),
            "from its first bytes"
        );
        let cluster = element(&seg, 0).expect("parses");
        assert_eq!(cluster.end, seg.len(), "one cluster, known size");
        // Blocks in time order: the keyframe (flag 0x80), audio at 2000 ms,
        // then the delta frame at 2033 ms and audio at 2020 ms between.
        let mut at = element(&seg, cluster.body).expect("timestamp").end;
        let mut seen = Vec::new();
        while at < cluster.end {
            let b = element(&seg, at).expect("block");
            assert_eq!(b.id, 0xA3);
            let body = &seg[b.body..b.end];
            let rel = i16::from_be_bytes([body[1], body[2]]);
            seen.push((body[0] & 0x7f, rel, body[3] & 0x80 != 0, body[4]));
            at = b.end;
        }
        assert_eq!(
            seen,
            vec![
                (1, 0, true, 0xaa),
                (2, 0, true, 0x02),
                (2, 20, true, 0x03),
                (1, 33, false, 0xbb)
            ]
        );
    }

    #[test]
    fn a_long_segment_is_split_into_clusters() {
        let video: Vec<Sample> = (0..40u64)
            .map(|i| sample(i * 90_000, i == 0, 10, 0xcc))
            .collect();
        let seg = media_segment(&video, &[]).expect("encodes");
        let first = element(&seg, 0).expect("first cluster");
        assert!(first.end < seg.len());
        assert_eq!(segment_start_ms(&seg[first.end..]), Some(30_000));
    }

    #[test]
    fn the_download_segment_header_has_an_eight_byte_size() {
        let h = header_with_size(SEGMENT_ID, 300);
        assert_eq!(
            h,
            vec![0x18, 0x53, 0x80, 0x67, 0x01, 0, 0, 0, 0, 0, 0x01, 0x2c]
        );
        let e = element(&[h.clone(), vec![0; 300]].concat(), 0).expect("parses");
        assert_eq!((e.id, e.body, e.end), (SEGMENT_ID, 12, 312));
    }
}
