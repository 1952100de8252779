//! [`Session`]: one peer's `Rtc` and what its role needs (a publisher's
//! track map, a viewer's DownTracks and adaptive state), and [`Sessions`],
//! the worker's table of them by [`SessionKey`].
//!
//! Invariants: a [`SessionKey`] is an index into this worker's table only;
//! whoever keeps one across calls (the timer heap, a replay) also keeps the
//! [`SessionId`] and checks it, because a slot is reused once its session
//! ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::format::{Codec, CodecSpec};
use str0m::media::{Mid, Pt, Rid};
use str0m::rtp::Ssrc;
use str0m::Rtc;

use super::bus::TrackRef;
use crate::core::bwe_policy::BwePolicy;
use crate::core::clean_delivery::CleanDelivery;
use crate::core::layer_selector::LayerSelector;
use crate::core::layers::LayerChoice;
use crate::core::loss_cap::LossCap;
use crate::core::resend_budget::ResendBudget;
use crate::core::stale_estimate::StaleEstimate;
use crate::core::view_fit::ViewFit;
use crate::core::Forwarder;
use crate::ids::{BroadcastName, SessionId};
use crate::sdp::MediaLine;

/// A session's slot in its worker's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(pub u32);

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
    /// The send stream is set up (NACKs handed to us, not str0m's cache).
    pub stream_configured: bool,
}

/// Why a viewer's video is held below what its link could take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Limit {
    #[default]
    None,
    /// The estimate is below the per-viewer minimum: video paused.
    LowBandwidth,
    /// Its worker sheds load: a lower layer, or audio only.
    ServerLoad,
    /// Its viewer is watching an ad break: audio and video held.
    AdBreak,
    /// Its player is hidden (a background tab): video paused, audio on.
    Hidden,
    /// Its player is small: the smallest layer that covers it.
    PlayerSize,
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
    /// The latest estimate while its video was neither capped to its
    /// player nor paused: what the link carried. Low traffic lets the
    /// estimator sink, so it restarts from this when the cap lifts.
    pub free_estimate_bps: Option<u64>,
    pub loss_cap: LossCap,
    pub stale_estimate: StaleEstimate,
    pub clean_delivery: CleanDelivery,
    pub bwe: BwePolicy,
    /// Bytes sent on the audio stream, from its latest sender statistics.
    pub audio_bytes_sent: u64,
    /// Bytes sent on the video stream, likewise.
    pub video_bytes_sent: u64,
    /// Its ICE-TCP connection's datagrams queued and refused, at the last
    /// sender report (see `on_egress_stats`).
    pub tcp_counts: (u64, u64),
    /// When the viewer connected: early estimates are the estimator's
    /// starting value, not a measurement.
    pub connected_at: Option<Instant>,
    pub limit: Limit,
    /// Audio and video are held (an ad break) until then; resuming serves
    /// the layer's GopCache at once, as any resume from a pause does.
    pub held_until: Option<Instant>,
    /// What its player shows: caps an automatic choice, pauses video while hidden.
    pub view: ViewFit,
    /// Layer switches so far, for the viewer API.
    pub switches: u32,
    /// When the latest switch was decided; cleared by its first packet.
    pub switch_decided: Option<Instant>,
    /// Round-trip time and fraction lost, from the viewer's receiver reports.
    pub rtt: Option<std::time::Duration>,
    pub loss: Option<f32>,
    pub resend_budget: ResendBudget,
    pub audio: Option<DownTrack>,
    pub video: Option<DownTrack>,
}

impl ViewerState {
    pub fn new(choice: LayerChoice, audio: Option<DownTrack>, video: Option<DownTrack>) -> Self {
        ViewerState {
            choice,
            connected: false,
            replaying: false,
            selector: Default::default(),
            estimate_bps: None,
            free_estimate_bps: None,
            loss_cap: Default::default(),
            stale_estimate: Default::default(),
            clean_delivery: Default::default(),
            bwe: Default::default(),
            audio_bytes_sent: 0,
            video_bytes_sent: 0,
            tcp_counts: (0, 0),
            connected_at: None,
            limit: Limit::None,
            held_until: None,
            view: ViewFit::default(),
            switches: 0,
            switch_decided: None,
            rtt: None,
            loss: None,
            resend_budget: Default::default(),
            audio,
            video,
        }
    }

    pub fn track(&mut self, is_video: bool) -> Option<&mut DownTrack> {
        if is_video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }
    }
}

#[derive(Debug)]
pub enum Role {
    Publisher(Box<PublisherState>),
    Viewer(Box<ViewerState>),
}

pub struct Session {
    pub id: SessionId,
    pub broadcast: BroadcastName,
    pub rtc: Rtc,
    pub role: Role,
    pub ufrag: String,
    pub addrs: Vec<SocketAddr>,
    /// When the session was created: orders the viewer table by join.
    pub created: Instant,
    /// The earliest timeout str0m asked for; the timer heap may hold stale
    /// entries, this is the truth.
    pub next_timeout: Instant,
    pub last_input: Instant,
    /// Test hook: the session's next input panics inside its guard.
    #[cfg(feature = "fault-injection")]
    pub fault: bool,
}

impl Session {
    pub fn viewer(&self) -> Option<&ViewerState> {
        match &self.role {
            Role::Viewer(v) => Some(v),
            Role::Publisher(_) => None,
        }
    }

    pub fn viewer_mut(&mut self) -> Option<&mut ViewerState> {
        match &mut self.role {
            Role::Viewer(v) => Some(v),
            Role::Publisher(_) => None,
        }
    }
}

/// The worker's sessions, by key and by id.
#[derive(Default)]
pub struct Sessions {
    slots: Vec<Option<Box<Session>>>,
    free: Vec<u32>,
    by_id: HashMap<SessionId, SessionKey>,
}

impl Sessions {
    pub fn insert(&mut self, session: Session) -> SessionKey {
        let id = session.id;
        let key = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(Box::new(session));
                SessionKey(i)
            }
            None => {
                self.slots.push(Some(Box::new(session)));
                SessionKey(self.slots.len() as u32 - 1)
            }
        };
        self.by_id.insert(id, key);
        key
    }

    pub fn remove(&mut self, key: SessionKey) -> Option<Box<Session>> {
        let session = self.slots.get_mut(key.0 as usize)?.take()?;
        self.by_id.remove(&session.id);
        self.free.push(key.0);
        Some(session)
    }

    pub fn get(&self, key: SessionKey) -> Option<&Session> {
        self.slots.get(key.0 as usize)?.as_deref()
    }

    pub fn get_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        self.slots.get_mut(key.0 as usize)?.as_deref_mut()
    }

    /// The session in `key` if it is still `id`.
    pub fn get_checked(&mut self, key: SessionKey, id: SessionId) -> Option<&mut Session> {
        self.get_mut(key).filter(|s| s.id == id)
    }

    pub fn key(&self, id: SessionId) -> Option<SessionKey> {
        self.by_id.get(&id).copied()
    }

    pub fn keys(&self) -> Vec<SessionKey> {
        self.by_id.values().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (SessionKey, &Session)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((SessionKey(i as u32), s.as_deref()?)))
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
