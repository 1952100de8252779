//! `/ws`: the realtime JSON protocol (version 1). For now it carries the
//! publisher control channel: a browser publisher attaches to its WHIP
//! session and the server tells it which simulcast layers to send, so layers
//! nobody watches stop costing the broadcaster CPU and upload ("pause unused
//! layers"). Messages are documented in `docs/protocol.md`.
//!
//! Every client message is validated; a bad one gets an `error` message and
//! the connection stays up. The server sends at most one `layers` message
//! per tick, and only when something changed, so a connection's outgoing
//! traffic is bounded.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use relaycast_sfu::SessionId;
use serde::{Deserialize, Serialize};

use crate::AppState;

pub const PROTOCOL_VERSION: u32 = 1;
/// Largest client message accepted.
pub const MAX_MESSAGE: usize = 16 * 1024;
const LAYER_TICK: Duration = Duration::from_millis(500);

#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientMessage {
    /// Attach as the control channel of a WHIP session.
    #[serde(rename = "publisher.attach")]
    PublisherAttach {
        stream: String,
        session: String,
        token: String,
    },
    /// A viewer's quality choice for its WHEP session: high, medium, low or
    /// auto; applied at the next keyframe, without renegotiation.
    #[serde(rename = "viewer.layer")]
    ViewerLayer {
        stream: String,
        session: String,
        layer: String,
    },
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerMessage {
    #[serde(rename = "hello")]
    Hello { version: u32 },
    /// Which layers (by rid) the publisher should send.
    #[serde(rename = "layers")]
    Layers { layers: Vec<LayerState> },
    /// A `viewer.layer` was applied.
    #[serde(rename = "layer.ok")]
    LayerOk { layer: String },
    #[serde(rename = "error")]
    Error { code: &'static str, message: String },
}

#[derive(Debug, Serialize, PartialEq, Clone)]
pub struct LayerState {
    pub rid: Option<String>,
    pub active: bool,
}

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| connection(socket, state))
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
    let text = serde_json::to_string(msg).expect("server messages always serialize");
    socket.send(Message::Text(text.into())).await.is_ok()
}

fn error(code: &'static str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.into(),
    }
}

async fn connection(mut socket: WebSocket, state: AppState) {
    if !send(
        &mut socket,
        &ServerMessage::Hello {
            version: PROTOCOL_VERSION,
        },
    )
    .await
    {
        return;
    }
    let mut attached: Option<SessionId> = None;
    let mut last_sent: Option<Vec<LayerState>> = None;
    let mut tick = tokio::time::interval(LAYER_TICK);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let text = match message {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        if !send(&mut socket, &error("bad_message", "messages are JSON text")).await { return; }
                        continue;
                    }
                };
                let reply = match serde_json::from_str::<ClientMessage>(&text) {
                    Err(e) => Some(error("bad_message", e.to_string())),
                    Ok(ClientMessage::ViewerLayer { stream, session, layer }) => {
                        Some(match set_layer(&state, &stream, &session, &layer).await {
                            Ok(()) => ServerMessage::LayerOk { layer },
                            Err(e) => e,
                        })
                    }
                    Ok(ClientMessage::PublisherAttach { stream, session, token }) => {
                        match attach(&state, &stream, &session, &token).await {
                            Ok(id) => { attached = Some(id); last_sent = None; None }
                            Err(e) => Some(e),
                        }
                    }
                };
                if let Some(reply) = reply {
                    if !send(&mut socket, &reply).await { return; }
                }
            }
            _ = tick.tick(), if attached.is_some() => {
                let id = attached.expect("guarded by the select condition");
                let layers = match state.media().publisher_layers(id).await {
                    Ok(Some(layers)) => layers,
                    // The session ended: nothing more to control.
                    Ok(None) | Err(_) => { attached = None; continue; }
                };
                let layers: Vec<LayerState> = layers.into_iter().map(|l| LayerState { rid: l.rid, active: l.send }).collect();
                if last_sent.as_ref() != Some(&layers) {
                    if !send(&mut socket, &ServerMessage::Layers { layers: layers.clone() }).await { return; }
                    last_sent = Some(layers);
                }
            }
        }
    }
}

async fn set_layer(
    state: &AppState,
    stream: &str,
    session: &str,
    layer: &str,
) -> Result<(), ServerMessage> {
    let choice = layer
        .parse::<relaycast_sfu::LayerChoice>()
        .map_err(|e| error("bad_message", e))?;
    let id = SessionId::parse(session).ok_or_else(|| error("not_found", "no such session"))?;
    let exists = state
        .media()
        .exists(id, relaycast_sfu::BroadcastName::new(stream))
        .await
        .unwrap_or(false);
    if !exists {
        return Err(error("not_found", "no such viewer session"));
    }
    state
        .media()
        .set_layer(id, choice)
        .await
        .map_err(|_| error("not_found", "no such viewer session"))
}

async fn attach(
    state: &AppState,
    stream: &str,
    session: &str,
    token: &str,
) -> Result<SessionId, ServerMessage> {
    let Some(key) = state.settings().stream_keys.get(stream) else {
        return Err(error("not_found", format!("no stream named {stream:?}")));
    };
    if !crate::auth::constant_time_eq(token.as_bytes(), key.as_bytes()) {
        return Err(error("unauthorized", "the token is not this stream's key"));
    }
    let id = SessionId::parse(session).ok_or_else(|| error("not_found", "no such session"))?;
    state
        .media()
        .attach_publisher(id)
        .await
        .map_err(|_| error("not_found", "no such publisher session"))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_unknown_ones_are_refused() {
        let ok = r#"{"type":"publisher.attach","stream":"live","session":"ab","token":"k"}"#;
        assert_eq!(
            serde_json::from_str::<ClientMessage>(ok).unwrap(),
            ClientMessage::PublisherAttach {
                stream: "live".into(),
                session: "ab".into(),
                token: "k".into()
            }
        );
        let layer = r#"{"type":"viewer.layer","stream":"live","session":"ab","layer":"low"}"#;
        assert!(matches!(
            serde_json::from_str::<ClientMessage>(layer).unwrap(),
            ClientMessage::ViewerLayer { .. }
        ));
        for bad in [
            r#"{"type":"nope"}"#,
            r#"{"type":"publisher.attach"}"#,
            "not json",
            r#"{"type":"publisher.attach","stream":"a","session":"b","token":"c","x":1}"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_carry_their_type() {
        let msg = ServerMessage::Layers {
            layers: vec![LayerState {
                rid: Some("q".into()),
                active: false,
            }],
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"layers","layers":[{"rid":"q","active":false}]}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerMessage::Hello { version: 1 }).unwrap(),
            r#"{"type":"hello","version":1}"#
        );
    }
}
