//! A worker's thread and its supervision: [`spawn`] starts the thread,
//! [`supervise`] runs the loop inside `catch_unwind` and restarts it with
//! fresh state (same socket, same channels) when the worker's own code
//! panics outside any session's guard, at most [`MAX_RESTARTS`] times in
//! [`RESTART_WINDOW`]; then it marks itself dead in its [`Liveness`] so
//! `/healthz` reports it instead of the node staying half alive.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::bus::{Bus, Peers};
use super::control::Command;
use super::status::WorkerStatus;
use super::{panic_report, Worker};
use crate::core::layer_selector::Bounds;
use crate::ids::SessionId;
use crate::metrics::Metrics;

/// A worker that panics is restarted with fresh state (its sessions are
/// lost, the node stays up) at most this many times within
/// [`RESTART_WINDOW`]; past that it stays down and `/healthz` says so.
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Liveness as the control plane sees it: the loop's heartbeat and
/// whether the thread has given up.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Milliseconds since `started` at the loop's latest pass.
    heartbeat_ms: std::sync::atomic::AtomicU64,
    dead: std::sync::atomic::AtomicBool,
    started: std::sync::OnceLock<Instant>,
}

impl Liveness {
    pub(super) fn beat(&self, now: Instant) {
        let started = *self.started.get_or_init(|| now);
        let ms = now.saturating_duration_since(started).as_millis() as u64;
        self.heartbeat_ms.store(ms, Relaxed);
    }

    /// Alive: not given up, and the loop passed within `within`
    /// (housekeeping makes it pass at least every [`HOUSEKEEPING`](super::HOUSEKEEPING)).
    pub fn alive(&self, now: Instant, within: Duration) -> bool {
        if self.dead.load(Relaxed) {
            return false;
        }
        let Some(started) = self.started.get() else {
            return true;
        };
        let last = *started + Duration::from_millis(self.heartbeat_ms.load(Relaxed));
        now.saturating_duration_since(last) <= within
    }
}

/// What a worker is told of its place in the node.
pub(crate) struct WorkerSetup {
    pub index: usize,
    pub socket: std::net::UdpSocket,
    /// ICE-TCP on the same port number, when it could be bound.
    pub tcp: Option<std::net::TcpListener>,
    pub candidate: SocketAddr,
    pub bounds: Bounds,
    pub commands: mpsc::Receiver<Command>,
    pub inbox: mpsc::Receiver<Bus>,
    pub peers: Peers,
    pub metrics: Arc<Metrics>,
    pub liveness: Arc<Liveness>,
    pub status: watch::Sender<Arc<WorkerStatus>>,
    /// Called for every session that ends, whatever the reason (not for
    /// the sessions a restart loses: see `on_restart`).
    pub on_ended: Arc<dyn Fn(SessionId) + Send + Sync>,
    /// Called when the worker restarted after a panic: all its sessions
    /// are gone.
    pub on_restart: Arc<dyn Fn(usize) + Send + Sync>,
    /// The recorder's queue, when broadcasts are recorded.
    pub recorder: Option<crate::recorder::RecorderTap>,
}

pub(crate) fn spawn(setup: WorkerSetup) -> std::io::Result<std::thread::JoinHandle<()>> {
    panic_report::install();
    std::thread::Builder::new()
        .name(format!(
            "{}{}",
            panic_report::WORKER_THREAD_PREFIX,
            setup.index
        ))
        .spawn(move || supervise(setup))
}

/// Runs the worker; restarts it (fresh state, same socket, same channels)
/// when its own code panics outside any session's guard.
fn supervise(mut setup: WorkerSetup) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds on any supported OS");
    let mut restarts: VecDeque<Instant> = VecDeque::new();
    // The accept loop lives on this runtime across restarts; a restarted
    // worker hears of connections opened after it started.
    let (tcp_tx, mut tcp_rx) = mpsc::channel(super::ice_tcp::EVENT_QUEUE);
    if let Some(listener) = setup.tcp.take() {
        let _entered = runtime.enter();
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                runtime.spawn(super::ice_tcp::accept_loop(listener, tcp_tx));
            }
            Err(e) => tracing::warn!(error = %e, "media worker: ICE-TCP off"),
        }
    }
    loop {
        let socket = match setup.socket.try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "media worker: cannot reuse its UDP socket");
                break;
            }
        };
        let run = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async {
                let socket = tokio::net::UdpSocket::from_std(socket)
                    .expect("the socket is non-blocking and the runtime has IO enabled");
                Worker::new(&setup, socket)
                    .run(&mut setup.commands, &mut setup.inbox, &mut tcp_rx)
                    .await
            })
        }));
        if run.is_ok() {
            return;
        }
        let now = Instant::now();
        let metrics = &setup.metrics;
        metrics.inc(&metrics.worker_restarts);
        metrics.publishers.store(0, Relaxed);
        metrics.viewers.store(0, Relaxed);
        (setup.on_restart)(setup.index);
        restarts.retain(|t| now.saturating_duration_since(*t) < RESTART_WINDOW);
        restarts.push_back(now);
        if restarts.len() > MAX_RESTARTS {
            tracing::error!(
                worker = setup.index,
                restarts = restarts.len(),
                "media worker panicked too often; it stays down"
            );
            break;
        }
        tracing::error!(
            worker = setup.index,
            "media worker panicked; restarted with no sessions"
        );
    }
    setup.liveness.dead.store(true, Relaxed);
}
