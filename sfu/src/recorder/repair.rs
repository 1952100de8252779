//! Closing recordings a crash left open: at start-up, every rendition of
//! a recording the index still calls `recording` gets one `VOD` playlist
//! with `#EXT-X-ENDLIST`, merged from its complete playlist as last
//! written and its live window ([`super::closing`]), written as both
//! `index.m3u8` and `live.m3u8`; what it lists is summed, and the master
//! is pointed at the complete playlists.
//!
//! Invariant: a playlist only ever lists segments already written (the
//! recorder writes the segment first), so the repaired recording plays
//! to its last complete segment.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::closing::closed;
use super::LayerSummary;

/// The renditions of recording `id` with their playlists closed; an empty
/// list when nothing of it was written.
pub async fn close_playlists(
    store: &dyn ObjectStore,
    id: &str,
) -> Result<Vec<LayerSummary>, object_store::Error> {
    let listing = store.list_with_delimiter(Some(&Path::from(id))).await?;
    let mut layers = Vec::new();
    for dir in listing.common_prefixes {
        let Some(name) = dir.filename().map(str::to_string) else {
            continue;
        };
        let path = dir.clone().join("index.m3u8");
        let index = read_text(store, &path).await?;
        let live = read_text(store, &dir.clone().join("live.m3u8")).await?;
        let Some((closed, seconds, segments)) = closed(index.as_deref(), live.as_deref()) else {
            continue;
        };
        if index.as_deref() != Some(closed.as_str()) || live.as_deref() != Some(closed.as_str()) {
            let closed = PutPayload::from(closed.into_bytes());
            store.put(&path, closed.clone()).await?;
            store.put(&dir.clone().join("live.m3u8"), closed).await?;
        }
        let bytes = segment_bytes(store, &dir).await?;
        layers.push(LayerSummary {
            name,
            width: 0,
            height: 0,
            codecs: String::new(),
            bytes,
            bitrate_bps: if seconds > 0.0 {
                (bytes as f64 * 8.0 / seconds) as u64
            } else {
                0
            },
            segments,
            seconds,
        });
    }
    let master = Path::from(id).join("master.m3u8");
    match store.get(&master).await {
        Ok(got) => {
            let text = String::from_utf8_lossy(&got.bytes().await?).into_owned();
            let done = text.replace("/live.m3u8", "/index.m3u8");
            if done != text {
                store
                    .put(&master, PutPayload::from(done.into_bytes()))
                    .await?;
            }
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(layers)
}

/// The bytes of a rendition's media (init and media segments).
async fn segment_bytes(store: &dyn ObjectStore, dir: &Path) -> Result<u64, object_store::Error> {
    let listing = store.list_with_delimiter(Some(dir)).await?;
    Ok(listing
        .objects
        .iter()
        .filter(|o| {
            o.location
                .extension()
                .is_some_and(|e| matches!(e, "m4s" | "mp4" | "webm"))
        })
        .map(|o| o.size)
        .sum())
}

/// A playlist's text, `None` when it was never written.
async fn read_text(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<String>, object_store::Error> {
    match store.get(path).await {
        Ok(got) => Ok(Some(
            String::from_utf8_lossy(&got.bytes().await?).into_owned(),
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::local::LocalFileSystem;

    use super::*;

    #[tokio::test]
    async fn an_open_playlist_is_closed_and_summed() {
        let dir = std::env::temp_dir().join(format!("relaycast-repair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Arc::new(LocalFileSystem::new_with_prefix(&dir).expect("local store"));
        let open = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.000,\nseg-0.m4s\n#EXTINF:1.500,\nseg-1.m4s\n";
        store
            .put(
                &Path::from("v1/720p/index.m3u8"),
                PutPayload::from(open.as_bytes().to_vec()),
            )
            .await
            .expect("put");
        store
            .put(
                &Path::from("v1/720p/seg-0.m4s"),
                PutPayload::from(vec![0u8; 1000]),
            )
            .await
            .expect("put");
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/live.m3u8\n";
        store
            .put(
                &Path::from("v1/master.m3u8"),
                PutPayload::from(master.as_bytes().to_vec()),
            )
            .await
            .expect("put");
        let layers = close_playlists(store.as_ref(), "v1")
            .await
            .expect("repairs");
        assert_eq!(layers.len(), 1);
        assert_eq!((layers[0].segments, layers[0].seconds), (2, 3.5));
        let text = store
            .get(&Path::from("v1/720p/index.m3u8"))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.ends_with("#EXT-X-ENDLIST\n"));
        let read = |p: &'static str| {
            let store = store.clone();
            async move {
                let got = store.get(&Path::from(p)).await.expect("get");
                String::from_utf8(got.bytes().await.expect("bytes").to_vec()).expect("utf-8")
            }
        };
        assert_eq!(read("v1/720p/live.m3u8").await, text);
        assert!(read("v1/master.m3u8")
            .await
            .ends_with("\n720p/index.m3u8\n"));
        assert_eq!(layers[0].bytes, 1000, "only media counts");
        std::fs::remove_dir_all(&dir).ok();
    }
}
