//! `/ws`: the websocket transport of the realtime protocol (version 1,
//! messages in [`crate::realtime::protocol`], documented in
//! `docs/protocol.md`).
//!
//! Each connection runs two tasks: this reader, which validates and handles
//! client messages one at a time, and a writer that drains the connection's
//! bounded outgoing queue into the socket. Everything the server sends —
//! replies and room pushes alike — goes through that queue, so a client that
//! stops reading fills its queue and is closed (1013) by whoever pushes
//! next, without anyone waiting for it. A close request (too slow, or three
//! malformed messages: 1008) stops both tasks; the sessions the connection
//! created end with it.

mod connection;
mod persist;
mod ticker;

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;

use crate::guard::ClientIp;
use crate::realtime::members::{CloseReason, Outgoing, TOO_BIG, TOO_SLOW};
use crate::realtime::protocol::{ServerMessage, PROTOCOL_VERSION};
use crate::realtime::validate::MAX_FRAME;
use crate::{ApiError, AppState};

use self::connection::Connection;

/// Frames above this are refused by the websocket layer itself (the
/// connection is closed with 1009); between [`MAX_FRAME`] and this, the client gets a
/// `too_large` error and stays connected.
const HARD_LIMIT: usize = 4 * MAX_FRAME;
/// How long a close frame may take to leave before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// An attached publisher's layer decisions are read from the media plane's
/// snapshot this often (the snapshot itself changes 4 times a second).
const LAYER_TICK: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let max = state.settings().limits.max_websockets;
    let Some(slot) = state.hub().admit_websocket(max) else {
        return ApiError::Overloaded {
            message: format!(
                "this server holds its limit of {max} websocket connections; retry shortly"
            ),
            retry_after_secs: 5,
        }
        .into_response();
    };
    ws.max_message_size(HARD_LIMIT)
        .max_frame_size(HARD_LIMIT)
        .on_upgrade(move |socket| async move {
            run(socket, state, client, query.token).await;
            drop(slot);
        })
}

/// Resolves once a close was requested (never, if the handle is gone).
async fn close_requested(close: &mut watch::Receiver<Option<CloseReason>>) -> CloseReason {
    loop {
        if let Some(reason) = *close.borrow_and_update() {
            return reason;
        }
        if close.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn run(socket: WebSocket, state: AppState, client: IpAddr, token: Option<String>) {
    ticker::ensure_started(&state);
    let registration = state.hub().connect();
    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(write_loop(
        sink,
        registration.outgoing,
        registration.close.clone(),
    ));
    let mut close = registration.close;
    let conn = registration.conn.clone();
    let mut connection = Connection::new(state, registration.conn, client);
    connection.reply(&ServerMessage::Hello {
        version: PROTOCOL_VERSION,
    });
    if let Some(token) = token {
        connection.authenticate(&token);
        connection.seat_viewer().await;
    }
    let mut tick = tokio::time::interval(LAYER_TICK);
    // Sessions ended elsewhere (WHEP DELETE, ICE timeout) are pushed here
    // and reported as `viewer.ended`.
    let mut ended = Some(connection.ended());
    loop {
        tokio::select! {
            _ = close_requested(&mut close) => break,
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        connection.binary();
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            // Tell the client why (1009) instead of just dropping it.
                            conn.close(TOO_BIG);
                        }
                        break;
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                };
                connection.handle_text(&text).await;
            }
            _ = tick.tick(), if connection.is_publisher() => connection.publisher_tick(),
            id = async { ended.as_mut().expect("guarded by is_some").recv().await }, if ended.is_some() => match id {
                Ok(id) => connection.session_ended(id),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => connection.recheck_sessions(),
                // The media plane is gone (shutdown): nothing more will end.
                Err(tokio::sync::broadcast::error::RecvError::Closed) => ended = None,
            },
        }
    }
    // The writer ends once no handle holds the queue's sender.
    drop(conn);
    connection.finish().await;
    // The hub no longer holds this connection: the writer drains and ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

fn is_too_big(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outgoing: Outgoing,
    mut close: watch::Receiver<Option<CloseReason>>,
) {
    let reason = loop {
        let text = tokio::select! {
            biased;
            reason = close_requested(&mut close) => break Some(reason),
            text = outgoing.recv() => match text {
                Some(text) => text,
                None => break None,
            },
        };
        tokio::select! {
            biased;
            reason = close_requested(&mut close) => break Some(reason),
            sent = sink.send(Message::Text(text)) => if sent.is_err() { return },
        }
    };
    if let Some(reason) = reason {
        if reason != TOO_SLOW {
            // Policy closes deliver the errors queued before them.
            while let Some(text) = outgoing.try_recv() {
                let sent = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Text(text))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
    let frame = reason.map(|r| CloseFrame {
        code: r.code,
        reason: r.reason.into(),
    });
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(frame))).await;
}
