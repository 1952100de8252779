//! The playlist a crash left open, closed: while recording, a rendition's
//! complete playlist (`index.m3u8`) is rewritten only every half DVR
//! window of recorded time (rewriting it with every segment made its
//! writes grow with the square of the recording's length), and its live
//! window (`live.m3u8`, rewritten with every segment) lists at least the
//! whole window. Together they list every segment written: this merges
//! them, by each segment's number in the recording, into one `VOD`
//! playlist with `#EXT-X-ENDLIST`.
//!
//! Invariants: every segment either playlist lists is listed once, in
//! order; a part's first listed segment carries its `#EXT-X-MAP` and
//! `#EXT-X-PROGRAM-DATE-TIME` (both playlists give them there), a change
//! of part its `#EXT-X-DISCONTINUITY`.

use std::fmt::Write;

/// One listed segment.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    /// Its number in the recording (`#EXT-X-MEDIA-SEQUENCE` onwards).
    seq: u64,
    init: String,
    date: Option<String>,
    seconds: f64,
    file: String,
}

fn listed(text: &str) -> Vec<Listed> {
    let mut seq = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (mut init, mut date, mut seconds) = (String::new(), None, 0.0);
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            init = uri.trim_end_matches('"').to_string();
        } else if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date = Some(d.to_string());
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            seconds = d.trim_end_matches(',').parse::<f64>().unwrap_or(0.0);
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push(Listed {
                seq,
                init: init.clone(),
                date: date.take(),
                seconds,
                file: line.to_string(),
            });
            seq += 1;
        }
    }
    out
}

/// `index` (if any) and `live` (if any) merged and closed; its duration
/// and segment count. `None` when neither lists a segment.
pub fn closed(index: Option<&str>, live: Option<&str>) -> Option<(String, f64, usize)> {
    let mut all = index.map(listed).unwrap_or_default();
    let next = all.last().map_or(0, |s| s.seq + 1);
    all.extend(
        live.map(listed)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.seq >= next),
    );
    if all.is_empty() {
        return None;
    }
    let mut out = super::playlist::header(all.iter().map(|s| s.seconds), all.len());
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut part: Option<&str> = None;
    for s in &all {
        if part != Some(s.init.as_str()) {
            if part.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", s.init);
            if let Some(d) = &s.date {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{d}");
            }
            part = Some(s.init.as_str());
        }
        let _ = writeln!(out, "#EXTINF:{:.3},\n{}", s.seconds, s.file);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    Some((out, all.iter().map(|s| s.seconds).sum(), all.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:EVENT\n\
        #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:00.000Z\n\
        #EXTINF:2.000,\nseg-0.m4s\n#EXTINF:2.000,\nseg-1.m4s\n";
    /// Written after the index: from segment 1 on, a reconnect (part 1) at
    /// segment 3.
    const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
        #EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-0.mp4\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:02.000Z\n#EXTINF:2.000,\nseg-1.m4s\n#EXTINF:2.000,\nseg-2.m4s\n\
        #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:09.000Z\n\
        #EXTINF:1.500,\nseg-3.m4s\n";

    #[test]
    fn the_index_and_the_live_window_merge_into_every_segment_once() {
        let (text, seconds, segments) = closed(Some(INDEX), Some(LIVE)).expect("segments");
        assert_eq!((seconds, segments), (7.5, 4));
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:00.000Z\n\
             #EXTINF:2.000,\nseg-0.m4s\n#EXTINF:2.000,\nseg-1.m4s\n#EXTINF:2.000,\nseg-2.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:09.000Z\n\
             #EXTINF:1.500,\nseg-3.m4s\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn either_playlist_alone_is_closed_and_neither_is_nothing() {
        let (only_index, _, n) = closed(Some(INDEX), None).expect("segments");
        assert_eq!(n, 2);
        assert!(only_index.ends_with("seg-1.m4s\n#EXT-X-ENDLIST\n"));
        let (only_live, seconds, n) = closed(None, Some(LIVE)).expect("segments");
        assert_eq!((n, seconds), (3, 5.5));
        assert!(only_live.contains("#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T00:00:02.000Z\n#EXTINF:2.000,\nseg-1.m4s"));
        assert_eq!(closed(None, None), None);
        assert_eq!(closed(Some("#EXTM3U\n"), None), None);
        // A closed playlist closes to itself.
        let (again, _, _) = closed(Some(&only_index), None).expect("segments");
        assert_eq!(again, only_index);
    }
}
