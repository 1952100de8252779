//! The JSON REST API beside WHIP/WHEP: identities (guests, accounts,
//! `/api/me`), the broadcast catalog with search and metadata edits,
//! comments, likes and alerts. Every handler that needs an identity reads
//! it from the bearer token ([`Caller`]) and checks its role; changes are
//! durable before they are answered, then pushed to websocket clients
//! through the hub.

mod alerts;
mod catalog;
mod comments;
mod extract;
mod identity;
mod likes;
mod paging;

pub use alerts::{list_alerts, post_alert};
pub use catalog::{get_broadcast, list_broadcasts, put_broadcast};
pub use comments::{delete_comment, list_comments, post_comment};
pub use identity::{create_account, create_guest, get_me, login, patch_me};
pub use likes::{delete_like, put_like};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::identity::Identity;
use crate::AppState;

/// The identity behind the request's bearer token; rejects the request
/// (401) when the token is missing or invalid.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = crate::auth::bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        state
            .identify(token)
            .map(Caller)
            .ok_or(ApiError::Unauthorized)
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
            Some(token) => state
                .identify(token)
                .map(|who| Some(Caller(who)))
                .ok_or(ApiError::Unauthorized),
        }
    }
}

/// 403 unless the caller moderates.
pub fn require_moderator(who: &Identity) -> Result<(), ApiError> {
    if who.role.can_moderate() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("moderators and admins only".into()))
    }
}

/// 404 unless `id` is a configured stream.
pub fn require_stream(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.settings().stream_keys.contains_key(id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no stream named {id:?}")))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests;
