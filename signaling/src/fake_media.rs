//! A [`MediaPlane`] with no media: sessions are records in a map, answers
//! are canned SDP. HTTP tests use it to pin what the control plane does
//! with each media-plane answer (admission refusals, a dead worker, live
//! status) without starting workers or negotiating WebRTC.
//!
//! Invariant: it answers exactly what it was told to ([`FakeMedia::set_*`]);
//! it never invents load, so a test's expectations follow from its set-up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use relaycast_sfu::{
    BroadcastName, BroadcastStatus, LayerChoice, MediaError, PublisherLayer, SessionId,
    SessionInfo, ViewerStatus,
};
use tokio::sync::broadcast;

use crate::media::MediaPlane;

/// What the fake answers to a view request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// `MediaError::Overloaded` with this retry-after and node-full flag.
    Refuse(Duration, bool),
}

#[derive(Debug)]
struct Session {
    broadcast: BroadcastName,
    publisher: bool,
    choice: LayerChoice,
    joined: Instant,
    /// Media held (an ad break).
    held: bool,
    view: Option<relaycast_sfu::Viewport>,
}

#[derive(Debug)]
struct State {
    sessions: HashMap<SessionId, Session>,
    admission: Admission,
    alive: bool,
}

pub struct FakeMedia {
    state: Mutex<State>,
    ended: broadcast::Sender<SessionId>,
}

const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

impl FakeMedia {
    pub fn new() -> FakeMedia {
        FakeMedia {
            state: Mutex::new(State {
                sessions: HashMap::new(),
                admission: Admission::Admit,
                alive: true,
            }),
            ended: broadcast::channel(64).0,
        }
    }

    pub fn set_admission(&self, admission: Admission) {
        self.lock().admission = admission;
    }

    pub fn set_alive(&self, alive: bool) {
        self.lock().alive = alive;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("a fake's lock is never held across a panic")
    }

    fn add(&self, broadcast: BroadcastName, publisher: bool, choice: LayerChoice) -> SessionInfo {
        let id = SessionId::random();
        self.lock().sessions.insert(
            id,
            Session {
                broadcast,
                publisher,
                choice,
                joined: Instant::now(),
                held: false,
                view: None,
            },
        );
        SessionInfo {
            id,
            answer: ANSWER.to_owned(),
            ice_ufrag: format!("fake{}", id.low_u64() % 10_000),
            worker: 0,
        }
    }
}

impl Default for FakeMedia {
    fn default() -> Self {
        FakeMedia::new()
    }
}

#[async_trait::async_trait]
impl MediaPlane for FakeMedia {
    async fn publish(
        &self,
        broadcast: BroadcastName,
        offer: &str,
    ) -> Result<SessionInfo, MediaError> {
        if !offer.starts_with("v=0") {
            return Err(MediaError::BadSdp("not an SDP offer".into()));
        }
        let live = self
            .lock()
            .sessions
            .values()
            .any(|s| s.publisher && s.broadcast == broadcast);
        if live {
            return Err(MediaError::AlreadyLive(broadcast.to_string()));
        }
        Ok(self.add(broadcast, true, LayerChoice::Auto))
    }

    async fn view(
        &self,
        broadcast: BroadcastName,
        offer: &str,
        choice: LayerChoice,
    ) -> Result<SessionInfo, MediaError> {
        if !offer.starts_with("v=0") {
            return Err(MediaError::BadSdp("not an SDP offer".into()));
        }
        let admission = self.lock().admission;
        match admission {
            Admission::Admit => Ok(self.add(broadcast, false, choice)),
            Admission::Refuse(retry_after, node_full) => Err(MediaError::Overloaded {
                retry_after,
                node_full,
            }),
        }
    }

    async fn set_view(
        &self,
        id: SessionId,
        view: relaycast_sfu::Viewport,
    ) -> Result<(), MediaError> {
        let mut state = self.lock();
        let session = state
            .sessions
            .get_mut(&id)
            .ok_or(MediaError::NoSuchSession)?;
        session.view = Some(view);
        Ok(())
    }

    async fn set_layer(&self, id: SessionId, choice: LayerChoice) -> Result<(), MediaError> {
        let mut state = self.lock();
        let session = state
            .sessions
            .get_mut(&id)
            .ok_or(MediaError::NoSuchSession)?;
        session.choice = choice;
        Ok(())
    }

    async fn hold_media(&self, ids: Vec<SessionId>, hold: Option<std::time::Duration>) -> usize {
        let mut state = self.lock();
        let mut found = 0;
        for id in ids {
            if let Some(s) = state.sessions.get_mut(&id) {
                s.held = hold.is_some();
                found += 1;
            }
        }
        found
    }

    async fn end(&self, id: SessionId, _broadcast: BroadcastName) -> Result<(), MediaError> {
        let removed = self.lock().sessions.remove(&id);
        removed.ok_or(MediaError::NoSuchSession)?;
        let _ = self.ended.send(id);
        Ok(())
    }

    async fn attach_publisher(&self, id: SessionId) -> Result<(), MediaError> {
        let state = self.lock();
        match state.sessions.get(&id) {
            Some(s) if s.publisher => Ok(()),
            _ => Err(MediaError::NoSuchSession),
        }
    }

    fn exists(&self, id: SessionId, broadcast: &BroadcastName) -> bool {
        self.lock()
            .sessions
            .get(&id)
            .is_some_and(|s| &s.broadcast == broadcast)
    }

    fn broadcasts(&self) -> Vec<BroadcastStatus> {
        let state = self.lock();
        let mut out: Vec<BroadcastStatus> = Vec::new();
        for s in state.sessions.values() {
            let entry = match out.iter_mut().position(|b| b.name == s.broadcast) {
                Some(i) => &mut out[i],
                None => {
                    out.push(BroadcastStatus {
                        name: s.broadcast.clone(),
                        live: false,
                        viewers: 0,
                        live_since: None,
                        layers: Vec::new(),
                    });
                    out.last_mut().expect("pushed above")
                }
            };
            if s.publisher {
                entry.live = true;
                entry.live_since =
                    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
                entry.layers = vec![(Some((1280, 720)), 2_500_000), (Some((640, 360)), 800_000)];
            } else {
                entry.viewers += 1;
            }
        }
        out
    }

    fn viewers(&self, broadcast: &BroadcastName) -> Vec<ViewerStatus> {
        let state = self.lock();
        let mut out: Vec<ViewerStatus> = state
            .sessions
            .iter()
            .filter(|(_, s)| !s.publisher && &s.broadcast == broadcast)
            .map(|(&id, s)| viewer_status(id, s))
            .collect();
        out.sort_by_key(|v| (v.joined, v.id));
        out
    }

    fn viewer(&self, id: SessionId) -> Option<ViewerStatus> {
        let state = self.lock();
        state
            .sessions
            .get(&id)
            .filter(|s| !s.publisher)
            .map(|s| viewer_status(id, s))
    }

    fn publisher_layers(&self, id: SessionId) -> Result<Option<Vec<PublisherLayer>>, MediaError> {
        let state = self.lock();
        match state.sessions.get(&id) {
            Some(s) if s.publisher => Ok(Some(vec![PublisherLayer {
                rid: None,
                send: true,
            }])),
            _ => Err(MediaError::NoSuchSession),
        }
    }

    fn ended(&self) -> broadcast::Receiver<SessionId> {
        self.ended.subscribe()
    }

    fn is_alive(&self) -> bool {
        self.lock().alive
    }

    fn metrics_collector(&self) -> Box<dyn prometheus_client::collector::Collector> {
        // No media plane, no media metrics.
        #[derive(Debug)]
        struct Nothing;
        impl prometheus_client::collector::Collector for Nothing {
            fn encode(
                &self,
                _: prometheus_client::encoding::DescriptorEncoder,
            ) -> Result<(), std::fmt::Error> {
                Ok(())
            }
        }
        Box::new(Nothing)
    }

    fn snapshot(&self) -> relaycast_sfu::MediaSnapshot {
        relaycast_sfu::MediaSnapshot::default()
    }
}

fn viewer_status(id: SessionId, s: &Session) -> ViewerStatus {
    ViewerStatus {
        id,
        broadcast: s.broadcast.clone(),
        worker: 0,
        joined: s.joined,
        choice: s.choice,
        layer: Some((Some((1280, 720)), 2_500_000)),
        estimate_bps: Some(3_000_000),
        paused_low_bandwidth: false,
        limited_by_server_load: false,
        in_ad_break: s.held,
        view: s.view,
        paused_hidden: false,
        fitted_to_player: false,
        video_bytes_sent: 0,
        audio_bytes_sent: 0,
        switches: 0,
        connected: true,
        rtt: Some(Duration::from_millis(20)),
        loss: Some(0.0),
        remote: Some("192.0.2.7:40000".parse().expect("a literal address")),
    }
}
