//! [`Session`]: one peer's `Rtc` and what its role needs (a publisher's track
//! map, a viewer's DownTracks), plus [`drain`], str0m's rule made code: after
//! every input or write, poll until `Timeout`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::format::{Codec, CodecSpec};
use str0m::media::{Mid, Pt, Rid};
use str0m::net::Protocol;
use str0m::rtp::Ssrc;
use str0m::{Event, Output, Rtc, RtcError};

use crate::core::layer_selector::LayerSelector;
use crate::core::layers::LayerChoice;
use crate::core::Forwarder;
use crate::ids::{BroadcastName, SessionId};
use crate::metrics::Metrics;
use crate::sdp::MediaLine;

use super::send_queue::SendQueue;

/// Which incoming track an SSRC carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackRef {
    Audio,
    Video { layer: u8 },
}

#[derive(Debug)]
pub struct PublisherState {
    pub media: Vec<MediaLine>,
    /// Learned on each SSRC's first packet, so later packets (which may omit
    /// the mid/rid header extensions) cost one map lookup.
    pub tracks: HashMap<Ssrc, TrackRef>,
    /// Video layers in order of first appearance: (rid, ssrc).
    pub layer_keys: Vec<(Option<Rid>, Ssrc)>,
    pub codecs: HashMap<Pt, CodecSpec>,
}

/// What a viewer receives of one track.
#[derive(Debug)]
pub struct DownTrack {
    pub mid: Mid,
    pub forwarder: Forwarder,
    /// The viewer's payload type for the publisher's codec, resolved per
    /// epoch (a publisher may reconnect with another codec).
    pub pt: Option<Pt>,
    pub pt_epoch: Option<u32>,
    /// The viewer's send stream has been set up (pacing, resend cache).
    pub stream_configured: bool,
}

#[derive(Debug)]
pub struct ViewerState {
    pub choice: LayerChoice,
    pub connected: bool,
    /// A paced GOP replay is under way; live video queues behind it.
    pub replaying: bool,
    pub selector: LayerSelector,
    /// The latest egress estimate (TWCC or REMB), once it is meaningful.
    pub estimate_bps: Option<u64>,
    /// Caps the estimate at what arrives while the receiver reports heavy
    /// loss.
    pub loss_cap: crate::core::loss_cap::LossCap,
    /// Notices an estimate stuck below what arrives cleanly.
    pub stale_estimate: crate::core::stale_estimate::StaleEstimate,
    /// The estimate the next layer up needs (0 at the top), for noticing
    /// a stuck estimate.
    pub climb_wanted_bps: u64,
    /// What the link has carried without noticeable loss lately.
    pub clean_delivery: crate::core::clean_delivery::CleanDelivery,
    /// Bytes sent on the audio stream, from its latest sender statistics.
    pub audio_bytes_sent: u64,
    /// When the viewer connected: early estimates are the estimator's
    /// starting value, not a measurement.
    pub connected_at: Option<Instant>,
    /// Video is paused because the estimate is below the minimum.
    pub paused_low_bandwidth: bool,
    /// The (minimum, desired) last given to the estimator.
    pub bwe_setting: (u64, u64),
    /// A small rise of the desired rate that makes str0m probe again.
    pub probe_bump: u32,
    /// When to probe again while the estimate is short.
    pub probe: crate::core::probe_pacer::ProbePacer,
    /// Layer switches so far, for the viewer API.
    pub switches: u32,
    /// When the latest switch was decided; cleared by its first packet.
    pub switch_decided: Option<Instant>,
    /// Round-trip time and fraction lost, from the viewer's receiver reports.
    pub rtt: Option<std::time::Duration>,
    pub loss: Option<f32>,
    pub audio: Option<DownTrack>,
    pub video: Option<DownTrack>,
}

#[derive(Debug)]
pub enum Role {
    Publisher(PublisherState),
    /// Boxed: a viewer's state is several times a publisher's.
    Viewer(Box<ViewerState>),
}

pub struct Session {
    pub id: SessionId,
    pub broadcast: BroadcastName,
    pub rtc: Rtc,
    pub role: Role,
    pub ufrag: String,
    pub addrs: Vec<SocketAddr>,
    /// The earliest timeout str0m asked for; the timer heap may hold stale
    /// entries, this is the truth.
    pub next_timeout: Instant,
    pub last_input: Instant,
    /// Test hook: the session's next input panics inside its guard.
    #[cfg(feature = "fault-injection")]
    pub fault: bool,
}

/// The socket side of draining: where transmits go and what is counted.
pub struct Io<'a> {
    pub socket: &'a tokio::net::UdpSocket,
    pub metrics: &'a Metrics,
    pub queue: &'a mut SendQueue,
}

impl Io<'_> {
    fn send(&mut self, proto: Protocol, destination: SocketAddr, contents: &[u8]) {
        if proto == Protocol::Udp {
            self.queue
                .send(self.socket, self.metrics, destination, contents);
        }
    }
}

/// Polls `rtc` until it only has a timeout left, sending what it transmits
/// and keeping its events for the caller. Returns the next timeout.
pub fn drain(rtc: &mut Rtc, io: &mut Io, events: &mut Vec<Event>) -> Result<Instant, RtcError> {
    loop {
        match rtc.poll_output()? {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => io.send(t.proto, t.destination, &t.contents),
            Output::Event(e) => events.push(e),
        }
    }
}

/// The viewer's payload type for `spec`, preferring an exact match of the
/// format parameters, then any PT of the same codec (for H264, with
/// packetization-mode 1: OBS signals 42e01f whatever profile it sends, and
/// browsers decode any profile under any H264 PT).
pub fn viewer_pt(rtc: &Rtc, mid: Mid, spec: &CodecSpec) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let remote = media.remote_pts();
    let candidates: Vec<_> = rtc
        .codec_config()
        .params()
        .iter()
        .filter(|p| p.spec().codec == spec.codec && remote.contains(&p.pt()))
        .collect();
    if let Some(exact) = candidates.iter().find(|p| p.spec() == *spec) {
        return Some(exact.pt());
    }
    if spec.codec == Codec::H264 {
        let mode = spec.format.packetization_mode.unwrap_or(0);
        return candidates
            .iter()
            .find(|p| p.spec().format.packetization_mode.unwrap_or(0) == mode)
            .map(|p| p.pt());
    }
    candidates.first().map(|p| p.pt())
}
