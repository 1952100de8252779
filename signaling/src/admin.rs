//! `GET /api/admin/overview`: what the operator page (`/admin`) draws, in
//! one request: the media plane's counters (the page turns successive
//! snapshots into rates), each worker's load and CPU, realtime connections,
//! and per broadcast its layers, its viewers' layer mix and a viewer-health
//! table. Admins only (it shows viewers' addresses and the node's load).
//!
//! Nothing here is cached or stored: each call reads the workers' published
//! status and counters, which the workers refresh on their own tick.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::api::{media_worker_cpu_seconds, viewer_view, ViewerView};
use crate::error::ApiError;
use crate::identity::Role;
use crate::rest::Caller;
use crate::AppState;

#[derive(Serialize)]
pub struct Overview {
    /// Unix milliseconds of this snapshot.
    at_ms: u64,
    ws_connections: u64,
    /// CPU seconds of all media worker threads (None without procfs).
    worker_cpu_seconds: Option<f64>,
    workers: Vec<WorkerView>,
    /// Counters since start, by name (`rtp_packets_forwarded`, …).
    counters: BTreeMap<&'static str, u64>,
    /// Drops since start, by reason.
    drops: BTreeMap<&'static str, u64>,
    /// Viewers' joins since start: how many and their total time.
    joins: u64,
    join_seconds_sum: f64,
    broadcasts: Vec<BroadcastView>,
}

#[derive(Serialize)]
struct WorkerView {
    worker: usize,
    viewers: u64,
    publishers: u64,
    shed_level: u64,
    busy: f64,
}

#[derive(Serialize)]
struct BroadcastView {
    name: String,
    live: bool,
    viewers: usize,
    /// The publisher's layers, best first.
    layers: Vec<LayerView>,
    /// Viewers per received layer (`720p`, …; `paused` when video is off).
    mix: BTreeMap<String, usize>,
    /// Worst first: disconnected, then by loss.
    viewer_table: Vec<ViewerView>,
}

#[derive(Serialize)]
struct LayerView {
    label: String,
    width: Option<u16>,
    height: Option<u16>,
    kbps: u64,
}

/// A layer's name on the page: its height when known (`720p`), else its
/// rank.
fn label(dims: Option<(u16, u16)>, rank: usize) -> String {
    match dims {
        Some((_, h)) => format!("{h}p"),
        None => format!("layer {}", rank + 1),
    }
}

pub async fn overview(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Overview>, ApiError> {
    if who.role != Role::Admin {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    let media = state.media();
    let snapshot = media.snapshot();
    let mut broadcasts = Vec::new();
    for b in media.broadcasts() {
        let layers: Vec<LayerView> = b
            .layers
            .iter()
            .enumerate()
            .map(|(rank, (dims, bps))| LayerView {
                label: label(*dims, rank),
                width: dims.map(|d| d.0),
                height: dims.map(|d| d.1),
                kbps: bps / 1000,
            })
            .collect();
        let viewers = media.viewers(&b.name);
        let mut mix = BTreeMap::new();
        for v in &viewers {
            let key = match v.layer {
                Some((dims, _)) if !v.paused_low_bandwidth => {
                    let rank = b.layers.iter().position(|(d, _)| *d == dims).unwrap_or(0);
                    label(dims, rank)
                }
                _ => "paused".to_owned(),
            };
            *mix.entry(key).or_insert(0) += 1;
        }
        let mut viewer_table: Vec<ViewerView> = viewers.into_iter().map(viewer_view).collect();
        viewer_table.sort_by(|a, b| {
            a.connected.cmp(&b.connected).then(
                b.loss_percent
                    .unwrap_or(0.0)
                    .total_cmp(&a.loss_percent.unwrap_or(0.0)),
            )
        });
        broadcasts.push(BroadcastView {
            name: b.name.as_str().to_owned(),
            live: b.live,
            viewers: b.viewers,
            layers,
            mix,
            viewer_table,
        });
    }
    broadcasts.sort_by(|a, b| b.viewers.cmp(&a.viewers).then(a.name.cmp(&b.name)));
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Json(Overview {
        at_ms,
        ws_connections: state.hub().connections(),
        worker_cpu_seconds: media_worker_cpu_seconds(),
        workers: snapshot
            .workers
            .iter()
            .enumerate()
            .map(|(worker, w)| WorkerView {
                worker,
                viewers: w.viewers,
                publishers: w.publishers,
                shed_level: w.shed_level,
                busy: w.busy,
            })
            .collect(),
        counters: snapshot.counters.into_iter().collect(),
        drops: snapshot.drops.into_iter().collect(),
        joins: snapshot.join_time.1,
        join_seconds_sum: snapshot.join_time.0,
        broadcasts,
    }))
}
