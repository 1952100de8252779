//! Videos on demand: `GET /api/videos` (list and search), `GET` and
//! `DELETE /api/videos/{id}`, and the recordings' HLS files under
//! `/videos/{id}/…` (master playlist, one media playlist per rendition,
//! init and media segments) with single-range requests, the right content
//! types and caching headers a CDN can honour.
//!
//! Invariants: only names the recorder writes are served (`master.m3u8`,
//! `{rendition}/index.m3u8` and `live.m3u8` (the DVR window), `init-N.mp4`,
//! `seg-N.m4s`, or `init-N.webm` and `seg-N.webm` for VP8), so no request can reach another path of the store;
//! segments never change once written (cached a year, immutable);
//! playlists change while recording (`no-cache` with an `ETag`).

use std::ops::Range;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::extract::{PathParams, QueryParams};
use super::paging::page_limit;
use super::Caller;
use crate::error::ApiError;
use crate::identity::Role;
use crate::store::{RecordedLayer, RecordingRow, VideoQuery};
use crate::AppState;

/// One video as the API shows it.
#[derive(Serialize, Debug)]
pub struct VideoView {
    pub id: String,
    pub broadcast: String,
    pub title: String,
    /// `recording` (still live: the playlists grow), `ready` or `failed`.
    pub status: String,
    /// Milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub duration_secs: f64,
    /// Renditions, largest first.
    pub layers: Vec<RecordedLayer>,
    pub hls_url: String,
    pub poster_url: String,
    /// The largest rendition as one MP4 (`?layer=` for another), once ready.
    pub download_url: String,
    pub watch_url: String,
}

fn view(r: RecordingRow) -> VideoView {
    VideoView {
        hls_url: format!("/videos/{}/master.m3u8", r.id),
        poster_url: format!("/videos/{}/poster.jpg", r.id),
        watch_url: format!("/watch/{}", r.id),
        download_url: format!("/api/videos/{}/download", r.id),
        duration_secs: r.duration_ms as f64 / 1000.0,
        id: r.id,
        broadcast: r.broadcast,
        title: r.title,
        status: r.status,
        started_ms: r.started_ms,
        layers: r.layers,
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    q: Option<String>,
    broadcast: Option<String>,
    /// Paging: the `started_ms` of the last video of the previous page.
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize, Debug)]
pub struct VideoList {
    pub videos: Vec<VideoView>,
    /// Pass as `before` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

pub async fn list_videos(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result<Json<VideoList>, ApiError> {
    let limit = page_limit(p.limit, 20)?;
    if p.q.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(ApiError::BadRequest("q is at most 200 characters".into()));
    }
    let rows = state
        .store()
        .list_recordings(&VideoQuery {
            q: p.q.filter(|q| !q.trim().is_empty()),
            broadcast: p.broadcast,
            before_ms: p.before,
            limit,
        })
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.started_ms))
        .flatten();
    Ok(Json(VideoList {
        videos: rows.into_iter().map(view).collect(),
        next_before,
    }))
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() == 33
        && id.starts_with('v')
        && id[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no video {id:?}")))
    }
}

pub(super) async fn find(state: &AppState, id: &str) -> Result<RecordingRow, ApiError> {
    valid_id(id)?;
    state
        .store()
        .recording(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no video {id:?}")))
}

pub async fn get_video(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<VideoView>, ApiError> {
    Ok(Json(view(find(&state, &id).await?)))
}

/// An admin, or the account that owns the broadcast's channel.
pub async fn delete_video(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let video = find(&state, &id).await?;
    let owner = state
        .store()
        .channel(&video.broadcast)
        .await?
        .map(|c| c.owner_id);
    if who.role != Role::Admin && owner.as_deref() != Some(who.id.as_str()) {
        return Err(ApiError::Forbidden(
            "only an admin or the channel's owner may delete its videos".into(),
        ));
    }
    if video.status == "recording" {
        return Err(ApiError::InProgress(
            "the broadcast is still being recorded; delete it once it ended".into(),
        ));
    }
    let recordings = state.recordings().ok_or_else(not_recorded)?;
    crate::recordings::remove(state.store(), recordings.as_ref(), &id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_recorded() -> ApiError {
    ApiError::NotFound("this node keeps no recordings".into())
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    /// A rendition's name (`720p`); the largest when absent.
    layer: Option<String>,
}

/// `GET /api/videos/{id}/download?layer=`: one progressive MP4 (a VP8
/// broadcast's: WebM) of a rendition (with the audio), streamed from the
/// segments; no transcoding.
pub async fn download_video(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(p): QueryParams<DownloadParams>,
) -> Result<Response, ApiError> {
    let video = find(&state, &id).await?;
    if video.status != "ready" {
        return Err(ApiError::InProgress(
            "the video can be downloaded once the broadcast ended".into(),
        ));
    }
    let layer = match p.layer {
        Some(name) => video
            .layers
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = video.layers.iter().map(|l| l.name.as_str()).collect();
                ApiError::BadRequest(format!(
                    "no layer {name:?}: this video has {}",
                    names.join(", ")
                ))
            })?,
        None => video
            .layers
            .first()
            .ok_or_else(|| ApiError::NotFound("this video has no layers".into()))?,
    };
    let store = state.recordings().ok_or_else(not_recorded)?.clone();
    let file = relaycast_sfu::recorder::progressive(store.as_ref(), &id, &layer.name)
        .await
        .map_err(|e| match e {
            relaycast_sfu::recorder::ProgressiveError::NotFound => {
                ApiError::NotFound(format!("no files for layer {:?}", layer.name))
            }
            e => ApiError::Internal(e.to_string()),
        })?;
    let head = futures_util::stream::once(async move { Ok::<_, object_store::Error>(file.header) });
    let chunks = futures_util::stream::iter(file.chunks).then(move |(path, range)| {
        let store = store.clone();
        async move { store.get_range(&path, range).await }
    });
    let trailer = file.trailer;
    let tail = futures_util::stream::once(async move { Ok::<_, object_store::Error>(trailer) });
    let mut response = Response::new(Body::from_stream(head.chain(chunks).chain(tail)));
    let name = format!(
        "{}-{}-{}.{}",
        video.broadcast,
        &relaycast_sfu::recorder::rfc3339(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(video.started_ms.max(0) as u64)
        )[..10],
        layer.name,
        file.extension
    );
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.len));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /videos/{id}/master.m3u8`
pub async fn master_playlist(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    valid_id(&id)?;
    serve(&state, &format!("{id}/master.m3u8"), &headers).await
}

/// `GET /videos/{id}/poster.jpg`: a keyframe of the smallest rendition.
pub async fn video_poster(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    valid_id(&id)?;
    serve(&state, &format!("{id}/poster.jpg"), &headers).await
}

/// `GET /api/broadcasts/{id}/poster.jpg`: the live broadcast's picture,
/// from the recording being made of it (refreshed every ~30 s).
pub async fn broadcast_poster(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let newest = state
        .store()
        .list_recordings(&VideoQuery {
            broadcast: Some(name.clone()),
            limit: 1,
            ..Default::default()
        })
        .await?;
    match newest.first() {
        Some(r) if r.status == "recording" => {
            serve(&state, &format!("{}/poster.jpg", r.id), &headers).await
        }
        _ => Err(ApiError::NotFound(format!(
            "{name:?} is not being recorded now"
        ))),
    }
}

/// `GET /videos/{id}/{rendition}/{file}`
pub async fn rendition_file(
    State(state): State<AppState>,
    PathParams((id, rendition, file)): PathParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    valid_id(&id)?;
    let rendition_ok = (1..=16).contains(&rendition.len())
        && rendition
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-');
    if !rendition_ok || kind(&file).is_none() {
        return Err(ApiError::NotFound(format!("no file {file:?}")));
    }
    serve(&state, &format!("{id}/{rendition}/{file}"), &headers).await
}

/// The content type and caching of a file the recorder writes.
fn kind(file: &str) -> Option<(&'static str, &'static str)> {
    let numbered = |prefix: &str, suffix: &str| {
        file.strip_prefix(prefix)
            .and_then(|f| f.strip_suffix(suffix))
            .is_some_and(|n| {
                !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit())
            })
    };
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    if file == "poster.jpg" {
        // Refreshed every 30 s of a live recording.
        Some(("image/jpeg", "public, max-age=30"))
    } else if matches!(file, "index.m3u8" | "live.m3u8" | "master.m3u8") {
        Some(("application/vnd.apple.mpegurl", "no-cache"))
    } else if numbered("init-", ".mp4") {
        Some(("video/mp4", IMMUTABLE))
    } else if numbered("seg-", ".m4s") {
        Some(("video/iso.segment", IMMUTABLE))
    } else if numbered("init-", ".webm") || numbered("seg-", ".webm") {
        // A VP8 recording's (see docs/operations.md, Containers).
        Some(("video/webm", IMMUTABLE))
    } else {
        None
    }
}

async fn serve(state: &AppState, path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let file = path.rsplit('/').next().unwrap_or_default();
    let (content_type, cache) = kind(file).expect("paths are checked by the handlers");
    serve_object(state, path, headers, content_type, cache).await
}

/// One object of the media store, with a single byte range, `ETag` and
/// `If-None-Match`.
pub(super) async fn serve_object(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    content_type: &'static str,
    cache: &'static str,
) -> Result<Response, ApiError> {
    let store = state.recordings().ok_or_else(not_recorded)?;
    let file = path.rsplit('/').next().unwrap_or_default();
    let range = match headers
        .get(header::RANGE)
        .map(|v| parse_range(v.as_bytes()))
    {
        None => None,
        Some(Some(r)) => Some(r),
        Some(None) => return Ok(unsatisfiable(None)),
    };
    let options = GetOptions {
        range,
        if_none_match: headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ..Default::default()
    };
    let got = match store.get_opts(&Path::from(path), options).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::NotFound(format!("no file {file:?}")))
        }
        Err(object_store::Error::NotModified { .. }) => {
            return Ok(StatusCode::NOT_MODIFIED.into_response())
        }
        Err(object_store::Error::Generic { source, .. })
            if source.to_string().contains("range") =>
        {
            return Ok(unsatisfiable(None))
        }
        Err(e) => return Err(ApiError::Internal(format!("recordings store: {e}"))),
    };
    let size = got.meta.size;
    let served: Range<u64> = got.range.clone();
    let etag = got.meta.e_tag.clone();
    let partial = headers.contains_key(header::RANGE);
    let bytes = got
        .bytes()
        .await
        .map_err(|e| ApiError::Internal(format!("recordings store: {e}")))?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{size}",
            served.start,
            served.end.saturating_sub(1)
        )) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Some(v) =
        etag.and_then(|e| HeaderValue::from_str(&format!("\"{}\"", e.trim_matches('"'))).ok())
    {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

fn unsatisfiable(size: Option<u64>) -> Response {
    let mut r = (
        StatusCode::RANGE_NOT_SATISFIABLE,
        Json(serde_json::json!({
            "error": "range_not_satisfiable",
            "message": "one byte range (bytes=A-B, A- or -N) within the file is served",
        })),
    )
        .into_response();
    if let Some(v) = size.and_then(|s| HeaderValue::from_str(&format!("bytes */{s}")).ok()) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// One `bytes=` range; `None` for anything else (several ranges, other
/// units, nonsense).
fn parse_range(v: &[u8]) -> Option<GetRange> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(GetRange::Suffix(b.parse().ok().filter(|n| *n > 0)?)),
        (false, true) => Some(GetRange::Offset(a.parse().ok()?)),
        (false, false) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then(|| GetRange::Bounded(a..b.saturating_add(1)))
        }
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_range_is_understood_and_anything_else_refused() {
        let cases: &[(&str, Option<GetRange>)] = &[
            ("bytes=0-99", Some(GetRange::Bounded(0..100))),
            ("bytes=100-", Some(GetRange::Offset(100))),
            ("bytes=-500", Some(GetRange::Suffix(500))),
            ("bytes=5-1", None),
            ("bytes=0-1,4-5", None),
            ("items=0-1", None),
            ("bytes=-", None),
            ("bytes=-0", None),
            ("bytes=x-1", None),
        ];
        for (header, want) in cases {
            assert_eq!(&parse_range(header.as_bytes()), want, "{header}");
        }
    }

    #[test]
    fn only_the_recorders_file_names_are_served() {
        for (file, served) in [
            ("index.m3u8", true),
            ("live.m3u8", true),
            ("init-0.mp4", true),
            ("seg-12.m4s", true),
            ("init-1.webm", true),
            ("seg-7.webm", true),
            ("seg-.webm", false),
            ("seg-.m4s", false),
            ("seg-1.m4s.bak", false),
            ("../master.m3u8", false),
            ("seg-99999999999.m4s", false),
        ] {
            assert_eq!(kind(file).is_some(), served, "{file}");
        }
    }
}
