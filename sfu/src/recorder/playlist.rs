//! HLS playlists (RFC 8216bis) of a recording: a media playlist per
//! rendition and a master playlist listing the renditions.
//!
//! Invariants: while recording a media playlist is an `EVENT` playlist
//! that only grows (so a live viewer can rewind in it); when the recording
//! is done it is `VOD` with `#EXT-X-ENDLIST`; each publisher session is a
//! part with its own init segment, behind an `#EXT-X-DISCONTINUITY`.

use std::fmt::Write;
use std::time::SystemTime;

/// One media segment as a playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub part: u32,
    pub file: String,
    pub seconds: f64,
    pub bytes: u64,
    /// Wall clock of its first sample, for `#EXT-X-PROGRAM-DATE-TIME` at
    /// the start of each part.
    pub starts: SystemTime,
}

pub fn init_file(part: u32) -> String {
    format!("init-{part}.mp4")
}

pub fn media_playlist(segments: &[SegmentEntry], ended: bool) -> String {
    let target = segments
        .iter()
        .map(|s| s.seconds.round() as u64)
        .max()
        .unwrap_or(2)
        .max(1);
    let mut out = String::with_capacity(64 + segments.len() * 40);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    out.push_str(if ended {
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
    } else {
        "#EXT-X-PLAYLIST-TYPE:EVENT\n"
    });
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut part = None;
    for s in segments {
        if part != Some(s.part) {
            if part.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", init_file(s.part));
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(s.starts));
            part = Some(s.part);
        }
        let _ = writeln!(out, "#EXTINF:{:.3},\n{}", s.seconds, s.file);
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// One variant of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    pub peak_bps: u64,
    pub average_bps: u64,
    pub width: u16,
    pub height: u16,
    pub codecs: String,
}

pub fn master_playlist(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\"\n{}/index.m3u8",
            v.peak_bps.max(1),
            v.average_bps.max(1),
            v.width,
            v.height,
            v.codecs,
            v.name
        );
    }
    out
}

/// A UTC timestamp with milliseconds, as `#EXT-X-PROGRAM-DATE-TIME` wants.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn seg(part: u32, n: u32, seconds: f64) -> SegmentEntry {
        SegmentEntry {
            part,
            file: format!("seg-{n}.m4s"),
            seconds,
            bytes: 1,
            starts: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_601_600_250),
        }
    }

    #[test]
    fn a_media_playlist_grows_as_an_event_and_ends_as_vod_with_parts() {
        let segs = [seg(0, 0, 2.0), seg(0, 1, 2.5), seg(1, 2, 1.2)];
        let live = media_playlist(&segs[..2], false);
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!live.contains("ENDLIST"));
        assert!(live.contains("#EXT-X-TARGETDURATION:3\n"));
        let done = media_playlist(&segs, true);
        let want =
            "#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:00.250Z\n\
                    #EXTINF:2.000,\nseg-0.m4s\n#EXTINF:2.500,\nseg-1.m4s\n#EXT-X-DISCONTINUITY\n\
                    #EXT-X-MAP:URI=\"init-1.mp4\"\n";
        assert!(done.contains(want), "{done}");
        assert!(done.ends_with("#EXTINF:1.200,\nseg-2.m4s\n#EXT-X-ENDLIST\n"));
        assert!(done.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
    }

    #[test]
    fn the_master_lists_each_rendition_with_its_bandwidth_and_size() {
        let m = master_playlist(&[Variant {
            name: "720p".into(),
            peak_bps: 2_600_000,
            average_bps: 2_400_000,
            width: 1280,
            height: 720,
            codecs: "avc1.42e01f,opus".into(),
        }]);
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=2600000,AVERAGE-BANDWIDTH=2400000,RESOLUTION=1280x720,\
             CODECS=\"avc1.42e01f,opus\"\n720p/index.m3u8\n"
        ));
    }
}
