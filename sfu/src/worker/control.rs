//! The worker's control side: the [`Command`]s the control plane sends,
//! adding publishers and viewers, and the read-only views the API shows
//! (broadcast and viewer status, a publisher's layer plan). None of this is
//! on the per-packet path.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::broadcast::Broadcast;
use super::session::{DownTrack, PublisherState, Role, ViewerState};
use super::Worker;
use crate::core::layers::{self, LayerChoice, LayerMeasure};
use crate::core::Forwarder;
use crate::error::MediaError;
use crate::ids::{BroadcastName, SessionId};
use crate::sdp::NegotiatedPeer;

pub(crate) enum Command {
    Publish {
        id: SessionId,
        broadcast: BroadcastName,
        peer: Box<NegotiatedPeer>,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    View {
        id: SessionId,
        broadcast: BroadcastName,
        peer: Box<NegotiatedPeer>,
        choice: LayerChoice,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    SetLayer {
        id: SessionId,
        choice: LayerChoice,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    End {
        id: SessionId,
        broadcast: BroadcastName,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Exists {
        id: SessionId,
        broadcast: BroadcastName,
        reply: oneshot::Sender<bool>,
    },
    Status {
        reply: oneshot::Sender<Vec<BroadcastStatus>>,
    },
    Viewers {
        broadcast: BroadcastName,
        reply: oneshot::Sender<Vec<ViewerStatus>>,
    },
    /// A publisher's control channel attached: it obeys pause requests.
    AttachPublisher {
        id: SessionId,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    PublisherLayers {
        id: SessionId,
        reply: oneshot::Sender<Option<Vec<PublisherLayer>>>,
    },
    /// Test hook: panic in the worker loop, or in one session's guarded
    /// input handling.
    #[cfg(feature = "fault-injection")]
    Fault(crate::Fault),
    Shutdown,
}

/// A broadcast as the directory and API show it.
#[derive(Debug, Clone)]
pub struct BroadcastStatus {
    pub name: BroadcastName,
    pub live: bool,
    pub viewers: usize,
    pub live_since: Option<SystemTime>,
    /// (width, height, bits per second) per active layer, best first.
    pub layers: Vec<(Option<(u16, u16)>, u64)>,
}

/// One of a publisher's layers, and whether it should be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherLayer {
    pub rid: Option<String>,
    pub send: bool,
}

/// A viewer as the API shows it.
#[derive(Debug, Clone)]
pub struct ViewerStatus {
    pub id: SessionId,
    pub choice: LayerChoice,
    /// The layer being received: (width, height) when known, and its bitrate.
    pub layer: Option<(Option<(u16, u16)>, u64)>,
    pub estimate_bps: Option<u64>,
    pub paused_low_bandwidth: bool,
    pub switches: u32,
    pub connected: bool,
    pub rtt: Option<Duration>,
    /// Fraction of packets lost, 0–1, from its receiver reports.
    pub loss: Option<f32>,
    /// The address its media goes to (learned from its STUN checks).
    pub remote: Option<SocketAddr>,
}

impl Worker {
    pub(super) fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Publish {
                id,
                broadcast,
                peer,
                reply,
            } => {
                let _ = reply.send(self.add_publisher(id, broadcast, peer, now));
            }
            Command::View {
                id,
                broadcast,
                peer,
                choice,
                reply,
            } => {
                self.add_viewer(id, broadcast, peer, choice, now);
                let _ = reply.send(Ok(()));
            }
            Command::SetLayer { id, choice, reply } => {
                let result = match self.sessions.get_mut(&id).map(|s| &mut s.role) {
                    Some(Role::Viewer(v)) => {
                        v.choice = choice;
                        Ok(())
                    }
                    _ => Err(MediaError::NoSuchSession),
                };
                if result.is_ok() {
                    self.retarget_viewer(id, now);
                }
                let _ = reply.send(result);
            }
            Command::End {
                id,
                broadcast,
                reply,
            } => {
                let result = match self.sessions.get(&id) {
                    Some(s) if s.broadcast == broadcast => {
                        self.end_session(id, now);
                        Ok(())
                    }
                    // OBS closes its PeerConnection, then sends DELETE: the
                    // close may end the session first. Ending it is what the
                    // client asked for, so that is a success.
                    None if self.recently_ended.contains(&(id, broadcast.clone())) => Ok(()),
                    _ => Err(MediaError::NoSuchSession),
                };
                let _ = reply.send(result);
            }
            Command::Exists {
                id,
                broadcast,
                reply,
            } => {
                let _ = reply.send(
                    self.sessions
                        .get(&id)
                        .is_some_and(|s| s.broadcast == broadcast),
                );
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status(now));
            }
            Command::Viewers { broadcast, reply } => {
                let _ = reply.send(self.viewer_statuses(&broadcast, now));
            }
            Command::AttachPublisher { id, reply } => {
                let name = self.sessions.get(&id).map(|s| s.broadcast.clone());
                let broadcast = name.and_then(|n| self.broadcasts.get_mut(&n));
                let result = match broadcast {
                    Some(b) if b.publisher == Some(id) => {
                        b.controllable = true;
                        Ok(())
                    }
                    _ => Err(MediaError::NoSuchSession),
                };
                let _ = reply.send(result);
            }
            Command::PublisherLayers { id, reply } => {
                let _ = reply.send(self.publisher_layers(id, now));
            }
            #[cfg(feature = "fault-injection")]
            Command::Fault(crate::Fault::WorkerPanic) => panic!("fault injected: worker panic"),
            #[cfg(feature = "fault-injection")]
            Command::Fault(crate::Fault::SessionPanic(id)) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.fault = true;
                }
            }
            Command::Shutdown => {}
        }
    }

    pub(super) fn add_publisher(
        &mut self,
        id: SessionId,
        name: BroadcastName,
        peer: Box<NegotiatedPeer>,
        now: Instant,
    ) -> Result<(), MediaError> {
        let broadcast = self
            .broadcasts
            .entry(name.clone())
            .or_insert_with(|| Broadcast::new(name.clone()));
        if broadcast.publisher_is_healthy(now) {
            return Err(MediaError::AlreadyLive(name.to_string()));
        }
        // A publisher that went quiet is replaced: that is how OBS comes
        // back after a network blip, often before its old session timed out.
        if let Some(old) = broadcast.publisher {
            self.end_session(old, now);
        }
        // Ending the old publisher removes a broadcast nobody watches: the
        // new session then starts a fresh one.
        let broadcast = self
            .broadcasts
            .entry(name.clone())
            .or_insert_with(|| Broadcast::new(name.clone()));
        let expected_layers = peer
            .media
            .iter()
            .find(|m| m.kind == str0m::media::MediaKind::Video)
            .map_or(1, |m| m.rids.len().max(1));
        broadcast.start_epoch(id, expected_layers);
        let audio_target = broadcast.audio_target();
        let viewers = broadcast.viewers.clone();
        self.insert_session(
            id,
            name,
            peer.rtc,
            peer.local_ufrag,
            Role::Publisher(PublisherState {
                media: peer.media,
                tracks: HashMap::new(),
                layer_keys: Vec::new(),
                codecs: HashMap::new(),
            }),
            now,
        );
        self.metrics.publishers.fetch_add(1, Relaxed);
        for viewer in viewers {
            if let Some(Role::Viewer(v)) = self.sessions.get_mut(&viewer).map(|s| &mut s.role) {
                if let Some(audio) = &mut v.audio {
                    audio.forwarder.set_target(audio_target);
                }
            }
        }
        Ok(())
    }

    pub(super) fn add_viewer(
        &mut self,
        id: SessionId,
        name: BroadcastName,
        peer: Box<NegotiatedPeer>,
        choice: LayerChoice,
        now: Instant,
    ) {
        let broadcast = self
            .broadcasts
            .entry(name.clone())
            .or_insert_with(|| Broadcast::new(name.clone()));
        broadcast.viewers.push(id);
        let mut audio = None;
        let mut video = None;
        // Outgoing sequence numbers start at a random point below 2^15 so
        // they never need an SRTP rollover counter signalled.
        let first_seq = (id.low_u64() >> 17) as u16 & 0x7fff;
        for line in peer.media.iter().filter(|m| m.direction.is_sending()) {
            let track = |is_video, clock| DownTrack {
                mid: line.mid,
                forwarder: Forwarder::new(is_video, clock, first_seq),
                pt: None,
                pt_epoch: None,
                stream_configured: false,
            };
            match line.kind {
                str0m::media::MediaKind::Audio if audio.is_none() => {
                    audio = Some(track(false, 48_000))
                }
                str0m::media::MediaKind::Video if video.is_none() => {
                    video = Some(track(true, 90_000))
                }
                _ => {}
            }
        }
        self.insert_session(
            id,
            name,
            peer.rtc,
            peer.local_ufrag,
            Role::Viewer(Box::new(ViewerState {
                choice,
                connected: false,
                replaying: false,
                selector: Default::default(),
                estimate_bps: None,
                loss_cap: Default::default(),
                stale_estimate: Default::default(),
                clean_delivery: Default::default(),
                climb_wanted_bps: 0,
                audio_bytes_sent: 0,
                connected_at: None,
                paused_low_bandwidth: false,
                bwe_setting: (0, 0),
                probe_bump: 0,
                probe: Default::default(),
                switches: 0,
                switch_decided: None,
                rtt: None,
                loss: None,
                audio,
                video,
            })),
            now,
        );
        self.metrics.viewers.fetch_add(1, Relaxed);
    }

    /// Records, per layer, that some viewer receives or targets it now; the
    /// layers nobody wanted for a while are paused at obedient publishers.
    pub(super) fn mark_wanted_layers(&mut self, now: Instant) {
        for broadcast in self.broadcasts.values_mut() {
            let epoch = broadcast.epoch;
            // Worst first, paused layers included: the layer ranked just
            // below a wanted one stays warm, so a viewer whose layer stops
            // falls back at once instead of waiting for a resume.
            let measures: Vec<LayerMeasure> = broadcast
                .measures(now)
                .into_iter()
                .map(|m| LayerMeasure { active: true, ..m })
                .collect();
            let ranked: Vec<u8> = layers::rank(&measures).iter().map(|m| m.index).collect();
            let mut wanted: Vec<u8> = Vec::new();
            for viewer in &broadcast.viewers {
                let Some(Role::Viewer(v)) = self.sessions.get(viewer).map(|s| &s.role) else {
                    continue;
                };
                let Some(video) = v.video.as_ref() else {
                    continue;
                };
                for source in [video.forwarder.current(), video.forwarder.target()]
                    .into_iter()
                    .flatten()
                {
                    if source.epoch == epoch {
                        wanted.push(source.layer);
                        let below = ranked
                            .iter()
                            .position(|l| *l == source.layer)
                            .and_then(|p| p.checked_sub(1));
                        wanted.extend(below.map(|p| ranked[p]));
                    }
                }
            }
            for layer in wanted {
                if let Some(l) = broadcast.layers.get_mut(usize::from(layer)) {
                    l.last_wanted = now;
                }
            }
        }
    }

    /// Which of a publisher's layers it should send.
    pub(super) fn publisher_layers(
        &self,
        id: SessionId,
        now: Instant,
    ) -> Option<Vec<PublisherLayer>> {
        let session = self.sessions.get(&id)?;
        let broadcast = self.broadcasts.get(&session.broadcast)?;
        (broadcast.publisher == Some(id)).then(|| {
            broadcast
                .layers
                .iter()
                .map(|l| PublisherLayer {
                    rid: l.rid.map(|r| r.to_string()),
                    send: !l.paused(now),
                })
                .collect()
        })
    }

    pub(super) fn viewer_statuses(&self, name: &BroadcastName, now: Instant) -> Vec<ViewerStatus> {
        let Some(broadcast) = self.broadcasts.get(name) else {
            return Vec::new();
        };
        let measures = broadcast.measures(now);
        broadcast
            .viewers
            .iter()
            .filter_map(|id| {
                let session = self.sessions.get(id)?;
                let Role::Viewer(v) = &session.role else {
                    return None;
                };
                let layer = v
                    .video
                    .as_ref()
                    .and_then(|t| t.forwarder.current())
                    .and_then(|s| measures.iter().find(|m| m.index == s.layer))
                    .map(|m| (m.dimensions, m.bps));
                Some(ViewerStatus {
                    id: *id,
                    choice: v.choice,
                    layer,
                    estimate_bps: v.loss_cap.apply(now, v.estimate_bps),
                    paused_low_bandwidth: v.paused_low_bandwidth,
                    switches: v.switches,
                    connected: v.connected,
                    rtt: v.rtt,
                    loss: v.loss,
                    remote: session.addrs.last().copied(),
                })
            })
            .collect()
    }

    pub(super) fn status(&self, now: Instant) -> Vec<BroadcastStatus> {
        let mut out: Vec<BroadcastStatus> = self
            .broadcasts
            .values()
            .map(|b| {
                let mut layers: Vec<_> = b
                    .measures(now)
                    .into_iter()
                    .filter(|m| m.active)
                    .map(|m| (m.dimensions, m.bps))
                    .collect();
                layers.sort_by_key(|(d, bps)| {
                    Reverse((d.map_or(0, |(w, h)| u32::from(w) * u32::from(h)), *bps))
                });
                BroadcastStatus {
                    name: b.name.clone(),
                    live: b.publisher.is_some() && b.live_since.is_some(),
                    viewers: b.viewers.len(),
                    live_since: b.live_since,
                    layers,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
