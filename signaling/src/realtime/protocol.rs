//! The `/ws` protocol, version 1: every message a client may send
//! ([`ClientMessage`]) and every message the server sends
//! ([`ServerMessage`]), as JSON objects tagged by `"type"`. Each is
//! documented with an example in `docs/protocol.md`; the tests below check
//! those examples.
//!
//! Client messages refuse unknown fields, so a typo is an error rather than
//! a silently ignored option.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, Role};
use crate::store::{Alert, BroadcastMeta, Comment, Severity};

pub const PROTOCOL_VERSION: u32 = 1;

/// Every `type` a client may send (for telling `unknown_type` from a
/// malformed known message).
pub const CLIENT_TYPES: &[&str] = &[
    "auth",
    "join",
    "leave",
    "viewer.offer",
    "viewer.candidate",
    "viewer.leave",
    "viewer.layer",
    "viewer.view",
    "publisher.attach",
    "chat.send",
    "chat.delete",
    "chat.mute",
    "chat.slow",
    "react",
    "like",
    "alert.send",
    "alert.ack",
    "ad.done",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientMessage {
    #[serde(rename = "auth")]
    Auth { token: String },
    #[serde(rename = "join")]
    Join { stream: String },
    #[serde(rename = "leave")]
    Leave,
    /// SDP offer for a viewer session; `session` names a session of this
    /// connection to replace (renegotiation).
    #[serde(rename = "viewer.offer")]
    ViewerOffer {
        stream: String,
        sdp: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// A trickled ICE candidate (any JSON: `RTCIceCandidateInit`, a string,
    /// or null for end-of-candidates).
    #[serde(rename = "viewer.candidate")]
    ViewerCandidate {
        session: String,
        #[serde(default)]
        candidate: serde_json::Value,
    },
    #[serde(rename = "viewer.leave")]
    ViewerLeave { session: String },
    #[serde(rename = "viewer.layer")]
    ViewerLayer {
        stream: String,
        session: String,
        layer: String,
    },
    /// What the viewer's player shows: the rendered picture in device
    /// pixels and whether the page is visible. No answer unless refused.
    #[serde(rename = "viewer.view")]
    ViewerView {
        stream: String,
        session: String,
        width: u32,
        height: u32,
        visible: bool,
    },
    #[serde(rename = "publisher.attach")]
    PublisherAttach {
        stream: String,
        session: String,
        token: String,
    },
    #[serde(rename = "chat.send")]
    ChatSend {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    #[serde(rename = "chat.delete")]
    ChatDelete { id: u64 },
    #[serde(rename = "chat.mute")]
    ChatMute { user_id: String, secs: u32 },
    #[serde(rename = "chat.slow")]
    ChatSlow { secs: u32 },
    #[serde(rename = "react")]
    React { emoji: String },
    /// `liked: null` (or absent) withdraws.
    #[serde(rename = "like")]
    Like {
        #[serde(default)]
        liked: Option<bool>,
    },
    #[serde(rename = "alert.send")]
    AlertSend {
        severity: Severity,
        text: String,
        scope: String,
        ttl: u32,
    },
    #[serde(rename = "alert.ack")]
    AlertAck { id: i64 },
    /// The player finished the pod of `break_id` (every ad completed,
    /// skipped or failed): its media resume now instead of at the break's
    /// end.
    #[serde(rename = "ad.done")]
    AdDone { break_id: i64 },
}

impl ClientMessage {
    /// The `type` tag, for `ref` in errors.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Auth { .. } => "auth",
            ClientMessage::Join { .. } => "join",
            ClientMessage::Leave => "leave",
            ClientMessage::ViewerOffer { .. } => "viewer.offer",
            ClientMessage::ViewerCandidate { .. } => "viewer.candidate",
            ClientMessage::ViewerLeave { .. } => "viewer.leave",
            ClientMessage::ViewerLayer { .. } => "viewer.layer",
            ClientMessage::ViewerView { .. } => "viewer.view",
            ClientMessage::PublisherAttach { .. } => "publisher.attach",
            ClientMessage::ChatSend { .. } => "chat.send",
            ClientMessage::ChatDelete { .. } => "chat.delete",
            ClientMessage::ChatMute { .. } => "chat.mute",
            ClientMessage::ChatSlow { .. } => "chat.slow",
            ClientMessage::React { .. } => "react",
            ClientMessage::Like { .. } => "like",
            ClientMessage::AlertSend { .. } => "alert.send",
            ClientMessage::AlertAck { .. } => "alert.ack",
            ClientMessage::AdDone { .. } => "ad.done",
        }
    }
}

/// Who said something, as other clients see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub role: Role,
}

impl From<&Identity> for UserView {
    fn from(who: &Identity) -> Self {
        UserView {
            id: who.id.clone(),
            name: who.name.clone(),
            role: who.role,
        }
    }
}

/// One chat line (in `chat` messages and the `joined` history).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatLine {
    pub id: u64,
    pub user: UserView,
    pub text: String,
    /// Unix milliseconds.
    pub ts: i64,
}

/// A broadcast as `joined` and `broadcast` messages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastView {
    #[serde(flatten)]
    pub meta: BroadcastMeta,
    pub live: bool,
    pub viewers: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LikesView {
    pub likes: i64,
    pub dislikes: i64,
    pub mine: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerState {
    pub rid: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    UnknownType,
    TooLarge,
    Unauthorized,
    Forbidden,
    RateLimited,
    SlowMode,
    Muted,
    NotFound,
    NotJoined,
    Invalid,
    /// The media plane or the database could not serve the request now.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    #[serde(rename = "hello")]
    Hello { version: u32 },
    #[serde(rename = "identity")]
    Identity { identity: UserView },
    #[serde(rename = "layers")]
    Layers { layers: Vec<LayerState> },
    #[serde(rename = "layer.ok")]
    LayerOk { layer: String },
    #[serde(rename = "joined")]
    Joined {
        stream: String,
        broadcast: BroadcastView,
        chat: Vec<ChatLine>,
        likes: LikesView,
        alerts: Vec<Alert>,
        slow_mode: u32,
    },
    #[serde(rename = "left")]
    Left { stream: String },
    #[serde(rename = "viewer.answer")]
    ViewerAnswer {
        stream: String,
        session: String,
        sdp: String,
    },
    #[serde(rename = "viewer.ended")]
    ViewerEnded { session: String },
    #[serde(rename = "chat")]
    Chat {
        #[serde(flatten)]
        line: ChatLine,
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    #[serde(rename = "chat.deleted")]
    ChatDeleted { id: u64 },
    #[serde(rename = "chat.muted")]
    ChatMuted { user_id: String, until: i64 },
    #[serde(rename = "chat.slow")]
    ChatSlow { secs: u32 },
    #[serde(rename = "reactions")]
    Reactions { counts: BTreeMap<&'static str, u64> },
    #[serde(rename = "likes")]
    Likes { likes: i64, dislikes: i64 },
    #[serde(rename = "like.ok")]
    LikeOk { mine: Option<bool> },
    #[serde(rename = "alert")]
    Alert { alert: Alert },
    #[serde(rename = "alert.sent")]
    AlertSent { alert: Alert, delivered: u64 },
    #[serde(rename = "alert.status")]
    AlertStatus { id: i64, delivered: u64, acked: u64 },
    #[serde(rename = "comment")]
    Comment { comment: Comment },
    #[serde(rename = "comment.deleted")]
    CommentDeleted { id: i64 },
    #[serde(rename = "broadcast")]
    Broadcast { broadcast: BroadcastView },
    #[serde(rename = "viewers")]
    Viewers { count: u64 },
    /// An ad break, sent only to connections without the ad-free plan:
    /// play the VAST pod at `vast_url` for at most `duration_s`
    /// (`remaining_ms` of it are left: a member who joins mid-break gets
    /// the rest). The live stream's audio and video are held meanwhile.
    #[serde(rename = "ad_break")]
    AdBreak {
        break_id: i64,
        vast_url: String,
        duration_s: u32,
        remaining_ms: u64,
    },
    /// The break ended for this connection (its pod finished, or its time
    /// ran out): the live stream resumes.
    #[serde(rename = "ad_break.ended")]
    AdBreakEnded { break_id: i64 },
    #[serde(rename = "error")]
    Error {
        code: ErrorCode,
        message: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: message.into(),
            reference: None,
        }
    }

    /// Serialized once; the result is shared by every recipient.
    pub fn to_text(&self) -> axum::extract::ws::Utf8Bytes {
        serde_json::to_string(self)
            .expect("server messages always serialize (string keys, no floats)")
            .into()
    }
}

#[cfg(test)]
mod tests;
