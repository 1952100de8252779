//! A VP8 rendition as one WebM file for download: the EBML header, a
//! `Segment` of known size holding a `SeekHead`, `Info` (with the
//! duration), the rendition's `Tracks`, every recorded cluster as it lies
//! in the segments, and `Cues` (one per segment, each starting at a
//! keyframe) so players seek without reading the whole file. Nothing is
//! decoded; only each segment's size and first timestamp are read before
//! the clusters are streamed from the store.
//!
//! Invariants: element positions in the `SeekHead` and `Cues` are relative
//! to the `Segment`'s body and say exactly where the streamed bytes put
//! them; the `Tracks` are the first part's, or the first with audio (a
//! later part's frame size, if it differs, is in its VP8 keyframes, which
//! decoders follow).

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use webm_iterable::matroska_spec::{Master, MatroskaSpec as M};
use webm_iterable::WebmWriter;

use super::progressive::{Progressive, ProgressiveError};
use super::webm::{self, CUES_ID, INFO_ID, SEGMENT_ID, TRACKS_ID};

/// One segment to stream: where it is, its size, its first timestamp (ms).
struct Listed {
    path: Path,
    size: u64,
    start_ms: u64,
}

fn format(e: impl std::fmt::Display) -> ProgressiveError {
    ProgressiveError::Format(e.to_string())
}

fn not_found(e: object_store::Error) -> ProgressiveError {
    match e {
        object_store::Error::NotFound { .. } => ProgressiveError::NotFound,
        e => e.into(),
    }
}

/// Builds the download of the segments `list` (part, file) of the
/// rendition in `dir`, whose playlist says it lasts `seconds` in all.
pub async fn progressive_webm(
    store: &dyn ObjectStore,
    dir: &Path,
    list: &[(u32, String)],
    seconds: f64,
) -> Result<Progressive, ProgressiveError> {
    let mut parts: Vec<u32> = list.iter().map(|(p, _)| *p).collect();
    parts.dedup();
    // The first part's tracks, unless a later one has audio it lacks (its
    // audio showed up late).
    let mut init = None;
    for part in parts {
        let path = dir.clone().join(format!("init-{part}.webm").as_str());
        let bytes = store.get(&path).await.map_err(not_found)?.bytes().await?;
        let with_audio = webm::tracks_of(&bytes).is_some_and(webm::has_audio);
        if init.is_none() || with_audio {
            init = Some(bytes);
        }
        if with_audio {
            break;
        }
    }
    let init = init.ok_or(ProgressiveError::NotFound)?;
    let tracks = webm::tracks_of(&init).ok_or_else(|| format("the init segment has no Tracks"))?;
    let mut listed = Vec::with_capacity(list.len());
    for (_, file) in list {
        let path = dir.clone().join(file.as_str());
        let size = store.head(&path).await.map_err(not_found)?.size;
        let head = store.get_range(&path, 0..size.min(64)).await?;
        let start_ms = webm::segment_start_ms(&head)
            .ok_or_else(|| format(format!("{file}: no cluster timestamp")))?;
        listed.push(Listed {
            path,
            size,
            start_ms,
        });
    }
    let duration_ms = listed.first().map_or(0.0, |f| f.start_ms as f64) + seconds * 1000.0;
    layout(tracks, &listed, duration_ms)
}

fn encode(tags: &[M]) -> Result<Vec<u8>, ProgressiveError> {
    let mut w = WebmWriter::new(Vec::new());
    // Segment-level elements are written inside an open segment (the
    // writer checks each element's place), whose 12-byte header is cut off.
    w.write_advanced(
        &M::Segment(Master::Start),
        webm_iterable::WriteOptions::is_unknown_sized_element(),
    )
    .map_err(format)?;
    for t in tags {
        w.write(t).map_err(format)?;
    }
    let mut out = w.into_inner().map_err(format)?;
    out.drain(..12.min(out.len()));
    Ok(out)
}

fn seek(id: u32, position: u64) -> M {
    M::Seek(Master::Full(vec![
        M::SeekID(id.to_be_bytes().to_vec()),
        M::SeekPosition(position),
    ]))
}

fn layout(
    tracks: &[u8],
    listed: &[Listed],
    duration_ms: f64,
) -> Result<Progressive, ProgressiveError> {
    let info = encode(&[webm::info(Some(duration_ms))])?;
    let clusters: u64 = listed.iter().map(|l| l.size).sum();
    // The SeekHead's size depends on the positions it holds, and they on
    // its size: encode until it stops growing (twice or three times).
    let mut seek_len = 0u64;
    let (seek_head, cues) = loop {
        let info_at = seek_len;
        let tracks_at = info_at + info.len() as u64;
        let clusters_at = tracks_at + tracks.len() as u64;
        let cues_at = clusters_at + clusters;
        let mut at = clusters_at;
        let points: Vec<M> = listed
            .iter()
            .map(|l| {
                let point = M::CuePoint(Master::Full(vec![
                    M::CueTime(l.start_ms),
                    M::CueTrackPositions(Master::Full(vec![
                        M::CueTrack(1),
                        M::CueClusterPosition(at),
                    ])),
                ]));
                at += l.size;
                point
            })
            .collect();
        let seek_head = encode(&[M::SeekHead(Master::Full(vec![
            seek(INFO_ID, info_at),
            seek(TRACKS_ID, tracks_at),
            seek(CUES_ID, cues_at),
        ]))])?;
        if seek_head.len() as u64 == seek_len {
            break (seek_head, encode(&[M::Cues(Master::Full(points))])?);
        }
        seek_len = seek_head.len() as u64;
    };
    let body = seek_head.len() as u64
        + info.len() as u64
        + tracks.len() as u64
        + clusters
        + cues.len() as u64;
    let mut header = encode_ebml_header()?;
    header.extend_from_slice(&webm::header_with_size(SEGMENT_ID, body));
    header.extend_from_slice(&seek_head);
    header.extend_from_slice(&info);
    header.extend_from_slice(tracks);
    let len = header.len() as u64 + clusters + cues.len() as u64;
    Ok(Progressive {
        header: Bytes::from(header),
        chunks: listed.iter().map(|l| (l.path.clone(), 0..l.size)).collect(),
        trailer: Bytes::from(cues),
        len,
        mime: "video/webm",
        extension: "webm",
    })
}

fn encode_ebml_header() -> Result<Vec<u8>, ProgressiveError> {
    let mut w = WebmWriter::new(Vec::new());
    w.write(&webm::ebml_header()).map_err(format)?;
    w.into_inner().map_err(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_head_and_cue_positions_point_at_the_streamed_elements() {
        let init = webm::init_segment((320, 180), Some(2)).expect("encodes");
        let tracks = webm::tracks_of(&init).expect("tracks");
        let listed = [
            Listed {
                path: Path::from("v/180p/seg-0.webm"),
                size: 1000,
                start_ms: 0,
            },
            Listed {
                path: Path::from("v/180p/seg-1.webm"),
                size: 700,
                start_ms: 4000,
            },
        ];
        let file = layout(tracks, &listed, 8000.0).expect("lays out");
        assert_eq!(
            file.len,
            file.header.len() as u64 + 1700 + file.trailer.len() as u64
        );
        // The Segment's body starts after the EBML header and its 12 bytes.
        let ebml = encode_ebml_header().expect("encodes").len();
        let body_at = ebml + 12;
        let header = &file.header[..];
        assert_eq!(&header[ebml..ebml + 4], &SEGMENT_ID.to_be_bytes());
        let tracks_at = header.len() - tracks.len();
        assert_eq!(&header[tracks_at..], tracks);
        // Positions are encoded big-endian after their ids (F1: cluster).
        let cluster_positions: Vec<u64> = file
            .trailer
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == 0xF1)
            .map(|(i, w)| {
                let len = usize::from(w[1] & 0x7f);
                file.trailer[i + 2..i + 2 + len]
                    .iter()
                    .fold(0u64, |v, &b| (v << 8) | u64::from(b))
            })
            .collect();
        let first = (header.len() - body_at) as u64;
        assert_eq!(cluster_positions, vec![first, first + 1000]);
        assert_eq!(&file.trailer[..4], &CUES_ID.to_be_bytes());
    }
}
