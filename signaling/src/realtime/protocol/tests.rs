//! Every message of the protocol against its documented example: client
//! messages parse from the example and serialize back to it; server
//! messages serialize to exactly the example.

use serde_json::{json, Value};

use super::*;

fn user() -> UserView {
    UserView {
        id: "g-3f9a".into(),
        name: "Ada".into(),
        role: Role::Viewer,
    }
}

fn alert() -> Alert {
    Alert {
        id: 7,
        severity: Severity::Emergency,
        text: "Evacuate hall B".into(),
        scope: "all".into(),
        created_ms: 1_764_316_800_000,
        expires_ms: 1_764_316_860_000,
        sender_name: "alice".into(),
    }
}

fn meta() -> BroadcastMeta {
    BroadcastMeta {
        id: "live".into(),
        title: "Town hall".into(),
        description: "Monthly meeting".into(),
        tags: vec!["news".into()],
        disclaimer: Some("Flashing lights".into()),
    }
}

#[test]
fn client_messages_round_trip() {
    let table: Vec<(Value, ClientMessage)> = vec![
        (
            json!({"type": "auth", "token": "eyJ…"}),
            ClientMessage::Auth {
                token: "eyJ…".into(),
            },
        ),
        (
            json!({"type": "join", "stream": "live"}),
            ClientMessage::Join {
                stream: "live".into(),
            },
        ),
        (json!({"type": "leave"}), ClientMessage::Leave),
        (
            json!({"type": "viewer.offer", "stream": "live", "sdp": "v=0…", "layer": "auto",
                   "session": "74c6a504f32df0fc"}),
            ClientMessage::ViewerOffer {
                stream: "live".into(),
                sdp: "v=0…".into(),
                layer: Some("auto".into()),
                session: Some("74c6a504f32df0fc".into()),
            },
        ),
        (
            json!({"type": "viewer.offer", "stream": "live", "sdp": "v=0…"}),
            ClientMessage::ViewerOffer {
                stream: "live".into(),
                sdp: "v=0…".into(),
                layer: None,
                session: None,
            },
        ),
        (
            json!({"type": "viewer.candidate", "session": "74c6a504f32df0fc",
                   "candidate": {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
                                 "sdpMid": "0", "sdpMLineIndex": 0}}),
            ClientMessage::ViewerCandidate {
                session: "74c6a504f32df0fc".into(),
                candidate: json!({"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
                                  "sdpMid": "0", "sdpMLineIndex": 0}),
            },
        ),
        (
            json!({"type": "viewer.leave", "session": "74c6a504f32df0fc"}),
            ClientMessage::ViewerLeave {
                session: "74c6a504f32df0fc".into(),
            },
        ),
        (
            json!({"type": "viewer.layer", "stream": "live", "session": "74c6a504f32df0fc", "layer": "low"}),
            ClientMessage::ViewerLayer {
                stream: "live".into(),
                session: "74c6a504f32df0fc".into(),
                layer: "low".into(),
            },
        ),
        (
            json!({"type": "viewer.view", "stream": "live", "session": "74c6a504f32df0fc",
                   "width": 640, "height": 360, "visible": true}),
            ClientMessage::ViewerView {
                stream: "live".into(),
                session: "74c6a504f32df0fc".into(),
                width: 640,
                height: 360,
                visible: true,
            },
        ),
        (
            json!({"type": "publisher.attach", "stream": "live", "session": "8f75af5784c0cbe9", "token": "k"}),
            ClientMessage::PublisherAttach {
                stream: "live".into(),
                session: "8f75af5784c0cbe9".into(),
                token: "k".into(),
            },
        ),
        (
            json!({"type": "chat.send", "text": "hello", "nonce": "c1"}),
            ClientMessage::ChatSend {
                text: "hello".into(),
                nonce: Some("c1".into()),
            },
        ),
        (
            json!({"type": "chat.delete", "id": 42}),
            ClientMessage::ChatDelete { id: 42 },
        ),
        (
            json!({"type": "chat.mute", "user_id": "g-3f9a", "secs": 300}),
            ClientMessage::ChatMute {
                user_id: "g-3f9a".into(),
                secs: 300,
            },
        ),
        (
            json!({"type": "chat.slow", "secs": 10}),
            ClientMessage::ChatSlow { secs: 10 },
        ),
        (
            json!({"type": "react", "emoji": "🔥"}),
            ClientMessage::React {
                emoji: "🔥".into()
            },
        ),
        (
            json!({"type": "like", "liked": true}),
            ClientMessage::Like { liked: Some(true) },
        ),
        (
            json!({"type": "like", "liked": null}),
            ClientMessage::Like { liked: None },
        ),
        (
            json!({"type": "alert.send", "severity": "emergency", "text": "Evacuate hall B",
                   "scope": "all", "ttl": 60}),
            ClientMessage::AlertSend {
                severity: Severity::Emergency,
                text: "Evacuate hall B".into(),
                scope: "all".into(),
                ttl: 60,
            },
        ),
        (
            json!({"type": "alert.ack", "id": 7}),
            ClientMessage::AlertAck { id: 7 },
        ),
        (
            json!({"type": "ad.done", "break_id": 3}),
            ClientMessage::AdDone { break_id: 3 },
        ),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for (example, expected) in table {
        let parsed: ClientMessage =
            serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(parsed, expected, "{example}");
        assert_eq!(parsed.kind(), example["type"], "kind() of {example}");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), example);
        kinds.insert(parsed.kind());
    }
    let all: std::collections::BTreeSet<_> = CLIENT_TYPES.iter().copied().collect();
    assert_eq!(kinds, all, "every client type has an example");
}

#[test]
fn server_messages_serialize_as_documented() {
    let line = ChatLine {
        id: 42,
        user: user(),
        text: "hello".into(),
        ts: 1_764_316_800_000,
    };
    let view = BroadcastView {
        meta: meta(),
        live: true,
        viewers: 12,
    };
    let broadcast = json!({"id": "live", "title": "Town hall", "description": "Monthly meeting",
                           "tags": ["news"], "disclaimer": "Flashing lights", "live": true, "viewers": 12});
    let alert_json = json!({"id": 7, "severity": "emergency", "text": "Evacuate hall B", "scope": "all",
                            "created_ms": 1_764_316_800_000i64, "expires_ms": 1_764_316_860_000i64,
                            "sender_name": "alice"});
    let comment = Comment {
        id: 5,
        comment: "Great talk".into(),
        user_id: "u-1".into(),
        user_name: "bob".into(),
        video_id: "live".into(),
        created_ms: 1_764_316_800_000,
    };
    let table: Vec<(ServerMessage, Value)> = vec![
        (
            ServerMessage::Hello { version: 1 },
            json!({"type": "hello", "version": 1}),
        ),
        (
            ServerMessage::Identity { identity: user() },
            json!({"type": "identity", "identity": {"id": "g-3f9a", "name": "Ada", "role": "viewer"}}),
        ),
        (
            ServerMessage::Layers {
                layers: vec![LayerState {
                    rid: Some("q".into()),
                    active: true,
                }],
            },
            json!({"type": "layers", "layers": [{"rid": "q", "active": true}]}),
        ),
        (
            ServerMessage::LayerOk {
                layer: "low".into(),
            },
            json!({"type": "layer.ok", "layer": "low"}),
        ),
        (
            ServerMessage::Joined {
                stream: "live".into(),
                broadcast: view.clone(),
                chat: vec![line.clone()],
                likes: LikesView {
                    likes: 3,
                    dislikes: 1,
                    mine: Some(true),
                },
                alerts: vec![alert()],
                slow_mode: 0,
            },
            json!({"type": "joined", "stream": "live", "broadcast": broadcast,
                   "chat": [{"id": 42, "user": {"id": "g-3f9a", "name": "Ada", "role": "viewer"},
                             "text": "hello", "ts": 1_764_316_800_000i64}],
                   "likes": {"likes": 3, "dislikes": 1, "mine": true},
                   "alerts": [alert_json], "slow_mode": 0}),
        ),
        (
            ServerMessage::Left {
                stream: "live".into(),
            },
            json!({"type": "left", "stream": "live"}),
        ),
        (
            ServerMessage::ViewerAnswer {
                stream: "live".into(),
                session: "74c6a504f32df0fc".into(),
                sdp: "v=0…".into(),
            },
            json!({"type": "viewer.answer", "stream": "live", "session": "74c6a504f32df0fc", "sdp": "v=0…"}),
        ),
        (
            ServerMessage::ViewerEnded {
                session: "74c6a504f32df0fc".into(),
            },
            json!({"type": "viewer.ended", "session": "74c6a504f32df0fc"}),
        ),
        (
            ServerMessage::Chat {
                line,
                nonce: Some("c1".into()),
            },
            json!({"type": "chat", "id": 42, "user": {"id": "g-3f9a", "name": "Ada", "role": "viewer"},
                   "text": "hello", "ts": 1_764_316_800_000i64, "nonce": "c1"}),
        ),
        (
            ServerMessage::ChatDeleted { id: 42 },
            json!({"type": "chat.deleted", "id": 42}),
        ),
        (
            ServerMessage::ChatMuted {
                user_id: "g-3f9a".into(),
                until: 1_764_317_100_000,
            },
            json!({"type": "chat.muted", "user_id": "g-3f9a", "until": 1_764_317_100_000i64}),
        ),
        (
            ServerMessage::ChatSlow { secs: 10 },
            json!({"type": "chat.slow", "secs": 10}),
        ),
        (
            ServerMessage::Reactions {
                counts: [("❤️", 12), ("🔥", 3)].into_iter().collect(),
            },
            json!({"type": "reactions", "counts": {"❤️": 12, "🔥": 3}}),
        ),
        (
            ServerMessage::Likes {
                likes: 4,
                dislikes: 1,
            },
            json!({"type": "likes", "likes": 4, "dislikes": 1}),
        ),
        (
            ServerMessage::LikeOk { mine: None },
            json!({"type": "like.ok", "mine": null}),
        ),
        (
            ServerMessage::Alert { alert: alert() },
            json!({"type": "alert", "alert": alert_json}),
        ),
        (
            ServerMessage::AlertSent {
                alert: alert(),
                delivered: 200,
            },
            json!({"type": "alert.sent", "alert": alert_json, "delivered": 200}),
        ),
        (
            ServerMessage::AlertStatus {
                id: 7,
                delivered: 200,
                acked: 187,
            },
            json!({"type": "alert.status", "id": 7, "delivered": 200, "acked": 187}),
        ),
        (
            ServerMessage::Comment { comment },
            json!({"type": "comment", "comment": {"id": 5, "comment": "Great talk", "user_id": "u-1",
                   "user_name": "bob", "video_id": "live", "created_ms": 1_764_316_800_000i64}}),
        ),
        (
            ServerMessage::CommentDeleted { id: 5 },
            json!({"type": "comment.deleted", "id": 5}),
        ),
        (
            ServerMessage::Broadcast { broadcast: view },
            json!({"type": "broadcast", "broadcast": broadcast}),
        ),
        (
            ServerMessage::Viewers { count: 12 },
            json!({"type": "viewers", "count": 12}),
        ),
        (
            ServerMessage::AdBreak {
                break_id: 3,
                vast_url: "/ads/vast?break=3&session=ab&viewer=g-1&sig=cd".into(),
                duration_s: 30,
                remaining_ms: 29_500,
            },
            json!({"type": "ad_break", "break_id": 3, "duration_s": 30, "remaining_ms": 29_500,
                   "vast_url": "/ads/vast?break=3&session=ab&viewer=g-1&sig=cd"}),
        ),
        (
            ServerMessage::AdBreakEnded { break_id: 3 },
            json!({"type": "ad_break.ended", "break_id": 3}),
        ),
        (
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                message: "only moderators can send alerts".into(),
                reference: Some("alert.send".into()),
            },
            json!({"type": "error", "code": "forbidden", "message": "only moderators can send alerts",
                   "ref": "alert.send"}),
        ),
    ];
    for (message, expected) in table {
        let text = message.to_text();
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got, expected);
    }
}

#[test]
fn error_codes_are_snake_case() {
    let codes = [
        (ErrorCode::BadMessage, "bad_message"),
        (ErrorCode::UnknownType, "unknown_type"),
        (ErrorCode::TooLarge, "too_large"),
        (ErrorCode::Unauthorized, "unauthorized"),
        (ErrorCode::Forbidden, "forbidden"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::SlowMode, "slow_mode"),
        (ErrorCode::Muted, "muted"),
        (ErrorCode::NotFound, "not_found"),
        (ErrorCode::NotJoined, "not_joined"),
        (ErrorCode::Invalid, "invalid"),
        (ErrorCode::Unavailable, "unavailable"),
    ];
    for (code, text) in codes {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(text));
    }
}
