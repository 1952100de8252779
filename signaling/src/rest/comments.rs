//! `GET`/`POST /api/broadcasts/{id}/comments`, `DELETE …/comments/{cid}`:
//! persistent comments under a broadcast, newest first. Anyone may read;
//! any identity may comment (within its quota and its address's: 429
//! beyond, see `crate::guard`); the author or a moderator may delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, PathParams, QueryParams};
use super::{require_stream, Caller};
use crate::error::ApiError;
use crate::guard::ClientIp;
use crate::store::Comment;
use crate::AppState;

/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 2000;
const PAGE: i64 = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct CommentPage {
    pub comments: Vec<Comment>,
    pub next_cursor: Option<String>,
}

pub async fn list_comments(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<CommentPage>, ApiError> {
    require_stream(&state, &id).await?;
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("cursor is not one this API gave".into()))?,
        ),
    };
    let limit = super::paging::page_limit(q.limit, PAGE)?;
    let comments = state.store().comments(&id, before, limit).await?;
    let next_cursor = (comments.len() as i64 == limit)
        .then(|| comments.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(Json(CommentPage {
        comments,
        next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    comment: String,
}

pub async fn post_comment(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<NewComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    require_stream(&state, &id).await?;
    let text = body.comment.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_COMMENT {
        return Err(ApiError::BadRequest(format!(
            "a comment is 1-{MAX_COMMENT} characters (this one is {chars})"
        )));
    }
    crate::text::prose(text).map_err(|why| ApiError::BadRequest(format!("the comment {why}")))?;
    // After validation: a refused comment does not spend the quota.
    state.guards().comment(client, &who.id)?;
    let comment = state
        .store()
        .add_comment(&id, &who.id, &who.name, text)
        .await?;
    state.hub().comment_added(&id, &comment);
    Ok((StatusCode::CREATED, Json(comment)))
}

pub async fn delete_comment(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((id, cid)): PathParams<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    require_stream(&state, &id).await?;
    let comment = state
        .store()
        .comment(&id, cid)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such comment".into()))?;
    if comment.user_id != who.id && !who.role.can_moderate() {
        return Err(ApiError::Forbidden(
            "only the author or a moderator may delete a comment".into(),
        ));
    }
    state.store().delete_comment(&id, cid).await?;
    state.hub().comment_deleted(&id, cid);
    Ok(StatusCode::NO_CONTENT)
}
