//! Turning a WHIP/WHEP offer into a configured `Rtc` and its answer.
//!
//! Runs on the caller's task, not the media worker, so SDP work never delays
//! packets. The `Rtc` is ICE-lite in RTP mode with one host candidate: the
//! worker's shared UDP socket. Peers (OBS never sends candidates) are learned
//! from their STUN checks.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Rid, Rids};
use str0m::net::TcpType;
use str0m::{Candidate, Rtc, RtcConfig};

use crate::error::MediaError;

/// One negotiated m-line, as the worker needs to know it.
#[derive(Debug, Clone)]
pub struct MediaLine {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Our direction on this m-line.
    pub direction: Direction,
    /// Simulcast layers the peer sends, in the offer's order.
    pub rids: Vec<Rid>,
}

/// An `Rtc` that has accepted an offer, with the answer to return.
pub struct NegotiatedPeer {
    pub rtc: Rtc,
    pub answer: String,
    /// Our ICE ufrag: STUN checks name it, which is how the worker finds the
    /// session a new 5-tuple belongs to.
    pub local_ufrag: String,
    pub media: Vec<MediaLine>,
}

/// Video codecs we forward, in our default preference order.
const VIDEO_CODECS: [Codec; 5] = [Codec::Vp8, Codec::H264, Codec::Vp9, Codec::Av1, Codec::H265];

/// Sent packets each session remembers for TWCC feedback.
pub const TWCC_SEND_HISTORY: usize = 500;

fn rtc_config(offer: &str) -> RtcConfig {
    let mut config = Rtc::builder()
        .set_rtp_mode(true)
        .set_ice_lite(true)
        // Stats events cost per-session work we do not use yet.
        .set_stats_interval(None)
        // TWCC feedback comes every 50-100 ms: 500 sent packets is 1.4 s
        // of a 2.5 Mbit/s viewer. str0m's 1000 cost 90 KB per viewer
        // (vendor/str0m/PATCHES.md, patch 3).
        .set_twcc_send_history(TWCC_SEND_HISTORY)
        .clear_codecs();
    // The answer lists codecs in our configured order and the peer sends the
    // first one, so the offerer's favourite goes first: a broadcaster who
    // chose H264 gets H264.
    let favourite = first_offered_video_codec(offer);
    let order = favourite
        .into_iter()
        .chain(VIDEO_CODECS.into_iter().filter(|c| Some(*c) != favourite));
    let codecs = config.codec_config();
    // RED-wrapped audio would reach viewers that never negotiated RED.
    codecs.enable_opus(true, false);
    for codec in order {
        match codec {
            Codec::Vp8 => codecs.enable_vp8(true),
            Codec::H264 => codecs.enable_h264(true),
            Codec::Vp9 => codecs.enable_vp9(true),
            Codec::Av1 => codecs.enable_av1(true),
            Codec::H265 => codecs.enable_h265(true),
            _ => {}
        }
    }
    config
}

/// The first codec on the offer's first video m-line that we forward.
fn first_offered_video_codec(offer: &str) -> Option<Codec> {
    let pts: Vec<&str> = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=video "))?
        .split_whitespace()
        .skip(2)
        .collect();
    pts.iter().find_map(|pt| {
        let prefix = format!("a=rtpmap:{pt} ");
        let name = offer
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()))?;
        let name = name.split('/').next()?;
        VIDEO_CODECS
            .into_iter()
            .find(|c| codec_name(*c).eq_ignore_ascii_case(name))
    })
}

/// What a viewer's bandwidth estimator starts from: a typical top layer, so
/// an automatic viewer starts high and drops at once if its link says so.
pub const VIEWER_INITIAL_ESTIMATE: Bitrate = Bitrate::kbps(3_000);

/// [`negotiate_unguarded`] with str0m's own assertions turned into a
/// refusal: should an offer we let through still trip one, the panic
/// becomes a refusal of that offer (this runs on the caller's task: a
/// panic would end its HTTP request or websocket without an answer).
fn negotiate(
    offer_text: &str,
    candidate: SocketAddr,
    now: Instant,
    bwe: bool,
) -> Result<NegotiatedPeer, MediaError> {
    std::panic::catch_unwind(|| negotiate_unguarded(offer_text, candidate, now, bwe))
        .unwrap_or_else(|_| {
            tracing::warn!("str0m panicked on an offer that passed validation");
            Err(MediaError::UnusableOffer(
                "the offer could not be negotiated".into(),
            ))
        })
}

/// Checks the offer ([`validate`]), then negotiates it, without a panic
/// guard: the fuzz targets call it directly, as they must see a panic that
/// validation let through.
pub(crate) fn negotiate_unguarded(
    offer_text: &str,
    candidate: SocketAddr,
    now: Instant,
    bwe: bool,
) -> Result<NegotiatedPeer, MediaError> {
    validate::check_offer(offer_text).map_err(MediaError::BadSdp)?;
    negotiate_checked(offer_text, candidate, now, bwe)
}

fn negotiate_checked(
    offer_text: &str,
    candidate: SocketAddr,
    now: Instant,
    bwe: bool,
) -> Result<NegotiatedPeer, MediaError> {
    let offer =
        SdpOffer::from_sdp_string(offer_text).map_err(|e| MediaError::BadSdp(e.to_string()))?;
    let mut config = rtc_config(offer_text);
    if bwe {
        // Viewers: estimate bandwidth, and report RTT and loss twice a
        // second: for the viewer API, and so a receiver report of heavy
        // loss reaches the layer choice without waiting (LossCap).
        config = config
            .enable_bwe(Some(VIEWER_INITIAL_ESTIMATE))
            .set_stats_interval(Some(std::time::Duration::from_millis(500)));
    }
    let mut rtc = config.build(now);
    let host = Candidate::host(candidate, "udp").map_err(|e| MediaError::BadSdp(e.to_string()))?;
    rtc.add_local_candidate(host);
    // ICE-TCP (RFC 6544): the worker also listens on TCP at this port; the
    // passive candidate ranks below the UDP one, so only a peer that
    // cannot reach UDP uses it.
    let tcp = Candidate::builder()
        .tcp()
        .host(candidate)
        .tcptype(TcpType::Passive)
        .build()
        .map_err(|e| MediaError::BadSdp(e.to_string()))?;
    rtc.add_local_candidate(tcp);
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
    let local_ufrag = rtc.direct_api().local_ice_credentials().ufrag;
    let media = offered_mids(offer_text)
        .filter_map(|mid| {
            let m = rtc.media(mid)?;
            // An m-line with no codec in common carries nothing we can use.
            let params = rtc.codec_config().params();
            if !m
                .remote_pts()
                .iter()
                .any(|pt| params.iter().any(|p| p.pt() == *pt))
            {
                return None;
            }
            let rids = match m.rids_rx() {
                Rids::Specific(rids) => rids.clone(),
                Rids::None | Rids::Any => Vec::new(),
            };
            Some(MediaLine {
                mid,
                kind: m.kind(),
                direction: m.direction(),
                rids,
            })
        })
        .collect();
    Ok(NegotiatedPeer {
        rtc,
        answer: answer.to_sdp_string(),
        local_ufrag,
        media,
    })
}

/// Accepts a publisher's (WHIP) offer: it must send audio or video in a
/// codec we forward.
pub fn answer_publisher(
    offer: &str,
    candidate: SocketAddr,
    now: Instant,
) -> Result<NegotiatedPeer, MediaError> {
    let peer = negotiate(offer, candidate, now, false)?;
    let receiving = peer
        .media
        .iter()
        .any(|m| matches!(m.direction, Direction::RecvOnly | Direction::SendRecv));
    if !receiving {
        return Err(no_usable_media(
            offer,
            &peer,
            "the offer sends no audio or video",
        ));
    }
    Ok(peer)
}

/// Accepts a viewer's (WHEP) offer: it must be able to receive audio or
/// video in a codec we forward.
pub fn answer_viewer(
    offer: &str,
    candidate: SocketAddr,
    now: Instant,
) -> Result<NegotiatedPeer, MediaError> {
    let peer = negotiate(offer, candidate, now, true)?;
    let sending = peer
        .media
        .iter()
        .any(|m| matches!(m.direction, Direction::SendOnly | Direction::SendRecv));
    if !sending {
        return Err(no_usable_media(
            offer,
            &peer,
            "the offer receives no audio or video",
        ));
    }
    Ok(peer)
}

/// Distinguishes "nothing in a codec we know" (415) from an offer that is
/// simply the wrong shape (400).
fn no_usable_media(offer: &str, peer: &NegotiatedPeer, shape: &str) -> MediaError {
    let offered = offered_codecs(offer);
    let known = peer.rtc.codec_config().params().iter().any(|p| {
        let name = codec_name(p.spec().codec);
        offered.iter().any(|o| o.eq_ignore_ascii_case(name))
    });
    if !offered.is_empty() && !known {
        MediaError::UnsupportedCodecs {
            offered: offered.join(", "),
        }
    } else {
        MediaError::UnusableOffer(shape.to_owned())
    }
}

fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "opus",
        Codec::Vp8 => "VP8",
        Codec::Vp9 => "VP9",
        Codec::H264 => "H264",
        Codec::H265 => "H265",
        Codec::Av1 => "AV1",
        _ => "",
    }
}

/// The offer's `a=mid` values, in m-line order.
fn offered_mids(offer: &str) -> impl Iterator<Item = Mid> + '_ {
    offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(|mid| Mid::from(mid.trim()))
}

/// Codec names from the offer's `a=rtpmap` lines, deduplicated, for error
/// messages (RTX/RED/FEC helpers left out).
pub fn offered_codecs(offer: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in offer.lines() {
        let Some(rest) = line.trim().strip_prefix("a=rtpmap:") else {
            continue;
        };
        let Some(name) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|enc| enc.split('/').next())
        else {
            continue;
        };
        let helper = [
            "rtx",
            "red",
            "ulpfec",
            "flexfec-03",
            "telephone-event",
            "CN",
        ]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name));
        if !helper && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }
    names
}

mod validate;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn the_offerers_first_video_codec_is_found() {
        let h264_first = "m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n";
        assert_eq!(first_offered_video_codec(h264_first), Some(Codec::H264));
        let rtx_first = "m=video 9 UDP/TLS/RTP/SAVPF 97 96\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(first_offered_video_codec(rtx_first), Some(Codec::Vp8));
        assert_eq!(first_offered_video_codec("m=audio 9 RTP 111\r\n"), None);
    }
}
