//! What a worker tells the control plane, without being asked: a
//! [`WorkerStatus`] snapshot published on a `watch` channel every
//! housekeeping tick (4 times a second). The control plane answers its
//! point queries (one viewer, one broadcast, a publisher's layers) from the
//! latest snapshot of each worker and never polls a worker for them, so a
//! player asking for its own state costs a map lookup, not a command
//! through the media thread.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::session::{Limit, Role};
use super::Worker;
use crate::core::layers::LayerChoice;
use crate::core::view_fit::Viewport;
use crate::ids::{BroadcastName, SessionId};

/// A broadcast as the directory and API show it.
#[derive(Debug, Clone, Default)]
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
    pub broadcast: BroadcastName,
    pub worker: usize,
    /// When it joined (its session was created).
    pub joined: Instant,
    pub choice: LayerChoice,
    /// The layer being received: (width, height) when known, and its bitrate.
    pub layer: Option<(Option<(u16, u16)>, u64)>,
    pub estimate_bps: Option<u64>,
    pub paused_low_bandwidth: bool,
    /// Its worker sheds load: a lower layer than it could get, or no video.
    pub limited_by_server_load: bool,
    /// Video held for an ad break.
    pub in_ad_break: bool,
    /// What its player last reported it shows.
    pub view: Option<Viewport>,
    /// Video paused: its player has been hidden for the grace period.
    pub paused_hidden: bool,
    /// An automatic choice capped at the smallest layer covering its player.
    pub fitted_to_player: bool,
    /// Bytes sent to it so far, from its latest sender statistics.
    pub video_bytes_sent: u64,
    pub audio_bytes_sent: u64,
    pub switches: u32,
    pub connected: bool,
    pub rtt: Option<Duration>,
    /// Fraction of packets lost, 0–1, from its receiver reports.
    pub loss: Option<f32>,
    /// The address its media goes to (learned from its STUN checks).
    pub remote: Option<SocketAddr>,
}

/// Everything one worker has, as of `at`.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus {
    pub at: Option<Instant>,
    /// Broadcasts with a Source or a Mirror here; `viewers` counts this
    /// worker's only, `live` and `layers` are the Source's view when the
    /// Source is here.
    pub broadcasts: HashMap<BroadcastName, BroadcastStatus>,
    /// Broadcasts whose Source is on this worker.
    pub sources: Vec<BroadcastName>,
    pub viewers: HashMap<SessionId, ViewerStatus>,
    /// Per publisher here: its layers and whether each should be sent.
    pub publishers: HashMap<SessionId, Vec<PublisherLayer>>,
    /// Viewer sessions on this worker.
    pub viewer_count: usize,
    /// Share of the last tick spent working.
    pub busy: f32,
    /// Whether the worker admits new viewers (load governor).
    pub admits: bool,
}

impl Worker {
    pub(super) fn publish_status(&mut self, now: Instant) {
        let mut status = WorkerStatus {
            at: Some(now),
            busy: self.governor.busy(),
            admits: self.governor.admits(),
            ..Default::default()
        };
        for (name, source) in &self.sources {
            let mut layers: Vec<(Option<(u16, u16)>, u64)> = source
                .layers
                .iter()
                .filter(|l| l.meter.active(now, super::mirror::LAYER_ACTIVE_WITHIN))
                .map(|l| (l.dimensions, l.meter.bps()))
                .collect();
            layers.sort_by_key(|(d, bps)| {
                Reverse((d.map_or(0, |(w, h)| u32::from(w) * u32::from(h)), *bps))
            });
            status.broadcasts.insert(
                name.clone(),
                BroadcastStatus {
                    name: name.clone(),
                    live: source.publisher.is_some() && source.live_since.is_some(),
                    viewers: 0,
                    live_since: source.live_since,
                    layers,
                },
            );
            status.sources.push(name.clone());
            if let Some(publisher) = source.publisher {
                let layers = source
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| PublisherLayer {
                        rid: l.rid.map(|r| r.to_string()),
                        send: !source.layer_paused(i),
                    })
                    .collect();
                status.publishers.insert(publisher, layers);
            }
        }
        for (name, mirror) in &self.mirrors {
            let entry = status
                .broadcasts
                .entry(name.clone())
                .or_insert_with(|| BroadcastStatus {
                    name: name.clone(),
                    ..Default::default()
                });
            entry.viewers = mirror.viewers.len();
            let measures = mirror.measures(now);
            for &key in &mirror.viewers {
                let Some(session) = self.sessions.get(key) else {
                    continue;
                };
                let Role::Viewer(v) = &session.role else {
                    continue;
                };
                let layer = v
                    .video
                    .as_ref()
                    .and_then(|t| t.forwarder.current())
                    .and_then(|s| measures.iter().find(|m| m.index == s.layer))
                    .map(|m| (m.dimensions, m.bps));
                status.viewers.insert(
                    session.id,
                    ViewerStatus {
                        id: session.id,
                        broadcast: name.clone(),
                        worker: self.index,
                        joined: session.created,
                        choice: v.choice,
                        layer,
                        estimate_bps: v.loss_cap.apply(now, v.estimate_bps),
                        paused_low_bandwidth: v.limit == Limit::LowBandwidth,
                        limited_by_server_load: v.limit == Limit::ServerLoad,
                        in_ad_break: v.limit == Limit::AdBreak,
                        view: v.view.last(),
                        paused_hidden: v.limit == Limit::Hidden,
                        fitted_to_player: v.limit == Limit::PlayerSize,
                        video_bytes_sent: v.video_bytes_sent,
                        audio_bytes_sent: v.audio_bytes_sent,
                        switches: v.switches,
                        connected: v.connected,
                        rtt: v.rtt,
                        loss: v.loss,
                        remote: session.addrs.last().copied(),
                    },
                );
            }
        }
        status.viewer_count = status.viewers.len();
        self.status.send_replace(Arc::new(status));
    }
}
