//! WHIP (RFC 9725) ingest and WHEP egress over HTTP.
//!
//! - `POST /whip/{stream}` with `Authorization: Bearer <stream key>` and an
//!   `application/sdp` offer → `201 Created`, an absolute-path `Location`
//!   (`/whip/{stream}/{session}`), the answer, an `ETag` and `Link` headers
//!   for configured STUN/TURN servers.
//! - `POST /whep/{stream}[?layer=high|medium|low|auto]` → the same for a
//!   viewer. A viewer of a configured stream may connect before the
//!   broadcaster starts: it receives media as soon as a publisher does.
//!   Only a stream that no key configures is unknown (404).
//! - `DELETE` on the resource ends the session (200); `PATCH` with
//!   `application/trickle-ice-sdpfrag` is accepted (204): the server is
//!   ICE-lite and learns peers from their STUN checks, so trickled
//!   candidates need no action.
//!
//! Who may act on a resource: a WHIP resource (a broadcast) only with the
//! stream's key as bearer token, as OBS sends it on DELETE; a WHEP resource
//! by whoever holds its URL, whose session id is 128 random bits that only
//! the viewer's own `Location` reveals (and the moderators' viewer table).

use std::net::IpAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use relaycast_sfu::{BroadcastName, LayerChoice, SessionId, SessionInfo};
use serde::Deserialize;

use crate::channels::KeyCheck;
use crate::error::ApiError;
use crate::guard::{ClientIp, Credential};
use crate::AppState;

/// Offers are a few KiB; anything near this is not an offer.
pub const MAX_BODY: usize = 64 * 1024;
const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

#[derive(Deserialize)]
pub struct WhepQuery {
    layer: Option<String>,
}

async fn known_stream(state: &AppState, stream: &str) -> Result<BroadcastName, ApiError> {
    if state.streams().exists(stream).await? {
        Ok(BroadcastName::new(stream))
    } else {
        Err(ApiError::NotFound(format!("no stream named {stream:?}")))
    }
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {expected}, got {given:?}"
        )))
    }
}

async fn read_text(body: Body) -> Result<String, ApiError> {
    let bytes = to_bytes(body, MAX_BODY).await.map_err(body_error)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8 text".into()))
}

/// Why a body could not be read: it paused too long (see `layers.rs`),
/// or it was over the limit.
fn body_error(e: axum::Error) -> ApiError {
    if crate::layers::body_timed_out(&e) {
        ApiError::BodyTimeout
    } else {
        ApiError::PayloadTooLarge(MAX_BODY)
    }
}

fn offered_ice_servers(state: &AppState) -> Vec<crate::ice_servers::IceServer> {
    let settings = state.settings();
    crate::ice_servers::offered(
        &settings.ice_servers,
        settings.turn.as_ref(),
        std::time::SystemTime::now(),
    )
}

fn link_headers(state: &AppState, headers: &mut HeaderMap) {
    for server in offered_ice_servers(state) {
        if let Ok(v) = HeaderValue::from_str(&crate::ice_servers::link_value(&server)) {
            headers.append(header::LINK, v);
        }
    }
}

/// `GET /api/ice-servers`: the STUN/TURN servers for the pages' own
/// `RTCPeerConnection`s, TURN ones with fresh credentials; never cached.
pub async fn ice_servers(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({ "ice_servers": offered_ice_servers(&state) });
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

fn created(state: &AppState, kind: &str, stream: &str, info: SessionInfo) -> Response {
    let mut response = (StatusCode::CREATED, info.answer).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    let location = format!("/{kind}/{stream}/{}", info.id);
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("stream names and hex ids are header-safe"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", info.ice_ufrag)) {
        h.insert(header::ETAG, etag);
    }
    h.insert("accept-patch", HeaderValue::from_static(SDPFRAG));
    link_headers(state, h);
    response
}

pub async fn whip_post(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_stream_key(&state, &stream, None, &headers, client).await?;
    let name = BroadcastName::new(&stream);
    require_content_type(&headers, SDP)?;
    let offer = read_text(body).await?;
    let info = state.media().publish(name, &offer).await?;
    if !state.streams().is_operator(&stream) {
        if let Some(key) = crate::auth::bearer(&headers) {
            let media = state.media();
            state
                .streams()
                .remember_session_key(&info.id.to_string(), key, |s| {
                    SessionId::parse(s)
                        .is_some_and(|id| media.exists(id, &BroadcastName::new(&stream)))
                });
        }
    }
    if let Err(e) = state
        .store()
        .session_started(&stream, &info.id.to_string())
        .await
    {
        tracing::warn!(error = %e, "could not record the session start");
    }
    tracing::info!(broadcast = %stream, session = %info.id, "publisher session created");
    Ok(created(&state, "whip", &stream, info))
}

/// The broadcast and layer choice of a new viewer session: shared by WHEP
/// and the websocket's `viewer.offer`, which then both call
/// `SfuHandle::view` with the offer.
pub(crate) async fn viewer_target(
    state: &AppState,
    stream: &str,
    layer: Option<&str>,
) -> Result<(BroadcastName, LayerChoice), ApiError> {
    let name = known_stream(state, stream).await?;
    let choice = match layer {
        None => LayerChoice::Auto,
        Some(s) => s.parse::<LayerChoice>().map_err(ApiError::BadRequest)?,
    };
    Ok((name, choice))
}

pub async fn whep_post(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(query): Query<WhepQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, choice) = viewer_target(&state, &stream, query.layer.as_deref()).await?;
    require_content_type(&headers, SDP)?;
    let offer = read_text(body).await?;
    let info = state.media().view(name, &offer, choice).await?;
    Ok(created(&state, "whep", &stream, info))
}

fn session_id(s: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(s).ok_or_else(|| ApiError::NotFound("no such session".into()))
}

/// A WHIP endpoint acts only for the holder of its stream's key (a WHIP
/// resource also for the key its session was created with, so a channel's
/// publisher keeps its session across a key rotation); an unknown stream
/// is 404 before any key is compared; a suspended channel's right key is
/// 403 with the reason. Wrong keys are throttled per client and per stream
/// ([`crate::guard`]): while locked out, the key is not compared at all.
async fn require_stream_key(
    state: &AppState,
    stream: &str,
    session: Option<&str>,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<(), ApiError> {
    let found = state
        .streams()
        .find(stream)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stream named {stream:?}")))?;
    let guards = state.guards();
    guards.check(Credential::Key, client, Some(stream))?;
    let given = crate::auth::bearer(headers).unwrap_or("");
    let mut check = state.streams().check(&found, given);
    if check == KeyCheck::Wrong && session.is_some_and(|s| state.streams().created_with(s, given)) {
        check = KeyCheck::Accepted;
    }
    match check {
        KeyCheck::Accepted => {
            guards.succeeded(Credential::Key, client, stream);
            Ok(())
        }
        KeyCheck::Suspended(reason) => {
            guards.succeeded(Credential::Key, client, stream);
            Err(ApiError::Forbidden(format!(
                "this channel is suspended: {reason}"
            )))
        }
        KeyCheck::Wrong => {
            guards.failed(Credential::Key, client, Some(stream));
            Err(ApiError::WrongStreamKey)
        }
    }
}

pub async fn whip_delete(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    require_stream_key(&state, &stream, Some(&session), &headers, client).await?;
    let id = session_id(&session)?;
    state.media().end(id, BroadcastName::new(&stream)).await?;
    state.streams().forget_session(&session);
    if let Err(e) = state.store().session_ended(&session).await {
        tracing::warn!(error = %e, "could not record the session end");
    }
    tracing::info!(broadcast = %stream, session = %id, "publisher session ended by DELETE");
    Ok(StatusCode::OK)
}

pub async fn whep_delete(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = session_id(&session)?;
    state.media().end(id, BroadcastName::new(&stream)).await?;
    Ok(StatusCode::OK)
}

async fn patch(
    state: AppState,
    stream: String,
    session: String,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let id = session_id(&session)?;
    require_content_type(&headers, SDPFRAG)?;
    let _fragment = read_text(body).await?;
    if !state.media().exists(id, &BroadcastName::new(&stream)) {
        return Err(ApiError::NotFound("no such session".into()));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn whip_patch(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    require_stream_key(&state, &stream, Some(&session), &headers, client).await?;
    patch(state, stream, session, headers, body).await
}

pub async fn whep_patch(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    patch(state, stream, session, headers, body).await
}

/// `OPTIONS` on an endpoint: CORS preflight, and the ICE servers (RFC 9725
/// lets a client learn them before it creates its offer).
pub async fn options_post(State(state): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert("accept-post", HeaderValue::from_static(SDP));
    link_headers(&state, h);
    response
}

pub async fn options_resource() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert("accept-patch", HeaderValue::from_static(SDPFRAG));
    response
}

/// A small JSON body of the shape `expected` names, or 400 saying so.
async fn read_json<T: serde::de::DeserializeOwned>(
    body: Body,
    expected: &str,
) -> Result<T, ApiError> {
    let text = read_text(body).await?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::BadRequest(format!("expected {expected}: {e}")))
}

/// 404 unless `id` is a session of `stream`.
fn viewer_exists(state: &AppState, id: SessionId, stream: &str) -> Result<(), ApiError> {
    if state.media().exists(id, &BroadcastName::new(stream)) {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such session".into()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewRequest {
    width: u32,
    height: u32,
    visible: bool,
}

/// `POST /whep/{stream}/{session}/view` with `{"width": 640, "height": 360,
/// "visible": true}`: what the viewer's player shows (the websocket's
/// `viewer.view`).
pub async fn whep_view(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let id = session_id(&session)?;
    let request: ViewRequest = read_json(
        body,
        "{\"width\": pixels, \"height\": pixels, \"visible\": true|false}",
    )
    .await?;
    let view = relaycast_sfu::Viewport {
        width: request.width,
        height: request.height,
        visible: request.visible,
    };
    crate::media::check_view(&view).map_err(ApiError::BadRequest)?;
    viewer_exists(&state, id, &stream)?;
    state.media().set_view(id, view).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct LayerRequest {
    layer: String,
}

/// `POST /whep/{stream}/{session}/layer` with `{"layer": "high|medium|low|auto"}`:
/// the viewer's quality choice, applied at the next keyframe of that layer
/// without renegotiation.
pub async fn whep_layer(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let id = session_id(&session)?;
    let request: LayerRequest = read_json(body, "{\"layer\": \"high|medium|low|auto\"}").await?;
    let choice = request
        .layer
        .parse::<LayerChoice>()
        .map_err(ApiError::BadRequest)?;
    viewer_exists(&state, id, &stream)?;
    state.media().set_layer(id, choice).await?;
    Ok(StatusCode::NO_CONTENT)
}
