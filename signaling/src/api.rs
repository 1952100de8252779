//! Operational endpoints (`/healthz`, `/readyz`, Prometheus `/metrics`) and
//! the moderators' per-viewer view of a broadcast.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use serde::Serialize;

use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize, Debug)]
pub struct LayerView {
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub bitrate_kbps: u64,
}

/// Live when the media worker runs: a node whose worker died (and stayed
/// down after its restarts) answers 503, so an orchestrator replaces it
/// rather than leaving it half-alive.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.media().is_alive() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "media worker down")
    }
}

/// Ready when the media worker and the database both answer.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let media = state.media().is_alive();
    let db = state.store().ping().await;
    if media && db {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// `GET /metrics`: the registry in Prometheus text format (0.0.4).
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    prometheus_text::encode(&mut out, state.metrics())
        .map_err(|_| ApiError::Internal("encoding metrics failed".into()))?;
    Ok(([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], out))
}

/// The node's own metrics beside the media plane's: realtime connections
/// and the media workers' CPU time.
#[derive(Debug)]
pub struct NodeCollector {
    hub: crate::realtime::Hub,
}

impl NodeCollector {
    pub fn new(hub: crate::realtime::Hub) -> Self {
        NodeCollector { hub }
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connections = ConstGauge::new(self.hub.connections() as i64);
        connections.encode(encoder.encode_descriptor(
            "relaycast_ws_connections",
            "open realtime websocket connections",
            None,
            connections.metric_type(),
        )?)?;
        if let Some(seconds) = media_worker_cpu_seconds() {
            let cpu = ConstCounter::new(seconds);
            cpu.encode(encoder.encode_descriptor(
                "relaycast_media_worker_cpu_seconds",
                "CPU time of the media worker threads",
                None,
                cpu.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// CPU seconds (user + system) of the `media-worker-N` threads, from procfs;
/// `None` where procfs is absent. Divided by forwarded packets, this is the
/// server's cost per packet.
pub fn media_worker_cpu_seconds() -> Option<f64> {
    // Linux reports thread times in USER_HZ ticks, 100 per second on every
    // mainstream architecture.
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut total = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("media-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the parenthesised command name: state is the first,
        // utime the 12th and stime the 13th.
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        total += utime + stime;
        found = true;
    }
    found.then(|| total as f64 / TICKS_PER_SECOND)
}

#[derive(Serialize)]
pub struct ViewerView {
    pub session: String,
    /// The viewer's choice: auto, high, medium or low.
    pub choice: &'static str,
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub layer_bitrate_kbps: Option<u64>,
    /// The viewer's egress bandwidth estimate.
    pub estimate_kbps: Option<u64>,
    /// Video paused because the estimate is below `--viewer-min-kbps`.
    pub paused_low_bandwidth: bool,
    /// The server sheds load: this viewer gets a lower layer than its link
    /// could take, or audio only, until the load falls.
    pub limited_by_server_load: bool,
    /// Audio and video held for an ad break.
    pub in_ad_break: bool,
    /// What the player last reported it shows (`viewer.view`).
    pub player: Option<PlayerView>,
    /// Video paused: the player has been hidden for 5 s (audio continues).
    pub paused_hidden: bool,
    /// An automatic choice held at the smallest layer covering the player.
    pub fitted_to_player: bool,
    /// Bytes sent to the viewer so far (from its latest sender statistics).
    pub video_bytes_sent: u64,
    pub audio_bytes_sent: u64,
    pub switches: u32,
    pub connected: bool,
    /// Seconds since its session was created.
    pub connected_secs: u64,
    pub rtt_ms: Option<u64>,
    /// Percent of packets lost, from the viewer's receiver reports.
    pub loss_percent: Option<f32>,
    /// Where its media goes (ip:port), for operators tracing a viewer;
    /// only in the moderators' viewer table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// A player's picture in device pixels and whether its page is visible.
#[derive(Serialize)]
pub struct PlayerView {
    pub width: u32,
    pub height: u32,
    pub visible: bool,
}

pub fn viewer_view(v: relaycast_sfu::ViewerStatus) -> ViewerView {
    let dims = v.layer.and_then(|(d, _)| d);
    ViewerView {
        session: v.id.to_string(),
        choice: match v.choice {
            relaycast_sfu::LayerChoice::Auto => "auto",
            relaycast_sfu::LayerChoice::High => "high",
            relaycast_sfu::LayerChoice::Medium => "medium",
            relaycast_sfu::LayerChoice::Low => "low",
        },
        width: dims.map(|d| d.0),
        height: dims.map(|d| d.1),
        layer_bitrate_kbps: v.layer.map(|(_, bps)| bps / 1000),
        estimate_kbps: v.estimate_bps.map(|b| b / 1000),
        paused_low_bandwidth: v.paused_low_bandwidth,
        limited_by_server_load: v.limited_by_server_load,
        in_ad_break: v.in_ad_break,
        player: v.view.map(|p| PlayerView {
            width: p.width,
            height: p.height,
            visible: p.visible,
        }),
        paused_hidden: v.paused_hidden,
        fitted_to_player: v.fitted_to_player,
        video_bytes_sent: v.video_bytes_sent,
        audio_bytes_sent: v.audio_bytes_sent,
        switches: v.switches,
        connected: v.connected,
        connected_secs: v.joined.elapsed().as_secs(),
        rtt_ms: v.rtt.map(|d| d.as_millis() as u64),
        loss_percent: v.loss.map(|l| l * 100.0),
        remote: v.remote.map(|a| a.to_string()),
    }
}

/// `GET /api/broadcasts/{id}/viewers`: each viewer's layer, estimate and
/// state, for moderators and admins (it shows viewers' addresses).
pub async fn list_viewers(
    State(state): State<AppState>,
    crate::rest::Caller(who): crate::rest::Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<ViewerView>>, ApiError> {
    crate::rest::require_moderator(&who)?;
    if !state.streams().exists(&id).await? {
        return Err(ApiError::NotFound(format!("no stream named {id:?}")));
    }
    let viewers = state
        .media()
        .viewers(&relaycast_sfu::BroadcastName::new(&id));
    Ok(Json(viewers.into_iter().map(viewer_view).collect()))
}

/// `GET /whep/{stream}/{session}`: this viewer's own state, polled by the
/// watch page (e.g. to say "video paused: low bandwidth").
pub async fn whep_state(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
) -> Result<Json<ViewerView>, ApiError> {
    let id = relaycast_sfu::SessionId::parse(&session)
        .ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    state
        .media()
        .viewer(id)
        .filter(|v| v.broadcast.as_str() == stream)
        .map(|v| {
            // The viewer's own state, not where its media goes: only the
            // moderators' table shows addresses.
            Json(ViewerView {
                remote: None,
                ..viewer_view(v)
            })
        })
        .ok_or_else(|| ApiError::NotFound("no such session".into()))
}
