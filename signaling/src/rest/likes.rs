//! `GET`/`PUT`/`DELETE /api/broadcasts/{id}/like`: one like or dislike per
//! identity per broadcast, changeable; the new counts are pushed live.
//! `GET` is for pages that join no room (a recording's page rates its
//! broadcast): the counts, and the caller's own choice when a token is
//! given.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, PathParams};
use super::{require_stream, Caller};
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Like {
    liked: bool,
}

#[derive(Serialize)]
pub struct LikeState {
    pub likes: i64,
    pub dislikes: i64,
    /// The caller's own choice now.
    pub mine: Option<bool>,
}

async fn set(
    state: &AppState,
    id: &str,
    user: &str,
    liked: Option<bool>,
) -> Result<Json<LikeState>, ApiError> {
    require_stream(state, id).await?;
    let counts = state.store().set_like(id, user, liked).await?;
    state.hub().likes_changed(id, counts);
    Ok(Json(LikeState {
        likes: counts.likes,
        dislikes: counts.dislikes,
        mine: liked,
    }))
}

pub async fn get_like(
    State(state): State<AppState>,
    who: Option<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<Json<LikeState>, ApiError> {
    require_stream(&state, &id).await?;
    let counts = state.store().like_counts(&id).await?;
    let mine = match who {
        Some(Caller(who)) => state.store().my_like(&id, &who.id).await?,
        None => None,
    };
    Ok(Json(LikeState {
        likes: counts.likes,
        dislikes: counts.dislikes,
        mine,
    }))
}

pub async fn put_like(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(like): JsonBody<Like>,
) -> Result<Json<LikeState>, ApiError> {
    set(&state, &id, &who.id, Some(like.liked)).await
}

pub async fn delete_like(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<LikeState>, ApiError> {
    set(&state, &id, &who.id, None).await
}
