//! `GET /api/videos/{id}/chat?from=SECONDS&after=SEQ&limit=N`: the chat
//! lines sent while a video was recorded, for replay beside it.
//!
//! Invariants: only lines of the video's broadcast sent between its start
//! and its end (now, while it records) are answered, in the order they
//! were sent; `at` is seconds since the video started by the wall clock
//! (across a publisher's reconnect the video skips the gap, so later lines
//! lead it by that gap); a line a moderator deleted is not answered.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{PathParams, QueryParams};
use super::paging::page_limit;
use super::videos::find;
use crate::error::ApiError;
use crate::identity::Role;
use crate::realtime::protocol::UserView;
use crate::AppState;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ChatParams {
    /// Seconds into the video (0 when absent).
    from: Option<f64>,
    /// Paging: the `seq` of the last line of the previous page.
    after: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize, Debug)]
pub struct ReplayLine {
    pub seq: i64,
    /// Seconds into the video.
    pub at: f64,
    pub user: UserView,
    pub text: String,
}

#[derive(Serialize, Debug)]
pub struct ChatReplay {
    pub lines: Vec<ReplayLine>,
    /// Pass as `after` (with the same `from`) for the next page; absent on
    /// the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

pub async fn video_chat(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(p): QueryParams<ChatParams>,
) -> Result<Json<ChatReplay>, ApiError> {
    let limit = page_limit(p.limit, 100)?;
    let from = p.from.unwrap_or(0.0);
    if !from.is_finite() || !(0.0..=1e7).contains(&from) {
        return Err(ApiError::BadRequest(
            "from is seconds into the video, 0 to 10,000,000".into(),
        ));
    }
    let video = find(&state, &id).await?;
    let end = match video.ended_ms {
        Some(end) => end,
        None if video.status == "recording" => crate::store::now_ms(),
        None => video.started_ms + video.duration_ms,
    };
    let rows = state
        .store()
        .chat_lines(
            &video.broadcast,
            video.started_ms + (from * 1000.0) as i64,
            end,
            p.after,
            limit,
        )
        .await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let lines = rows
        .into_iter()
        .map(|r| ReplayLine {
            seq: r.seq,
            at: (r.sent_ms - video.started_ms) as f64 / 1000.0,
            user: UserView {
                id: r.user_id,
                name: r.user_name,
                role: r.user_role.parse().unwrap_or(Role::Viewer),
            },
            text: r.text,
        })
        .collect();
    Ok(Json(ChatReplay { lines, next_after }))
}
