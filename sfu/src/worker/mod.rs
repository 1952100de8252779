//! A media worker: one thread that owns its UDP socket (its own port), its
//! sessions' `Rtc`s, the [`Source`]s of the broadcasts whose publisher it
//! holds and a [`Mirror`] of every broadcast it has viewers of. Nothing in
//! it is shared or locked; the control plane reaches it through
//! [`Command`]s, other workers through its bounded inbox ([`bus`]), and it
//! tells the world what it has by publishing a [`status::WorkerStatus`]
//! snapshot.
//!
//! One pass of the loop: wake for a command, an inbox message, a datagram
//! (then read up to [`RECV_BATCH`] more) or a timer; feed each to its
//! session through the guard; handle that session's events after its
//! drain; then [`Worker::pump`] the local queue (Source → Mirror, upstream
//! requests, NACKs, sessions that failed during a fan-out) until it is
//! empty; then timers, replays and housekeeping; then flush the batched
//! sends. Nothing re-enters: no session is ever called while another is
//! being drained, and a fan-out never edits the viewer list it walks.
//!
//! Per incoming RTP packet: Source (classify, parse once) → Mirrors (local
//! queue, other workers' inboxes) → per viewer on that layer:
//! `Forwarder::translate` → str0m's direct send (SRTP into an egress slot)
//! → `sendmmsg`. No allocation, lock or payload copy per viewer.

mod adaptive;
mod bus;
mod control;
mod deadline;
mod demux;
mod egress;
mod fanout;
mod guard;
mod ice_tcp;
mod inbound;
mod ingest;
mod mirror;
mod mmsg;
mod nack;
mod panic_report;
mod replay;
mod session;
mod source;
pub(crate) mod status;
mod supervisor;
mod upkeep;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::rtp::NackRequest;
use str0m::{Event, IceConnectionState, Input};
use tokio::sync::{mpsc, watch};

use crate::core::layer_selector::Bounds;
use crate::core::overload::{LoadGovernor, ShedLevel};
use crate::ids::{BroadcastName, SessionId};
use crate::metrics::{DropReason, Metrics};
use crate::recorder::{RecorderTap, Tapped};
use bus::{Bus, Upstream};
use egress::Egress;
use guard::{guarded, Guarded, Io};
use mirror::Mirror;
use session::{Role, SessionKey, Sessions};
use source::Source;

pub(crate) use bus::{Downstream, EpochInfo, Peers, TrackRef};
pub(crate) use control::Command;
/// Public for the benchmarks (`sfu/benches`): pure routing state.
pub use demux::Demux;
pub(crate) use source::MAX_LAYERS;
pub use status::{BroadcastStatus, PublisherLayer, ViewerStatus, WorkerStatus};
pub(crate) use supervisor::{spawn, WorkerSetup};
pub use supervisor::{Liveness, MAX_RESTARTS};

/// Capacity of a worker's inbox.
pub(crate) fn bus_inbox() -> usize {
    bus::INBOX
}

/// A session that sends nothing (no STUN consent, no RTCP, no media) for
/// this long is gone; browsers send consent checks every few seconds.
const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// How many more datagrams, or inbox messages, to take without yielding.
const RECV_BATCH: usize = 64;

pub(crate) struct Worker {
    index: usize,
    socket: tokio::net::UdpSocket,
    /// Our candidate address: the destination str0m expects on input.
    candidate: SocketAddr,
    /// Per-viewer bitrate bounds for automatic layer selection.
    bounds: Bounds,
    metrics: Arc<Metrics>,
    sessions: Sessions,
    demux: Demux<SessionKey>,
    sources: HashMap<BroadcastName, Source>,
    mirrors: HashMap<BroadcastName, Mirror>,
    peers: Peers,
    /// Bus messages for this worker itself, handled by [`Worker::pump`].
    local: VecDeque<Bus>,
    /// NACKs received, answered by [`Worker::pump`] after the drain.
    nacks: Vec<(SessionKey, NackRequest)>,
    /// Sessions that failed while a fan-out walked a viewer list: ended
    /// after the walk.
    failed: Vec<SessionKey>,
    timers: BinaryHeap<Reverse<(Instant, SessionKey, SessionId)>>,
    /// Scratch buffer for one session's events, reused to avoid allocating.
    events: Vec<Event>,
    egress: Egress,
    /// GOPs being served to joining viewers, paced.
    replays: Vec<replay::Replay>,
    /// Wakes the loop for the next timer; precise, unlike tokio's
    /// millisecond timer (see [`deadline`]).
    deadline: deadline::Deadline,
    liveness: Arc<Liveness>,
    governor: LoadGovernor,
    /// Time spent waiting since the last housekeeping tick.
    waited: Duration,
    status: watch::Sender<Arc<WorkerStatus>>,
    on_ended: Arc<dyn Fn(SessionId) + Send + Sync>,
    /// Where every Source message also goes when broadcasts are recorded.
    recorder: Option<RecorderTap>,
}

enum Wake {
    Command(Option<Command>),
    Bus(Option<Bus>),
    Tcp(Option<ice_tcp::TcpEvent>),
    Writable,
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Deadline,
}

/// When the periodic work is next due.
struct Due {
    housekeeping: Instant,
    replay: Instant,
    last_tick: Instant,
}

impl Worker {
    fn new(setup: &WorkerSetup, socket: tokio::net::UdpSocket) -> Worker {
        Worker {
            index: setup.index,
            socket,
            candidate: setup.candidate,
            bounds: setup.bounds,
            metrics: setup.metrics.clone(),
            sessions: Sessions::default(),
            demux: Demux::default(),
            sources: HashMap::new(),
            mirrors: HashMap::new(),
            peers: setup.peers.clone(),
            local: VecDeque::new(),
            nacks: Vec::new(),
            failed: Vec::new(),
            timers: BinaryHeap::new(),
            events: Vec::new(),
            egress: Egress::default(),
            replays: Vec::new(),
            deadline: deadline::Deadline::new(),
            liveness: setup.liveness.clone(),
            governor: LoadGovernor::default(),
            waited: Duration::ZERO,
            status: setup.status.clone(),
            on_ended: setup.on_ended.clone(),
            recorder: setup.recorder.clone(),
        }
    }

    async fn run(
        mut self,
        commands: &mut mpsc::Receiver<Command>,
        inbox: &mut mpsc::Receiver<Bus>,
        tcp: &mut mpsc::Receiver<ice_tcp::TcpEvent>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut tcp_open = true;
        let start = Instant::now();
        let mut due = Due {
            housekeeping: start + HOUSEKEEPING,
            replay: start,
            last_tick: start,
        };
        loop {
            let deadline = self.next_deadline(&due);
            if deadline <= Instant::now() {
                // Work is due already, so the select below completes at
                // once. Yield first: only when this future returns Pending
                // does the runtime poll its I/O driver (the socket's
                // readiness) and refill the coop budget (the channels'),
                // so a loop whose timers stay due (a burst of str0m
                // timeouts) would otherwise spin without reading its
                // socket: 800 ms and 2 MB queued at 100 viewers.
                tokio::task::yield_now().await;
            }
            let wait_from = Instant::now();
            // Biased: commands, then other workers' packets, then datagrams.
            // Timers, replays and queued sends are never left to the select
            // alone (under load the socket is always readable and they
            // would starve: str0m's pacers only release packets on their
            // timeouts), so every pass ends with `run_due`.
            let wake = tokio::select! {
                biased;
                cmd = commands.recv() => Wake::Command(cmd),
                msg = inbox.recv() => Wake::Bus(msg),
                r = self.socket.recv_from(&mut buf) => Wake::Datagram(r),
                ev = tcp.recv(), if tcp_open => Wake::Tcp(ev),
                _ = self.socket.writable(), if self.egress.has_backlog() => Wake::Writable,
                _ = self.deadline.wait_until(deadline) => Wake::Deadline,
            };
            let now = Instant::now();
            self.waited += now.saturating_duration_since(wait_from);
            match wake {
                Wake::Command(None) | Wake::Command(Some(Command::Shutdown)) => break,
                Wake::Command(Some(cmd)) => self.command(cmd, now),
                Wake::Bus(None) => {}
                Wake::Bus(Some(msg)) => {
                    self.on_bus(msg);
                    for _ in 0..RECV_BATCH {
                        match inbox.try_recv() {
                            Ok(msg) => self.on_bus(msg),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Writable | Wake::Deadline => {}
                // The accept loop ended (its listener failed): UDP goes on.
                Wake::Tcp(None) => tcp_open = false,
                Wake::Tcp(Some(ev)) => {
                    self.tcp_event(ev, now);
                    for _ in 0..RECV_BATCH {
                        match tcp.try_recv() {
                            Ok(ev) => self.tcp_event(ev, Instant::now()),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Datagram(Ok((n, source))) => {
                    self.datagram(source, &buf[..n], now);
                    for _ in 0..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.datagram(source, &buf[..n], Instant::now()),
                            Err(_) => break,
                        }
                    }
                }
                // ICMP errors surface as recv errors on some platforms; they
                // concern one peer, never the socket.
                Wake::Datagram(Err(_)) => {}
            }
            self.pump();
            let now = Instant::now();
            self.liveness.beat(now);
            self.run_due(now, &mut due);
            self.pump();
            self.egress.flush(&self.socket, &self.metrics);
        }
        for key in self.sessions.keys() {
            self.end_session(key, Instant::now());
        }
        self.egress.flush(&self.socket, &self.metrics);
    }

    /// The earliest instant something is due: a str0m timeout, housekeeping
    /// or (while replays run) the next replay tick.
    fn next_deadline(&self, due: &Due) -> Instant {
        let mut deadline = due.housekeeping;
        if let Some(Reverse((t, _, _))) = self.timers.peek() {
            deadline = deadline.min(*t);
        }
        if !self.replays.is_empty() {
            deadline = deadline.min(due.replay);
        }
        deadline
    }

    /// Everything whose time has come, after every wake-up: session
    /// timeouts, replay ticks and housekeeping.
    fn run_due(&mut self, now: Instant, due: &mut Due) {
        self.fire_timers(now);
        if !self.replays.is_empty() && now >= due.replay {
            due.replay = now + replay::TICK;
            self.advance_replays(now);
        }
        if now >= due.housekeeping {
            let tick = now.saturating_duration_since(due.last_tick);
            due.housekeeping = now + HOUSEKEEPING;
            due.last_tick = now;
            let busy = if tick.is_zero() {
                0.0
            } else {
                1.0 - (self.waited.as_secs_f32() / tick.as_secs_f32()).min(1.0)
            };
            self.waited = Duration::ZERO;
            self.housekeeping(now, busy);
        }
    }

    fn io(&mut self) -> Io<'_, tokio::net::UdpSocket> {
        Io {
            socket: &self.socket,
            egress: &mut self.egress,
            metrics: &self.metrics,
        }
    }

    /// Delivers a bus message to worker `to`: this one through the local
    /// queue, another through its inbox.
    fn deliver(&mut self, to: usize, msg: Bus) {
        if to == self.index {
            self.local.push_back(msg);
        } else {
            self.peers.send(to, msg, &self.metrics);
        }
    }

    /// A Source's message to every Mirror it feeds.
    fn emit(&mut self, name: &BroadcastName, msg: Downstream) {
        if let Some(tap) = &self.recorder {
            let source = self.sources.get(name);
            // Packets of a broadcast whose codec is not recorded never
            // reach the recorder's queue; epochs and ends always do.
            if source.is_some_and(Source::records) || !matches!(msg, Downstream::Packet(..)) {
                let tapped = Tapped {
                    broadcast: name.clone(),
                    publisher: source.and_then(|s| s.publisher),
                    msg: msg.clone(),
                };
                tap.offer(tapped, &self.metrics);
            }
        }
        if self.mirrors.contains_key(name) {
            self.local
                .push_back(Bus::Down(name.clone(), self.index, msg.clone()));
        }
        let Some(source) = self.sources.get(name) else {
            return;
        };
        for &worker in &source.links {
            self.peers.send(
                worker,
                Bus::Down(name.clone(), self.index, msg.clone()),
                &self.metrics,
            );
        }
    }

    /// A Mirror's message to its Source.
    fn upstream(&mut self, name: &BroadcastName, msg: Upstream) {
        let to = if self.sources.contains_key(name) {
            Some(self.index)
        } else {
            self.mirrors.get(name).and_then(|m| m.source_worker)
        };
        if let Some(to) = to {
            let msg = Bus::Up {
                broadcast: name.clone(),
                msg,
            };
            self.deliver(to, msg);
        }
    }

    fn on_bus(&mut self, msg: Bus) {
        match msg {
            Bus::Down(name, from, msg) => self.on_downstream(name, from, msg),
            Bus::Up { broadcast, msg, .. } => self.on_upstream(broadcast, msg),
        }
    }

    /// Handles queued work until none is left: bus messages, NACKs, failed
    /// sessions. Each may queue more; nothing here calls into a session
    /// that is being drained.
    fn pump(&mut self) {
        loop {
            if let Some(msg) = self.local.pop_front() {
                self.on_bus(msg);
            } else if !self.nacks.is_empty() {
                let nacks = std::mem::take(&mut self.nacks);
                for (key, nack) in nacks {
                    self.answer_nack(key, nack, Instant::now());
                }
            } else if let Some(key) = self.failed.pop() {
                self.fail_session(key, Instant::now());
            } else {
                break;
            }
        }
    }

    fn on_downstream(&mut self, name: BroadcastName, from: usize, msg: Downstream) {
        let now = Instant::now();
        let Some(mirror) = self.mirrors.get_mut(&name) else {
            // No viewer here (any more): the placement unlinks us shortly.
            return;
        };
        mirror.source_worker = Some(from);
        match msg {
            Downstream::Packet(track, pkt) => self.fan_out(&name, track, &pkt, now),
            Downstream::Epoch(info) => {
                if mirror.on_epoch(info) {
                    self.retarget_mirror(&name, now);
                }
            }
            Downstream::Ended => {
                mirror.on_ended();
                self.retarget_mirror(&name, now);
            }
        }
    }

    fn on_upstream(&mut self, name: BroadcastName, msg: Upstream) {
        let now = Instant::now();
        let Some(source) = self.sources.get_mut(&name) else {
            return;
        };
        match msg {
            Upstream::Wanted(layers) => source.on_wanted(layers, now),
            Upstream::KeyframeRequest(layer) => {
                let Some(ssrc) = source.keyframe_request(layer, now) else {
                    return;
                };
                let publisher = source.publisher;
                self.ask_keyframe(publisher, ssrc, now);
            }
        }
    }

    /// Feeds one input to a session through the guard and handles its
    /// events. A panic or a fatal error ends this session only.
    fn input(&mut self, key: SessionKey, input: Input, now: Instant) {
        #[cfg(feature = "fault-injection")]
        let fault = self.sessions.get(key).is_some_and(|s| s.fault);
        self.call(key, now, move |rtc| {
            #[cfg(feature = "fault-injection")]
            if fault {
                panic!("fault injected: session panic");
            }
            rtc.handle_input(input)
        });
    }

    /// A guarded call into one session's `Rtc`, its drain, its scheduling
    /// and its events. The one way the worker calls str0m, besides the
    /// fan-out's direct sends (guarded the same way).
    fn call<T>(
        &mut self,
        key: SessionKey,
        now: Instant,
        f: impl FnOnce(&mut str0m::Rtc) -> Result<T, str0m::RtcError>,
    ) -> Option<T> {
        let Worker {
            sessions,
            socket,
            egress,
            metrics,
            events,
            ..
        } = self;
        let session = sessions.get_mut(key)?;
        let mut io = Io {
            socket: &*socket,
            egress,
            metrics,
        };
        let outcome = guarded(&mut session.rtc, &mut io, events, f);
        let value = match outcome {
            Guarded::Done(value, timeout) => {
                self.schedule(key, timeout, now);
                Some(value)
            }
            Guarded::Refused => {
                self.metrics.count_drop(DropReason::Malformed);
                if !self.sessions.get(key).is_some_and(|s| s.rtc.is_alive()) {
                    self.fail_session(key, now);
                }
                None
            }
            Guarded::Panicked => {
                self.fail_session(key, now);
                None
            }
        };
        self.handle_events(key, now);
        value
    }

    fn fail_session(&mut self, key: SessionKey, now: Instant) {
        if let Some(s) = self.sessions.get(key) {
            self.metrics.inc(&self.metrics.sessions_failed);
            tracing::warn!(session = %s.id, "session ended after an error in its handling");
        }
        self.events.clear();
        self.end_session(key, now);
    }

    fn schedule(&mut self, key: SessionKey, timeout: Instant, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        if timeout < session.next_timeout || session.next_timeout <= now {
            session.next_timeout = timeout;
            self.timers.push(Reverse((timeout, key, session.id)));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, key, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let due = self
                .sessions
                .get_checked(key, id)
                .is_some_and(|s| s.next_timeout <= now);
            if due {
                self.input(key, Input::Timeout(now), now);
                self.pump();
            }
        }
    }

    /// Handles the events one session's drain produced. A session's own
    /// follow-up calls (its estimator, its keyframe requests upstream) may
    /// add events; those are handled here too, in rounds.
    fn handle_events(&mut self, key: SessionKey, now: Instant) {
        for _ in 0..8 {
            if self.events.is_empty() {
                return;
            }
            let mut events = std::mem::take(&mut self.events);
            for event in events.drain(..) {
                if self.sessions.get(key).is_none() {
                    break;
                }
                match event {
                    Event::RtpPacket(pkt) => self.on_publisher_rtp(key, pkt, now),
                    Event::Connected => self.on_connected(key, now),
                    Event::KeyframeRequest(req) => self.on_viewer_keyframe_request(key, req.mid),
                    Event::EgressBitrateEstimate(kind) => self.on_estimate(key, kind, now),
                    Event::MediaEgressStats(stats) => self.on_egress_stats(key, &stats, now),
                    Event::Nack(nack) => self.nacks.push((key, nack)),
                    // Not the end by itself: some peers (webrtc-rs among
                    // them) keep a connection alive with media and RTCP
                    // rather than STUN checks, and str0m reconnects on the
                    // next check. A peer that sends nothing at all is ended
                    // by housekeeping.
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        tracing::debug!("ICE consent checks stopped");
                    }
                    Event::Closed => {
                        tracing::info!("session ended: the peer closed it");
                        self.end_session(key, now);
                    }
                    _ => {}
                }
            }
            // Keep the buffer's capacity for the next session.
            if self.events.is_empty() {
                self.events = events;
            }
        }
        self.events.clear();
    }

    fn on_connected(&mut self, key: SessionKey, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        tracing::info!(session = %session.id, broadcast = %session.broadcast, "peer connected");
        if let Some(v) = session.viewer_mut() {
            v.connected = true;
            v.connected_at = Some(now);
            self.retarget_viewer(key, now);
        }
    }

    pub(super) fn end_session(&mut self, key: SessionKey, now: Instant) {
        let Some(mut session) = self.sessions.remove(key) else {
            return;
        };
        self.demux.remove_session(&session.ufrag, &session.addrs);
        // Its TCP connections close with it.
        for addr in &session.addrs {
            self.egress.tcp.remove(addr);
        }
        // Let str0m say goodbye (RTCP BYE, DTLS close_notify) if it can.
        {
            let mut scratch = Vec::new();
            let mut io = self.io();
            let _ = guarded(&mut session.rtc, &mut io, &mut scratch, |rtc| rtc.close());
        }
        let name = session.broadcast.clone();
        match session.role {
            Role::Publisher(_) => {
                self.metrics.publishers.store(
                    self.metrics.publishers.load(Relaxed).saturating_sub(1),
                    Relaxed,
                );
                if let Some(source) = self.sources.get_mut(&name) {
                    if source.publisher == Some(session.id) {
                        source.end_publisher();
                        self.emit(&name, Downstream::Ended);
                        self.announce_epoch(&name);
                    }
                }
            }
            Role::Viewer(_) => {
                self.metrics.viewers.store(
                    self.metrics.viewers.load(Relaxed).saturating_sub(1),
                    Relaxed,
                );
                self.replays.retain(|r| r.viewer != key);
                if let Some(mirror) = self.mirrors.get_mut(&name) {
                    mirror.remove_viewer(key);
                    if mirror.viewers.is_empty() {
                        self.mirrors.remove(&name);
                    }
                }
            }
        }
        self.remove_source_if_unused(&name);
        let _ = now;
        (self.on_ended)(session.id);
    }

    fn housekeeping(&mut self, now: Instant, busy: f32) {
        let idle: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.rtc.is_alive()
                    || now.saturating_duration_since(s.last_input) > SESSION_IDLE_TIMEOUT
            })
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            tracing::info!("session ended: peer gone");
            self.end_session(key, now);
        }
        let backlog = self.egress.backlog_bytes();
        self.metrics
            .busy_permille
            .store((busy * 1000.0) as u64, Relaxed);
        if let Some(level) = self.governor.on_tick(now, busy, backlog) {
            self.metrics.shed_level.store(level as u64, Relaxed);
            if level > ShedLevel::None {
                self.metrics.inc(&self.metrics.shed_raises);
            }
            tracing::warn!(
                worker = self.index,
                ?level,
                busy,
                backlog,
                "load shedding level changed"
            );
        }
        let viewers: Vec<SessionKey> = self
            .mirrors
            .values()
            .flat_map(|m| m.viewers.iter().copied())
            .collect();
        for key in viewers {
            self.retarget_viewer(key, now);
            self.update_bwe(key, now);
        }
        self.report_wanted_layers(now);
        self.tend_sources(now);
        self.publish_status(now);
    }
}
