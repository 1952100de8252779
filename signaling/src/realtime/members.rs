//! Connections as the hub sees them, and fan-out.
//!
//! Each connection has a bounded outgoing queue of already-serialized text
//! ([`Utf8Bytes`] is reference-counted, so one serialization is shared by
//! every recipient). It is bounded twice: [`QUEUE`] messages and
//! [`QUEUE_BYTES`] bytes (counted per connection even when shared, so the
//! bound holds for replies only this client gets, like `joined`). Fan-out
//! only ever `try_send`s: a full queue means the client cannot keep up, and
//! it is closed (1013) instead of slowing the sender or anyone else.
//!
//! [`Members`] keeps a set of connections with a copy-on-write snapshot
//! (as LiveKit does for its subscriber lists): joining and leaving edit the
//! map under a short lock and drop the snapshot; fan-out takes the current
//! snapshot (rebuilt at most once per change) and iterates it without any
//! lock held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, watch};

/// Outgoing messages a connection may have queued before it counts as too
/// slow. A burst (history, alerts, reactions) fits easily.
pub const QUEUE: usize = 256;
/// Bytes a connection may have queued. Before this bound, 30 clients that
/// never read held 310 MB of ~58 KB `joined` replies. A single message is
/// always accepted into an empty queue, whatever its size.
pub const QUEUE_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

pub const TOO_SLOW: CloseReason = CloseReason {
    code: 1013,
    reason: "too slow: the outgoing queue is full",
};
/// A frame above the websocket layer's hard limit (see `ws`).
pub const TOO_BIG: CloseReason = CloseReason {
    code: 1009,
    reason: "message too big: frames are limited to 64 KiB",
};
pub const POLICY: CloseReason = CloseReason {
    code: 1008,
    reason: "three malformed messages in a row",
};

/// The hub's handle on one connection.
#[derive(Debug)]
pub struct ConnHandle {
    pub id: ConnId,
    queue: mpsc::Sender<Utf8Bytes>,
    /// Bytes in `queue`, shared with its [`Outgoing`] end.
    queued: Arc<AtomicUsize>,
    close: watch::Sender<Option<CloseReason>>,
    /// A moderator or admin is connected here (receives `alert.status`).
    moderator: AtomicBool,
    /// Its part in ad breaks.
    pub ads: super::ad_seat::AdSeat,
}

impl ConnHandle {
    /// A handle plus the receiving ends the connection's tasks own.
    pub fn new(
        id: ConnId,
    ) -> (
        Arc<ConnHandle>,
        Outgoing,
        watch::Receiver<Option<CloseReason>>,
    ) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let (close, close_rx) = watch::channel(None);
        let outgoing = Outgoing {
            rx,
            queued: queued.clone(),
        };
        let handle = Arc::new(ConnHandle {
            id,
            queue,
            queued,
            close,
            moderator: AtomicBool::new(false),
            ads: Default::default(),
        });
        (handle, outgoing, close_rx)
    }

    /// Queues a message; a full queue (by count or bytes) closes the
    /// connection. Returns whether the message was queued.
    pub fn push(&self, text: Utf8Bytes) -> bool {
        let len = text.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > QUEUE_BYTES {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.close(TOO_SLOW);
            return false;
        }
        match self.queue.try_send(text) {
            Ok(()) => true,
            Err(e) => {
                self.queued.fetch_sub(len, Ordering::Relaxed);
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.close(TOO_SLOW);
                }
                false
            }
        }
    }

    /// Bytes queued and not yet taken by the writer.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Asks the connection to close (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn is_moderator(&self) -> bool {
        self.moderator.load(Ordering::Relaxed)
    }

    pub fn set_moderator(&self, yes: bool) {
        self.moderator.store(yes, Ordering::Relaxed);
    }
}

/// The writer's end of a connection's queue; it gives the bytes back as
/// it takes each message.
#[derive(Debug)]
pub struct Outgoing {
    rx: mpsc::Receiver<Utf8Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Outgoing {
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        let text = self.rx.recv().await?;
        self.queued.fetch_sub(text.len(), Ordering::Relaxed);
        Some(text)
    }

    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let text = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(text.len(), Ordering::Relaxed);
        Some(text)
    }
}

pub type Snapshot = Arc<[Arc<ConnHandle>]>;

#[derive(Debug, Default)]
pub struct Members {
    inner: Mutex<MembersInner>,
    count: AtomicU64,
}

#[derive(Debug, Default)]
struct MembersInner {
    map: HashMap<ConnId, Arc<ConnHandle>>,
    snapshot: Option<Snapshot>,
}

impl Members {
    fn lock(&self) -> std::sync::MutexGuard<'_, MembersInner> {
        // Nothing panics while holding it (map edits only).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, conn: Arc<ConnHandle>) {
        let mut inner = self.lock();
        inner.map.insert(conn.id, conn);
        inner.snapshot = None;
        self.count.store(inner.map.len() as u64, Ordering::Relaxed);
    }

    /// Returns whether it was a member.
    pub fn remove(&self, id: ConnId) -> bool {
        let mut inner = self.lock();
        let was = inner.map.remove(&id).is_some();
        if was {
            inner.snapshot = None;
        }
        self.count.store(inner.map.len() as u64, Ordering::Relaxed);
        was
    }

    pub fn len(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current members, to iterate without a lock.
    pub fn snapshot(&self) -> Snapshot {
        let mut inner = self.lock();
        if let Some(s) = &inner.snapshot {
            return s.clone();
        }
        let s: Snapshot = inner.map.values().cloned().collect();
        inner.snapshot = Some(s.clone());
        s
    }

    /// Queues `text` to every member `wanted` accepts; returns the ids it
    /// was queued to.
    pub fn fan_out(&self, text: &Utf8Bytes, wanted: impl Fn(&ConnHandle) -> bool) -> Vec<ConnId> {
        let snapshot = self.snapshot();
        let mut delivered = Vec::with_capacity(snapshot.len());
        for conn in snapshot.iter() {
            if wanted(conn) && conn.push(text.clone()) {
                delivered.push(conn.id);
            }
        }
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_closes_that_connection_only() {
        let members = Members::default();
        let (slow, _slow_rx, slow_close) = ConnHandle::new(ConnId(1));
        let (fast, mut fast_rx, fast_close) = ConnHandle::new(ConnId(2));
        members.insert(slow);
        members.insert(fast);
        let text = Utf8Bytes::from_static("{}");
        for round in 0..QUEUE + 10 {
            let delivered = members.fan_out(&text, |_| true);
            // The fast one reads everything; the slow one never reads.
            while fast_rx.try_recv().is_some() {}
            let expected = if round < QUEUE { 2 } else { 1 };
            assert_eq!(delivered.len(), expected, "round {round}");
        }
        assert_eq!(*slow_close.borrow(), Some(TOO_SLOW));
        assert_eq!(*fast_close.borrow(), None);
    }

    #[test]
    fn snapshots_follow_membership_and_filters_apply() {
        let members = Members::default();
        let mut receivers = Vec::new();
        for n in 0..5 {
            let (conn, rx, _) = ConnHandle::new(ConnId(n));
            conn.set_moderator(n % 2 == 0);
            members.insert(conn);
            receivers.push(rx);
        }
        let before = members.snapshot();
        assert!(members.remove(ConnId(4)));
        assert!(!members.remove(ConnId(4)));
        assert_eq!(before.len(), 5, "an old snapshot is unaffected");
        assert_eq!(members.snapshot().len(), 4);
        assert_eq!(members.len(), 4);
        let mut to = members.fan_out(&Utf8Bytes::from_static("x"), |c| c.is_moderator());
        to.sort();
        assert_eq!(to, vec![ConnId(0), ConnId(2)]);
    }

    /// Hardening defect 5: a client that never reads is closed once its
    /// queue holds `QUEUE_BYTES`, long before `QUEUE` large messages; one
    /// that reads gets every byte back and stays open.
    #[test]
    fn a_queue_full_of_bytes_closes_that_connection() {
        let big = Utf8Bytes::from("x".repeat(60 * 1024));
        let (slow, _slow_rx, slow_close) = ConnHandle::new(ConnId(1));
        let accepted = (0..QUEUE).take_while(|_| slow.push(big.clone())).count();
        assert_eq!(accepted, QUEUE_BYTES / big.len(), "messages queued");
        assert!(slow.queued_bytes() <= QUEUE_BYTES);
        assert_eq!(*slow_close.borrow(), Some(TOO_SLOW));

        let (fast, mut fast_rx, fast_close) = ConnHandle::new(ConnId(2));
        for _ in 0..100 {
            assert!(fast.push(big.clone()));
            assert!(fast_rx.try_recv().is_some());
        }
        assert_eq!(fast.queued_bytes(), 0);
        assert_eq!(*fast_close.borrow(), None);
        // One message larger than the whole bound still goes to an empty queue.
        assert!(fast.push(Utf8Bytes::from("y".repeat(QUEUE_BYTES + 1))));
    }

    #[test]
    fn the_first_close_reason_wins() {
        let (conn, _rx, close) = ConnHandle::new(ConnId(1));
        conn.close(POLICY);
        conn.close(TOO_SLOW);
        assert_eq!(*close.borrow(), Some(POLICY));
    }
}
