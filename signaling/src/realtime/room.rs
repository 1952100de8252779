//! [`Room`]: the realtime side of one broadcast — who has joined, its chat
//! (history, gate), its reaction aggregator, and the last live state and
//! viewer count pushed to its members.
//!
//! Invariant: every room message (chat, deletes, mutes, reactions, likes,
//! pushes) goes through [`Room::send`], which holds the room's `order` lock from the moment a
//! chat id is assigned until the message is queued to every member, so all
//! members receive room messages in one and the same order. The lock covers
//! only `try_send`s (no awaiting), so it is held for microseconds per
//! thousand members. Alerts alone go straight to the members' queues: they
//! are not part of the room's conversation and need no ordering with it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::history::ChatHistory;
use super::members::{ConnHandle, ConnId, Members, Snapshot};
use super::moderation::{ChatGate, Refusal};
use super::protocol::{ChatLine, ServerMessage};
use super::reactions::ReactionAggregator;

#[derive(Debug)]
pub struct Room {
    pub name: String,
    /// When this room was opened (Unix ms): its chat ids restart with it.
    pub opened_ms: i64,
    members: Members,
    order: Mutex<()>,
    state: Mutex<RoomState>,
}

#[derive(Debug, Default)]
struct RoomState {
    history: ChatHistory<ChatLine>,
    gate: ChatGate,
    reactions: ReactionAggregator,
    /// (live, viewers) as last pushed.
    media: Option<(bool, u64)>,
}

/// What joining returns: the room's chat state at the moment of joining.
pub struct JoinState {
    pub chat: Vec<ChatLine>,
    pub slow_mode: u32,
}

impl Room {
    pub fn new(name: &str) -> Room {
        Room {
            name: name.to_owned(),
            opened_ms: crate::store::now_ms(),
            members: Members::default(),
            order: Mutex::new(()),
            state: Mutex::new(RoomState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn order(&self) -> MutexGuard<'_, ()> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a member and queues it the message `welcome` builds from the
    /// room's chat state. Both happen under `order`, so the history it
    /// gets and the room messages queued after it neither overlap nor
    /// leave a gap.
    pub fn join(&self, conn: Arc<ConnHandle>, welcome: impl FnOnce(JoinState) -> ServerMessage) {
        let _order = self.order();
        let joined = {
            let state = self.state();
            JoinState {
                chat: state.history.lines(),
                slow_mode: state.gate.slow_secs(),
            }
        };
        conn.push(welcome(joined).to_text());
        self.members.insert(conn);
    }

    pub fn leave(&self, id: ConnId) {
        self.members.remove(id);
    }

    pub fn member_count(&self) -> u64 {
        self.members.len()
    }

    /// Queues a message to every member; returns the connections reached.
    pub fn send(&self, message: &ServerMessage) -> Vec<ConnId> {
        let text = message.to_text();
        let _order = self.order();
        self.members.fan_out(&text, |_| true)
    }

    /// The current members (for alerts, which need no room ordering).
    pub fn snapshot(&self) -> Snapshot {
        self.members.snapshot()
    }

    /// Admits, records and sends one chat line; the line as sent.
    pub fn chat(
        &self,
        line: impl FnOnce(u64) -> ChatLine,
        user: &str,
        moderator: bool,
        nonce: Option<String>,
        now: Instant,
    ) -> Result<ChatLine, Refusal> {
        let _order = self.order();
        let (text, line) = {
            let mut state = self.state();
            state.gate.admit(user, moderator, now)?;
            let (_, line) = state.history.push(line);
            let line = line.clone();
            let text = ServerMessage::Chat {
                line: line.clone(),
                nonce,
            }
            .to_text();
            (text, line)
        };
        self.members.fan_out(&text, |_| true);
        Ok(line)
    }

    /// Removes a line from history and from every client. False when the
    /// id was never assigned.
    pub fn delete_chat(&self, id: u64) -> bool {
        if !{
            let mut state = self.state();
            state.history.delete(id);
            state.history.was_assigned(id)
        } {
            return false;
        }
        self.send(&ServerMessage::ChatDeleted { id });
        true
    }

    /// Mutes a user; returns the end as an `Instant`.
    pub fn mute(&self, user: &str, secs: u32, now: Instant) -> Instant {
        self.state().gate.mute(user, secs, now)
    }

    /// Sets slow mode; returns the interval in force.
    pub fn set_slow(&self, secs: u32) -> u32 {
        let mut state = self.state();
        state.gate.set_slow(secs);
        state.gate.slow_secs()
    }

    /// Counts a reaction; returns when to flush if a flush must be scheduled.
    pub fn react(&self, emoji: &str, now: Instant) -> Option<Instant> {
        self.state().reactions.add(emoji, now)
    }

    /// Sends the reactions counted since the last flush (one message).
    pub fn flush_reactions(&self, now: Instant) {
        let counts: Option<BTreeMap<&'static str, u64>> = self.state().reactions.flush(now);
        if let Some(counts) = counts {
            self.send(&ServerMessage::Reactions { counts });
        }
    }

    /// Records the media state; returns the previous one when it changed.
    pub fn media_changed(&self, live: bool, viewers: u64) -> Option<Option<(bool, u64)>> {
        let mut state = self.state();
        let previous = state.media;
        (previous != Some((live, viewers))).then(|| {
            state.media = Some((live, viewers));
            previous
        })
    }

    /// Records the media state seen at a join when none was recorded yet,
    /// so the next change is pushed even if it happens before the first
    /// tick.
    pub fn init_media(&self, live: bool, viewers: u64) {
        self.state().media.get_or_insert((live, viewers));
    }

    /// (live, viewers) as last recorded.
    pub fn media(&self) -> (bool, u64) {
        self.state().media.unwrap_or((false, 0))
    }
}
