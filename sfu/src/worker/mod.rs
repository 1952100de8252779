//! The media worker: one thread that owns the UDP socket, every session's
//! `Rtc`, every Broadcast and every DownTrack. Nothing in it is shared or
//! locked; the control plane reaches it only through [`Command`]s.
//!
//! Per incoming RTP packet: find its layer (one map lookup), update the
//! layer's GopCache and meter, then for each viewer wanting that source:
//! `Forwarder::translate` → `write_rtp` with the shared payload → drain.
//! A panic while handling one session ends that session only.

mod adaptive;
mod broadcast;
mod control;
mod deadline;
mod demux;
mod fanout;
mod replay;
mod send_queue;
mod session;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Rtc};
use tokio::sync::mpsc;

use crate::core::layer_selector::Bounds;
use crate::ids::{BroadcastName, SessionId};
use crate::metrics::{DropReason, Metrics};
use broadcast::Broadcast;
use session::{drain, Io, Role, Session};

pub(crate) use control::Command;
pub use control::{BroadcastStatus, PublisherLayer, ViewerStatus};
/// Public for the benchmarks (`sfu/benches`): pure routing state.
pub use demux::Demux;

/// A session that sends nothing (no STUN consent, no RTCP, no media) for
/// this long is gone; browsers send consent checks every few seconds.
const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// How many more datagrams to read without yielding once the socket is ready.
const RECV_BATCH: usize = 64;
/// How many ended sessions a late DELETE may still name.
const RECENTLY_ENDED: usize = 1024;

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
    fn beat(&self, now: Instant) {
        let started = *self.started.get_or_init(|| now);
        let ms = now.saturating_duration_since(started).as_millis() as u64;
        self.heartbeat_ms.store(ms, Relaxed);
    }

    /// Alive: not given up, and the loop passed within `within`
    /// (housekeeping makes it pass at least every [`HOUSEKEEPING`]).
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

pub(crate) fn spawn(
    socket: std::net::UdpSocket,
    candidate: SocketAddr,
    bounds: Bounds,
    mut commands: mpsc::Receiver<Command>,
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("media-worker".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds on any supported OS");
            let mut restarts: VecDeque<Instant> = VecDeque::new();
            loop {
                let socket = match socket.try_clone() {
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
                        Worker::new(socket, candidate, bounds, metrics.clone(), liveness.clone())
                            .run(&mut commands)
                            .await
                    })
                }));
                if run.is_ok() {
                    return;
                }
                // The worker's own code panicked outside any session's
                // guard: every session on it is lost, but the node lives.
                let now = Instant::now();
                metrics.worker_restarts.fetch_add(1, Relaxed);
                metrics.publishers.store(0, Relaxed);
                metrics.viewers.store(0, Relaxed);
                restarts.retain(|t| now.saturating_duration_since(*t) < RESTART_WINDOW);
                restarts.push_back(now);
                if restarts.len() > MAX_RESTARTS {
                    tracing::error!(
                        restarts = restarts.len(),
                        "media worker panicked too often; it stays down"
                    );
                    break;
                }
                tracing::error!("media worker panicked; restarted with no sessions");
            }
            liveness.dead.store(true, Relaxed);
        })
}

pub(crate) struct Worker {
    socket: tokio::net::UdpSocket,
    /// Our candidate address: the destination str0m expects on input.
    candidate: SocketAddr,
    /// Per-viewer bitrate bounds for automatic layer selection.
    bounds: Bounds,
    metrics: Arc<Metrics>,
    sessions: HashMap<SessionId, Session>,
    broadcasts: HashMap<BroadcastName, Broadcast>,
    demux: Demux,
    timers: BinaryHeap<Reverse<(Instant, SessionId)>>,
    /// Scratch buffer for one session's events, reused to avoid allocating.
    events: Vec<Event>,
    send_queue: send_queue::SendQueue,
    /// GOPs being served to joining viewers, paced.
    replays: Vec<replay::Replay>,
    /// The last [`RECENTLY_ENDED`] sessions ended, so a DELETE that races
    /// the peer's own close still succeeds.
    recently_ended: VecDeque<(SessionId, BroadcastName)>,
    /// Wakes the loop for the next timer; precise, unlike tokio's
    /// millisecond timer (see [`deadline`]).
    deadline: deadline::Deadline,
    liveness: Arc<Liveness>,
}

enum Wake {
    Command(Option<Command>),
    Writable,
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Deadline,
}

/// When the periodic work is next due.
struct Due {
    housekeeping: Instant,
    replay: Instant,
}

impl Worker {
    fn new(
        socket: tokio::net::UdpSocket,
        candidate: SocketAddr,
        bounds: Bounds,
        metrics: Arc<Metrics>,
        liveness: Arc<Liveness>,
    ) -> Worker {
        Worker {
            socket,
            candidate,
            bounds,
            metrics,
            sessions: HashMap::new(),
            broadcasts: HashMap::new(),
            demux: Demux::default(),
            timers: BinaryHeap::new(),
            events: Vec::new(),
            send_queue: send_queue::SendQueue::default(),
            replays: Vec::new(),
            recently_ended: VecDeque::new(),
            deadline: deadline::Deadline::new(),
            liveness,
        }
    }

    async fn run(mut self, commands: &mut mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        let mut due = Due {
            housekeeping: Instant::now() + HOUSEKEEPING,
            replay: Instant::now(),
        };
        loop {
            let deadline = self.next_deadline(&due);
            // Biased: commands, then datagrams. Timers, replays and queued
            // sends are never left to the select alone — under load the
            // socket is always readable and they would starve (str0m's
            // pacers only release packets on their timeouts) — so every
            // pass ends with `run_due`.
            let wake = tokio::select! {
                biased;
                cmd = commands.recv() => Wake::Command(cmd),
                r = self.socket.recv_from(&mut buf) => Wake::Datagram(r),
                _ = self.socket.writable(), if !self.send_queue.is_empty() => Wake::Writable,
                _ = self.deadline.wait_until(deadline) => Wake::Deadline,
            };
            match wake {
                Wake::Command(None) | Wake::Command(Some(Command::Shutdown)) => break,
                Wake::Command(Some(cmd)) => self.command(cmd),
                Wake::Writable | Wake::Deadline => {}
                Wake::Datagram(Ok((n, source))) => {
                    self.datagram(source, &buf[..n]);
                    for _ in 0..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.datagram(source, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
                // ICMP errors surface as recv errors on some platforms; they
                // concern one peer, never the socket.
                Wake::Datagram(Err(_)) => {}
            }
            let now = Instant::now();
            self.liveness.beat(now);
            self.run_due(now, &mut due);
        }
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end_session(id, Instant::now());
        }
    }

    /// The earliest instant something is due: a str0m timeout, housekeeping
    /// or (while replays run) the next replay tick.
    fn next_deadline(&self, due: &Due) -> Instant {
        let mut deadline = due.housekeeping;
        if let Some(Reverse((t, _))) = self.timers.peek() {
            deadline = deadline.min(*t);
        }
        if !self.replays.is_empty() {
            deadline = deadline.min(due.replay);
        }
        deadline
    }

    /// Everything whose time has come, after every wake-up: session
    /// timeouts, replay ticks, housekeeping, and queued sends.
    fn run_due(&mut self, now: Instant, due: &mut Due) {
        self.fire_timers(now);
        if !self.replays.is_empty() && now >= due.replay {
            due.replay = now + replay::TICK;
            self.advance_replays(now);
        }
        if now >= due.housekeeping {
            due.housekeeping = now + HOUSEKEEPING;
            self.housekeeping(now);
        }
        if !self.send_queue.is_empty() {
            self.send_queue.flush(&self.socket, &self.metrics);
        }
    }

    fn io(&mut self) -> Io<'_> {
        Io {
            socket: &self.socket,
            metrics: &self.metrics,
            queue: &mut self.send_queue,
        }
    }

    fn insert_session(
        &mut self,
        id: SessionId,
        broadcast: BroadcastName,
        rtc: Rtc,
        ufrag: String,
        role: Role,
        now: Instant,
    ) {
        self.demux.add_session(&ufrag, id);
        self.sessions.insert(
            id,
            Session {
                id,
                broadcast,
                rtc,
                role,
                ufrag,
                addrs: Vec::new(),
                next_timeout: now,
                last_input: now,
                #[cfg(feature = "fault-injection")]
                fault: false,
            },
        );
        self.timers.push(Reverse((now, id)));
    }

    fn end_session(&mut self, id: SessionId, now: Instant) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        if self.recently_ended.len() >= RECENTLY_ENDED {
            self.recently_ended.pop_front();
        }
        self.recently_ended
            .push_back((id, session.broadcast.clone()));
        self.demux.remove_session(&session.ufrag, &session.addrs);
        // Let str0m say goodbye (RTCP BYE, DTLS close_notify) if it can.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if session.rtc.close().is_ok() {
                let mut scratch = Vec::new();
                let _ = drain(&mut session.rtc, &mut self.io(), &mut scratch);
            }
        }));
        let Some(broadcast) = self.broadcasts.get_mut(&session.broadcast) else {
            return;
        };
        match session.role {
            Role::Publisher(_) => {
                self.metrics.publishers.fetch_sub(1, Relaxed);
                if broadcast.publisher == Some(id) {
                    broadcast.end_publisher();
                }
            }
            Role::Viewer(_) => {
                self.metrics.viewers.fetch_sub(1, Relaxed);
                broadcast.viewers.retain(|v| *v != id);
            }
        }
        if broadcast.publisher.is_none() && broadcast.viewers.is_empty() {
            self.broadcasts.remove(&session.broadcast);
        }
        let _ = now;
    }

    fn datagram(&mut self, source: SocketAddr, data: &[u8]) {
        self.metrics.datagrams_in.fetch_add(1, Relaxed);
        let Some((id, learned)) = self.demux.route(source, data) else {
            self.metrics.count_drop(DropReason::UnknownPeer);
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.candidate, data) else {
            self.metrics.count_drop(DropReason::Malformed);
            return;
        };
        let now = Instant::now();
        if let Some(session) = self.sessions.get_mut(&id) {
            session.last_input = now;
            if learned {
                session.addrs.push(source);
            }
        }
        self.input(id, Input::Receive(now, receive), now);
    }

    /// Feeds one input to a session, drains it and handles its events. A
    /// panic or a fatal error ends this session only.
    fn input(&mut self, id: SessionId, input: Input, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut io = Io {
            socket: &self.socket,
            metrics: &self.metrics,
            queue: &mut self.send_queue,
        };
        let events = &mut self.events;
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "fault-injection")]
            if session.fault {
                panic!("fault injected: session panic");
            }
            session.rtc.handle_input(input)?;
            drain(&mut session.rtc, &mut io, events)
        }));
        match result {
            Ok(Ok(timeout)) => self.schedule(id, timeout, now),
            Ok(Err(_)) => {
                // str0m refuses input it cannot use (a bad SRTP packet, a
                // stray DTLS record); the session lives on if it is alive.
                self.metrics.count_drop(DropReason::Malformed);
                if !self.sessions.get(&id).is_some_and(|s| s.rtc.is_alive()) {
                    self.fail_session(id, now);
                }
            }
            Err(_) => self.fail_session(id, now),
        }
        self.handle_events(id, now);
    }

    fn fail_session(&mut self, id: SessionId, now: Instant) {
        self.metrics.sessions_failed.fetch_add(1, Relaxed);
        tracing::warn!(session = %id, "session ended after an error in its handling");
        self.events.clear();
        self.end_session(id, now);
    }

    fn schedule(&mut self, id: SessionId, timeout: Instant, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if timeout < session.next_timeout || session.next_timeout <= now {
            session.next_timeout = timeout;
            self.timers.push(Reverse((timeout, id)));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let due = self
                .sessions
                .get(&id)
                .is_some_and(|s| s.next_timeout <= now);
            if due {
                self.input(id, Input::Timeout(now), now);
            }
        }
    }

    fn handle_events(&mut self, id: SessionId, now: Instant) {
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            match event {
                Event::RtpPacket(pkt) => self.on_publisher_rtp(id, pkt, now),
                Event::Connected => self.on_connected(id, now),
                Event::KeyframeRequest(req) => self.on_viewer_keyframe_request(id, req.mid, now),
                Event::EgressBitrateEstimate(kind) => self.on_estimate(id, kind, now),
                Event::MediaEgressStats(stats) => self.on_egress_stats(id, &stats, now),
                // Not the end by itself: some peers (webrtc-rs among them)
                // keep a connection alive with media and RTCP rather than
                // STUN checks, and str0m reconnects on the next check. A
                // peer that sends nothing at all is ended by housekeeping.
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    tracing::debug!(session = %id, "ICE consent checks stopped");
                }
                Event::Closed => {
                    tracing::info!(session = %id, "session ended: the peer closed it");
                    self.end_session(id, now);
                }
                _ => {}
            }
        }
        // Keep the buffer's capacity for the next session.
        if self.events.is_empty() {
            self.events = events;
        }
    }

    fn on_connected(&mut self, id: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        tracing::info!(session = %id, broadcast = %session.broadcast, "peer connected");
        if let Role::Viewer(v) = &mut session.role {
            v.connected = true;
            v.connected_at = Some(now);
            self.retarget_viewer(id, now);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let idle: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| {
                !s.rtc.is_alive()
                    || now.saturating_duration_since(s.last_input) > SESSION_IDLE_TIMEOUT
            })
            .map(|s| s.id)
            .collect();
        for id in idle {
            tracing::info!(session = %id, "session ended: peer gone");
            self.end_session(id, now);
        }
        let viewers: Vec<SessionId> = self
            .broadcasts
            .values()
            .flat_map(|b| b.viewers.iter().copied())
            .collect();
        for id in viewers {
            self.retarget_viewer(id, now);
            self.update_bwe(id, now);
        }
        self.mark_wanted_layers(now);
    }
}
