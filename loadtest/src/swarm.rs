//! The viewer swarm: joiner threads that POST WHEP offers on the ramp
//! schedule, and viewer threads that each drive many [`Viewer`]s with one
//! epoll (`mio::Poll`) over their sockets.
//!
//! Invariants:
//! - Blocking HTTP happens only on joiner threads; a viewer thread never
//!   blocks except in `poll` with a timeout no later than its next str0m
//!   timer or housekeeping tick, so every loop is bounded in time.
//! - Viewer `i` is scheduled at `start + i / rate` and goes to viewer
//!   thread `i % threads`, handed over through a channel plus a `mio::Waker`.
//! - A viewer's timer-heap entries may be stale; `Viewer::scheduled` holds
//!   the earliest live one and only that entry fires.
//! - Everything stops when the stop flag is set: joiners between joins,
//!   viewer threads within one poll timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use crate::http::ServerUrl;
use crate::options::LayerMix;
use crate::stats::{Histograms, Live, LiveSnapshot};
use crate::viewer::{self, Phase, Viewer};
use str0m::config::DtlsCert;

const WAKER: Token = Token(usize::MAX);
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Concurrent POSTs: enough for a join storm, few enough not to be a DoS.
const JOINERS: usize = 8;

/// What a viewer thread hands back at the end.
pub struct ThreadResult {
    pub histograms: Histograms,
    pub viewers: Vec<ViewerOutcome>,
}

/// One viewer's final figures.
#[derive(Debug, Clone)]
pub struct ViewerOutcome {
    pub index: usize,
    pub resource: Option<String>,
    pub failure: Option<String>,
    pub received: u64,
    pub recovered: u64,
    pub lost: u64,
    pub ttff: Option<Duration>,
    /// Left on purpose (churn) and already DELETEd.
    pub left: bool,
    /// How long before the end of the run its media had stopped (`None`
    /// when no media ever came).
    pub silent_for: Option<Duration>,
}

struct ViewerThread {
    to_thread: Sender<Viewer>,
    waker: Arc<Waker>,
    live: Arc<Live>,
    /// How many of its viewers this thread should make leave (churn).
    leave: Arc<AtomicUsize>,
    handle: JoinHandle<ThreadResult>,
}

/// What every join needs, shared by the joiner threads.
struct Joining {
    plan: Plan,
    cert: Option<DtlsCert>,
    targets: Vec<(Sender<Viewer>, Arc<Waker>)>,
    stop: Arc<AtomicBool>,
    failures: Mutex<Vec<ViewerOutcome>>,
    failed: AtomicU64,
    /// The next index for a churn rejoin (after the planned viewers).
    next_extra: AtomicUsize,
}

impl Joining {
    /// POSTs viewer `i` and hands it to its viewer thread, or records why
    /// it could not join.
    fn join_one(&self, i: usize) {
        let plan = &self.plan;
        match viewer::join(
            i,
            &plan.server,
            &plan.stream,
            plan.mix.choice(i),
            self.cert.as_ref(),
            plan.nack_window,
        ) {
            Ok(v) => {
                let (to, waker) = &self.targets[i % self.targets.len()];
                if to.send(v).is_ok() {
                    let _ = waker.wake();
                }
            }
            Err(e) => {
                self.failed.fetch_add(1, Relaxed);
                if let Ok(mut f) = self.failures.lock() {
                    f.push(ViewerOutcome {
                        index: i,
                        resource: None,
                        failure: Some(e),
                        received: 0,
                        recovered: 0,
                        lost: 0,
                        ttff: None,
                        left: false,
                        silent_for: None,
                    });
                }
            }
        }
    }

    /// Sleeps until `due` unless stopped first; false when stopped.
    fn wait_until(&self, due: Instant) -> bool {
        while Instant::now() < due {
            if self.stop.load(Relaxed) {
                return false;
            }
            std::thread::sleep(
                due.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        !self.stop.load(Relaxed)
    }
}

/// Everything the swarm runs; dropped only through [`Swarm::finish`].
pub struct Swarm {
    stop: Arc<AtomicBool>,
    steady: Arc<AtomicBool>,
    threads: Vec<ViewerThread>,
    joiners: Mutex<Vec<JoinHandle<()>>>,
    joining: Arc<Joining>,
    /// Resources of viewers that left (churn), for the run to DELETE.
    left: Arc<Mutex<Vec<String>>>,
    /// Round-robin cursor over viewer threads for churn.
    next_leaver: AtomicUsize,
}

/// What the swarm is told to do.
pub struct Plan {
    pub server: ServerUrl,
    pub stream: String,
    pub viewers: usize,
    pub rate: f64,
    pub mix: LayerMix,
    pub threads: usize,
    pub nack_window: Duration,
}

impl Swarm {
    pub fn start(plan: Plan) -> Result<Swarm, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let steady = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(plan.threads);
        let left = Arc::new(Mutex::new(Vec::new()));
        for n in 0..plan.threads {
            let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?);
            let (to_thread, from_joiners) = mpsc::channel();
            let live = Arc::new(Live::default());
            let leave = Arc::new(AtomicUsize::new(0));
            let churn = Churn {
                leave: leave.clone(),
                left: left.clone(),
            };
            let (thread_stop, thread_steady, thread_live) =
                (stop.clone(), steady.clone(), live.clone());
            let handle = std::thread::Builder::new()
                .name(format!("lt-viewers-{n}"))
                .spawn(move || {
                    drive(
                        poll,
                        from_joiners,
                        &thread_stop,
                        &thread_steady,
                        &thread_live,
                        &churn,
                    )
                })
                .map_err(|e| e.to_string())?;
            threads.push(ViewerThread {
                to_thread,
                waker,
                live,
                leave,
                handle,
            });
        }
        // One DTLS certificate for every viewer: generating one per viewer
        // is the tool's cost, not the server's.
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate();
        let joining = Arc::new(Joining {
            targets: threads
                .iter()
                .map(|t| (t.to_thread.clone(), t.waker.clone()))
                .collect(),
            cert,
            stop: stop.clone(),
            failures: Mutex::new(Vec::new()),
            failed: AtomicU64::new(0),
            next_extra: AtomicUsize::new(plan.viewers),
            plan,
        });
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut joiners = Vec::new();
        for n in 0..JOINERS.min(joining.plan.viewers) {
            let (joining, next) = (joining.clone(), next.clone());
            let handle = std::thread::Builder::new()
                .name(format!("lt-joiner-{n}"))
                .spawn(move || loop {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= joining.plan.viewers {
                        return;
                    }
                    let due = start + Duration::from_secs_f64(i as f64 / joining.plan.rate);
                    if !joining.wait_until(due) {
                        return;
                    }
                    joining.join_one(i);
                })
                .map_err(|e| e.to_string())?;
            joiners.push(handle);
        }
        Ok(Swarm {
            stop,
            steady,
            threads,
            joiners: Mutex::new(joiners),
            joining,
            left,
            next_leaver: AtomicUsize::new(0),
        })
    }

    /// Asks `count` connected viewers (spread over the viewer threads) to
    /// leave; their resources show up in [`Swarm::take_left`].
    pub fn churn(&self, count: usize) {
        for _ in 0..count {
            let t = &self.threads[self.next_leaver.fetch_add(1, Relaxed) % self.threads.len()];
            t.leave.fetch_add(1, Relaxed);
        }
        for t in &self.threads {
            let _ = t.waker.wake();
        }
    }

    /// The WHEP resources of viewers that left since the last call.
    pub fn take_left(&self) -> Vec<String> {
        self.left
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Joins `count` new viewers at the plan's rate on a joiner thread.
    pub fn rejoin(&self, count: usize) {
        let joining = self.joining.clone();
        let spawned = std::thread::Builder::new()
            .name("lt-rejoiner".into())
            .spawn(move || {
                let start = Instant::now();
                for k in 0..count {
                    let due = start + Duration::from_secs_f64(k as f64 / joining.plan.rate);
                    if !joining.wait_until(due) {
                        return;
                    }
                    joining.join_one(joining.next_extra.fetch_add(1, Relaxed));
                }
            });
        if let (Ok(handle), Ok(mut joiners)) = (spawned, self.joiners.lock()) {
            joiners.push(handle);
        }
    }

    /// Starts the steady window: latency is recorded from now on.
    pub fn mark_steady(&self) {
        self.steady.store(true, Relaxed);
    }

    /// Totals over every viewer thread, plus joins that failed at POST.
    pub fn live(&self) -> LiveSnapshot {
        let mut total = self
            .threads
            .iter()
            .map(|t| t.live.snapshot())
            .fold(LiveSnapshot::default(), |a, b| a + b);
        let failed = self.joining.failed.load(Relaxed);
        total.failed += failed;
        total.viewers += failed;
        total
    }

    /// Stops everything and collects the results.
    pub fn finish(self) -> ThreadResult {
        self.stop.store(true, Relaxed);
        for t in &self.threads {
            let _ = t.waker.wake();
        }
        let joiners = self
            .joiners
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for j in joiners {
            let _ = j.join();
        }
        let mut total = ThreadResult {
            histograms: Histograms::default(),
            viewers: Vec::new(),
        };
        for t in self.threads {
            if let Ok(result) = t.handle.join() {
                total.histograms.merge(&result.histograms);
                total.viewers.extend(result.viewers);
            }
        }
        if let Ok(mut f) = self.joining.failures.lock() {
            total.viewers.append(&mut f);
        }
        total.viewers.sort_by_key(|v| v.index);
        total
    }
}

/// A viewer thread's share of churn: leaves asked of it, and where the
/// resources of those that left go.
struct Churn {
    leave: Arc<AtomicUsize>,
    left: Arc<Mutex<Vec<String>>>,
}

/// The viewer thread's loop.
fn drive(
    mut poll: Poll,
    from_joiners: Receiver<Viewer>,
    stop: &AtomicBool,
    steady: &AtomicBool,
    live: &Live,
    churn: &Churn,
) -> ThreadResult {
    let mut stats = Histograms::default();
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 2048];
    let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
    while !stop.load(Relaxed) {
        stats.steady = steady.load(Relaxed);
        let now = Instant::now();
        let wake = timers.peek().map_or(next_housekeeping, |Reverse((t, _))| {
            (*t).min(next_housekeeping)
        });
        if let Err(e) = poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
        for event in events.iter() {
            if event.token() == WAKER {
                while let Ok(mut v) = from_joiners.try_recv() {
                    let idx = viewers.len();
                    if let Err(e) =
                        poll.registry()
                            .register(&mut v.socket, Token(idx), Interest::READABLE)
                    {
                        v.fail(format!("epoll register: {e}"));
                    }
                    v.drain(Instant::now(), &mut stats);
                    schedule(&mut timers, &mut v, idx);
                    viewers.push(v);
                }
                continue;
            }
            let idx = event.token().0;
            if let Some(v) = viewers.get_mut(idx) {
                v.read_all(&mut buf, &mut stats);
                schedule(&mut timers, v, idx);
            }
        }
        let now = Instant::now();
        while let Some(&Reverse((t, idx))) = timers.peek() {
            if t > now {
                break;
            }
            timers.pop();
            let Some(v) = viewers.get_mut(idx) else {
                continue;
            };
            if v.scheduled != Some(t) {
                continue; // stale
            }
            v.scheduled = None;
            v.on_timer(now, &mut stats);
            schedule(&mut timers, v, idx);
        }
        let mut leaving = churn.leave.swap(0, Relaxed);
        // Oldest first: they have been measured the longest.
        for v in viewers.iter_mut().filter(|v| v.may_leave()) {
            if leaving == 0 {
                break;
            }
            v.leave();
            let _ = poll.registry().deregister(&mut v.socket);
            if let Ok(mut left) = churn.left.lock() {
                left.push(v.resource.clone());
            }
            leaving -= 1;
        }
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING;
            let mut snapshot = LiveSnapshot::default();
            for v in &mut viewers {
                v.housekeeping(now);
                let (_, _, lost) = v.loss();
                snapshot.viewers += 1;
                snapshot.connected += u64::from(v.phase == Phase::Connected);
                snapshot.first_frames += u64::from(v.ttff.is_some());
                snapshot.failed += u64::from(v.is_failed());
                snapshot.packets += v.packets;
                snapshot.bytes += v.bytes;
                snapshot.lost += lost;
            }
            live.store(&snapshot);
        }
    }
    let ended = Instant::now();
    let outcomes = viewers
        .iter_mut()
        .map(|v| {
            let (received, recovered, lost) = v.loss();
            let silent_for = v.last_media.map(|t| ended.saturating_duration_since(t));
            ViewerOutcome {
                index: v.index,
                resource: Some(v.resource.clone()),
                failure: match &v.phase {
                    Phase::Failed(reason) => Some(reason.clone()),
                    _ => None,
                },
                received,
                recovered,
                lost,
                ttff: v.ttff,
                left: v.phase == Phase::Left,
                silent_for,
            }
        })
        .collect();
    ThreadResult {
        histograms: stats,
        viewers: outcomes,
    }
}

fn schedule(timers: &mut BinaryHeap<Reverse<(Instant, usize)>>, v: &mut Viewer, idx: usize) {
    if v.is_live() && v.scheduled.is_none_or(|s| v.next_timeout < s) {
        v.scheduled = Some(v.next_timeout);
        timers.push(Reverse((v.next_timeout, idx)));
    }
}
