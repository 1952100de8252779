//! Channels over REST: any account creates streams of its own and gets
//! their keys; the owner (or an admin) rotates a key or deletes the
//! channel; an admin suspends one. A key is in a response exactly twice in
//! its life: at creation and at the rotation that made it.
//!
//! `POST /api/channels`, `GET /api/channels/mine`,
//! `POST /api/channels/{name}/key`, `DELETE /api/channels/{name}`,
//! `PUT /api/channels/{name}/suspension` (admin).
//!
//! A publisher already live keeps its session through a rotation, a
//! deletion or a suspension until it disconnects; what changes at once is
//! which key starts a new session (and, after a deletion, that the stream
//! no longer exists for new viewers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, PathParams};
use super::Caller;
use crate::error::ApiError;
use crate::identity::{Identity, Role};
use crate::store::{Channel, ChannelError};
use crate::AppState;

#[derive(Serialize)]
pub struct ChannelView {
    name: String,
    owner: String,
    created_ms: i64,
    /// The reason, while an admin suspends it.
    suspended: Option<String>,
    /// Where OBS publishes (Settings → Stream → Server), relative to the
    /// server's origin.
    whip_url: String,
    watch_url: String,
    live: bool,
    viewers: usize,
    /// The publisher's layers now, best first.
    layers: Vec<LayerNow>,
    /// Only in the answers to creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_key: Option<String>,
}

#[derive(Serialize)]
struct LayerNow {
    width: Option<u16>,
    height: Option<u16>,
    bitrate_kbps: u64,
}

fn view(state: &AppState, c: Channel, stream_key: Option<String>) -> ChannelView {
    let status = state
        .media()
        .broadcasts()
        .into_iter()
        .find(|b| b.name.as_str() == c.name);
    ChannelView {
        whip_url: format!("/whip/{}", c.name),
        watch_url: format!("/watch/{}", c.name),
        live: status.as_ref().is_some_and(|b| b.live),
        viewers: status.as_ref().map_or(0, |b| b.viewers),
        layers: status.map_or_else(Vec::new, |b| {
            b.layers
                .iter()
                .map(|(dims, bps)| LayerNow {
                    width: dims.map(|d| d.0),
                    height: dims.map(|d| d.1),
                    bitrate_kbps: bps / 1000,
                })
                .collect()
        }),
        name: c.name,
        owner: c.owner_name,
        created_ms: c.created_ms,
        suspended: c.suspended,
        stream_key,
    }
}

/// Channel names: the username rules (3–32 of a-z, A-Z, 0-9, `_`, `-`).
fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a channel name is 3-32 characters of a-z, A-Z, 0-9, '_' or '-'".into(),
        ))
    }
}

/// Accounts (and admins) may have channels; guests may not.
fn require_account(who: &Identity) -> Result<(), ApiError> {
    if who.id.starts_with("u-") || who.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "create an account (or sign in) to have a channel".into(),
        ))
    }
}

/// The channel, if `who` owns it or is an admin; 404 for anyone else (a
/// stranger does not learn which names are channels of others).
async fn owned(state: &AppState, who: &Identity, name: &str) -> Result<Channel, ApiError> {
    let not_found = || ApiError::NotFound(format!("you have no channel named {name:?}"));
    let channel = state.store().channel(name).await?.ok_or_else(not_found)?;
    if channel.owner_id == who.id || who.role == Role::Admin {
        Ok(channel)
    } else {
        Err(not_found())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    name: String,
}

/// `POST /api/channels` `{"name"}`: 201 with the key, once.
pub async fn create_channel(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(request): JsonBody<NewChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    require_account(&who)?;
    let name = request.name.trim();
    valid_name(name)?;
    let store = state.store();
    if state.streams().is_operator(name) || store.channel_name_used(name).await? {
        return Err(ApiError::Taken(format!("the name {name:?} is taken")));
    }
    let max = state.settings().limits.max_channels_per_account;
    if store.channels_of(&who.id).await?.len() >= max {
        return Err(ApiError::Forbidden(format!(
            "an account may have at most {max} channels"
        )));
    }
    let key = crate::channels::Streams::new_key();
    let hash = state.streams().hash(&key);
    let channel = match store.create_channel(name, &who.id, &who.name, &hash).await {
        Ok(c) => c,
        Err(ChannelError::Taken) => {
            return Err(ApiError::Taken(format!("the name {name:?} is taken")))
        }
        Err(ChannelError::Store(e)) => return Err(e.into()),
    };
    tracing::info!(channel = %name, owner = %who.id, "channel created");
    Ok((StatusCode::CREATED, Json(view(&state, channel, Some(key)))))
}

/// `GET /api/channels/mine`: the caller's channels, oldest first (no keys).
pub async fn my_channels(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let channels = state.store().channels_of(&who.id).await?;
    Ok(Json(
        channels
            .into_iter()
            .map(|c| view(&state, c, None))
            .collect(),
    ))
}

/// `POST /api/channels/{name}/key`: a new key; the old one stops starting
/// sessions at once.
pub async fn rotate_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = owned(&state, &who, &name).await?;
    let key = crate::channels::Streams::new_key();
    let hash = state.streams().hash(&key);
    if !state.store().set_channel_key(&name, &hash).await? {
        return Err(ApiError::NotFound(format!(
            "you have no channel named {name:?}"
        )));
    }
    tracing::info!(channel = %name, by = %who.id, "channel key rotated");
    Ok(Json(view(
        &state,
        Channel {
            key_hash: hash,
            ..channel
        },
        Some(key),
    )))
}

/// `DELETE /api/channels/{name}`: the name stays taken.
pub async fn delete_channel(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    owned(&state, &who, &name).await?;
    state.store().delete_channel(&name).await?;
    tracing::info!(channel = %name, by = %who.id, "channel deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    suspended: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `PUT /api/channels/{name}/suspension` (admin): `{"suspended": true,
/// "reason": "…"}` refuses publishing with 403 and the reason;
/// `{"suspended": false}` reinstates.
pub async fn set_suspension(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(name): PathParams<String>,
    JsonBody(request): JsonBody<Suspension>,
) -> Result<Json<ChannelView>, ApiError> {
    if who.role != Role::Admin {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    let reason = if request.suspended {
        let reason = request
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "suspended by an admin".to_owned());
        if reason.chars().count() > 200 {
            return Err(ApiError::BadRequest(
                "the reason is at most 200 characters".into(),
            ));
        }
        crate::text::label(&reason)
            .map_err(|why| ApiError::BadRequest(format!("the reason {why}")))?;
        Some(reason)
    } else {
        None
    };
    if !state
        .store()
        .set_channel_suspended(&name, reason.as_deref())
        .await?
    {
        return Err(ApiError::NotFound(format!("no channel named {name:?}")));
    }
    tracing::info!(channel = %name, by = %who.id, suspended = request.suspended, "channel suspension changed");
    let channel = state
        .store()
        .channel(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no channel named {name:?}")))?;
    Ok(Json(view(&state, channel, None)))
}
