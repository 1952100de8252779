//! HLS playlists (RFC 8216bis) of a recording: two media playlists per
//! rendition and a master playlist listing the renditions.
//!
//! Invariants: while recording, a rendition's `index.m3u8` is an `EVENT`
//! playlist of every segment written when it was last rewritten (every
//! half DVR window of recorded time, so its writes grow linearly; a
//! restart after a crash merges it with `live.m3u8`) and its `live.m3u8`
//! slides: it lists the newest segments covering at
//! least the DVR window (and at least [`LIVE_SEGMENTS`] of them), numbered
//! by `#EXT-X-MEDIA-SEQUENCE` (a segment's index in the recording) and
//! `#EXT-X-DISCONTINUITY-SEQUENCE`, so a live viewer rewinds that far and
//! no further; the master points at `live.m3u8` then. When the recording is
//! done, `index.m3u8` is `VOD` with `#EXT-X-ENDLIST` and the master points
//! at it. Each publisher session is a part with its own init segment,
//! behind an `#EXT-X-DISCONTINUITY`; the first listed segment and each
//! part's first carry `#EXT-X-PROGRAM-DATE-TIME`, which places a window in
//! the recording.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

/// One media segment as a playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub part: u32,
    /// Its part's init segment (`init-N.mp4`, or `.webm` for VP8).
    pub init: String,
    pub file: String,
    pub seconds: f64,
    pub bytes: u64,
    /// Wall clock of its first sample, for `#EXT-X-PROGRAM-DATE-TIME` at
    /// the start of each part.
    pub starts: SystemTime,
}

/// A live playlist lists at least this many segments (RFC 8216bis wants
/// three target durations), whatever the DVR window.
pub const LIVE_SEGMENTS: usize = 3;

/// The first segment a live playlist lists: the newest ones that together
/// cover `window` (and at least [`LIVE_SEGMENTS`]).
pub fn window_start(segments: &[SegmentEntry], window: Duration) -> usize {
    let want = window.as_secs_f64();
    let mut covered = 0.0;
    for (i, s) in segments.iter().enumerate().rev() {
        covered += s.seconds;
        if covered >= want && segments.len() - i >= LIVE_SEGMENTS {
            return i;
        }
    }
    0
}

/// Which media playlist of a rendition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Listing {
    /// `index.m3u8` while recording: every segment so far.
    Growing,
    /// `live.m3u8` while recording: the newest segments covering the window.
    Window(Duration),
    /// `index.m3u8` once done.
    Ended,
}

/// The name of a rendition's playlist the master points at.
pub fn media_file(ended: bool) -> &'static str {
    if ended {
        "index.m3u8"
    } else {
        "live.m3u8"
    }
}

/// A media playlist's first lines: the version and the target duration
/// (the longest segment, rounded), room made for `entries`.
pub fn header(seconds: impl Iterator<Item = f64>, entries: usize) -> String {
    let target = seconds.map(|s| s.round() as u64).max().unwrap_or(2).max(1);
    let mut out = String::with_capacity(128 + entries * 40);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    out
}

pub fn media_playlist(segments: &[SegmentEntry], listing: Listing) -> String {
    let first = match listing {
        Listing::Window(window) => window_start(segments, window),
        Listing::Growing | Listing::Ended => 0,
    };
    let listed = &segments[first..];
    let mut out = header(segments.iter().map(|s| s.seconds), listed.len());
    match listing {
        Listing::Ended => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
        Listing::Growing => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        Listing::Window(_) => {
            // The discontinuities of the segments no longer listed.
            let discontinuities = segments.get(..=first).map_or(0, |s| {
                s.windows(2).filter(|w| w[0].part != w[1].part).count()
            });
            let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}");
        }
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut part = None;
    for s in listed {
        if part != Some(s.part) {
            if part.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", s.init);
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(s.starts));
            part = Some(s.part);
        }
        let _ = writeln!(out, "#EXTINF:{:.3},\n{}", s.seconds, s.file);
    }
    if listing == Listing::Ended {
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

/// The master playlist: each variant's `live.m3u8` while recording, its
/// `index.m3u8` once `ended`.
pub fn master_playlist(variants: &[Variant], ended: bool) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\"\n{}/{}",
            v.peak_bps.max(1),
            v.average_bps.max(1),
            v.width,
            v.height,
            v.codecs,
            v.name,
            media_file(ended)
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
            init: format!("init-{part}.mp4"),
            file: format!("seg-{n}.m4s"),
            seconds,
            bytes: 1,
            starts: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_601_600_250),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_media_playlist_is_live_while_recording_and_ends_as_vod_with_parts() {
        let segs = [seg(0, 0, 2.0), seg(0, 1, 2.5), seg(1, 2, 1.2)];
        let growing = media_playlist(&segs[..2], Listing::Growing);
        assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!growing.contains("ENDLIST") && !growing.contains("MEDIA-SEQUENCE"));
        let live = media_playlist(&segs[..2], Listing::Window(HOUR));
        assert!(!live.contains("PLAYLIST-TYPE"), "{live}");
        assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
        assert!(!live.contains("ENDLIST"));
        assert!(live.contains("#EXT-X-TARGETDURATION:3\n"));
        let done = media_playlist(&segs, Listing::Ended);
        let want =
            "#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:00.250Z\n\
                    #EXTINF:2.000,\nseg-0.m4s\n#EXTINF:2.500,\nseg-1.m4s\n#EXT-X-DISCONTINUITY\n\
                    #EXT-X-MAP:URI=\"init-1.mp4\"\n";
        assert!(done.contains(want), "{done}");
        assert!(done.ends_with("#EXTINF:1.200,\nseg-2.m4s\n#EXT-X-ENDLIST\n"));
        assert!(done.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(!done.contains("MEDIA-SEQUENCE"));
    }

    #[test]
    fn the_live_window_covers_the_dvr_window_and_at_least_three_segments() {
        // (segments of 2 s, window, first listed)
        let table: [(usize, u64, usize); 7] = [
            (0, 10, 0),
            (2, 10, 0),
            (5, 10, 0),
            (6, 10, 1),
            (20, 10, 15),
            (20, 9, 15),
            (20, 0, 17),
        ];
        for (n, window, first) in table {
            let segs: Vec<_> = (0..n as u32).map(|i| seg(0, i, 2.0)).collect();
            assert_eq!(
                window_start(&segs, Duration::from_secs(window)),
                first,
                "{n} segments, {window} s"
            );
        }
    }

    #[test]
    fn a_slid_window_numbers_its_segments_and_parts_and_dates_its_first() {
        // Parts 0, 0, 1, 1, 2, 2, 2: a 5 s window starts at the fifth.
        let parts = [0, 0, 1, 1, 2, 2, 2];
        let segs: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, &p)| seg(p, i as u32, 2.0))
            .collect();
        let live = media_playlist(&segs, Listing::Window(Duration::from_secs(5)));
        assert!(
            live.contains(
                "#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n\
                 #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-2.mp4\"\n\
                 #EXT-X-PROGRAM-DATE-TIME:"
            ),
            "{live}"
        );
        assert!(live.ends_with("seg-4.m4s\n#EXTINF:2.000,\nseg-5.m4s\n#EXTINF:2.000,\nseg-6.m4s\n"));
        assert!(!live.contains("seg-3.m4s"));
        // Sliding inside a part: the part's earlier segments still count
        // their discontinuities, none is repeated.
        let later = media_playlist(&segs, Listing::Window(Duration::from_secs(3)));
        assert!(later.contains("#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n"));
        let mid = media_playlist(&segs[..4], Listing::Window(Duration::from_secs(1)));
        assert!(
            mid.contains("#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"),
            "{mid}"
        );
        assert!(mid.contains("#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:00.250Z\n#EXTINF:2.000,\nseg-1.m4s\n"), "{mid}");
        assert!(!mid.contains("seg-0.m4s"));
        assert!(media_playlist(&[], Listing::Window(HOUR)).contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
    }

    #[test]
    fn the_master_lists_each_rendition_with_its_bandwidth_and_size() {
        let v = [Variant {
            name: "720p".into(),
            peak_bps: 2_600_000,
            average_bps: 2_400_000,
            width: 1280,
            height: 720,
            codecs: "avc1.42e01f,opus".into(),
        }];
        let m = master_playlist(&v, true);
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=2600000,AVERAGE-BANDWIDTH=2400000,RESOLUTION=1280x720,\
             CODECS=\"avc1.42e01f,opus\"\n720p/index.m3u8\n"
        ));
        assert!(master_playlist(&v, false).ends_with("\n720p/live.m3u8\n"));
    }
}
