//! The ads admin API: `POST /api/ads` (an uploaded creative as multipart,
//! or an external VAST tag as JSON), `GET /api/ads` (with each ad's
//! figures), `DELETE /api/ads/{id}` (retires it); `GET /api/ads/report`
//! (per ad, optionally within one broadcast: moderators, for the console);
//! `GET /api/ads/breaks/{id}/events`; `POST /api/broadcasts/{id}/ad-breaks`;
//! `POST /api/entitlements`.
//!
//! Invariants: only admins manage ads and entitlements; a creative (and
//! its companion banner) is stored and probed (MP4 or WebM; PNG, JPEG,
//! GIF or WebP) before its row exists, so every row's files are there; URLs an ad sends viewers to are `http(s)` only.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, PathParams, QueryParams};
use super::{require_moderator, require_stream, Caller};
use crate::ads::{probe, AD_FREE};
use crate::error::ApiError;
use crate::identity::{Identity, Role};
use crate::store::{now_ms, Ad, AdEvent, AdFigures, NewAd};
use crate::AppState;

fn require_admin(who: &Identity) -> Result<(), ApiError> {
    if who.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("admins only".into()))
    }
}

/// An `http(s)` URL of reasonable length, or an error naming `field`.
fn web_url(field: &str, url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(url.to_owned())
    } else {
        Err(ApiError::BadRequest(format!(
            "{field} must be an http(s) URL of at most 2048 characters"
        )))
    }
}

fn title(t: &str) -> Result<String, ApiError> {
    let t = t.trim();
    if (1..=200).contains(&t.chars().count()) {
        Ok(t.to_owned())
    } else {
        Err(ApiError::BadRequest(
            "title must be 1-200 characters".into(),
        ))
    }
}

/// The optional settings both kinds of ad share.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdFields {
    title: String,
    /// Only this broadcast's breaks.
    #[serde(default)]
    broadcast: Option<String>,
    #[serde(default)]
    click_url: Option<String>,
    #[serde(default)]
    vast_tag_url: Option<String>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    width: Option<i64>,
    #[serde(default)]
    height: Option<i64>,
    #[serde(default)]
    skip_after_s: Option<i64>,
    #[serde(default)]
    weight: Option<i64>,
    #[serde(default)]
    starts_ms: Option<i64>,
    #[serde(default)]
    ends_ms: Option<i64>,
}

impl AdFields {
    /// Sets a form field by name (multipart values are text).
    fn set(&mut self, name: &str, value: String) -> Result<(), ApiError> {
        let int = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be an integer")))
        };
        match name {
            "title" => self.title = value,
            "broadcast" => self.broadcast = Some(value),
            "click_url" => self.click_url = Some(value),
            "duration_s" => {
                self.duration_s = Some(value.trim().parse().map_err(|_| {
                    ApiError::BadRequest("duration_s must be a number of seconds".into())
                })?)
            }
            "width" => self.width = Some(int(&value)?),
            "height" => self.height = Some(int(&value)?),
            "skip_after_s" => self.skip_after_s = Some(int(&value)?),
            "weight" => self.weight = Some(int(&value)?),
            "starts_ms" => self.starts_ms = Some(int(&value)?),
            "ends_ms" => self.ends_ms = Some(int(&value)?),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field {other:?} (file, companion, title, broadcast, click_url, \
                     duration_s, width, height, skip_after_s, weight, starts_ms, ends_ms)"
                )))
            }
        }
        Ok(())
    }

    /// The row to store, checked; `probed` is an uploaded file's probe.
    fn into_new(self, probed: Option<probe::Creative>) -> Result<NewAd, ApiError> {
        let mut ad = NewAd {
            title: title(&self.title)?,
            broadcast: self
                .broadcast
                .as_deref()
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
            click_url: match &self.click_url {
                Some(u) if !u.trim().is_empty() => web_url("click_url", u)?,
                _ => String::new(),
            },
            vast_tag_url: self
                .vast_tag_url
                .as_deref()
                .map(|u| web_url("vast_tag_url", u))
                .transpose()?,
            weight: self.weight.unwrap_or(1),
            skip_after_s: self.skip_after_s,
            starts_ms: self.starts_ms,
            ends_ms: self.ends_ms,
            ..NewAd::default()
        };
        if let Some(p) = probed {
            ad.mime_type = p.mime_type.to_owned();
            ad.width = p.width;
            ad.height = p.height;
            ad.duration_ms = p.duration_ms;
        }
        if let Some(d) = self.duration_s {
            if !(1.0..=600.0).contains(&d) {
                return Err(ApiError::BadRequest("duration_s must be 1-600".into()));
            }
            ad.duration_ms = (d * 1000.0).round() as i64;
        }
        ad.width = self.width.unwrap_or(ad.width);
        ad.height = self.height.unwrap_or(ad.height);
        if ad.duration_ms <= 0 {
            return Err(ApiError::BadRequest(
                "duration_s is needed: it could not be read from the file".into(),
            ));
        }
        if probed.is_some() && !(ad.width > 0 && ad.height > 0) {
            return Err(ApiError::BadRequest(
                "width and height are needed: they could not be read from the file".into(),
            ));
        }
        if !(0..=1000).contains(&ad.weight) {
            return Err(ApiError::BadRequest("weight must be 0-1000".into()));
        }
        if ad
            .skip_after_s
            .is_some_and(|s| s < 0 || s * 1000 >= ad.duration_ms)
        {
            return Err(ApiError::BadRequest(
                "skip_after_s must be shorter than the ad".into(),
            ));
        }
        if let (Some(s), Some(e)) = (ad.starts_ms, ad.ends_ms) {
            if e <= s {
                return Err(ApiError::BadRequest(
                    "ends_ms must be after starts_ms".into(),
                ));
            }
        }
        Ok(ad)
    }
}

/// `POST /api/ads` (admins): multipart (`file` plus fields) or JSON with a
/// `vast_tag_url`.
pub async fn create_ad(
    State(state): State<AppState>,
    Caller(who): Caller,
    request: Request,
) -> Result<(StatusCode, Json<Ad>), ApiError> {
    require_admin(&who)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let new = if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        upload(&state, multipart).await?
    } else {
        let JsonBody(fields) = JsonBody::<AdFields>::from_request(request, &state).await?;
        if fields.vast_tag_url.is_none() {
            return Err(ApiError::BadRequest(
                "a JSON ad needs a vast_tag_url; upload a creative as multipart/form-data".into(),
            ));
        }
        fields.into_new(None)?
    };
    if let Some(b) = &new.broadcast {
        require_stream(&state, b).await?;
    }
    let ad = state.store().insert_ad(&new).await?;
    Ok((StatusCode::CREATED, Json(ad)))
}

/// Reads the form, stores the creative, returns the row to insert.
async fn upload(state: &AppState, mut form: Multipart) -> Result<NewAd, ApiError> {
    let objects = state
        .recordings()
        .ok_or_else(|| ApiError::NotFound("this node has no media store for creatives".into()))?
        .clone();
    let limit = state.ads().settings.max_creative_mb * 1024 * 1024;
    let mut fields = AdFields::default();
    let mut file: Option<Bytes> = None;
    let mut banner: Option<Bytes> = None;
    let bad = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit as usize),
        _ => ApiError::BadRequest(e.body_text()),
    };
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            file = Some(field.bytes().await.map_err(bad)?);
        } else if name == "companion" {
            banner = Some(field.bytes().await.map_err(bad)?);
        } else if name == "vast_tag_url" {
            return Err(ApiError::BadRequest(
                "an external VAST tag is sent as JSON, without a file".into(),
            ));
        } else {
            let value = field.text().await.map_err(bad)?;
            fields.set(&name, value)?;
        }
    }
    let file =
        file.ok_or_else(|| ApiError::BadRequest("the creative is the field `file`".into()))?;
    if file.len() as u64 > limit {
        return Err(ApiError::PayloadTooLarge(limit as usize));
    }
    let probed = probe::probe(&file).map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
    let mut new = fields.into_new(Some(probed))?;
    let ext = if probed.mime_type == "video/webm" {
        "webm"
    } else {
        "mp4"
    };
    if let Some(banner) = banner.filter(|b| !b.is_empty()) {
        let probed = probe::probe_banner(&banner)
            .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
        let ext = probed.mime_type.trim_start_matches("image/");
        new.companion_path = Some(store_object(&objects, ext, banner).await?);
        new.companion_mime = probed.mime_type.to_owned();
        new.companion_width = probed.width;
        new.companion_height = probed.height;
    }
    new.size_bytes = file.len() as i64;
    new.creative_path = Some(store_object(&objects, ext, file).await?);
    Ok(new)
}

/// Stores an uploaded file under a fresh name in `ads/`; its path.
async fn store_object(
    objects: &std::sync::Arc<dyn object_store::ObjectStore>,
    ext: &str,
    bytes: Bytes,
) -> Result<String, ApiError> {
    let path = format!("ads/{}.{ext}", crate::ad_breaks::new_session());
    objects
        .put(
            &object_store::path::Path::from(path.as_str()),
            PutPayload::from(bytes),
        )
        .await
        .map_err(|e| ApiError::Internal(format!("storing an ad file: {e}")))?;
    Ok(path)
}

#[derive(Serialize)]
pub struct AdEntry {
    #[serde(flatten)]
    ad: Ad,
    active: bool,
    figures: AdFigures,
    /// completes ÷ impressions (0 before any impression).
    completion_rate: f64,
}

fn rate(f: &AdFigures) -> f64 {
    if f.impressions > 0 {
        f.completes as f64 / f.impressions as f64
    } else {
        0.0
    }
}

#[derive(Serialize)]
pub struct AdList {
    ads: Vec<AdEntry>,
}

/// `GET /api/ads` (admins): every ad, newest first, with its figures.
pub async fn list_ads(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<AdList>, ApiError> {
    require_admin(&who)?;
    let figures = state.store().ad_figures().await?;
    let now = now_ms();
    let ads = state
        .store()
        .list_ads()
        .await?
        .into_iter()
        .map(|ad| {
            let figures = figures
                .iter()
                .find(|f| f.ad_id == ad.id)
                .cloned()
                .unwrap_or_default();
            AdEntry {
                active: ad.active(now),
                completion_rate: rate(&figures),
                figures,
                ad,
            }
        })
        .collect();
    Ok(Json(AdList { ads }))
}

/// `DELETE /api/ads/{id}` (admins): retired, never picked again; its
/// figures stay.
pub async fn retire_ad(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<i64>,
) -> Result<StatusCode, ApiError> {
    require_admin(&who)?;
    if state.store().retire_ad(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no ad {id}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    broadcast: Option<String>,
}

#[derive(Serialize)]
pub struct ReportRow {
    #[serde(flatten)]
    figures: AdFigures,
    completion_rate: f64,
}

#[derive(Serialize)]
pub struct Report {
    broadcast: Option<String>,
    ads: Vec<ReportRow>,
    totals: ReportRow,
}

/// `GET /api/ads/report[?broadcast=…]` (moderators): impressions,
/// completion rate, clicks, skips and errors per ad, and their totals.
pub async fn ad_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<ReportQuery>,
) -> Result<Json<Report>, ApiError> {
    require_moderator(&who)?;
    let figures = match &q.broadcast {
        Some(b) => state.store().broadcast_ad_figures(b).await?,
        None => state.store().ad_figures().await?,
    };
    let mut total = AdFigures {
        title: "all ads".into(),
        ..AdFigures::default()
    };
    for f in &figures {
        total.impressions += f.impressions;
        total.starts += f.starts;
        total.completes += f.completes;
        total.skips += f.skips;
        total.clicks += f.clicks;
        total.errors += f.errors;
    }
    Ok(Json(Report {
        broadcast: q.broadcast,
        ads: figures
            .into_iter()
            .map(|f| ReportRow {
                completion_rate: rate(&f),
                figures: f,
            })
            .collect(),
        totals: ReportRow {
            completion_rate: rate(&total),
            figures: total,
        },
    }))
}

#[derive(Serialize)]
pub struct BreakEvents {
    events: Vec<AdEvent>,
}

/// `GET /api/ads/breaks/{id}/events` (admins): what the players of one
/// break reported, in order (for support and verification).
pub async fn break_events(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<i64>,
) -> Result<Json<BreakEvents>, ApiError> {
    require_admin(&who)?;
    if state.store().ad_break(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no ad break {id}")));
    }
    Ok(Json(BreakEvents {
        events: state.store().break_events(id).await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakRequest {
    duration_s: u32,
}

#[derive(Serialize)]
pub struct BreakStarted {
    id: i64,
    broadcast: String,
    duration_s: u32,
    /// The pod's ad ids, in play order.
    pod: Vec<i64>,
    /// The recording it falls in, and where.
    recording: Option<String>,
    position_ms: i64,
}

/// `POST /api/broadcasts/{id}/ad-breaks` (moderators, admins, that
/// stream's broadcaster or channel owner).
pub async fn start_break(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(request): JsonBody<BreakRequest>,
) -> Result<(StatusCode, Json<BreakStarted>), ApiError> {
    require_stream(&state, &id).await?;
    let owner = state.streams().owner(&id).await?;
    if !(who.role.can_moderate() || who.owns(&id) || owner.as_deref() == Some(who.id.as_str())) {
        return Err(ApiError::Forbidden(
            "only moderators, admins and this stream's broadcaster may start an ad break".into(),
        ));
    }
    let brk = crate::ad_breaks::start(&state, &id, &who.id, request.duration_s).await?;
    Ok((
        StatusCode::CREATED,
        Json(BreakStarted {
            id: brk.id,
            pod: brk.pod_ids(),
            broadcast: brk.broadcast,
            duration_s: request.duration_s,
            recording: brk.recording,
            position_ms: brk.position_ms,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The account's username.
    user: String,
    plan: String,
    /// From now; 0 revokes.
    days: u32,
}

#[derive(Serialize)]
pub struct Granted {
    user: String,
    plan: String,
    /// Unix ms; absent when revoked.
    until_ms: Option<i64>,
}

/// `POST /api/entitlements` (admins; the seam a payment webhook calls):
/// grants `plan` for `days`, or revokes it with `days: 0`.
pub async fn grant_entitlement(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(g): JsonBody<Grant>,
) -> Result<Json<Granted>, ApiError> {
    require_admin(&who)?;
    if g.plan != AD_FREE {
        return Err(ApiError::BadRequest(format!(
            "unknown plan {:?}: the one plan is {AD_FREE:?}",
            g.plan
        )));
    }
    if g.days > 3660 {
        return Err(ApiError::BadRequest("days must be 0-3660".into()));
    }
    let id = state
        .store()
        .account_identity(&g.user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no account named {:?}", g.user)))?;
    let until_ms = if g.days == 0 {
        state.store().revoke_entitlement(&id, &g.plan).await?;
        None
    } else {
        let until = now_ms() + i64::from(g.days) * 86_400_000;
        state
            .store()
            .grant_entitlement(&id, &g.plan, until, &who.id)
            .await?;
        Some(until)
    };
    Ok(Json(Granted {
        user: g.user,
        plan: g.plan,
        until_ms,
    }))
}

#[derive(Serialize)]
pub struct MyPlan {
    plan: &'static str,
    /// Unix ms; absent when the caller does not hold it.
    until_ms: Option<i64>,
}

/// `GET /api/me/entitlements`: the caller's ad-free plan, if any.
pub async fn my_entitlements(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<MyPlan>, ApiError> {
    let until_ms = state
        .store()
        .entitlement(&who.id, AD_FREE, now_ms())
        .await?;
    Ok(Json(MyPlan {
        plan: AD_FREE,
        until_ms,
    }))
}
