//! Every captured WHIP offer (Chromium simulcast, OBS 1 and 3 layers, aiortc,
//! FFmpeg 8 with `setup:passive`, GStreamer with `bundle-only`) must produce
//! a valid answer.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;

fn fixture(name: &str) -> String {
    // The run-time variable (cargo sets it for test processes): a test
    // binary reused from a checkout at another path still finds its files.
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{dir}/fixtures/whip-offers/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn candidate() -> SocketAddr {
    "127.0.0.1:8189".parse().unwrap()
}

/// The answer's m-sections, each as (mid, port, lines).
fn sections(sdp: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            let port = m.split_whitespace().nth(1).unwrap_or("").to_owned();
            out.push((String::new(), port, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                last.0 = mid.to_owned();
            }
            last.2.push(line.to_owned());
        }
    }
    out
}

fn attr<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

fn payload_types(sdp: &str, mid: &str) -> Vec<String> {
    sections(sdp)
        .into_iter()
        .find(|s| s.0 == mid)
        .map(|s| {
            attr(&s.2, "a=rtpmap:")
                .iter()
                .map(|r| r.split(' ').next().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts the answer is one a WHIP client accepts, and returns it.
fn assert_valid_answer(name: &str, expect_rids: &[&str], expect_setup: &[&str]) -> String {
    let offer = fixture(name);
    let peer = answer_publisher(&offer, candidate(), Instant::now())
        .unwrap_or_else(|e| panic!("{name}: offer refused: {e}"));
    let answer = peer.answer.clone();
    assert!(
        answer.contains("a=candidate:"),
        "{name}: answer carries our host candidate"
    );
    assert!(answer.contains("a=ice-lite"), "{name}: answer is ICE-lite");

    let offered = sections(&offer);
    let answered = sections(&answer);
    let offered_mids: Vec<&str> = offered.iter().map(|s| s.0.as_str()).collect();
    let answered_mids: Vec<&str> = answered.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        answered_mids, offered_mids,
        "{name}: same m-lines, same order, same mids"
    );

    for (mid, port, lines) in &answered {
        assert_ne!(port, "0", "{name}: m-line {mid} accepted");
        let pts = payload_types(&answer, mid);
        assert!(!pts.is_empty(), "{name}: m-line {mid} has a codec");
        let offered_pts = payload_types(&offer, mid);
        for pt in &pts {
            assert!(
                offered_pts.contains(pt),
                "{name}: answer PT {pt} on {mid} was offered"
            );
        }
        let setup = attr(lines, "a=setup:");
        assert!(
            setup.iter().all(|s| expect_setup.contains(s)) && !setup.is_empty(),
            "{name}: setup {setup:?} must be one of {expect_setup:?}"
        );
        assert!(
            lines.iter().any(|l| l == "a=recvonly"),
            "{name}: we receive on {mid}"
        );
    }

    if !expect_rids.is_empty() {
        let simulcast = answer
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=simulcast:recv "))
            .unwrap_or_else(|| panic!("{name}: answer has a=simulcast:recv\n{answer}"));
        let accepted: Vec<&str> = simulcast.split(';').collect();
        assert_eq!(accepted, expect_rids, "{name}: every layer accepted");
        for rid in expect_rids {
            assert!(
                answer.contains(&format!("a=rid:{rid} recv")),
                "{name}: rid {rid} accepted"
            );
        }
    }
    answer
}

#[test]
fn chromium_simulcast_offer_is_accepted_with_all_layers() {
    assert_valid_answer(
        "chromium156-simulcast-whip-offer.sdp",
        &["q", "h", "f"],
        &["active", "passive"],
    );
}

#[test]
fn obs_three_layer_offer_is_accepted_with_all_layers() {
    assert_valid_answer(
        "obs-emulated-3layer-offer.sdp",
        &["0", "1", "2"],
        &["active", "passive"],
    );
}

#[test]
fn obs_single_layer_offer_is_accepted() {
    assert_valid_answer("obs-emulated-1layer-offer.sdp", &[], &["active", "passive"]);
}

#[test]
fn aiortc_offer_is_accepted() {
    assert_valid_answer("aiortc-1.16-whip-offer.sdp", &[], &["active", "passive"]);
}

#[test]
fn ffmpeg_passive_offer_makes_us_the_dtls_client() {
    assert_valid_answer("ffmpeg8-whip-muxer-offer.sdp", &[], &["active"]);
}

#[test]
fn gstreamer_bundle_only_offer_is_accepted() {
    assert_valid_answer(
        "gst-plugins-rs-0.15.4-whipclientsink-offer.sdp",
        &[],
        &["active", "passive"],
    );
}

#[test]
fn obs_h264_answer_keeps_the_offered_payload_type() {
    let answer = assert_valid_answer(
        "obs-emulated-3layer-offer.sdp",
        &["0", "1", "2"],
        &["active", "passive"],
    );
    assert_eq!(payload_types(&answer, "1"), ["96"]);
    assert_eq!(payload_types(&answer, "0"), ["111"]);
}

#[test]
fn garbage_is_a_bad_sdp_error() {
    let err = answer_publisher("hello", candidate(), Instant::now())
        .err()
        .unwrap();
    assert!(matches!(err, MediaError::BadSdp(_)), "{err:?}");
}

#[test]
fn unsupported_codecs_only_is_named_in_the_error() {
    let offer = fixture("obs-emulated-1layer-offer.sdp")
        .replace("opus/48000/2", "G7221/16000")
        .replace("H264/90000", "MP4V-ES/90000");
    let err = answer_publisher(&offer, candidate(), Instant::now())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, MediaError::UnsupportedCodecs { .. }),
        "{err:?}"
    );
    assert!(text.contains("G7221") && text.contains("MP4V-ES"), "{text}");
}

#[test]
fn a_viewer_offer_that_only_sends_is_refused() {
    let offer = fixture("obs-emulated-1layer-offer.sdp");
    assert!(answer_viewer(&offer, candidate(), Instant::now()).is_err());
}
