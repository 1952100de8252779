//! [`Placement`]: which worker holds each session, where each broadcast's
//! Source lives, and which other workers its Source must feed. Pure and
//! clock-free; the handle keeps it under a mutex (control plane only, never
//! touched per packet) and applies its decisions.
//!
//! Rules:
//! - A viewer goes to the admitting worker with the fewest viewers (ties:
//!   the lowest index); none admits, or the node is at `--max-viewers`: the
//!   join is refused with a retry hint.
//! - A broadcast's Source stays on the worker of its first publisher while
//!   any session of the broadcast exists, so a reconnect lands where the
//!   viewers' epochs continue; a new broadcast's publisher goes to the
//!   least loaded worker.
//! - After every change the Source's worker is told the full set of other
//!   workers with viewers of the broadcast ([`Link`]): the message is
//!   idempotent, so it can never leave a stale subscription behind.
//! - The last [`RECENTLY_ENDED`] sessions are remembered, so a DELETE that
//!   races the peer's own close still succeeds.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::ids::{BroadcastName, SessionId};

/// How many ended sessions a late DELETE may still name.
pub const RECENTLY_ENDED: usize = 1024;
/// What a refused join tells the client to wait.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Publisher,
    Viewer,
}

/// One worker's state as the placement weighs it (its viewer count is the
/// placement's own, exact even during a join storm).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WorkerLoad {
    /// Its load governor admits new viewers.
    pub admits: bool,
    /// The worker is alive.
    pub alive: bool,
}

/// Why a viewer was not placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The node's `--max-viewers` is reached.
    NodeFull,
    /// Every worker is too loaded to take another viewer.
    Overloaded,
}

/// The set of other workers a Source must feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub source_worker: usize,
    pub broadcast: BroadcastName,
    pub mirrors: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Placed {
    worker: usize,
    broadcast: BroadcastName,
    kind: Kind,
}

#[derive(Clone, Debug, Default)]
struct BroadcastPlacement {
    source: Option<usize>,
    /// Viewers per worker.
    viewers: Vec<usize>,
    sessions: usize,
}

#[derive(Debug)]
pub struct Placement {
    workers: usize,
    max_viewers: Option<usize>,
    sessions: HashMap<SessionId, Placed>,
    broadcasts: HashMap<BroadcastName, BroadcastPlacement>,
    recently_ended: VecDeque<(SessionId, BroadcastName)>,
    /// Viewers per worker, placed or reserved (a join in flight counts, so
    /// concurrent joins spread).
    worker_viewers: Vec<usize>,
}

impl Placement {
    pub fn new(workers: usize, max_viewers: Option<usize>) -> Self {
        Placement {
            workers: workers.max(1),
            max_viewers,
            sessions: HashMap::new(),
            broadcasts: HashMap::new(),
            recently_ended: VecDeque::new(),
            worker_viewers: vec![0; workers.max(1)],
        }
    }

    /// Where a new viewer should go, if anywhere; reserves its place (undo
    /// with [`Placement::unreserve`] if the join fails).
    pub fn place_viewer(&mut self, loads: &[WorkerLoad]) -> Result<usize, Refusal> {
        if self.max_viewers.is_some_and(|max| self.viewers() >= max) {
            return Err(Refusal::NodeFull);
        }
        let worker = loads
            .iter()
            .enumerate()
            .take(self.workers)
            .filter(|(_, l)| l.alive && l.admits)
            .min_by_key(|(i, _)| (self.worker_viewers[*i], *i))
            .map(|(i, _)| i)
            .ok_or(Refusal::Overloaded)?;
        self.worker_viewers[worker] += 1;
        Ok(worker)
    }

    /// A reserved viewer that did not join.
    pub fn unreserve(&mut self, worker: usize) {
        if let Some(n) = self.worker_viewers.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
    }

    /// Where a publisher of `broadcast` should go: its Source's worker, or
    /// the least loaded live one.
    pub fn place_publisher(&self, broadcast: &BroadcastName, loads: &[WorkerLoad]) -> usize {
        if let Some(source) = self.broadcasts.get(broadcast).and_then(|b| b.source) {
            return source;
        }
        loads
            .iter()
            .enumerate()
            .take(self.workers)
            .filter(|(_, l)| l.alive)
            .min_by_key(|(i, _)| (self.worker_viewers[*i], *i))
            .map_or(0, |(i, _)| i)
    }

    /// A session the worker accepted (a viewer's place was reserved by
    /// [`Placement::place_viewer`]).
    pub fn added(
        &mut self,
        id: SessionId,
        broadcast: BroadcastName,
        worker: usize,
        kind: Kind,
    ) -> Option<Link> {
        let workers = self.workers;
        let b = self
            .broadcasts
            .entry(broadcast.clone())
            .or_insert_with(|| BroadcastPlacement {
                viewers: vec![0; workers],
                ..Default::default()
            });
        b.sessions += 1;
        match kind {
            Kind::Publisher => {
                b.source = Some(worker);
            }
            Kind::Viewer => {
                b.viewers[worker.min(workers - 1)] += 1;
            }
        }
        self.sessions.insert(
            id,
            Placed {
                worker,
                broadcast: broadcast.clone(),
                kind,
            },
        );
        self.link(&broadcast)
    }

    /// A session that ended, on whatever side.
    pub fn ended(&mut self, id: SessionId) -> Option<Link> {
        let placed = self.sessions.remove(&id)?;
        if self.recently_ended.len() >= RECENTLY_ENDED {
            self.recently_ended.pop_front();
        }
        self.recently_ended
            .push_back((id, placed.broadcast.clone()));
        let b = self.broadcasts.get_mut(&placed.broadcast)?;
        b.sessions = b.sessions.saturating_sub(1);
        if placed.kind == Kind::Viewer {
            if let Some(n) = b.viewers.get_mut(placed.worker) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = self.worker_viewers.get_mut(placed.worker) {
                *n = n.saturating_sub(1);
            }
        }
        if b.sessions == 0 {
            self.broadcasts.remove(&placed.broadcast);
            return None;
        }
        self.link(&placed.broadcast)
    }

    /// Every session of a worker that restarted is gone: their ids, and
    /// the links that changed.
    pub fn worker_lost(&mut self, worker: usize) -> (Vec<SessionId>, Vec<Link>) {
        let lost: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, p)| p.worker == worker)
            .map(|(id, _)| *id)
            .collect();
        let mut links: Vec<Link> = lost.iter().filter_map(|id| self.ended(*id)).collect();
        // The Sources it held are gone too: their broadcasts start over
        // wherever the next publisher lands.
        for b in self.broadcasts.values_mut() {
            if b.source == Some(worker) {
                b.source = None;
            }
        }
        links.retain(|l| l.source_worker != worker);
        (lost, links)
    }

    /// The worker of a session and its broadcast.
    pub fn lookup(&self, id: SessionId) -> Option<(usize, &BroadcastName, Kind)> {
        self.sessions
            .get(&id)
            .map(|p| (p.worker, &p.broadcast, p.kind))
    }

    pub fn recently_ended(&self, id: SessionId, broadcast: &BroadcastName) -> bool {
        self.recently_ended
            .iter()
            .any(|(i, b)| *i == id && b == broadcast)
    }

    /// Viewers on the node, placed or reserved.
    pub fn viewers(&self) -> usize {
        self.worker_viewers.iter().sum()
    }

    /// Viewers per worker, placed or reserved.
    pub fn worker_viewers(&self) -> &[usize] {
        &self.worker_viewers
    }

    fn link(&self, broadcast: &BroadcastName) -> Option<Link> {
        let b = self.broadcasts.get(broadcast)?;
        let source = b.source?;
        Some(Link {
            source_worker: source,
            broadcast: broadcast.clone(),
            mirrors: b
                .viewers
                .iter()
                .enumerate()
                .filter(|(w, n)| **n > 0 && *w != source)
                .map(|(w, _)| w)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: WorkerLoad = WorkerLoad {
        admits: true,
        alive: true,
    };

    /// A placement with `counts` viewers already on each worker.
    fn with_viewers(counts: &[usize]) -> Placement {
        let mut p = Placement::new(counts.len(), None);
        p.worker_viewers = counts.to_vec();
        p
    }

    fn id(n: u128) -> SessionId {
        SessionId(n)
    }

    #[test]
    fn table_of_viewer_placements() {
        let busy = WorkerLoad {
            admits: false,
            ..OK
        };
        let dead = WorkerLoad { alive: false, ..OK };
        // (what, viewers per worker, their loads, where the next one goes)
        type Case = (
            &'static str,
            [usize; 2],
            [WorkerLoad; 2],
            Result<usize, Refusal>,
        );
        let cases: Vec<Case> = vec![
            ("the emptier worker", [3, 1], [OK, OK], Ok(1)),
            ("ties go to the first", [2, 2], [OK, OK], Ok(0)),
            (
                "a worker that does not admit is skipped",
                [0, 9],
                [busy, OK],
                Ok(1),
            ),
            ("a dead worker is skipped", [0, 9], [dead, OK], Ok(1)),
            (
                "nobody admits",
                [0, 0],
                [busy, busy],
                Err(Refusal::Overloaded),
            ),
        ];
        for (name, counts, loads, want) in cases {
            assert_eq!(with_viewers(&counts).place_viewer(&loads), want, "{name}");
        }
    }

    #[test]
    fn concurrent_joins_spread_over_the_workers() {
        let mut p = Placement::new(2, None);
        let placed: Vec<usize> = (0..4).map(|_| p.place_viewer(&[OK, OK]).unwrap()).collect();
        assert_eq!(
            placed,
            [0, 1, 0, 1],
            "a reservation counts before the join completes"
        );
        p.unreserve(1);
        assert_eq!(p.worker_viewers(), [2, 1]);
    }

    #[test]
    fn the_node_limit_refuses_before_any_worker_is_full() {
        let mut p = Placement::new(2, Some(2));
        let live = BroadcastName::new("live");
        for n in 1..=2 {
            let w = p.place_viewer(&[OK, OK]).unwrap();
            p.added(id(n), live.clone(), w, Kind::Viewer);
        }
        assert_eq!(p.place_viewer(&[OK, OK]), Err(Refusal::NodeFull));
        p.ended(id(2));
        assert_eq!(p.place_viewer(&[OK, OK]), Ok(1));
    }

    #[test]
    fn the_source_feeds_exactly_the_other_workers_with_viewers() {
        let mut p = with_viewers(&[0, 5, 0]);
        let live = BroadcastName::new("live");
        let mirrors = |l: Option<Link>| l.map(|l| (l.source_worker, l.mirrors));
        // A viewer before any publisher: no Source, nothing to link.
        p.worker_viewers[2] += 1;
        assert_eq!(mirrors(p.added(id(1), live.clone(), 2, Kind::Viewer)), None);
        assert_eq!(p.place_publisher(&live, &[OK, OK, OK]), 0);
        assert_eq!(
            mirrors(p.added(id(2), live.clone(), 0, Kind::Publisher)),
            Some((0, vec![2]))
        );
        p.worker_viewers[0] += 1;
        assert_eq!(
            mirrors(p.added(id(3), live.clone(), 0, Kind::Viewer)),
            Some((0, vec![2])),
            "the Source's own worker needs no link"
        );
        assert_eq!(mirrors(p.ended(id(1))), Some((0, vec![])));
        // The publisher reconnects: back to its Source's worker.
        p.ended(id(2));
        assert_eq!(p.place_publisher(&live, &[OK, OK, OK]), 0);
        p.ended(id(3));
        p.worker_viewers = vec![9, 0, 0];
        assert_eq!(
            p.place_publisher(&live, &[OK, OK, OK]),
            1,
            "a broadcast with no session left starts over"
        );
        assert!(p.recently_ended(id(3), &live));
        assert!(!p.recently_ended(id(3), &BroadcastName::new("other")));
    }

    #[test]
    fn a_restarted_worker_loses_its_sessions_and_sources() {
        let mut p = Placement::new(2, None);
        let live = BroadcastName::new("live");
        p.added(id(1), live.clone(), 0, Kind::Publisher);
        p.worker_viewers = vec![1, 1];
        p.added(id(2), live.clone(), 1, Kind::Viewer);
        p.added(id(3), live.clone(), 0, Kind::Viewer);
        let (lost, links) = p.worker_lost(0);
        assert_eq!(lost.len(), 2);
        assert!(links.is_empty(), "{links:?}");
        assert!(p.lookup(id(1)).is_none() && p.lookup(id(3)).is_none());
        assert_eq!(p.lookup(id(2)).map(|l| l.0), Some(1));
        assert_eq!(p.viewers(), 1);
        assert_eq!(p.place_publisher(&live, &[OK, OK]), 0, "least loaded");
    }
}
