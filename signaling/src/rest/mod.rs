//! The JSON REST API beside WHIP/WHEP: identities (guests, accounts,
//! `/api/me`), the broadcast catalog with search and metadata edits,
//! comments, likes, alerts, and the ad server. Every handler that needs an identity reads
//! it from the bearer token ([`Caller`]) and checks its role; changes are
//! durable before they are answered, then pushed to websocket clients
//! through the hub.

mod ad_serving;
mod ads;
mod alerts;
mod catalog;
mod channels;
mod comments;
mod extract;
mod identity;
mod likes;
mod paging;
mod video_chat;
mod videos;

pub use ad_serving::{companion, creative, track, vast_pod, video_vmap};
pub use ads::{
    ad_report, break_events, create_ad, grant_entitlement, list_ads, my_entitlements, retire_ad,
    start_break,
};
pub use alerts::{list_alerts, post_alert};
pub use catalog::{get_broadcast, list_broadcasts, put_broadcast};
pub use channels::{create_channel, delete_channel, my_channels, rotate_key, set_suspension};
pub use comments::{delete_comment, list_comments, post_comment};
pub use identity::{create_account, create_guest, get_me, login, patch_me};
pub use likes::{delete_like, get_like, put_like};
pub use video_chat::video_chat;
pub use videos::{
    broadcast_poster, delete_video, download_video, get_video, list_videos, master_playlist,
    rendition_file, video_poster,
};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::guard::{client_ip, Credential};
use crate::identity::Identity;
use crate::AppState;

/// The identity behind the request's bearer token; rejects the request
/// (401) when the token is missing or invalid.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = crate::auth::bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        identify(parts, state, token).map(Caller)
    }
}

impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// No token: `None`; a token that does not verify is still a 401, so a
    /// client learns its token expired rather than being silently anonymous.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        match crate::auth::bearer(&parts.headers) {
            None => Ok(None),
            Some(token) => identify(parts, state, token).map(|who| Some(Caller(who))),
        }
    }
}

/// A bearer token's identity; a token that matches nothing counts against
/// the client's key throttle (it may be a stream-key guess).
fn identify(parts: &Parts, state: &AppState, token: &str) -> Result<Identity, ApiError> {
    let client = client_ip(parts, &state.settings().trusted_proxies);
    state.guards().check(Credential::Key, client, None)?;
    state.identify(token).ok_or_else(|| {
        state.guards().failed(Credential::Key, client, None);
        ApiError::Unauthorized
    })
}

/// 403 unless the caller moderates.
pub fn require_moderator(who: &Identity) -> Result<(), ApiError> {
    if who.role.can_moderate() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("moderators and admins only".into()))
    }
}

/// 404 unless `id` is a stream (the operator's or a channel).
pub async fn require_stream(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.streams().exists(id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no stream named {id:?}")))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Busy => ApiError::Overloaded {
                message: e.to_string(),
                retry_after_secs: 1,
            },
            e => ApiError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
