//! The store calls the websocket handlers make (broadcast metadata, likes,
//! alerts), in one place so their errors map to one `unavailable` reply.

use crate::identity::Identity;
use crate::store::{Alert, BroadcastMeta, LikeCounts, NewAlert};
use crate::AppState;

/// Why a store call failed (logged once by the caller).
pub type PersistError = String;

pub async fn broadcast_meta(
    state: &AppState,
    stream: &str,
) -> Result<Option<BroadcastMeta>, PersistError> {
    state
        .store()
        .broadcast_meta(stream)
        .await
        .map_err(|e| e.to_string())
}

pub async fn like_counts(state: &AppState, stream: &str) -> Result<LikeCounts, PersistError> {
    state
        .store()
        .like_counts(stream)
        .await
        .map_err(|e| e.to_string())
}

pub async fn my_like(
    state: &AppState,
    stream: &str,
    who: &Identity,
) -> Result<Option<bool>, PersistError> {
    state
        .store()
        .my_like(stream, &who.id)
        .await
        .map_err(|e| e.to_string())
}

pub async fn active_alerts(state: &AppState, now_ms: i64) -> Result<Vec<Alert>, PersistError> {
    state
        .store()
        .active_alerts(now_ms)
        .await
        .map_err(|e| e.to_string())
}

pub async fn set_like(
    state: &AppState,
    stream: &str,
    who: &Identity,
    liked: Option<bool>,
) -> Result<LikeCounts, PersistError> {
    state
        .store()
        .set_like(stream, &who.id, liked)
        .await
        .map_err(|e| e.to_string())
}

pub async fn insert_alert(state: &AppState, new: &NewAlert) -> Result<Alert, PersistError> {
    state
        .store()
        .insert_alert(new)
        .await
        .map_err(|e| e.to_string())
}
