//! What players fetch from the ad server: `GET /ads/vast` (a break's VAST
//! 4.2 pod for one session), `GET /ads/track` (tracking pixels),
//! `GET /ads/creatives/{id}` (the creative, with byte ranges),
//! `GET /ads/companions/{id}` (its companion banner), and
//! `GET /videos/{id}/ads.vmap` (an on-demand video's schedule).
//!
//! Invariants: a VAST request and a tracking hit count only with a valid
//! signature over what they name (see `ads::signing`), so a forged or
//! altered URL is refused (403) and records nothing; an entitled viewer's
//! request gets an empty VAST; a tracking hit is idempotent (the store's
//! unique key); URLs inside documents are absolute, on the origin the
//! player asked.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Deserialize;

use super::extract::{PathParams, QueryParams};
use super::Caller;
use crate::ad_breaks::new_session;
use crate::ads::vast::{self, Served, Tracking};
use crate::ads::{pod, vmap, AD_FREE};
use crate::error::ApiError;
use crate::store::{now_ms, AdBreak, NewBreak};
use crate::AppState;

/// Events a tracking URL may record.
const EVENTS: &[&str] = &[
    "impression",
    "start",
    "firstQuartile",
    "midpoint",
    "thirdQuartile",
    "complete",
    "skip",
    "click",
    "error",
    "companionView",
    "companionClick",
];

/// Who made on-demand pre-rolls (the `triggered_by` of their break rows).
const PREROLL: &str = "preroll";

/// `scheme://host` the request came to (`X-Forwarded-Proto` says https
/// behind a TLS proxy; a forged one only breaks the forger's own URLs).
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

fn valid_session(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn xml(doc: String) -> Response {
    let mut r = Response::new(Body::from(doc));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Unknown parameters are ignored: players and verification vendors add
/// their own (cache busters, macros).
#[derive(Deserialize)]
pub struct VastQuery {
    #[serde(rename = "break")]
    break_id: i64,
    session: String,
    #[serde(default)]
    viewer: String,
    sig: String,
}

/// `GET /ads/vast?break=…&session=…&viewer=…&sig=…`
pub async fn vast_pod(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<VastQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let b = q.break_id.to_string();
    let signed = state
        .ads()
        .signer
        .verify(&["vast", &b, &q.session, &q.viewer], &q.sig);
    if !signed || !valid_session(&q.session) {
        return Err(ApiError::Forbidden(
            "this ad request is not one the server issued".into(),
        ));
    }
    if !q.viewer.is_empty()
        && state
            .store()
            .entitlement(&q.viewer, AD_FREE, now_ms())
            .await?
            .is_some()
    {
        return Ok(xml(vast::empty()));
    }
    let brk = state
        .store()
        .ad_break(q.break_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ad break {}", q.break_id)))?;
    let mut ads = Vec::new();
    for id in brk.pod_ids() {
        if let Some(ad) = state
            .store()
            .ad(id)
            .await?
            .filter(|a| a.retired_ms.is_none())
        {
            ads.push(ad);
        }
    }
    let origin = origin(&headers);
    let served: Vec<Served> = ads
        .iter()
        .map(|ad| Served {
            ad,
            media_url: format!("{origin}/ads/creatives/{}", ad.id),
            companion_url: ad
                .companion_path
                .as_ref()
                .map(|_| format!("{origin}/ads/companions/{}", ad.id)),
            tracking: tracking(&state, &origin, brk.id, ad.id, &q.session),
        })
        .collect();
    Ok(xml(vast::pod(brk.id, &q.session, &served)))
}

fn tracking(state: &AppState, origin: &str, b: i64, a: i64, session: &str) -> Tracking {
    let (b, a) = (b.to_string(), a.to_string());
    let url = |event: &str| {
        let sig = state.ads().signer.sign(&["track", &b, &a, session, event]);
        format!("{origin}/ads/track?b={b}&a={a}&s={session}&e={event}&sig={sig}")
    };
    Tracking {
        impression: url("impression"),
        error: format!("{}&code=[ERRORCODE]", url("error")),
        start: url("start"),
        first_quartile: url("firstQuartile"),
        midpoint: url("midpoint"),
        third_quartile: url("thirdQuartile"),
        complete: url("complete"),
        skip: url("skip"),
        click: url("click"),
        companion_view: url("companionView"),
        companion_click: url("companionClick"),
    }
}

#[derive(Deserialize)]
pub struct TrackQuery {
    b: i64,
    a: i64,
    s: String,
    e: String,
    sig: String,
    /// VAST's `[ERRORCODE]`, filled by the player (error events).
    #[serde(default)]
    code: Option<String>,
}

/// A 1×1 transparent GIF: what a tracking pixel answers.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /ads/track?b=…&a=…&s=…&e=…&sig=…[&code=…]`
pub async fn track(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<TrackQuery>,
) -> Result<Response, ApiError> {
    let (b, a) = (q.b.to_string(), q.a.to_string());
    let signed = state
        .ads()
        .signer
        .verify(&["track", &b, &a, &q.s, &q.e], &q.sig);
    if !signed || !EVENTS.contains(&q.e.as_str()) || !valid_session(&q.s) {
        return Err(ApiError::Forbidden(
            "this tracking URL is not one the server issued".into(),
        ));
    }
    let code = q
        .code
        .as_deref()
        .and_then(|c| c.trim().parse::<i64>().ok())
        .filter(|c| (100..1000).contains(c));
    let brk = state.store().ad_break(q.b).await?;
    if !brk.is_some_and(|brk| brk.pod_ids().contains(&q.a)) {
        return Err(ApiError::NotFound(format!(
            "ad {} is not in ad break {}",
            q.a, q.b
        )));
    }
    state
        .store()
        .record_ad_event(q.b, q.a, &q.s, &q.e, code.filter(|_| q.e == "error"))
        .await?;
    let mut r = Response::new(Body::from(PIXEL));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The ad `id`, retired or not, or 404.
async fn stored_ad(state: &AppState, id: i64) -> Result<crate::store::Ad, ApiError> {
    state
        .store()
        .ad(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ad {id}")))
}

/// `GET /ads/creatives/{id}`: an uploaded creative (retired ones too: a
/// pod already served may still be playing).
pub async fn creative(
    State(state): State<AppState>,
    PathParams(id): PathParams<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ad = stored_ad(&state, id).await?;
    let path = ad
        .creative_path
        .ok_or_else(|| ApiError::NotFound(format!("ad {id} is an external VAST tag")))?;
    let mime = if ad.mime_type == "video/webm" {
        "video/webm"
    } else {
        "video/mp4"
    };
    super::videos::serve_object(&state, &path, &headers, mime, "public, max-age=86400").await
}

/// `GET /ads/companions/{id}`: an ad's companion banner.
pub async fn companion(
    State(state): State<AppState>,
    PathParams(id): PathParams<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ad = stored_ad(&state, id).await?;
    let path = ad
        .companion_path
        .ok_or_else(|| ApiError::NotFound(format!("ad {id} has no companion banner")))?;
    let mime = match ad.companion_mime.as_str() {
        "image/png" => "image/png",
        "image/gif" => "image/gif",
        "image/webp" => "image/webp",
        _ => "image/jpeg",
    };
    super::videos::serve_object(&state, &path, &headers, mime, "public, max-age=86400").await
}

/// `GET /videos/{id}/ads.vmap`: the on-demand video's ad schedule, a
/// pre-roll and a mid-roll where each live break ran; empty for an
/// ad-free caller.
pub async fn video_vmap(
    State(state): State<AppState>,
    who: Option<Caller>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let recording = state
        .store()
        .recording(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no video {id:?}")))?;
    let viewer = who.map(|Caller(w)| w.id).unwrap_or_default();
    if !viewer.is_empty()
        && state
            .store()
            .entitlement(&viewer, AD_FREE, now_ms())
            .await?
            .is_some()
    {
        return Ok(xml(vmap::document(&[])));
    }
    let breaks = state.store().breaks_of_recording(&id).await?;
    let preroll = match breaks.iter().find(|b| b.triggered_by == PREROLL) {
        Some(p) => Some(p.clone()),
        None => make_preroll(&state, &recording.broadcast, &id).await?,
    };
    let session = new_session();
    let origin = origin(&headers);
    let slot = |b: &AdBreak, offset_ms: Option<i64>| vmap::Slot {
        offset_ms,
        break_id: b.id,
        vast_url: format!("{origin}{}", state.ads().vast_path(b.id, &session, &viewer)),
    };
    let mut slots: Vec<vmap::Slot> = preroll.iter().map(|p| slot(p, None)).collect();
    slots.extend(
        breaks
            .iter()
            .filter(|b| b.triggered_by != PREROLL)
            .map(|b| slot(b, Some(b.position_ms))),
    );
    Ok(xml(vmap::document(&slots)))
}

/// A recording's pre-roll, chosen once (so its figures add up per video);
/// `None` when no ad is active.
async fn make_preroll(
    state: &AppState,
    broadcast: &str,
    recording: &str,
) -> Result<Option<AdBreak>, ApiError> {
    let settings = state.ads().settings;
    let duration_ms = i64::from(settings.scheduled_break_secs) * 1000;
    let inventory = state.store().list_ads().await?;
    let chosen = pod::choose(
        &crate::store::inventory_for(&inventory, broadcast, now_ms()),
        now_ms(),
        duration_ms,
        settings.max_pod_ads,
        |n| rand::random_range(0..n),
    );
    if chosen.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        state
            .store()
            .insert_break(&NewBreak {
                broadcast: broadcast.to_owned(),
                recording: Some(recording.to_owned()),
                triggered_by: PREROLL.into(),
                started_ms: now_ms(),
                position_ms: 0,
                duration_ms,
                pod: chosen,
            })
            .await?,
    ))
}
