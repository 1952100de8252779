//! The hub's periodic pushes that depend on the media plane: every 2 s,
//! each room with members gets `viewers` when its viewer count changed and
//! `broadcast` when it went live or ended. One task per server, started by
//! the first websocket connection; it asks the media worker once per tick
//! (not once per room) and ends when the worker is gone.

use std::collections::HashMap;
use std::time::Duration;

use crate::realtime::protocol::{BroadcastView, ServerMessage};
use crate::AppState;

pub const EVERY: Duration = Duration::from_secs(2);

pub fn ensure_started(state: &AppState) {
    if state.hub().claim_ticker() {
        tokio::spawn(run(state.clone()));
    }
}

async fn run(state: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rooms = state.hub().busy_rooms();
        if rooms.is_empty() {
            continue;
        }
        let status: HashMap<String, (bool, u64)> = state
            .media()
            .broadcasts()
            .into_iter()
            .map(|b| (b.name.as_str().to_owned(), (b.live, b.viewers as u64)))
            .collect();
        for room in rooms {
            let (live, viewers) = status.get(&room.name).copied().unwrap_or((false, 0));
            let Some(previous) = room.media_changed(live, viewers) else {
                continue;
            };
            if previous.is_some_and(|(was_live, _)| was_live != live) {
                let meta = match super::persist::broadcast_meta(&state, &room.name).await {
                    Ok(Some(meta)) => meta,
                    Ok(None) | Err(_) => super::connection::untitled(&room.name),
                };
                room.send(&ServerMessage::Broadcast {
                    broadcast: BroadcastView {
                        meta,
                        live,
                        viewers,
                    },
                });
            }
            if previous.map(|(_, n)| n) != Some(viewers) {
                room.send(&ServerMessage::Viewers { count: viewers });
            }
        }
    }
}
