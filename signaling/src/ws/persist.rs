//! The store calls the websocket handlers make (broadcast metadata, likes,
//! alerts), in one place so their errors map to one `unavailable` reply.
//!
//! INTERIM: the store's engagement queries (`set_like`, `like_counts`,
//! `my_like`, `insert_alert`, `active_alerts`, `broadcast_meta`) are not in
//! `crate::store` yet. Until they are, reads answer "nothing stored" and
//! writes are refused as unavailable; each function becomes a one-line
//! call to the store when it lands.

use crate::identity::Identity;
use crate::store::{Alert, BroadcastMeta, LikeCounts, NewAlert};
use crate::AppState;

/// Why a store call failed (logged once by the caller).
pub type PersistError = String;

const NOT_YET: &str = "the store has no engagement tables yet";

pub async fn broadcast_meta(
    _state: &AppState,
    _stream: &str,
) -> Result<Option<BroadcastMeta>, PersistError> {
    Ok(None)
}

pub async fn like_counts(_state: &AppState, _stream: &str) -> Result<LikeCounts, PersistError> {
    Ok(LikeCounts::default())
}

pub async fn my_like(
    _state: &AppState,
    _stream: &str,
    _who: &Identity,
) -> Result<Option<bool>, PersistError> {
    Ok(None)
}

pub async fn active_alerts(_state: &AppState, _now_ms: i64) -> Result<Vec<Alert>, PersistError> {
    Ok(Vec::new())
}

pub async fn set_like(
    _state: &AppState,
    _stream: &str,
    _who: &Identity,
    _liked: Option<bool>,
) -> Result<LikeCounts, PersistError> {
    Err(NOT_YET.into())
}

pub async fn insert_alert(_state: &AppState, _new: &NewAlert) -> Result<Alert, PersistError> {
    Err(NOT_YET.into())
}
