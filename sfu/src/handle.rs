//! [`SfuHandle`]: the control plane's side of the media plane. Cloneable.
//! It starts one worker per core (each on its own UDP port), places every
//! session ([`Placement`]), negotiates SDP on the caller's task with the
//! chosen worker's candidate, and sends the worker a command over a bounded
//! channel. Queries are answered from the workers' published status
//! snapshots and the placement, never by asking a worker: a player polling
//! its own state costs a lookup, not a trip through the media thread.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::core::layer_selector::Bounds;
use crate::core::layers::LayerChoice;
use crate::core::view_fit::Viewport;
use crate::error::MediaError;
use crate::ids::{BroadcastName, SessionId};
use crate::metrics::Metrics;
use crate::placement::{Kind, Link, Placement, Refusal, WorkerLoad, RETRY_AFTER};
use crate::sdp;
use crate::worker::{
    self, BroadcastStatus, Command, Liveness, Peers, PublisherLayer, ViewerStatus, WorkerSetup,
    WorkerStatus,
};

/// Where the media plane listens, what it announces, how it is sized.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The first worker's address; worker `i` binds port + i (port 0: each
    /// worker an ephemeral port).
    pub udp_bind: SocketAddr,
    pub candidate_ip: IpAddr,
    /// Per-viewer bitrate bounds for automatic layer selection.
    pub viewer_bounds: Bounds,
    /// Media workers (threads, one UDP port each); at least 1.
    pub workers: usize,
    /// Viewers this node admits at most; `None`: only the workers' measured
    /// load limits them.
    pub max_viewers: Option<usize>,
    /// Where broadcasts are recorded (`None`: not recorded).
    pub recorder: Option<crate::recorder::RecorderTap>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            udp_bind: "127.0.0.1:0".parse().expect("a literal address"),
            candidate_ip: "127.0.0.1".parse().expect("a literal address"),
            viewer_bounds: Bounds::default(),
            workers: 1,
            max_viewers: None,
            recorder: None,
        }
    }
}

/// What a successful publish or view returns.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub answer: String,
    /// Our ICE ufrag, used as the ETag of the WHIP/WHEP resource.
    pub ice_ufrag: String,
    /// The worker that holds the session.
    pub worker: usize,
}

/// Bounded so a flood of HTTP requests queues in axum, not in memory here.
const COMMAND_QUEUE: usize = 1024;
/// Session-ended notifications a slow listener may fall behind by before
/// it is told it lagged (it then re-checks its sessions).
const ENDED_QUEUE: usize = 4096;
/// A worker whose loop has not passed for this long is reported dead: it
/// passes at least every 250 ms (housekeeping) when healthy.
pub const WORKER_STALL: std::time::Duration = std::time::Duration::from_secs(5);

struct WorkerHandle {
    udp_addr: SocketAddr,
    candidate: SocketAddr,
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
    status: watch::Receiver<Arc<WorkerStatus>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What workers call back into (session ends, restarts).
struct Shared {
    placement: Mutex<Placement>,
    commands: Vec<mpsc::Sender<Command>>,
    ended: broadcast::Sender<SessionId>,
}

impl Shared {
    fn placement(&self) -> MutexGuard<'_, Placement> {
        self.placement.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells a Source's worker which other workers to feed. Sent under the
    /// placement lock, so link updates reach each worker in order.
    fn apply(&self, link: Link) {
        if let Some(tx) = self.commands.get(link.source_worker) {
            if tx
                .try_send(Command::Mirrors {
                    broadcast: link.broadcast,
                    workers: link.mirrors,
                })
                .is_err()
            {
                tracing::warn!(
                    worker = link.source_worker,
                    "a worker's command queue is full: a mirror link update was lost"
                );
            }
        }
    }

    fn session_ended(&self, id: SessionId) {
        let mut placement = self.placement();
        if let Some(link) = placement.ended(id) {
            self.apply(link);
        }
        drop(placement);
        let _ = self.ended.send(id);
    }

    fn worker_restarted(&self, worker: usize) {
        let mut placement = self.placement();
        let (lost, links) = placement.worker_lost(worker);
        for link in links {
            self.apply(link);
        }
        drop(placement);
        for id in lost {
            let _ = self.ended.send(id);
        }
    }
}

#[derive(Clone)]
pub struct SfuHandle {
    inner: Arc<Inner>,
}

/// Each media socket's kernel buffers: room for a keyframe burst to
/// hundreds of viewers and for a flood of garbage (drops in the kernel are
/// loss for every viewer of that worker).
const SOCKET_BUFFER: usize = 4 << 20;

struct Inner {
    workers: Vec<WorkerHandle>,
    shared: Arc<Shared>,
    /// Epochs are unique on the node: a reconnect (or a Source rebuilt on
    /// a restarted worker) is never mistaken by a viewer for the old one.
    next_epoch: AtomicU32,
}

impl SfuHandle {
    /// Binds each worker's UDP socket and starts the worker threads.
    pub fn start(config: MediaConfig) -> std::io::Result<SfuHandle> {
        let n = config.workers.max(1);
        let mut sockets = Vec::with_capacity(n);
        for i in 0..n {
            let mut bind = config.udp_bind;
            if bind.port() != 0 {
                let port = u16::try_from(usize::from(bind.port()) + i).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("UDP port {} + {i} workers is past 65535", bind.port()),
                    )
                })?;
                bind.set_port(port);
            }
            let socket = std::net::UdpSocket::bind(bind).map_err(|e| {
                std::io::Error::new(e.kind(), format!("binding media UDP {bind}: {e}"))
            })?;
            socket.set_nonblocking(true)?;
            let sock = socket2::SockRef::from(&socket);
            let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
            let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
            // Linux caps the request at net.core.rmem_max silently (and
            // reports double what it grants): say so once, at start-up.
            let granted = sock.recv_buffer_size().unwrap_or(0);
            if i == 0 && granted < SOCKET_BUFFER {
                tracing::warn!(
                    granted_kib = granted / 1024,
                    wanted_kib = SOCKET_BUFFER / 1024,
                    "the media UDP receive buffer is smaller than wanted: bursts and floods \
                     will be dropped by the kernel; raise net.core.rmem_max (sysctl) to at \
                     least {}",
                    SOCKET_BUFFER
                );
            }
            // ICE-TCP on the same port number (RFC 6544 passive): for
            // networks that block UDP. Not fatal: UDP still serves.
            let tcp_addr = SocketAddr::new(bind.ip(), socket.local_addr()?.port());
            let tcp = match std::net::TcpListener::bind(tcp_addr) {
                Ok(l) => l.set_nonblocking(true).map(|()| l).ok(),
                Err(e) => {
                    tracing::warn!(%tcp_addr, error = %e, "ICE-TCP unavailable on this worker's port");
                    None
                }
            };
            sockets.push((socket, tcp));
        }
        let mut command_txs = Vec::with_capacity(n);
        let mut command_rxs = Vec::with_capacity(n);
        let mut inbox_txs = Vec::with_capacity(n);
        let mut inbox_rxs = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
            command_txs.push(tx);
            command_rxs.push(rx);
            let (tx, rx) = mpsc::channel(worker::bus_inbox());
            inbox_txs.push(tx);
            inbox_rxs.push(rx);
        }
        let (ended, _) = broadcast::channel(ENDED_QUEUE);
        let shared = Arc::new(Shared {
            placement: Mutex::new(Placement::new(n, config.max_viewers)),
            commands: command_txs,
            ended,
        });
        let peers = Peers::new(inbox_txs);
        let mut workers = Vec::with_capacity(n);
        for (index, (((socket, tcp), commands), inbox)) in sockets
            .into_iter()
            .zip(command_rxs)
            .zip(inbox_rxs)
            .enumerate()
        {
            let udp_addr = socket.local_addr()?;
            let candidate = SocketAddr::new(config.candidate_ip, udp_addr.port());
            let metrics = Arc::new(Metrics::default());
            let liveness = Arc::new(Liveness::default());
            let (status_tx, status_rx) = watch::channel(Arc::new(WorkerStatus::default()));
            let on_ended = {
                let shared = shared.clone();
                Arc::new(move |id| shared.session_ended(id)) as Arc<dyn Fn(SessionId) + Send + Sync>
            };
            let on_restart = {
                let shared = shared.clone();
                Arc::new(move |w| shared.worker_restarted(w)) as Arc<dyn Fn(usize) + Send + Sync>
            };
            let thread = worker::spawn(WorkerSetup {
                index,
                socket,
                tcp,
                candidate,
                bounds: config.viewer_bounds,
                commands,
                inbox,
                peers: peers.clone(),
                metrics: metrics.clone(),
                liveness: liveness.clone(),
                status: status_tx,
                on_ended,
                on_restart,
                recorder: config.recorder.clone(),
            })?;
            workers.push(WorkerHandle {
                udp_addr,
                candidate,
                metrics,
                liveness,
                status: status_rx,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(SfuHandle {
            inner: Arc::new(Inner {
                workers,
                shared,
                next_epoch: AtomicU32::new(1),
            }),
        })
    }

    /// The first worker's UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.workers[0].udp_addr
    }

    /// Every worker's UDP address, by worker index.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.inner.workers.iter().map(|w| w.udp_addr).collect()
    }

    pub fn workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// Every worker's counters as one `prometheus-client` collector, read
    /// at each scrape.
    pub fn metrics_collector(&self) -> crate::MediaCollector {
        crate::MediaCollector::new(
            self.inner
                .workers
                .iter()
                .map(|w| w.metrics.clone())
                .collect(),
        )
    }

    /// One worker's counters.
    pub fn worker_metrics(&self, worker: usize) -> Option<&Metrics> {
        self.inner.workers.get(worker).map(|w| &*w.metrics)
    }

    /// A counter summed over the workers.
    pub fn metric_total(&self, field: impl Fn(&Metrics) -> &std::sync::atomic::AtomicU64) -> u64 {
        self.inner
            .workers
            .iter()
            .map(|w| field(&w.metrics).load(Ordering::Relaxed))
            .sum()
    }

    /// Drops of one reason, summed over the workers.
    pub fn drops_total(&self, reason: crate::DropReason) -> u64 {
        self.inner
            .workers
            .iter()
            .map(|w| w.metrics.drops(reason))
            .sum()
    }

    /// Whether every media worker runs: none has given up after repeated
    /// panics, and each loop passed within [`WORKER_STALL`].
    pub fn is_alive(&self) -> bool {
        let now = Instant::now();
        self.inner
            .workers
            .iter()
            .all(|w| w.liveness.alive(now, WORKER_STALL))
    }

    fn loads(&self) -> Vec<WorkerLoad> {
        let now = Instant::now();
        self.inner
            .workers
            .iter()
            .map(|w| {
                let status = w.status.borrow();
                WorkerLoad {
                    // Before its first snapshot a worker admits.
                    admits: status.at.is_none() || status.admits,
                    alive: w.liveness.alive(now, WORKER_STALL),
                }
            })
            .collect()
    }

    async fn call<T>(
        &self,
        worker: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        let tx = self
            .inner
            .shared
            .commands
            .get(worker)
            .ok_or(MediaError::WorkerGone)?;
        tx.try_send(make(reply)).map_err(|e| match e {
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
        let loads = self.loads();
        let worker = self
            .inner
            .shared
            .placement()
            .place_publisher(&broadcast, &loads);
        let candidate = self.inner.workers[worker].candidate;
        let peer = sdp::answer_publisher(offer, candidate, Instant::now())?;
        let id = SessionId::random();
        let info = SessionInfo {
            id,
            answer: peer.answer.clone(),
            ice_ufrag: peer.local_ufrag.clone(),
            worker,
        };
        let epoch = self.inner.next_epoch.fetch_add(1, Ordering::Relaxed);
        self.call(worker, |reply| Command::Publish {
            id,
            broadcast: broadcast.clone(),
            peer: Box::new(peer),
            epoch,
            reply,
        })
        .await??;
        self.record(id, broadcast, worker, Kind::Publisher);
        Ok(info)
    }

    /// Starts a viewer session from a WHEP offer, on the least loaded
    /// worker that admits it.
    pub async fn view(
        &self,
        broadcast: BroadcastName,
        offer: &str,
        choice: LayerChoice,
    ) -> Result<SessionInfo, MediaError> {
        let loads = self.loads();
        let worker = self
            .inner
            .shared
            .placement()
            .place_viewer(&loads)
            .map_err(|refusal| MediaError::Overloaded {
                retry_after: RETRY_AFTER,
                node_full: refusal == Refusal::NodeFull,
            })?;
        let result = self.view_on(worker, broadcast.clone(), offer, choice).await;
        match &result {
            Ok(info) => self.record(info.id, broadcast, worker, Kind::Viewer),
            Err(_) => self.inner.shared.placement().unreserve(worker),
        }
        result
    }

    async fn view_on(
        &self,
        worker: usize,
        broadcast: BroadcastName,
        offer: &str,
        choice: LayerChoice,
    ) -> Result<SessionInfo, MediaError> {
        let candidate = self.inner.workers[worker].candidate;
        let peer = sdp::answer_viewer(offer, candidate, Instant::now())?;
        let id = SessionId::random();
        let info = SessionInfo {
            id,
            answer: peer.answer.clone(),
            ice_ufrag: peer.local_ufrag.clone(),
            worker,
        };
        self.call(worker, |reply| Command::View {
            id,
            broadcast,
            peer: Box::new(peer),
            choice,
            reply,
        })
        .await??;
        Ok(info)
    }

    fn record(&self, id: SessionId, broadcast: BroadcastName, worker: usize, kind: Kind) {
        let shared = &self.inner.shared;
        let mut placement = shared.placement();
        if let Some(link) = placement.added(id, broadcast, worker, kind) {
            shared.apply(link);
        }
    }

    fn worker_of(&self, id: SessionId) -> Option<usize> {
        self.inner.shared.placement().lookup(id).map(|(w, _, _)| w)
    }

    /// Changes the layer a viewer receives.
    pub async fn set_layer(&self, id: SessionId, choice: LayerChoice) -> Result<(), MediaError> {
        let worker = self.worker_of(id).ok_or(MediaError::NoSuchSession)?;
        self.call(worker, |reply| Command::SetLayer { id, choice, reply })
            .await?
    }

    /// Tells a viewer's worker what its player shows: an automatic choice
    /// then takes no layer larger than the picture, and video pauses once
    /// the player has been hidden for 5 s (audio continues); visible again
    /// resumes from the layer's GopCache at once.
    pub async fn set_view(&self, id: SessionId, view: Viewport) -> Result<(), MediaError> {
        let worker = self.worker_of(id).ok_or(MediaError::NoSuchSession)?;
        self.call(worker, |reply| Command::SetView { id, view, reply })
            .await?
    }

    /// Holds the audio and video of these viewer sessions for `hold` (an
    /// ad break: the viewer's player shows the ad, so nothing of the live
    /// stream is worth its bandwidth), or resumes them at once (`None`),
    /// video from the layer's GopCache. Answers how many of them exist. A
    /// hold ends by itself when its time is up, within the worker's
    /// housekeeping period (250 ms).
    pub async fn hold_media(&self, ids: &[SessionId], hold: Option<Duration>) -> usize {
        let mut by_worker: std::collections::BTreeMap<usize, Vec<SessionId>> = Default::default();
        for &id in ids {
            if let Some(worker) = self.worker_of(id) {
                by_worker.entry(worker).or_default().push(id);
            }
        }
        let until = hold.map(|d| Instant::now() + d);
        let mut found = 0;
        for (worker, ids) in by_worker {
            match self
                .call(worker, |reply| Command::HoldMedia { ids, until, reply })
                .await
            {
                Ok(n) => found += n,
                Err(e) => tracing::warn!(worker, error = %e, "holding viewers' video"),
            }
        }
        found
    }

    /// Ends a session (WHIP/WHEP DELETE). Ending a publisher keeps its
    /// viewers. A session that just ended on its own (OBS closes its
    /// PeerConnection, then DELETEs) counts as ended by this call.
    pub async fn end(&self, id: SessionId, broadcast: BroadcastName) -> Result<(), MediaError> {
        let placed = {
            let placement = self.inner.shared.placement();
            match placement.lookup(id) {
                Some((worker, b, _)) if *b == broadcast => Some(worker),
                Some(_) => return Err(MediaError::NoSuchSession),
                None if placement.recently_ended(id, &broadcast) => return Ok(()),
                None => return Err(MediaError::NoSuchSession),
            }
        };
        let Some(worker) = placed else {
            return Err(MediaError::NoSuchSession);
        };
        match self
            .call(worker, |reply| Command::End { id, reply })
            .await?
        {
            // It ended between the lookup and the command.
            Err(MediaError::NoSuchSession) => Ok(()),
            other => other,
        }
    }

    /// Whether a session of this broadcast exists.
    pub fn exists(&self, id: SessionId, broadcast: &BroadcastName) -> bool {
        self.inner
            .shared
            .placement()
            .lookup(id)
            .is_some_and(|(_, b, _)| b == broadcast)
    }

    /// Session ids as they end, on any worker, for whatever reason.
    pub fn ended(&self) -> broadcast::Receiver<SessionId> {
        self.inner.shared.ended.subscribe()
    }

    fn snapshots(&self) -> Vec<Arc<WorkerStatus>> {
        self.inner
            .workers
            .iter()
            .map(|w| w.status.borrow().clone())
            .collect()
    }

    /// Every broadcast any worker has: live and layers from its Source,
    /// viewers summed over the workers.
    pub fn broadcasts(&self) -> Vec<BroadcastStatus> {
        let mut merged: std::collections::BTreeMap<BroadcastName, BroadcastStatus> =
            Default::default();
        for snapshot in self.snapshots() {
            for (name, b) in &snapshot.broadcasts {
                let entry = merged
                    .entry(name.clone())
                    .or_insert_with(|| BroadcastStatus {
                        name: name.clone(),
                        ..Default::default()
                    });
                entry.viewers += b.viewers;
                if snapshot.sources.contains(name) {
                    entry.live = b.live;
                    entry.live_since = b.live_since;
                    entry.layers = b.layers.clone();
                }
            }
        }
        merged.into_values().collect()
    }

    /// One broadcast, if any worker has it.
    pub fn broadcast(&self, name: &BroadcastName) -> Option<BroadcastStatus> {
        self.broadcasts().into_iter().find(|b| b.name == *name)
    }

    /// Every viewer of a broadcast with its layer, estimate and state, in
    /// the order they joined (ids are random, so not by id).
    pub fn viewers(&self, broadcast: &BroadcastName) -> Vec<ViewerStatus> {
        let mut out: Vec<ViewerStatus> = self
            .snapshots()
            .iter()
            .flat_map(|s| {
                s.viewers
                    .values()
                    .filter(|v| v.broadcast == *broadcast)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by_key(|v| (v.joined, v.id));
        out
    }

    /// One viewer's state (as of its worker's latest snapshot).
    pub fn viewer(&self, id: SessionId) -> Option<ViewerStatus> {
        let worker = self.worker_of(id)?;
        self.inner.workers[worker]
            .status
            .borrow()
            .viewers
            .get(&id)
            .cloned()
    }

    /// Marks a publisher as obeying layer pause requests (its control
    /// channel is attached).
    pub async fn attach_publisher(&self, id: SessionId) -> Result<(), MediaError> {
        let worker = self.worker_of(id).ok_or(MediaError::NoSuchSession)?;
        self.call(worker, |reply| Command::AttachPublisher { id, reply })
            .await?
    }

    /// Per layer of a publisher: its rid and whether it should be sent.
    /// `Err(NoSuchSession)` once the session is gone; `Ok(None)` before its
    /// worker's next snapshot shows it.
    pub fn publisher_layers(
        &self,
        id: SessionId,
    ) -> Result<Option<Vec<PublisherLayer>>, MediaError> {
        let worker = self.worker_of(id).ok_or(MediaError::NoSuchSession)?;
        Ok(self.inner.workers[worker]
            .status
            .borrow()
            .publishers
            .get(&id)
            .cloned())
    }

    /// Test hook: makes a worker (or the worker of a session) panic.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_fault(&self, fault: crate::Fault) -> Result<(), MediaError> {
        let worker = match fault {
            crate::Fault::WorkerPanic => 0,
            crate::Fault::WorkerPanicOn(w) => w,
            crate::Fault::SessionPanic(id) => {
                self.worker_of(id).ok_or(MediaError::NoSuchSession)?
            }
        };
        let fault = match fault {
            crate::Fault::WorkerPanicOn(_) => crate::Fault::WorkerPanic,
            other => other,
        };
        self.inner.shared.commands[worker]
            .send(Command::Fault(fault))
            .await
            .map_err(|_| MediaError::WorkerGone)
    }

    /// Ends every session and joins the worker threads.
    pub async fn shutdown(&self) {
        for tx in &self.inner.shared.commands {
            let _ = tx.send(Command::Shutdown).await;
        }
        for w in &self.inner.workers {
            let thread = w.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
    }
}
