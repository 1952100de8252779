//! The broadcast catalog: `GET /api/broadcasts` (search, filters, sort,
//! cursor), `GET`/`PUT /api/broadcasts/{id}`. Metadata comes from the
//! store, live state (viewers, layers, since when) from the media plane,
//! likes from the store.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, PathParams, QueryParams};
use super::{require_stream, Caller};
use crate::api::LayerView;
use crate::error::ApiError;
use crate::store::{BroadcastMeta, BroadcastUpdate, LikeCounts, SearchQuery};
use crate::AppState;

/// One broadcast as the catalog shows it.
#[derive(Serialize, Debug)]
pub struct CatalogEntry {
    pub id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub disclaimer: Option<String>,
    pub live: bool,
    pub viewers: usize,
    /// Seconds since the Unix epoch when the broadcast went live.
    pub live_since: Option<u64>,
    pub likes: i64,
    pub dislikes: i64,
    /// Active simulcast layers, best first.
    pub layers: Vec<LayerView>,
    /// The account that owns the channel (display name); absent for the
    /// operator's streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

fn entry(
    meta: BroadcastMeta,
    live: Option<&relaycast_sfu::BroadcastStatus>,
    likes: LikeCounts,
    owner: Option<String>,
) -> CatalogEntry {
    CatalogEntry {
        owner,
        id: meta.id,
        title: meta.title,
        description: meta.description,
        tags: meta.tags,
        disclaimer: meta.disclaimer,
        live: live.is_some_and(|b| b.live),
        viewers: live.map_or(0, |b| b.viewers),
        live_since: live
            .and_then(|b| b.live_since)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        likes: likes.likes,
        dislikes: likes.dislikes,
        layers: live.map_or_else(Vec::new, |b| {
            b.layers
                .iter()
                .map(|(dims, bps)| LayerView {
                    width: dims.map(|d| d.0),
                    height: dims.map(|d| d.1),
                    bitrate_kbps: bps / 1000,
                })
                .collect()
        }),
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    q: Option<String>,
    live: Option<bool>,
    tag: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct Page {
    pub broadcasts: Vec<CatalogEntry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

const DEFAULT_LIMIT: i64 = 50;

/// `GET /api/broadcasts?q=&live=&tag=&sort=viewers|recent&cursor=&limit=`.
/// With `q`, results are in relevance order unless `sort` is given.
pub async fn list_broadcasts(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = usize::try_from(super::paging::page_limit(query.limit, DEFAULT_LIMIT)?)
        .expect("page_limit answers 1..=100");
    let offset: usize = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::BadRequest("cursor is not one this API gave".into()))?,
    };
    let sort = match query.sort.as_deref() {
        None => None,
        Some("viewers") => Some(Sort::Viewers),
        Some("recent") => Some(Sort::Recent),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "sort must be viewers or recent, not {other:?}"
            )))
        }
    };
    let text = query.q.filter(|q| !q.trim().is_empty());
    let searching = text.is_some();
    let metas = state
        .store()
        .search_broadcasts(&SearchQuery {
            text,
            tag: query.tag.filter(|t| !t.trim().is_empty()),
        })
        .await?;
    let live: HashMap<String, relaycast_sfu::BroadcastStatus> = state
        .media()
        .broadcasts()
        .into_iter()
        .map(|b| (b.name.to_string(), b))
        .collect();
    let likes = state.store().all_like_counts().await?;
    let owners: HashMap<String, String> = state
        .store()
        .channels()
        .await?
        .into_iter()
        .map(|c| (c.name, c.owner_name))
        .collect();
    let mut entries = Vec::new();
    for meta in metas {
        // Only streams that exist are in the catalog (a deleted channel
        // keeps its metadata row).
        let owner = owners.get(&meta.id).cloned();
        if owner.is_none() && !state.streams().is_operator(&meta.id) {
            continue;
        }
        let status = live.get(&meta.id);
        if query
            .live
            .is_some_and(|want| want != status.is_some_and(|b| b.live))
        {
            continue;
        }
        let counts = likes.get(&meta.id).copied().unwrap_or_default();
        entries.push(entry(meta, status, counts, owner));
    }
    match sort.or((!searching).then_some(Sort::Viewers)) {
        Some(Sort::Viewers) => {
            entries.sort_by(|a, b| (b.live, b.viewers, &a.id).cmp(&(a.live, a.viewers, &b.id)))
        }
        Some(Sort::Recent) => entries
            .sort_by(|a, b| (b.live, b.live_since, &a.id).cmp(&(a.live, a.live_since, &b.id))),
        None => {} // relevance, as the store ranked them
    }
    let total = entries.len();
    let page: Vec<CatalogEntry> = entries.into_iter().skip(offset).take(limit).collect();
    let next = offset + page.len();
    Ok(Json(Page {
        broadcasts: page,
        next_cursor: (next < total).then(|| next.to_string()),
    }))
}

#[derive(Clone, Copy)]
enum Sort {
    Viewers,
    Recent,
}

async fn load(state: &AppState, id: &str) -> Result<CatalogEntry, ApiError> {
    require_stream(state, id).await?;
    let meta = match state.store().broadcast_meta(id).await? {
        Some(meta) => meta,
        None => {
            state.store().ensure_broadcast(id).await?;
            state
                .store()
                .broadcast_meta(id)
                .await?
                .ok_or_else(|| ApiError::Internal("metadata row vanished".into()))?
        }
    };
    let live = state
        .media()
        .broadcasts()
        .into_iter()
        .find(|b| b.name.as_str() == id);
    let likes = state.store().like_counts(id).await?;
    let owner = if state.streams().is_operator(id) {
        None
    } else {
        state.store().channel(id).await?.map(|c| c.owner_name)
    };
    Ok(entry(meta, live.as_ref(), likes, owner))
}

/// `GET /api/broadcasts/{id}`: one configured broadcast, live or not.
pub async fn get_broadcast(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<CatalogEntry>, ApiError> {
    Ok(Json(load(&state, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    disclaimer: Option<String>,
}

/// `PUT /api/broadcasts/{id}`: the broadcaster of that stream or an admin.
pub async fn put_broadcast(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(edit): JsonBody<Edit>,
) -> Result<Json<CatalogEntry>, ApiError> {
    require_stream(&state, &id).await?;
    if !who.owns(&id) && state.streams().owner(&id).await?.as_deref() != Some(who.id.as_str()) {
        return Err(ApiError::Forbidden(
            "only this stream's broadcaster or an admin may edit it".into(),
        ));
    }
    let update = BroadcastUpdate {
        title: edit.title,
        description: edit.description,
        tags: edit.tags,
        disclaimer: edit.disclaimer,
    }
    .normalized()
    .map_err(ApiError::BadRequest)?;
    state.store().ensure_broadcast(&id).await?;
    if let Some(meta) = state.store().update_broadcast(&id, &update).await? {
        state.hub().broadcast_changed(&meta);
    }
    Ok(Json(load(&state, &id).await?))
}
