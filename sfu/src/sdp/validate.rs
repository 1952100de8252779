//! Checks an offer's payload types before str0m sees it.
//!
//! str0m keeps one payload-type space per session (not per m-line) and
//! asserts that no PT is claimed twice: an offer that declares the same PT
//! with two codecs, or a video codec in an audio section, panics inside
//! `accept_offer` ("Pt locked multiple times"). Browsers, OBS, FFmpeg and
//! GStreamer never send such offers; anyone may. So every offer passes
//! here first and a bad one gets a 400 naming the line.
//!
//! Invariants on what passes: every `a=rtpmap` PT is 0–127 and maps to one
//! codec (name, clock rate, channels) across all m-sections; a media codec
//! appears only in a section of its own kind; there are at most
//! [`MAX_SECTIONS`] m-sections. Only untrusted text is read: nothing here
//! indexes without a check.

use std::collections::HashMap;

/// More m-sections than any WHIP/WHEP client sends (they send two or three).
pub const MAX_SECTIONS: usize = 16;

const VIDEO_CODECS: [&str; 5] = ["vp8", "vp9", "h264", "h265", "av1"];
const AUDIO_CODECS: [&str; 6] = ["opus", "pcmu", "pcma", "g722", "isac", "ilbc"];

/// One `a=rtpmap` as declared: lowercased name, clock rate, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Encoding {
    name: String,
    clock: String,
    channels: String,
}

/// Why an offer is refused, as a message for the client.
pub fn check_offer(offer: &str) -> Result<(), String> {
    let mut kind: Option<&str> = None;
    let mut sections = 0usize;
    let mut by_pt: HashMap<u8, (Encoding, usize)> = HashMap::new();
    for line in offer.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            sections += 1;
            if sections > MAX_SECTIONS {
                return Err(format!("the offer has more than {MAX_SECTIONS} m-sections"));
            }
            kind = m.split_whitespace().next();
            continue;
        }
        let Some(rtpmap) = line.strip_prefix("a=rtpmap:") else {
            continue;
        };
        let Some(section_kind) = kind else {
            return Err("a=rtpmap before the first m= line".into());
        };
        let (pt, encoding) = parse_rtpmap(rtpmap)?;
        let in_wrong_section = match section_kind {
            "audio" => VIDEO_CODECS.contains(&encoding.name.as_str()),
            "video" => AUDIO_CODECS.contains(&encoding.name.as_str()),
            _ => false,
        };
        if in_wrong_section {
            return Err(format!(
                "a=rtpmap:{pt} {} is not a codec for an {section_kind} section",
                encoding.name
            ));
        }
        match by_pt.get(&pt) {
            Some((other, section)) if *other != encoding => {
                return Err(format!(
                    "payload type {pt} is {} in m-section {} and {} in m-section {sections}: \
                     one payload type, one codec",
                    describe(other),
                    section,
                    describe(&encoding),
                ));
            }
            Some(_) => {}
            None => {
                by_pt.insert(pt, (encoding, sections));
            }
        }
    }
    Ok(())
}

fn describe(e: &Encoding) -> String {
    if e.channels.is_empty() {
        format!("{}/{}", e.name, e.clock)
    } else {
        format!("{}/{}/{}", e.name, e.clock, e.channels)
    }
}

/// `96 H264/90000` → (96, h264, 90000, "").
fn parse_rtpmap(value: &str) -> Result<(u8, Encoding), String> {
    let bad = || format!("malformed a=rtpmap:{value}");
    let (pt, rest) = value.split_once(char::is_whitespace).ok_or_else(bad)?;
    let pt: u8 = pt.trim().parse().map_err(|_| bad())?;
    if pt > 127 {
        return Err(format!("payload type {pt} is out of range (0-127)"));
    }
    let mut parts = rest.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    let clock = parts.next().unwrap_or("").to_owned();
    let channels = parts.next().unwrap_or("").to_owned();
    Ok((
        pt,
        Encoding {
            name: name.to_ascii_lowercase(),
            clock,
            channels,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: &str = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
    const VIDEO: &str =
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 rtx/90000\r\n";

    #[test]
    fn table_of_offers() {
        let same_codec_twice = format!("{VIDEO}{VIDEO}");
        let h264_in_audio = format!("{AUDIO}a=rtpmap:96 H264/90000\r\n{VIDEO}");
        let pt_two_codecs = format!("{AUDIO}{}", VIDEO.replace("96 H264", "111 H264"));
        let too_many = "m=audio 9 RTP 0\r\n".repeat(MAX_SECTIONS + 1);
        let cases: &[(&str, &str, bool)] = &[
            ("audio and video", &format!("{AUDIO}{VIDEO}"), true),
            ("one PT reused with the same codec", &same_codec_twice, true),
            ("a video codec in the audio section", &h264_in_audio, false),
            ("one PT, two codecs", &pt_two_codecs, false),
            (
                "PT out of range",
                "m=audio 9 RTP 200\r\na=rtpmap:200 opus/48000/2\r\n",
                false,
            ),
            (
                "malformed rtpmap",
                "m=audio 9 RTP 1\r\na=rtpmap:x\r\n",
                false,
            ),
            ("rtpmap before any m=", "a=rtpmap:111 opus/48000\r\n", false),
            ("too many sections", &too_many, false),
        ];
        for (name, offer, ok) in cases {
            assert_eq!(
                check_offer(offer).is_ok(),
                *ok,
                "{name}: {:?}",
                check_offer(offer)
            );
        }
    }
}
