//! [`Command`]s from the control plane ([`crate::SfuHandle`]) and how the
//! worker applies them: new publisher and viewer sessions, layer choices,
//! ends, and the set of Mirrors a Source here feeds. Nothing here answers
//! queries: the worker publishes a status snapshot instead
//! ([`super::status`]).

use std::time::Instant;

use tokio::sync::oneshot;

use super::bus::{Bus, Downstream};
use super::mirror::Mirror;
use super::session::{DownTrack, Limit, PublisherState, Role, Session, ViewerState};
use super::source::Source;
use super::Worker;
use crate::core::layers::LayerChoice;
use crate::core::view_fit::Viewport;
use crate::core::Forwarder;
use crate::error::MediaError;
use crate::ids::{BroadcastName, SessionId};
use crate::sdp::NegotiatedPeer;

pub(crate) enum Command {
    Publish {
        id: SessionId,
        broadcast: BroadcastName,
        peer: Box<NegotiatedPeer>,
        /// Unique on the node: a reconnect is always a new source to viewers.
        epoch: u32,
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
    /// What a viewer's player shows (size, visibility).
    SetView {
        id: SessionId,
        view: Viewport,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    End {
        id: SessionId,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// Holds these viewers' media until `until` (an ad break), or resumes
    /// it (`None`); answers how many of them are here.
    HoldMedia {
        ids: Vec<SessionId>,
        until: Option<Instant>,
        reply: oneshot::Sender<usize>,
    },
    /// A publisher's control channel attached: it obeys pause requests.
    AttachPublisher {
        id: SessionId,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// The other workers with Mirrors of a broadcast whose Source is here.
    Mirrors {
        broadcast: BroadcastName,
        workers: Vec<usize>,
    },
    /// Test hook: panic in the worker loop, or in one session's guarded
    /// input handling.
    #[cfg(feature = "fault-injection")]
    Fault(crate::Fault),
    Shutdown,
}

impl Worker {
    pub(super) fn command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Publish {
                id,
                broadcast,
                peer,
                epoch,
                reply,
            } => {
                let result = self.add_publisher(id, broadcast, peer, epoch, now);
                let _ = reply.send(result);
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
                let key = self.sessions.key(id);
                let viewer = key.and_then(|k| self.sessions.get_mut(k)?.viewer_mut());
                let result = match viewer {
                    Some(v) => {
                        v.choice = choice;
                        Ok(())
                    }
                    None => Err(MediaError::NoSuchSession),
                };
                if let (Ok(()), Some(key)) = (&result, key) {
                    self.retarget_viewer(key, now);
                }
                let _ = reply.send(result);
            }
            Command::SetView { id, view, reply } => {
                let key = self.sessions.key(id);
                let viewer = key.and_then(|k| self.sessions.get_mut(k)?.viewer_mut());
                let mut freed = false;
                let result = match viewer {
                    Some(v) => {
                        freed = matches!(v.limit, Limit::PlayerSize | Limit::Hidden);
                        v.view.report(view, now);
                        Ok(())
                    }
                    None => Err(MediaError::NoSuchSession),
                };
                if let (Ok(()), Some(key)) = (&result, key) {
                    if freed {
                        self.restore_estimate(key, now);
                    }
                    self.retarget_viewer(key, now);
                    self.update_bwe(key, now);
                }
                let _ = reply.send(result);
            }
            Command::HoldMedia { ids, until, reply } => {
                let mut found = 0;
                for id in ids {
                    let Some(key) = self.sessions.key(id) else {
                        continue;
                    };
                    let Some(v) = self.sessions.get_mut(key).and_then(|s| s.viewer_mut()) else {
                        continue;
                    };
                    let resumed = until.is_none() && v.held_until.is_some();
                    v.held_until = until;
                    found += 1;
                    if resumed {
                        // The pod's quiet link sank its estimator.
                        self.restore_estimate(key, now);
                    }
                    self.retarget_viewer(key, now);
                }
                let _ = reply.send(found);
            }
            Command::End { id, reply } => {
                let result = match self.sessions.key(id) {
                    Some(key) => {
                        self.end_session(key, now);
                        Ok(())
                    }
                    None => Err(MediaError::NoSuchSession),
                };
                let _ = reply.send(result);
            }
            Command::AttachPublisher { id, reply } => {
                let name = self
                    .sessions
                    .key(id)
                    .and_then(|k| self.sessions.get(k))
                    .map(|s| s.broadcast.clone());
                let source = name.and_then(|n| self.sources.get_mut(&n));
                let result = match source {
                    Some(s) if s.publisher == Some(id) => {
                        s.set_controllable();
                        Ok(())
                    }
                    _ => Err(MediaError::NoSuchSession),
                };
                if let Some(name) = self.sessions.key(id).and_then(|k| self.sessions.get(k)) {
                    let name = name.broadcast.clone();
                    self.announce_epoch(&name);
                }
                let _ = reply.send(result);
            }
            Command::Mirrors { broadcast, workers } => self.link_mirrors(broadcast, workers),
            #[cfg(feature = "fault-injection")]
            Command::Fault(crate::Fault::WorkerPanic | crate::Fault::WorkerPanicOn(_)) => {
                panic!("fault injected: worker panic")
            }
            #[cfg(feature = "fault-injection")]
            Command::Fault(crate::Fault::SessionPanic(id)) => {
                if let Some(s) = self.sessions.key(id).and_then(|k| self.sessions.get_mut(k)) {
                    s.fault = true;
                }
            }
            Command::Shutdown => {}
        }
    }

    fn add_publisher(
        &mut self,
        id: SessionId,
        name: BroadcastName,
        peer: Box<NegotiatedPeer>,
        epoch: u32,
        now: Instant,
    ) -> Result<(), MediaError> {
        let source = self
            .sources
            .entry(name.clone())
            .or_insert_with(|| Source::new(name.clone()));
        if source.publisher_is_healthy(now) {
            return Err(MediaError::AlreadyLive(name.to_string()));
        }
        // A publisher that went quiet is replaced: that is how OBS comes
        // back after a network blip, often before its old session timed out.
        let old = source.publisher.and_then(|old| self.sessions.key(old));
        if let Some(old) = old {
            self.end_session(old, now);
        }
        // Ending the old publisher may have removed a Source nobody uses.
        let source = self
            .sources
            .entry(name.clone())
            .or_insert_with(|| Source::new(name.clone()));
        let expected_layers = peer
            .media
            .iter()
            .find(|m| m.kind == str0m::media::MediaKind::Video)
            .map_or(1, |m| m.rids.len().max(1));
        source.start_epoch(id, epoch, expected_layers);
        let peer = *peer;
        self.insert_session(
            id,
            name.clone(),
            peer.rtc,
            peer.local_ufrag,
            Role::Publisher(Box::new(PublisherState {
                media: peer.media,
                tracks: Default::default(),
                layer_keys: Vec::new(),
                codecs: Default::default(),
            })),
            now,
        );
        self.metrics.inc(&self.metrics.publishers);
        self.announce_epoch(&name);
        Ok(())
    }

    fn add_viewer(
        &mut self,
        id: SessionId,
        name: BroadcastName,
        peer: Box<NegotiatedPeer>,
        choice: LayerChoice,
        now: Instant,
    ) {
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
        let peer = *peer;
        let key = self.insert_session(
            id,
            name.clone(),
            peer.rtc,
            peer.local_ufrag,
            Role::Viewer(Box::new(ViewerState::new(choice, audio, video))),
            now,
        );
        let new_mirror = !self.mirrors.contains_key(&name);
        self.mirrors
            .entry(name.clone())
            .or_insert_with(Mirror::new)
            .viewers
            .push(key);
        // A Source on this worker feeds its local Mirror directly: give a
        // new Mirror the epoch and the cached GOPs now, as a linked worker
        // gets them. Only a new one: an existing Mirror has them, and
        // feeding it again would send its viewers the GOP a second time.
        if new_mirror && self.sources.contains_key(&name) {
            self.feed_new_mirror(&name, self.index);
        }
        self.metrics.inc(&self.metrics.viewers);
    }

    /// Makes the Source of `name` feed exactly `workers` (besides its own).
    fn link_mirrors(&mut self, name: BroadcastName, workers: Vec<usize>) {
        let Some(source) = self.sources.get_mut(&name) else {
            return;
        };
        let added: Vec<usize> = workers
            .iter()
            .copied()
            .filter(|w| !source.links.contains(w) && *w != self.index)
            .collect();
        source.links = workers.into_iter().filter(|w| *w != self.index).collect();
        for worker in added {
            self.feed_new_mirror(&name, worker);
        }
        self.remove_source_if_unused(&name);
    }

    /// The epoch and every cached GOP to a Mirror that was not fed before.
    pub(super) fn feed_new_mirror(&mut self, name: &BroadcastName, worker: usize) {
        let Some(source) = self.sources.get(name) else {
            return;
        };
        let mut messages = vec![Downstream::Epoch(source.info())];
        messages.extend(
            source
                .cached()
                .into_iter()
                .map(|(track, pkt)| Downstream::Packet(track, pkt)),
        );
        for msg in messages {
            self.deliver(worker, Bus::Down(name.clone(), self.index, msg));
        }
    }

    /// Sends the Source's epoch info to every Mirror, if it changed.
    pub(super) fn announce_epoch(&mut self, name: &BroadcastName) {
        let Some(info) = self
            .sources
            .get_mut(name)
            .and_then(|s| s.take_info_change())
        else {
            return;
        };
        self.emit(name, Downstream::Epoch(info));
    }

    /// A Source with no publisher and no Mirror anywhere is dropped (the
    /// placement forgets the broadcast at the same moment).
    pub(super) fn remove_source_if_unused(&mut self, name: &BroadcastName) {
        let unused = self.sources.get(name).is_some_and(|s| {
            s.publisher.is_none() && s.links.is_empty() && !self.mirrors.contains_key(name)
        });
        if unused {
            self.sources.remove(name);
        }
    }

    pub(super) fn insert_session(
        &mut self,
        id: SessionId,
        broadcast: BroadcastName,
        rtc: str0m::Rtc,
        ufrag: String,
        role: Role,
        now: Instant,
    ) -> super::session::SessionKey {
        let key = self.sessions.insert(Session {
            id,
            broadcast,
            rtc,
            role,
            ufrag: ufrag.clone(),
            addrs: Vec::new(),
            created: now,
            next_timeout: now,
            last_input: now,
            #[cfg(feature = "fault-injection")]
            fault: false,
        });
        self.demux.add_session(&ufrag, key);
        self.timers.push(std::cmp::Reverse((now, key, id)));
        key
    }
}
