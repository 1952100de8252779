//! Videos over REST with `oneshot`, on a real local recordings store: the
//! list and one video; deletion by an admin or the channel's owner only,
//! never while recording, removing the row and every file; the files'
//! routes refuse names the recorder does not write; retention removes
//! what is older than it keeps.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;

use super::channels::{account, admin, json_body, send, SECRET};
use crate::fake_media::FakeMedia;
use crate::store::{ChatLogEntry, LoggedLine, Store};
use crate::{router, AppState, Settings};

const ID: &str = "v0123456789abcdef0123456789abcdef";

struct Fixture {
    app: axum::Router,
    store: Store,
    objects: Arc<dyn ObjectStore>,
    _dir: tempdir::Dir,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "relaycast-videos-{}-{}",
        std::process::id(),
        crate::store::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let objects: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&dir).unwrap());
    let store = crate::store::tests::sqlite_store().await;
    let settings = Settings {
        jwt_secret: SECRET.to_vec(),
        recordings: Some(objects.clone()),
        ..Settings::default()
    };
    let app = router(AppState::new(
        Arc::new(FakeMedia::new()),
        store.clone(),
        settings,
    ));
    Fixture {
        app,
        store,
        objects,
        _dir: tempdir::Dir(dir),
    }
}

async fn put(objects: &dyn ObjectStore, path: &str, body: &[u8]) {
    objects
        .put(&Path::from(path), PutPayload::from(body.to_vec()))
        .await
        .unwrap();
}

async fn files(objects: &dyn ObjectStore, id: &str) -> usize {
    use futures_util::StreamExt;
    objects.list(Some(&Path::from(id))).count().await
}

#[tokio::test]
async fn only_an_admin_or_the_owner_deletes_a_video_and_never_while_recording() {
    let f = fixture().await;
    let ada = account(&f.app, "ada").await;
    let bob = account(&f.app, "bob").await;
    let made = send(
        &f.app,
        Method::POST,
        "/api/channels",
        Some(&ada),
        json_body(json!({"name": "ada-live"})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    f.store
        .insert_recording(ID, "ada-live", None, 1_000)
        .await
        .unwrap();
    put(
        f.objects.as_ref(),
        &format!("{ID}/master.m3u8"),
        b"#EXTM3U\n",
    )
    .await;
    put(
        f.objects.as_ref(),
        &format!("{ID}/360p/seg-0.m4s"),
        &[0; 100],
    )
    .await;

    let path = format!("/api/videos/{ID}");
    assert_eq!(
        send(&f.app, Method::DELETE, &path, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let busy = send(&f.app, Method::DELETE, &path, Some(&ada), None).await;
    assert_eq!(
        (busy.status, busy.body["error"].as_str()),
        (StatusCode::CONFLICT, Some("in_progress"))
    );
    f.store
        .update_recording(ID, 2_000, &[], Some("ready"))
        .await
        .unwrap();
    let stranger = send(&f.app, Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);

    // The files answer until the video is deleted; names the recorder never
    // writes do not, whatever is in the store.
    put(
        f.objects.as_ref(),
        &format!("{ID}/360p/notes.txt"),
        b"private",
    )
    .await;
    let seg = send(
        &f.app,
        Method::GET,
        &format!("/videos/{ID}/360p/seg-0.m4s"),
        None,
        None,
    )
    .await;
    assert_eq!(seg.status, StatusCode::OK);
    let other = send(
        &f.app,
        Method::GET,
        &format!("/videos/{ID}/360p/notes.txt"),
        None,
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let traversal = send(
        &f.app,
        Method::GET,
        &format!("/videos/{ID}/..%2F..%2Fetc/seg-0.m4s"),
        None,
        None,
    )
    .await;
    assert_eq!(traversal.status, StatusCode::NOT_FOUND);
    // Its chat replay goes with it; a later broadcast's chat stays.
    let later = crate::store::now_ms() + 60_000;
    f.store
        .log_chat(&[
            logged("ada-live", 1, 1_500, "during"),
            logged("ada-live", 2, later, "later"),
        ])
        .await
        .unwrap();

    assert_eq!(
        send(&f.app, Method::DELETE, &path, Some(&ada), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let kept: Vec<String> = f
        .store
        .chat_lines("ada-live", 0, i64::MAX, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(kept, ["later"]);
    assert_eq!(
        send(&f.app, Method::GET, &path, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        files(f.objects.as_ref(), ID).await,
        0,
        "every file went with the row"
    );
    assert_eq!(
        send(&f.app, Method::DELETE, &path, Some(&admin()), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn retention_removes_only_what_is_older_than_it_keeps() {
    let f = fixture().await;
    let old = "v00000000000000000000000000000001";
    let new = "v00000000000000000000000000000002";
    let now = crate::store::now_ms();
    for (id, started) in [(old, now - 3 * 86_400_000), (new, now - 1000)] {
        f.store
            .insert_recording(id, "live", None, started)
            .await
            .unwrap();
        f.store
            .update_recording(id, 1000, &[], Some("ready"))
            .await
            .unwrap();
        put(
            f.objects.as_ref(),
            &format!("{id}/720p/seg-0.m4s"),
            &[1; 10],
        )
        .await;
    }
    let task = tokio::spawn(crate::recordings::retention_loop(
        f.store.clone(),
        f.objects.clone(),
        Duration::from_secs(2 * 86_400),
        Duration::from_millis(20),
    ));
    for _ in 0..100 {
        if f.store.recording(old).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(f.store.recording(old).await.unwrap().is_none());
    assert_eq!(files(f.objects.as_ref(), old).await, 0);
    assert!(f.store.recording(new).await.unwrap().is_some());
    assert_eq!(files(f.objects.as_ref(), new).await, 1);
}

/// A chat line a moderator sent to `broadcast`, as the chat log keeps it.
fn logged(broadcast: &str, line_id: i64, sent_ms: i64, text: &str) -> ChatLogEntry {
    ChatLogEntry::Sent(LoggedLine {
        seq: 0,
        broadcast: broadcast.into(),
        room_ms: 1,
        line_id,
        sent_ms,
        user_id: "m-mod".into(),
        user_name: "Mod".into(),
        user_role: "moderator".into(),
        text: text.into(),
    })
}

#[tokio::test]
async fn a_videos_chat_replay_is_the_lines_of_its_span_paged_and_timed() {
    let f = fixture().await;
    let started = crate::store::now_ms() - 60_000;
    f.store
        .insert_recording(ID, "live", None, started)
        .await
        .unwrap();
    f.store
        .update_recording(ID, 20_000, &[], None)
        .await
        .unwrap();
    let entries: Vec<_> = [
        (-5_000, "before"),
        (1_500, "one"),
        (4_000, "two"),
        (9_250, "three"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (at, text))| logged("live", i as i64 + 1, started + at, text))
    .collect();
    f.store.log_chat(&entries).await.unwrap();
    let get = |q: &str| {
        let uri = format!("/api/videos/{ID}/chat{q}");
        let app = f.app.clone();
        async move { send(&app, Method::GET, &uri, None, None).await }
    };
    // Still recording: its span runs to now.
    let all = get("").await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let lines = all.body["lines"].as_array().unwrap();
    let seen: Vec<_> = lines
        .iter()
        .map(|l| (l["at"].as_f64().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [(1.5, "one"), (4.0, "two"), (9.25, "three")]);
    assert_eq!(
        lines[0]["user"],
        json!({"id": "m-mod", "name": "Mod", "role": "moderator"})
    );
    assert!(all.body.get("next_after").is_none());
    let page = get("?from=3&limit=1").await;
    assert_eq!(page.body["lines"][0]["text"], "two");
    let after = page.body["next_after"].as_i64().unwrap();
    let next = get(&format!("?from=3&limit=1&after={after}")).await;
    assert_eq!(next.body["lines"][0]["text"], "three");
    for bad in ["?from=-1", "?from=abc", "?limit=0", "?since=3"] {
        assert_eq!(get(bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let unknown = send(
        &f.app,
        Method::GET,
        "/api/videos/v00000000000000000000000000000000/chat",
        None,
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // Once ready, the span ends where the video ended: a line the room
    // sends later belongs to no replay of it.
    f.store
        .update_recording(ID, 60_000, &[], Some("ready"))
        .await
        .unwrap();
    let late = logged("live", 9, crate::store::now_ms() + 10_000, "late");
    f.store.log_chat(&[late]).await.unwrap();
    let done = get("?from=9").await;
    let texts: Vec<_> = done.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].clone())
        .collect();
    assert_eq!(texts, [json!("three")]);
}
