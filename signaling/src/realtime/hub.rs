//! [`Hub`]: every realtime connection of this node, the per-broadcast
//! [`Room`]s, and alert delivery accounting. The websocket handlers and the
//! REST API (comments, likes, alerts, broadcast edits) push through it.
//!
//! Invariants: a message is serialized once per push, whatever the number
//! of recipients; pushes only `try_send` to bounded queues (a full queue
//! closes that client, see [`members`](super::members)), so no push ever
//! waits for a client; timers (reaction flushes, alert status) exist only
//! while something is pending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

use super::alerts::{in_scope, AckError, AlertTracker, SCOPE_ALL};
use super::members::{CloseReason, ConnHandle, ConnId, Members, Outgoing, Snapshot};
use super::protocol::{BroadcastView, ServerMessage};
use super::room::Room;
use crate::store::{Alert, BroadcastMeta, Comment, LikeCounts};

#[derive(Debug, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    next_conn: AtomicU64,
    all: Members,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    alerts: Mutex<AlertTracker>,
    ticker_started: AtomicBool,
    /// Websockets admitted (upgrading or connected): see [`WsSlot`].
    websockets: AtomicUsize,
}

/// One admitted websocket's place under `max_websockets`, taken before
/// the upgrade (so a burst of upgrades cannot overshoot) and given back
/// when the connection ends or the upgrade fails.
#[derive(Debug)]
pub struct WsSlot {
    hub: Arc<HubInner>,
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        self.hub.websockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The receiving ends a new connection's tasks own.
pub struct Registration {
    pub conn: Arc<ConnHandle>,
    pub outgoing: Outgoing,
    pub close: watch::Receiver<Option<CloseReason>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    fn alerts(&self) -> MutexGuard<'_, AlertTracker> {
        self.inner.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection (it receives scope-`all` alerts at once).
    pub fn connect(&self) -> Registration {
        let id = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed) + 1);
        let (conn, outgoing, close) = ConnHandle::new(id);
        self.inner.all.insert(conn.clone());
        Registration {
            conn,
            outgoing,
            close,
        }
    }

    pub fn disconnect(&self, id: ConnId) {
        self.inner.all.remove(id);
    }

    /// A place for one more websocket, if fewer than `max` hold one.
    pub fn admit_websocket(&self, max: usize) -> Option<WsSlot> {
        let admitted =
            self.inner
                .websockets
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                });
        admitted.ok().map(|_| WsSlot {
            hub: self.inner.clone(),
        })
    }

    /// How many connections are open.
    pub fn connections(&self) -> u64 {
        self.inner.all.len()
    }

    /// The room of a broadcast, created on first use. Callers only ask for
    /// configured streams, so the number of rooms is bounded.
    pub fn room(&self, name: &str) -> Arc<Room> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Room::new(name)))
            .clone()
    }

    fn existing_room(&self, name: &str) -> Option<Arc<Room>> {
        let rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.get(name).cloned()
    }

    /// Rooms with at least one member.
    pub fn busy_rooms(&self) -> Vec<Arc<Room>> {
        let rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .values()
            .filter(|r| r.member_count() > 0)
            .cloned()
            .collect()
    }

    /// True the first time only: the caller starts the periodic ticker.
    pub fn claim_ticker(&self) -> bool {
        !self.inner.ticker_started.swap(true, Ordering::AcqRel)
    }

    /// Sends an alert to every connection in its scope; returns how many
    /// connections it was queued to.
    pub fn publish_alert(&self, alert: &Alert) -> u64 {
        self.alerts().track(alert.id, alert.expires_ms, now_ms());
        let text = ServerMessage::Alert {
            alert: alert.clone(),
        }
        .to_text();
        let targets = if alert.scope == SCOPE_ALL {
            self.inner.all.snapshot()
        } else {
            match self.existing_room(&alert.scope) {
                Some(room) => room.snapshot(),
                None => Snapshot::from(Vec::new()),
            }
        };
        // Recorded first: a recipient may acknowledge before the loop ends.
        self.alerts()
            .delivered(alert.id, targets.iter().map(|c| c.id.0));
        let failed: Vec<u64> = targets
            .iter()
            .filter(|c| !c.push(text.clone()))
            .map(|c| c.id.0)
            .collect();
        let delivered = self.alerts().undeliver(alert.id, failed);
        self.send_status(alert.id, delivered, 0);
        delivered
    }

    /// Records that `conn` was given these alerts in its `joined` message.
    pub fn delivered_on_join(&self, alerts: &[Alert], conn: ConnId) {
        let now = now_ms();
        let mut tracker = self.alerts();
        for alert in alerts {
            tracker.track(alert.id, alert.expires_ms, now);
            tracker.delivered(alert.id, [conn.0]);
        }
    }

    /// The active alerts in scope for a connection joined to `stream`.
    pub fn alerts_in_scope(alerts: Vec<Alert>, stream: &str) -> Vec<Alert> {
        alerts
            .into_iter()
            .filter(|a| in_scope(&a.scope, Some(stream)))
            .collect()
    }

    /// (delivered, acked) of an alert, while its counts are kept.
    pub fn alert_status(&self, id: i64) -> Option<(u64, u64)> {
        self.alerts().status(id)
    }

    /// Counts an acknowledgement; moderators see the new counts at most
    /// every 250 ms.
    pub fn ack_alert(&self, id: i64, conn: ConnId) -> Result<(), AckError> {
        let flush_at = self.alerts().ack(id, conn.0, Instant::now())?;
        if let Some(at) = flush_at {
            let hub = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let counts = hub.alerts().status_flushed(id, Instant::now());
                if let Some((delivered, acked)) = counts {
                    hub.send_status(id, delivered, acked);
                }
            });
        }
        Ok(())
    }

    fn send_status(&self, id: i64, delivered: u64, acked: u64) {
        let text = ServerMessage::AlertStatus {
            id,
            delivered,
            acked,
        }
        .to_text();
        self.inner.all.fan_out(&text, |c| c.is_moderator());
    }

    /// Counts one reaction in a room, scheduling its flush if needed.
    pub fn react(&self, room: &Arc<Room>, emoji: &str) {
        if let Some(at) = room.react(emoji, Instant::now()) {
            let room = room.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                room.flush_reactions(Instant::now());
            });
        }
    }

    pub fn likes_changed(&self, broadcast: &str, counts: LikeCounts) {
        if let Some(room) = self.existing_room(broadcast) {
            room.send(&ServerMessage::Likes {
                likes: counts.likes,
                dislikes: counts.dislikes,
            });
        }
    }

    pub fn comment_added(&self, broadcast: &str, comment: &Comment) {
        if let Some(room) = self.existing_room(broadcast) {
            room.send(&ServerMessage::Comment {
                comment: comment.clone(),
            });
        }
    }

    pub fn comment_deleted(&self, broadcast: &str, id: i64) {
        if let Some(room) = self.existing_room(broadcast) {
            room.send(&ServerMessage::CommentDeleted { id });
        }
    }

    /// Pushes edited metadata (title, disclaimer, …) to the joined clients.
    pub fn broadcast_changed(&self, meta: &BroadcastMeta) {
        if let Some(room) = self.existing_room(&meta.id) {
            let (live, viewers) = room.media();
            room.send(&ServerMessage::Broadcast {
                broadcast: BroadcastView {
                    meta: meta.clone(),
                    live,
                    viewers,
                },
            });
        }
    }
}

impl Clone for Hub {
    fn clone(&self) -> Self {
        Hub {
            inner: self.inner.clone(),
        }
    }
}
