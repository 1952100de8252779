//! [`SfuHandle`]: the control plane's side of the media worker. Cloneable;
//! every call is a command over a bounded channel with a oneshot answer, so
//! HTTP handlers never touch media state directly.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::core::layer_selector::Bounds;
use crate::core::layers::LayerChoice;
use crate::error::MediaError;
use crate::ids::{BroadcastName, SessionId};
use crate::metrics::Metrics;
use crate::sdp;
use crate::worker::{self, Command};

/// Where the media plane listens and what address it announces.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub udp_bind: SocketAddr,
    pub candidate_ip: IpAddr,
    /// Per-viewer bitrate bounds for automatic layer selection.
    pub viewer_bounds: Bounds,
}

/// What a successful publish or view returns.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub answer: String,
    /// Our ICE ufrag, used as the ETag of the WHIP/WHEP resource.
    pub ice_ufrag: String,
}

/// Bounded so a flood of HTTP requests queues in axum, not in memory here.
const COMMAND_QUEUE: usize = 1024;

#[derive(Clone)]
pub struct SfuHandle {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    udp_addr: SocketAddr,
    candidate: SocketAddr,
    metrics: Arc<Metrics>,
    liveness: Arc<worker::Liveness>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A worker whose loop has not passed for this long is reported dead: it
/// passes at least every 250 ms (housekeeping) when healthy.
pub const WORKER_STALL: std::time::Duration = std::time::Duration::from_secs(5);

impl SfuHandle {
    /// Binds the UDP socket and starts the media worker thread.
    pub fn start(config: MediaConfig) -> std::io::Result<SfuHandle> {
        let socket = std::net::UdpSocket::bind(config.udp_bind)?;
        socket.set_nonblocking(true)?;
        let udp_addr = socket.local_addr()?;
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let candidate = SocketAddr::new(config.candidate_ip, udp_addr.port());
        let liveness = Arc::new(worker::Liveness::default());
        let thread = worker::spawn(
            socket,
            candidate,
            config.viewer_bounds,
            rx,
            metrics.clone(),
            liveness.clone(),
        )?;
        Ok(SfuHandle {
            inner: Arc::new(Inner {
                commands: tx,
                udp_addr,
                candidate,
                metrics,
                liveness,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.udp_addr
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether the media worker runs: it has not given up after repeated
    /// panics and its loop passed within [`WORKER_STALL`].
    pub fn is_alive(&self) -> bool {
        self.inner.liveness.alive(Instant::now(), WORKER_STALL)
    }

    fn next_id(&self) -> SessionId {
        SessionId::random()
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .try_send(make(reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => MediaError::Busy,
                mpsc::error::TrySendError::Closed(_) => MediaError::WorkerGone,
            })?;
        answer.await.map_err(|_| MediaError::WorkerGone)
    }

    /// Starts a publisher session from a WHIP offer.
    pub async fn publish(
        &self,
        broadcast: BroadcastName,
        offer: &str,
    ) -> Result<SessionInfo, MediaError> {
        let peer = sdp::answer_publisher(offer, self.inner.candidate, Instant::now())?;
        let id = self.next_id();
        let info = SessionInfo {
            id,
            answer: peer.answer.clone(),
            ice_ufrag: peer.local_ufrag.clone(),
        };
        self.call(|reply| Command::Publish {
            id,
            broadcast,
            peer: Box::new(peer),
            reply,
        })
        .await??;
        Ok(info)
    }

    /// Starts a viewer session from a WHEP offer.
    pub async fn view(
        &self,
        broadcast: BroadcastName,
        offer: &str,
        choice: LayerChoice,
    ) -> Result<SessionInfo, MediaError> {
        let peer = sdp::answer_viewer(offer, self.inner.candidate, Instant::now())?;
        let id = self.next_id();
        let info = SessionInfo {
            id,
            answer: peer.answer.clone(),
            ice_ufrag: peer.local_ufrag.clone(),
        };
        self.call(|reply| Command::View {
            id,
            broadcast,
            peer: Box::new(peer),
            choice,
            reply,
        })
        .await??;
        Ok(info)
    }

    /// Changes the layer a viewer receives.
    pub async fn set_layer(&self, id: SessionId, choice: LayerChoice) -> Result<(), MediaError> {
        self.call(|reply| Command::SetLayer { id, choice, reply })
            .await?
    }

    /// Ends a session (WHIP/WHEP DELETE). Ending a publisher keeps its viewers.
    pub async fn end(&self, id: SessionId, broadcast: BroadcastName) -> Result<(), MediaError> {
        self.call(|reply| Command::End {
            id,
            broadcast,
            reply,
        })
        .await?
    }

    /// Whether a session of this broadcast exists (for PATCH).
    pub async fn exists(
        &self,
        id: SessionId,
        broadcast: BroadcastName,
    ) -> Result<bool, MediaError> {
        self.call(|reply| Command::Exists {
            id,
            broadcast,
            reply,
        })
        .await
    }

    /// Live broadcasts: name, viewer count, and how long they have been live.
    pub async fn broadcasts(&self) -> Result<Vec<worker::BroadcastStatus>, MediaError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// Every viewer of a broadcast with its layer, estimate and state.
    pub async fn viewers(
        &self,
        broadcast: BroadcastName,
    ) -> Result<Vec<worker::ViewerStatus>, MediaError> {
        self.call(|reply| Command::Viewers { broadcast, reply })
            .await
    }

    /// Marks a publisher as obeying layer pause requests (its control
    /// channel is attached).
    pub async fn attach_publisher(&self, id: SessionId) -> Result<(), MediaError> {
        self.call(|reply| Command::AttachPublisher { id, reply })
            .await?
    }

    /// Per layer of a publisher: its rid and whether it should be sent.
    /// `None` once the session is no longer the broadcast's publisher.
    pub async fn publisher_layers(
        &self,
        id: SessionId,
    ) -> Result<Option<Vec<worker::PublisherLayer>>, MediaError> {
        self.call(|reply| Command::PublisherLayers { id, reply })
            .await
    }

    /// Test hook: makes the worker or a session panic.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_fault(&self, fault: crate::Fault) -> Result<(), MediaError> {
        self.inner
            .commands
            .send(Command::Fault(fault))
            .await
            .map_err(|_| MediaError::WorkerGone)
    }

    /// Ends every session and joins the worker thread.
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown).await;
        let thread = self
            .inner
            .thread
            .lock()
            .expect("thread handle lock is never poisoned")
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
