//! A rendition as one progressive MP4 for download (a VP8 rendition as
//! one WebM: [`super::download_webm`]): `ftyp`, a `moov` with
//! complete sample tables (so any player seeks without reading the whole
//! file), then one `mdat` holding the recorded samples as they lie in the
//! segments. Nothing is decoded or re-encoded; only the segments' `moof`
//! headers are read to build the tables, and the samples are streamed from
//! the store afterwards ([`Progressive::chunks`]).
//!
//! Invariants: chunks follow each other in the `mdat` in segment order
//! (each segment gives a video chunk, then an audio chunk), and the chunk
//! offsets in the `moov` say exactly that; each publisher session (part)
//! keeps its own sample description (its SPS/PPS); a gap between parts is
//! folded into the duration of the last sample before it.

use std::ops::Range;

use bytes::Bytes;
use mp4_atom::{
    Any, Co64, Codec, Decode, Encode, Ftyp, Moof, Moov, Stco, Stsc, StscEntry, Stss, Stsz,
    StszSamples, Stts, SttsEntry,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::fmp4::{AUDIO_TRACK, VIDEO_TRACK};

#[derive(Debug, thiserror::Error)]
pub enum ProgressiveError {
    #[error("no such rendition")]
    NotFound,
    #[error("recordings store: {0}")]
    Store(#[from] object_store::Error),
    #[error("a recorded file does not parse: {0}")]
    Format(String),
}

/// The file to send: `header`, then every chunk's bytes in order, then
/// `trailer`.
#[derive(Debug)]
pub struct Progressive {
    pub header: Bytes,
    pub chunks: Vec<(Path, Range<u64>)>,
    pub trailer: Bytes,
    pub len: u64,
    /// Its content type and file name extension.
    pub mime: &'static str,
    pub extension: &'static str,
}

#[derive(Default)]
struct Track {
    /// One sample entry per part.
    entries: Vec<Codec>,
    /// (dts, duration, size, sync)
    samples: Vec<(u64, u32, u32, bool)>,
    /// (first sample index, count, entry index) per chunk.
    chunks: Vec<(usize, u32, u32)>,
}

fn format(e: impl std::fmt::Display) -> ProgressiveError {
    ProgressiveError::Format(e.to_string())
}

async fn read(store: &dyn ObjectStore, path: &Path) -> Result<Bytes, ProgressiveError> {
    match store.get(path).await {
        Ok(got) => Ok(got.bytes().await?),
        Err(object_store::Error::NotFound { .. }) => Err(ProgressiveError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// A segment's first bytes: its `styp` and `moof` (the `mdat` follows),
/// or the whole file when the `moof` is unusually large.
async fn head_of(store: &dyn ObjectStore, path: &Path) -> Result<Bytes, ProgressiveError> {
    const HEAD: u64 = 256 << 10;
    let size = match store.head(path).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => return Err(ProgressiveError::NotFound),
        Err(e) => return Err(e.into()),
    };
    if size <= HEAD {
        return read(store, path).await;
    }
    let head = store.get_range(path, 0..HEAD).await?;
    // The moof's size is in its header, right after the styp.
    let styp = u32::from_be_bytes(head[..4].try_into().map_err(format)?) as usize;
    let moof = head
        .get(styp..styp + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u32::from_be_bytes(b) as usize);
    if ((styp + moof + 8) as u64) < HEAD {
        Ok(head.slice(..styp + moof))
    } else {
        read(store, path).await
    }
}

/// The (part, file) of each segment its playlist lists, in order.
fn segments(playlist: &str) -> Vec<(u32, String)> {
    let container = |l: &str| super::codec::Container::of_file(l).is_some();
    let mut part = 0;
    let mut out = Vec::new();
    for line in playlist.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            part = uri
                .trim_start_matches("init-")
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(part);
        } else if !line.starts_with('#') && container(line) {
            out.push((part, line.to_string()));
        }
    }
    out
}

/// Builds the download of `rendition` of recording `id`.
pub async fn progressive(
    store: &dyn ObjectStore,
    id: &str,
    rendition: &str,
) -> Result<Progressive, ProgressiveError> {
    let dir = Path::from(id).join(rendition);
    let playlist = read(store, &dir.clone().join("index.m3u8")).await?;
    let text = String::from_utf8_lossy(&playlist);
    let list = segments(&text);
    if list.is_empty() {
        return Err(ProgressiveError::NotFound);
    }
    if list.iter().all(|(_, f)| f.ends_with(".webm")) {
        let seconds = text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .filter_map(|d| d.trim_end_matches(',').parse::<f64>().ok())
            .sum();
        return super::download_webm::progressive_webm(store, &dir, &list, seconds).await;
    }
    if list.iter().any(|(_, f)| !f.ends_with(".m4s")) {
        return Err(format("a playlist of segments in two containers"));
    }
    let mut moov: Option<Moov> = None;
    let (mut video, mut audio) = (Track::default(), Track::default());
    let mut part_entry: Vec<(u32, u32)> = Vec::new(); // part → entry index (1-based)
    let mut chunks = Vec::new();
    for (part, file) in &list {
        if !part_entry.iter().any(|(p, _)| p == part) {
            let init = read(
                store,
                &dir.clone().join(format!("init-{part}.mp4").as_str()),
            )
            .await?;
            let buf = &mut std::io::Cursor::new(&init[..]);
            let _ = Ftyp::decode(buf).map_err(format)?;
            let m = Moov::decode(buf).map_err(format)?;
            for trak in &m.trak {
                let entry = trak.mdia.minf.stbl.stsd.codecs.first().cloned();
                let track = if trak.tkhd.track_id == VIDEO_TRACK {
                    &mut video
                } else {
                    &mut audio
                };
                if let Some(e) = entry {
                    track.entries.push(e);
                }
            }
            part_entry.push((*part, video.entries.len() as u32));
            moov.get_or_insert(m);
        }
        let entry = part_entry
            .iter()
            .find(|(p, _)| p == part)
            .map_or(1, |(_, e)| *e);
        let path = dir.clone().join(file.as_str());
        let data = head_of(store, &path).await?;
        let buf = &mut std::io::Cursor::new(&data[..]);
        let (moof, moof_start) = loop {
            let at = buf.position();
            match Any::decode(buf).map_err(format)? {
                Any::Moof(m) => break (m, at),
                Any::Styp(_) => continue,
                other => return Err(format(format!("{file}: unexpected {}", other.kind()))),
            }
        };
        add_segment(
            &moof,
            moof_start,
            entry,
            &path,
            &mut video,
            &mut audio,
            &mut chunks,
        )?;
    }
    let moov = moov.ok_or(ProgressiveError::NotFound)?;
    layout(moov, video, audio, chunks)
}

fn add_segment(
    moof: &Moof,
    moof_start: u64,
    entry: u32,
    path: &Path,
    video: &mut Track,
    audio: &mut Track,
    chunks: &mut Vec<(Path, Range<u64>, bool)>,
) -> Result<(), ProgressiveError> {
    for traf in &moof.traf {
        let is_video = traf.tfhd.track_id == VIDEO_TRACK;
        let track = match traf.tfhd.track_id {
            VIDEO_TRACK => &mut *video,
            AUDIO_TRACK => &mut *audio,
            _ => continue,
        };
        let mut dts = traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time);
        // A gap before this segment (a reconnect) lengthens the sample before it.
        if let Some(last) = track.samples.last_mut() {
            let end = last.0 + u64::from(last.1);
            if dts > end {
                last.1 = u32::try_from(dts - last.0).unwrap_or(u32::MAX);
            }
        }
        for trun in &traf.trun {
            let offset = trun
                .data_offset
                .ok_or_else(|| format("a trun without a data offset"))?;
            let start = moof_start + u64::try_from(offset).map_err(format)?;
            let first = track.samples.len();
            let mut len = 0u64;
            for s in trun.samples.iter() {
                let (duration, size) = (s.duration.unwrap_or(0), s.size.unwrap_or(0));
                let sync = s.flags.is_none_or(|f| f & 0x0001_0000 == 0);
                track.samples.push((dts, duration, size, sync));
                dts += u64::from(duration);
                len += u64::from(size);
            }
            let count = (track.samples.len() - first) as u32;
            if count > 0 {
                track.chunks.push((first, count, entry));
                chunks.push((path.clone(), start..start + len, is_video));
            }
        }
    }
    Ok(())
}

fn layout(
    mut moov: Moov,
    video: Track,
    audio: Track,
    chunks: Vec<(Path, Range<u64>, bool)>,
) -> Result<Progressive, ProgressiveError> {
    let data: u64 = chunks.iter().map(|(_, r, _)| r.end - r.start).sum();
    let wide = data > u64::from(u32::MAX) - (1 << 20);
    let mdat_header: u64 = if wide { 16 } else { 8 };
    let ftyp = {
        let mut out = Vec::new();
        Ftyp {
            major_brand: b"isom".into(),
            minor_version: 512,
            compatible_brands: vec![
                b"isom".into(),
                b"iso2".into(),
                b"avc1".into(),
                b"mp41".into(),
            ],
        }
        .encode(&mut out)
        .map_err(format)?;
        out
    };
    // The mdat holds the chunks in the order they were read; each track's
    // offsets are its own chunks' places in that order.
    let fill = |moov: &mut Moov, base: u64| {
        let mut offsets = [Vec::new(), Vec::new()];
        let mut at = base;
        for (_, r, is_video) in &chunks {
            offsets[usize::from(!*is_video)].push(at);
            at += r.end - r.start;
        }
        for trak in &mut moov.trak {
            let (track, offs) = if trak.tkhd.track_id == VIDEO_TRACK {
                (&video, &offsets[0])
            } else {
                (&audio, &offsets[1])
            };
            tables(trak, track, offs, wide);
        }
    };
    let timescale_ms = |t: &Track, timescale: u32| -> u64 {
        let ticks: u64 = t.samples.iter().map(|s| u64::from(s.1)).sum();
        ticks * 1000 / u64::from(timescale.max(1))
    };
    let mut longest = 0;
    for trak in &mut moov.trak {
        let t = if trak.tkhd.track_id == VIDEO_TRACK {
            &video
        } else {
            &audio
        };
        let ticks: u64 = t.samples.iter().map(|s| u64::from(s.1)).sum();
        trak.mdia.mdhd.duration = ticks;
        let ms = timescale_ms(t, trak.mdia.mdhd.timescale);
        trak.tkhd.duration = ms;
        longest = longest.max(ms);
    }
    moov.mvhd.timescale = 1000;
    moov.mvhd.duration = longest;
    moov.mvex = None;
    moov.trak
        .retain(|t| t.tkhd.track_id == VIDEO_TRACK || !audio.samples.is_empty());
    fill(&mut moov, 0);
    let mut probe = Vec::new();
    moov.encode(&mut probe).map_err(format)?;
    let base = ftyp.len() as u64 + probe.len() as u64 + mdat_header;
    fill(&mut moov, base);
    let mut header = ftyp;
    moov.encode(&mut header).map_err(format)?;
    if wide {
        header.extend_from_slice(&1u32.to_be_bytes());
        header.extend_from_slice(b"mdat");
        header.extend_from_slice(&(data + 16).to_be_bytes());
    } else {
        header.extend_from_slice(&((data + 8) as u32).to_be_bytes());
        header.extend_from_slice(b"mdat");
    }
    let len = header.len() as u64 + data;
    Ok(Progressive {
        header: header.into(),
        chunks: chunks.into_iter().map(|(p, r, _)| (p, r)).collect(),
        trailer: Bytes::new(),
        len,
        mime: "video/mp4",
        extension: "mp4",
    })
}

fn tables(trak: &mut mp4_atom::Trak, t: &Track, offsets: &[u64], wide: bool) {
    let stbl = &mut trak.mdia.minf.stbl;
    stbl.stsd.codecs = t.entries.clone();
    let mut stts: Vec<SttsEntry> = Vec::new();
    for s in &t.samples {
        match stts.last_mut() {
            Some(e) if e.sample_delta == s.1 => e.sample_count += 1,
            _ => stts.push(SttsEntry {
                sample_count: 1,
                sample_delta: s.1,
            }),
        }
    }
    stbl.stts = Stts { entries: stts };
    let all_sync = t.samples.iter().all(|s| s.3);
    stbl.stss = (!all_sync).then(|| Stss {
        entries: (1..=t.samples.len() as u32)
            .filter(|i| t.samples[*i as usize - 1].3)
            .collect(),
    });
    stbl.stsz = Stsz {
        samples: StszSamples::Different {
            sizes: t.samples.iter().map(|s| s.2).collect(),
        },
    };
    let mut stsc: Vec<StscEntry> = Vec::new();
    for (n, (_, count, entry)) in t.chunks.iter().enumerate() {
        if stsc
            .last()
            .is_some_and(|e| e.samples_per_chunk == *count && e.sample_description_index == *entry)
        {
            continue;
        }
        stsc.push(StscEntry {
            first_chunk: n as u32 + 1,
            samples_per_chunk: *count,
            sample_description_index: *entry,
        });
    }
    stbl.stsc = Stsc { entries: stsc };
    if wide {
        stbl.stco = None;
        stbl.co64 = Some(Co64 {
            entries: offsets.to_vec(),
        });
    } else {
        stbl.co64 = None;
        stbl.stco = Some(Stco {
            entries: offsets.iter().map(|o| *o as u32).collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_playlist_gives_each_segment_with_its_part() {
        let p = "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2.0,\nseg-0.m4s\n#EXT-X-DISCONTINUITY\n\
                 #EXT-X-MAP:URI=\"init-1.mp4\"\n#EXTINF:2.0,\nseg-1.m4s\n#EXT-X-ENDLIST\n";
        assert_eq!(
            segments(p),
            vec![(0, "seg-0.m4s".into()), (1, "seg-1.m4s".into())]
        );
    }
}
