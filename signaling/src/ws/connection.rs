//! [`Connection`]: one websocket client's state (identity, joined room,
//! viewer sessions it created, attached publisher) and the handling of each
//! client message. Every message is checked for identity, membership and
//! role before it acts; a refusal is an `error` message naming the code and
//! the message type, and the connection stays up. The media sessions'
//! messages are handled in [`sessions`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relaycast_sfu::{BroadcastName, SessionId};

use crate::guard::Credential;
use crate::identity::Identity;
use crate::realtime::members::{ConnHandle, POLICY};
use crate::realtime::moderation::Refusal;
use crate::realtime::protocol::{
    BroadcastView, ChatLine, ClientMessage, ErrorCode, LayerState, LikesView, ServerMessage,
    UserView,
};
use crate::realtime::rate::{TokenBucket, JOINS, LIKES, REACTIONS};
use crate::realtime::room::Room;
use crate::realtime::validate::{self, MalformedStreak, Parsed, MAX_ALERT_CHARS};
use crate::realtime::{alerts, reactions, Hub};
use crate::store::{BroadcastMeta, ChatLogEntry, LoggedLine, NewAlert};

mod sessions;

use super::persist;
use crate::{ApiError, AppState};

/// A refusal of one client message.
struct Refused(ErrorCode, String);

type Handled = Result<(), Refused>;

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refused {
    Refused(code, message.into())
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        let code = match e {
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Unauthorized | ApiError::WrongStreamKey => ErrorCode::Unauthorized,
            ApiError::Unavailable | ApiError::Internal(_) => ErrorCode::Unavailable,
            _ => ErrorCode::Invalid,
        };
        if let ApiError::Internal(detail) = &e {
            tracing::error!(%detail, "internal error handling a websocket message");
        }
        Refused(code, e.to_string())
    }
}

fn store_failed(e: impl std::fmt::Display) -> Refused {
    tracing::error!(error = %e, "store error handling a websocket message");
    refuse(
        ErrorCode::Unavailable,
        "the database is unavailable; retry shortly",
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// At most this many viewer sessions per connection (renegotiation replaces).
const MAX_SESSIONS: usize = 4;

pub struct Connection {
    state: AppState,
    conn: Arc<ConnHandle>,
    /// The peer's address, for the credential throttle.
    client: IpAddr,
    identity: Option<Identity>,
    room: Option<Arc<Room>>,
    /// The account owning the joined broadcast, when it is a channel: its
    /// owner moderates that room's chat like a moderator.
    room_owner: Option<String>,
    /// Viewer sessions this connection created, and their broadcast.
    sessions: HashMap<SessionId, BroadcastName>,
    publisher: Option<SessionId>,
    last_layers: Option<Vec<LayerState>>,
    streak: MalformedStreak,
    reactions: TokenBucket,
    joins: TokenBucket,
    likes: TokenBucket,
    /// `finish` ran; otherwise dropping the connection (a handler that
    /// panicked, a cancelled task) still cleans up.
    finished: bool,
}

impl Connection {
    pub fn new(state: AppState, conn: Arc<ConnHandle>, client: IpAddr) -> Connection {
        Connection {
            state,
            conn,
            client,
            identity: None,
            room: None,
            room_owner: None,
            sessions: HashMap::new(),
            publisher: None,
            last_layers: None,
            streak: MalformedStreak::default(),
            reactions: TokenBucket::new(REACTIONS, Instant::now()),
            joins: TokenBucket::new(JOINS, Instant::now()),
            likes: TokenBucket::new(LIKES, Instant::now()),
            finished: false,
        }
    }

    fn hub(&self) -> &Hub {
        self.state.hub()
    }

    /// Queues a reply to this client (a full queue closes it).
    pub fn reply(&self, message: &ServerMessage) {
        self.conn.push(message.to_text());
    }

    fn error(&self, code: ErrorCode, message: String, reference: Option<String>) {
        self.reply(&ServerMessage::Error {
            code,
            message,
            reference,
        });
    }

    pub fn binary(&self) {
        self.error(ErrorCode::BadMessage, "messages are JSON text".into(), None);
    }

    pub fn is_publisher(&self) -> bool {
        self.publisher.is_some()
    }

    pub async fn handle_text(&mut self, text: &str) {
        match validate::parse(text, &mut self.streak) {
            Parsed::Message(message) => {
                let kind = message.kind();
                if let Err(Refused(code, text)) = self.handle(message).await {
                    self.error(code, text, Some(kind.to_owned()));
                }
            }
            Parsed::Rejected(r) => self.error(r.code, r.message, r.reference),
            Parsed::Close(r) => {
                self.error(r.code, r.message, r.reference);
                self.conn.close(POLICY);
            }
        }
    }

    async fn handle(&mut self, message: ClientMessage) -> Handled {
        match message {
            ClientMessage::Auth { token } => {
                self.authenticate(&token);
                self.seat_viewer().await;
                Ok(())
            }
            ClientMessage::AdDone { break_id } => {
                crate::ad_breaks::done(&self.state, &self.conn, break_id)
                    .await
                    .map_err(Refused::from)
            }
            ClientMessage::Join { stream } => self.join(stream).await,
            ClientMessage::Leave => self.leave(),
            ClientMessage::ViewerOffer {
                stream,
                sdp,
                layer,
                session,
            } => self.viewer_offer(stream, sdp, layer, session).await,
            ClientMessage::ViewerCandidate { session, .. } => {
                // ICE-lite: the server learns addresses from connectivity
                // checks, so a candidate needs no action beyond the check.
                self.own_session(&session).map(|_| ())
            }
            ClientMessage::ViewerLeave { session } => self.viewer_leave(&session).await,
            ClientMessage::ViewerLayer {
                stream,
                session,
                layer,
            } => self.viewer_layer(&stream, &session, layer).await,
            ClientMessage::ViewerView {
                stream,
                session,
                width,
                height,
                visible,
            } => {
                let view = relaycast_sfu::Viewport {
                    width,
                    height,
                    visible,
                };
                self.viewer_view(&stream, &session, view).await
            }
            ClientMessage::PublisherAttach {
                stream,
                session,
                token,
            } => self.attach(&stream, &session, &token).await,
            ClientMessage::ChatSend { text, nonce } => self.chat(&text, nonce),
            ClientMessage::ChatDelete { id } => {
                let room = self.moderated_room("delete messages")?;
                if room.delete_chat(id) {
                    self.state.chat_log().offer(ChatLogEntry::Deleted {
                        broadcast: room.name.clone(),
                        room_ms: room.opened_ms,
                        line_id: i64::try_from(id).unwrap_or(i64::MAX),
                    });
                    Ok(())
                } else {
                    Err(refuse(ErrorCode::NotFound, format!("no chat message {id}")))
                }
            }
            ClientMessage::ChatMute { user_id, secs } => {
                let room = self.moderated_room("mute users")?;
                room.mute(&user_id, secs, Instant::now());
                let until =
                    now_ms() + i64::from(secs.min(crate::realtime::moderation::MAX_SECS)) * 1000;
                room.send(&ServerMessage::ChatMuted { user_id, until });
                Ok(())
            }
            ClientMessage::ChatSlow { secs } => {
                let room = self.moderated_room("set slow mode")?;
                let secs = room.set_slow(secs);
                room.send(&ServerMessage::ChatSlow { secs });
                Ok(())
            }
            ClientMessage::React { emoji } => self.react(&emoji),
            ClientMessage::Like { liked } => self.like(liked).await,
            ClientMessage::AlertSend {
                severity,
                text,
                scope,
                ttl,
            } => {
                let sender = self.moderator("send alerts")?.clone();
                self.send_alert(NewAlert {
                    severity,
                    text,
                    scope,
                    ttl_secs: ttl,
                    sender,
                })
                .await
            }
            ClientMessage::AlertAck { id } => {
                self.hub().ack_alert(id, self.conn.id).map_err(|e| match e {
                    alerts::AckError::UnknownAlert => {
                        refuse(ErrorCode::NotFound, format!("no active alert {id}"))
                    }
                    alerts::AckError::NotDelivered => refuse(
                        ErrorCode::NotFound,
                        format!("alert {id} was not delivered to this connection"),
                    ),
                })
            }
        }
    }

    /// `?token=` or an `auth` message: replies `identity`, or `unauthorized`.
    /// Wrong tokens are throttled per client like wrong bearer tokens over
    /// HTTP (`crate::guard`).
    pub fn authenticate(&mut self, token: &str) {
        let guards = self.state.guards();
        if let Err(e) = guards.check(Credential::Key, self.client, None) {
            self.error(ErrorCode::RateLimited, e.to_string(), Some("auth".into()));
            return;
        }
        let identity = self.state.identify(token);
        if identity.is_none() {
            self.state
                .guards()
                .failed(Credential::Key, self.client, None);
        }
        match identity {
            Some(identity) => {
                self.conn.set_moderator(identity.role.can_moderate());
                self.reply(&ServerMessage::Identity {
                    identity: UserView::from(&identity),
                });
                self.identity = Some(identity);
            }
            None => self.error(
                ErrorCode::Unauthorized,
                "the token is invalid or expired".into(),
                Some("auth".into()),
            ),
        }
    }

    /// Tells the ad seat who watches here and whether their account is
    /// ad-free (a database read; on failure ads are shown, the default).
    pub async fn seat_viewer(&self) {
        let Some(who) = &self.identity else {
            return;
        };
        let ad_free = match self
            .state
            .store()
            .entitlement(&who.id, crate::ads::AD_FREE, now_ms())
            .await
        {
            Ok(until) => until.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "reading an entitlement");
                false
            }
        };
        crate::ad_breaks::viewer_changed(&self.state, &self.conn, &who.id, ad_free);
    }

    fn identity(&self) -> Result<&Identity, Refused> {
        self.identity.as_ref().ok_or_else(|| {
            refuse(
                ErrorCode::Unauthorized,
                "this needs an identity: send {\"type\":\"auth\"} or connect with ?token=",
            )
        })
    }

    fn moderator(&self, what: &str) -> Result<&Identity, Refused> {
        let who = self.identity()?;
        if who.role.can_moderate() {
            Ok(who)
        } else {
            Err(refuse(
                ErrorCode::Forbidden,
                format!("only moderators and admins can {what}"),
            ))
        }
    }

    fn joined(&self) -> Result<&Arc<Room>, Refused> {
        self.room.as_ref().ok_or_else(|| {
            refuse(
                ErrorCode::NotJoined,
                "join a broadcast first: {\"type\":\"join\",\"stream\":…}",
            )
        })
    }

    fn moderated_room(&self, what: &str) -> Result<Arc<Room>, Refused> {
        let who = self.identity()?;
        let owner = self.room.is_some() && self.room_owner.as_deref() == Some(who.id.as_str());
        if !owner {
            self.moderator(what)?;
        }
        self.joined().cloned()
    }

    async fn join(&mut self, stream: String) -> Handled {
        if !self
            .state
            .streams()
            .exists(&stream)
            .await
            .map_err(ApiError::from)?
        {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("no stream named {stream:?}"),
            ));
        }
        self.joins
            .try_take(Instant::now())
            .map_err(|left| too_many("joins", left))?;
        let state = &self.state;
        let meta = persist::broadcast_meta(state, &stream)
            .await
            .map_err(store_failed)?
            .unwrap_or_else(|| untitled(&stream));
        let counts = persist::like_counts(state, &stream)
            .await
            .map_err(store_failed)?;
        let mine = match &self.identity {
            Some(who) => persist::my_like(state, &stream, who)
                .await
                .map_err(store_failed)?,
            None => None,
        };
        let alerts = Hub::alerts_in_scope(
            persist::active_alerts(state, now_ms())
                .await
                .map_err(store_failed)?,
            &stream,
        );
        let owner = state.streams().owner(&stream).await.map_err(store_failed)?;
        let (live, viewers) = media_state(&self.state, &stream);
        self.leave_room();
        let room = self.hub().room(&stream);
        room.init_media(live, viewers);
        let delivered = alerts.clone();
        room.join(self.conn.clone(), |joined| ServerMessage::Joined {
            stream,
            broadcast: BroadcastView {
                meta,
                live,
                viewers,
            },
            chat: joined.chat,
            likes: LikesView {
                likes: counts.likes,
                dislikes: counts.dislikes,
                mine,
            },
            alerts,
            slow_mode: joined.slow_mode,
        });
        self.hub().delivered_on_join(&delivered, self.conn.id);
        crate::ad_breaks::joined(&self.state, &self.conn, &room.name);
        self.room = Some(room);
        self.room_owner = owner;
        Ok(())
    }

    fn leave_room(&mut self) -> Option<Arc<Room>> {
        let room = self.room.take()?;
        self.room_owner = None;
        room.leave(self.conn.id);
        Some(room)
    }

    fn leave(&mut self) -> Handled {
        let room = self
            .leave_room()
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "not joined to a broadcast"))?;
        self.reply(&ServerMessage::Left {
            stream: room.name.clone(),
        });
        Ok(())
    }

    fn chat(&mut self, text: &str, nonce: Option<String>) -> Handled {
        let who = self.identity()?;
        let room = self.joined()?;
        let text = validate::chat_text(text).map_err(|m| refuse(ErrorCode::Invalid, m))?;
        validate::nonce(&nonce).map_err(|m| refuse(ErrorCode::Invalid, m))?;
        let user = UserView::from(who);
        let ts = now_ms();
        let sent = room
            .chat(
                |id| ChatLine {
                    id,
                    user,
                    text: text.to_owned(),
                    ts,
                },
                &who.id,
                who.role.can_moderate(),
                nonce,
                Instant::now(),
            )
            .map_err(|refusal| match refusal {
                Refusal::Muted(left) => refuse(
                    ErrorCode::Muted,
                    format!("you are muted for {} more seconds", secs_ceil(left)),
                ),
                Refusal::SlowMode(left) => refuse(
                    ErrorCode::SlowMode,
                    format!("slow mode: wait {} seconds", secs_ceil(left)),
                ),
                Refusal::RateLimited(left) => refuse(
                    ErrorCode::RateLimited,
                    format!("too many messages: retry in {} ms", left.as_millis()),
                ),
            })?;
        self.state.chat_log().offer(ChatLogEntry::Sent(LoggedLine {
            seq: 0,
            broadcast: room.name.clone(),
            room_ms: room.opened_ms,
            line_id: i64::try_from(sent.id).unwrap_or(i64::MAX),
            sent_ms: sent.ts,
            user_id: sent.user.id,
            user_name: sent.user.name,
            user_role: sent.user.role.as_str().to_owned(),
            text: sent.text,
        }));
        Ok(())
    }

    fn react(&mut self, emoji: &str) -> Handled {
        self.identity()?;
        let room = self.joined()?.clone();
        let emoji = reactions::emoji(emoji).ok_or_else(|| {
            refuse(
                ErrorCode::Invalid,
                format!("emoji must be one of {}", reactions::EMOJI.join(" ")),
            )
        })?;
        self.reactions
            .try_take(Instant::now())
            .map_err(|left| too_many("reactions", left))?;
        self.hub().react(&room, emoji);
        Ok(())
    }

    async fn like(&mut self, liked: Option<bool>) -> Handled {
        self.identity()?;
        self.joined()?;
        self.likes
            .try_take(Instant::now())
            .map_err(|left| too_many("likes", left))?;
        let who = self.identity()?;
        let room = self.joined()?;
        let counts = persist::set_like(&self.state, &room.name, who, liked)
            .await
            .map_err(store_failed)?;
        self.hub().likes_changed(&room.name, counts);
        self.reply(&ServerMessage::LikeOk { mine: liked });
        Ok(())
    }

    async fn send_alert(&mut self, new: NewAlert) -> Handled {
        new.validate().map_err(|m| refuse(ErrorCode::Invalid, m))?;
        if new.text.chars().count() > MAX_ALERT_CHARS {
            return Err(refuse(ErrorCode::Invalid, "alert text is too long"));
        }
        if new.scope != alerts::SCOPE_ALL
            && !self
                .state
                .streams()
                .exists(&new.scope)
                .await
                .map_err(ApiError::from)?
        {
            return Err(refuse(
                ErrorCode::Invalid,
                format!(
                    "scope must be \"all\" or a stream name, not {:?}",
                    new.scope
                ),
            ));
        }
        let alert = persist::insert_alert(&self.state, &new)
            .await
            .map_err(store_failed)?;
        tracing::info!(id = alert.id, scope = %alert.scope, sender = %new.sender.id, "alert sent");
        let delivered = self.hub().publish_alert(&alert);
        self.reply(&ServerMessage::AlertSent { alert, delivered });
        Ok(())
    }

    /// The socket is closing: leave the room, end this connection's viewer
    /// sessions, unregister from the hub.
    pub async fn finish(mut self) {
        self.leave_room();
        let sessions: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in sessions {
            self.end_session(id).await;
        }
        self.hub().disconnect(self.conn.id);
        self.finished = true;
    }
}

impl Drop for Connection {
    /// The connection ended without `finish` (its task panicked or was
    /// cancelled): nothing of it may stay behind — no room membership, no
    /// hub registration (alerts would count it as delivered), no viewer
    /// session.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.leave_room();
        self.hub().disconnect(self.conn.id);
        let sessions: Vec<(SessionId, BroadcastName)> = self.sessions.drain().collect();
        if sessions.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let media = self.state.media_arc();
        runtime.spawn(async move {
            for (id, name) in sessions {
                let _ = media.end(id, name).await;
            }
        });
    }
}

fn too_many(what: &str, left: Duration) -> Refused {
    refuse(
        ErrorCode::RateLimited,
        format!("too many {what}: retry in {} ms", left.as_millis()),
    )
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// The metadata of a configured stream nobody has described yet.
pub fn untitled(stream: &str) -> BroadcastMeta {
    BroadcastMeta {
        id: stream.to_owned(),
        title: stream.to_owned(),
        description: String::new(),
        tags: Vec::new(),
        disclaimer: None,
    }
}

/// (live, viewers) of a broadcast according to the media plane.
pub fn media_state(state: &AppState, stream: &str) -> (bool, u64) {
    state
        .media()
        .broadcasts()
        .iter()
        .find(|b| b.name.as_str() == stream)
        .map(|b| (b.live, b.viewers as u64))
        .unwrap_or((false, 0))
}
