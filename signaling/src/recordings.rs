//! The control plane's side of recordings: the recorder's events kept in
//! the index ([`persist`]), recordings a crash left open closed at start-up
//! ([`repair`]), old ones removed ([`retention_loop`]), and a recording's
//! files removed with its row ([`delete_files`]).
//!
//! Invariants: the index follows the recorder, never leads it (a row says
//! `ready` only after every playlist was closed); deleting removes the
//! row first, so a half-deleted recording is never listed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use relaycast_sfu::recorder::{close_playlists, LayerSummary, RecordingEvent, RecordingSummary};
use tokio::sync::mpsc;

use crate::store::{RecordedLayer, Store};

/// The two ways recordings' housekeeping fails.
#[derive(Debug, thiserror::Error)]
pub enum RecordingsError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("recordings store: {0}")]
    Objects(#[from] object_store::Error),
}

fn layers(summary: &[LayerSummary]) -> Vec<RecordedLayer> {
    summary
        .iter()
        .map(|l| RecordedLayer {
            name: l.name.clone(),
            width: l.width,
            height: l.height,
            codecs: l.codecs.clone(),
            bytes: l.bytes,
            bitrate_bps: l.bitrate_bps,
            segments: l.segments,
            seconds: l.seconds,
        })
        .collect()
}

fn millis(s: &RecordingSummary) -> i64 {
    (s.seconds * 1000.0).round() as i64
}

/// Keeps the index in step with the recorder until its channel closes.
pub async fn persist(store: Store, mut events: mpsc::Receiver<RecordingEvent>) {
    while let Some(event) = events.recv().await {
        let result = match &event {
            RecordingEvent::Started {
                id,
                broadcast,
                publisher,
                started_at,
            } => {
                let ms = started_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let publisher = publisher.map(|p| p.to_string());
                store
                    .insert_recording(id, broadcast, publisher.as_deref(), ms)
                    .await
            }
            RecordingEvent::Progress(s) => {
                store
                    .update_recording(&s.id, millis(s), &layers(&s.layers), None)
                    .await
            }
            RecordingEvent::Finished(s) => {
                store
                    .update_recording(&s.id, millis(s), &layers(&s.layers), Some("ready"))
                    .await
            }
            RecordingEvent::Discarded { id } => store.delete_recording(id).await.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::error!("recordings index: {e}");
        }
    }
}

/// Closes the recordings the index still calls `recording` (the node
/// stopped without finishing them): `ready` to their last written
/// segment, or `failed` when nothing playable was written.
pub async fn repair(store: &Store, recordings: &dyn ObjectStore) -> Result<usize, RecordingsError> {
    let open = store.open_recordings().await?;
    for id in &open {
        let found = close_playlists(recordings, id).await?;
        let known = store
            .recording(id)
            .await?
            .map(|r| r.layers)
            .unwrap_or_default();
        let mut merged: Vec<RecordedLayer> = layers(&found)
            .into_iter()
            .filter(|l| l.segments > 0)
            .map(|mut l| {
                if let Some(k) = known.iter().find(|k| k.name == l.name) {
                    (l.width, l.height) = (k.width, k.height);
                    l.codecs.clone_from(&k.codecs);
                }
                l
            })
            .collect();
        merged.sort_by_key(|l| std::cmp::Reverse(u32::from(l.width) * u32::from(l.height)));
        let seconds = merged.iter().map(|l| l.seconds).fold(0.0, f64::max);
        let status = if merged.is_empty() { "failed" } else { "ready" };
        store
            .update_recording(id, (seconds * 1000.0).round() as i64, &merged, Some(status))
            .await?;
        tracing::info!(recording = %id, status, seconds, "closed a recording left open");
    }
    Ok(open.len())
}

/// Every file of a recording.
pub async fn delete_files(
    recordings: &dyn ObjectStore,
    id: &str,
) -> Result<(), object_store::Error> {
    let prefix = Path::from(id);
    let paths: Vec<Path> = recordings
        .list(Some(&prefix))
        .filter_map(|m| async move { m.ok().map(|m| m.location) })
        .collect()
        .await;
    for p in paths {
        match recordings.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes recordings older than `keep`, checking every `every`.
pub async fn retention_loop(
    store: Store,
    recordings: Arc<dyn ObjectStore>,
    keep: Duration,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let cutoff = crate::store::now_ms() - keep.as_millis() as i64;
        let old = match store.recordings_before(cutoff).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("retention: {e}");
                continue;
            }
        };
        for id in old {
            if let Err(e) = remove(&store, recordings.as_ref(), &id).await {
                tracing::warn!(recording = %id, "retention: {e}");
            }
        }
        // The chat log is kept as long as the recordings it replays beside.
        if let Err(e) = store.forget_chat_before(cutoff).await {
            tracing::warn!("retention (chat log): {e}");
        }
    }
}

/// The row, then the files.
pub async fn remove(
    store: &Store,
    recordings: &dyn ObjectStore,
    id: &str,
) -> Result<bool, RecordingsError> {
    let Some(video) = store.recording(id).await? else {
        return Ok(false);
    };
    if !store.delete_recording(id).await? {
        return Ok(false);
    }
    // Its chat replay goes with it (a broadcast's recordings never overlap).
    let end = video
        .ended_ms
        .unwrap_or(video.started_ms + video.duration_ms);
    store
        .forget_chat_between(&video.broadcast, video.started_ms, end)
        .await?;
    delete_files(recordings, id).await?;
    Ok(true)
}
