//! The store's behaviour, on SQLite always and on a real PostgreSQL when
//! `RELAYCAST_TEST_POSTGRES=1` (with `RELAYCAST_TEST_DATABASE_URL`; the
//! test script starts one). Each PostgreSQL run works in a fresh schema.

use super::*;
use crate::identity::{Identity, Role};

pub(crate) async fn sqlite_store() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "relaycast-store-{}-{}-{}",
        std::process::id(),
        now_ms(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Store::open_sqlite(&dir.join("test.db")).await.unwrap()
}

fn rand_suffix() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A store on a fresh PostgreSQL schema, when the tests are asked to use one.
async fn postgres_store() -> Option<Store> {
    if std::env::var("RELAYCAST_TEST_POSTGRES").ok().as_deref() != Some("1") {
        return None;
    }
    let base = std::env::var("RELAYCAST_TEST_DATABASE_URL")
        .expect("RELAYCAST_TEST_POSTGRES=1 needs RELAYCAST_TEST_DATABASE_URL");
    let schema = format!("t{}_{}", std::process::id(), rand_suffix());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("PostgreSQL answers");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    Some(
        Store::open_postgres(&url)
            .await
            .expect("PostgreSQL store opens"),
    )
}

async fn stores() -> Vec<Store> {
    let mut all = vec![sqlite_store().await];
    all.extend(postgres_store().await);
    all
}

fn moderator() -> Identity {
    Identity {
        id: "m-alice".into(),
        name: "alice".into(),
        role: Role::Moderator,
        stream: None,
    }
}

#[tokio::test]
async fn likes_are_one_per_user_changeable_and_withdrawable() {
    for store in stores().await {
        let b = store.backend();
        assert_eq!(
            store.set_like("live", "u1", Some(true)).await.unwrap(),
            LikeCounts {
                likes: 1,
                dislikes: 0
            },
            "{b:?}"
        );
        store.set_like("live", "u2", Some(true)).await.unwrap();
        let counts = store.set_like("live", "u1", Some(false)).await.unwrap();
        assert_eq!(
            counts,
            LikeCounts {
                likes: 1,
                dislikes: 1
            },
            "{b:?}"
        );
        assert_eq!(store.my_like("live", "u1").await.unwrap(), Some(false));
        assert_eq!(store.my_like("live", "u3").await.unwrap(), None);
        let counts = store.set_like("live", "u1", None).await.unwrap();
        assert_eq!(
            counts,
            LikeCounts {
                likes: 1,
                dislikes: 0
            },
            "{b:?}"
        );
        assert_eq!(
            store.like_counts("other").await.unwrap(),
            LikeCounts::default()
        );
        store.set_like("other", "u1", Some(false)).await.unwrap();
        let all = store.all_like_counts().await.unwrap();
        assert_eq!(
            all["live"],
            LikeCounts {
                likes: 1,
                dislikes: 0
            },
            "{b:?}"
        );
        assert_eq!(
            all["other"],
            LikeCounts {
                likes: 0,
                dislikes: 1
            },
            "{b:?}"
        );
    }
}

#[tokio::test]
async fn comments_page_newest_first_and_delete() {
    for store in stores().await {
        let mut ids = Vec::new();
        for i in 0..5 {
            let c = store
                .add_comment("live", "u1", "Ann", &format!("c{i}"))
                .await
                .unwrap();
            assert_eq!((c.video_id.as_str(), c.user_name.as_str()), ("live", "Ann"));
            ids.push(c.id);
        }
        let page = store.comments("live", None, 3).await.unwrap();
        let texts: Vec<&str> = page.iter().map(|c| c.comment.as_str()).collect();
        assert_eq!(texts, ["c4", "c3", "c2"]);
        let next = store.comments("live", Some(page[2].id), 3).await.unwrap();
        let texts: Vec<&str> = next.iter().map(|c| c.comment.as_str()).collect();
        assert_eq!(texts, ["c1", "c0"]);
        assert!(store.delete_comment("live", ids[0]).await.unwrap());
        assert!(!store.delete_comment("live", ids[0]).await.unwrap());
        assert!(store.comment("live", ids[0]).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn the_chat_log_replays_a_time_span_in_order_pages_and_forgets_deleted_lines() {
    use super::{ChatLogEntry, LoggedLine};
    for store in stores().await {
        // Unique per run: a PostgreSQL test database outlives the test.
        let b = format!("chatlog-{}", now_ms());
        let line = |room_ms: i64, line_id: i64, sent_ms: i64, text: &str| {
            ChatLogEntry::Sent(LoggedLine {
                seq: 0,
                broadcast: b.clone(),
                room_ms,
                line_id,
                sent_ms,
                user_id: "g-1".into(),
                user_name: "Ann".into(),
                user_role: "viewer".into(),
                text: text.into(),
            })
        };
        // Openings of the room (50, 100, 500) reuse line id 1; deleting
        // one's leaves the others'.
        store
            .log_chat(&[
                line(50, 1, 1_000, "before"),
                line(100, 1, 2_000, "one"),
                line(100, 2, 3_000, "two"),
                line(500, 1, 4_000, "three"),
                line(500, 2, 9_000, "after"),
            ])
            .await
            .unwrap();
        store
            .log_chat(&[ChatLogEntry::Deleted {
                broadcast: b.clone(),
                room_ms: 100,
                line_id: 1,
            }])
            .await
            .unwrap();
        store
            .log_chat(&[line(500, 3, 5_000, "four")])
            .await
            .unwrap();
        let texts = |lines: &[LoggedLine]| lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        let all = store.chat_lines(&b, 1_500, 8_000, None, 10).await.unwrap();
        assert_eq!(texts(&all), ["two", "three", "four"]);
        let first = store.chat_lines(&b, 1_500, 8_000, None, 2).await.unwrap();
        assert_eq!(texts(&first), ["two", "three"]);
        let rest = store
            .chat_lines(&b, 1_500, 8_000, Some(first[1].seq), 2)
            .await
            .unwrap();
        assert_eq!(texts(&rest), ["four"]);
        assert!(store
            .chat_lines("other", 0, i64::MAX, None, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store.forget_chat_before(3_500).await.unwrap() >= 1);
        let kept = store.chat_lines(&b, 0, i64::MAX, None, 10).await.unwrap();
        assert_eq!(texts(&kept), ["three", "after", "four"]);
    }
}

#[tokio::test]
async fn alerts_are_active_until_they_expire() {
    for store in stores().await {
        let new = NewAlert {
            severity: Severity::Emergency,
            text: " Evacuate ".into(),
            scope: "all".into(),
            ttl_secs: 60,
            sender: moderator(),
        };
        let alert = store.insert_alert(&new).await.unwrap();
        assert_eq!(alert.text, "Evacuate");
        assert_eq!(alert.expires_ms - alert.created_ms, 60_000);
        assert_eq!(alert.sender_name, "alice");
        let active = store.active_alerts(alert.created_ms + 1).await.unwrap();
        assert_eq!(active, vec![alert.clone()]);
        assert!(store
            .active_alerts(alert.expires_ms)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.recent_alerts(5).await.unwrap(), vec![alert]);
    }
}

#[tokio::test]
async fn search_ranks_an_exact_title_match_first() {
    for store in stores().await {
        for (id, title, description, tags) in [
            (
                "a",
                "Jazz night news",
                "late jazz and the news",
                vec!["music"],
            ),
            ("b", "News", "the evening news", vec!["news"]),
            ("c", "Cooking", "pasta, no news here", vec!["food"]),
            ("d", "Football", "the match", vec!["sport"]),
        ] {
            store.ensure_broadcast(id).await.unwrap();
            let update = BroadcastUpdate {
                title: title.into(),
                description: description.into(),
                tags: tags.into_iter().map(String::from).collect(),
                disclaimer: None,
            }
            .normalized()
            .unwrap();
            store.update_broadcast(id, &update).await.unwrap();
        }
        let b = store.backend();
        let found = store
            .search_broadcasts(&SearchQuery {
                text: Some("news".into()),
                tag: None,
            })
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.first(), Some(&"b"), "{b:?}: {ids:?}");
        assert!(
            ids.contains(&"a") && ids.contains(&"c") && !ids.contains(&"d"),
            "{b:?}: {ids:?}"
        );
        let prefix = store
            .search_broadcasts(&SearchQuery {
                text: Some("foot".into()),
                tag: None,
            })
            .await
            .unwrap();
        assert_eq!(prefix.len(), 1, "{b:?}: prefix match");
        let tagged = store
            .search_broadcasts(&SearchQuery {
                text: None,
                tag: Some("Food".into()),
            })
            .await
            .unwrap();
        assert_eq!(
            tagged.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        let meta = store.broadcast_meta("b").await.unwrap().unwrap();
        assert_eq!(meta.tags, ["news"]);
    }
}

#[tokio::test]
async fn accounts_are_unique_and_check_their_password() {
    for store in stores().await {
        let account = store
            .create_account("alice", "correct horse")
            .await
            .unwrap();
        assert!(matches!(
            store.create_account("alice", "another pass").await,
            Err(UserError::Taken)
        ));
        assert!(matches!(
            store.create_account("x", "correct horse").await,
            Err(UserError::Invalid(_))
        ));
        assert_eq!(
            store.login("alice", "correct horse").await.unwrap(),
            Some(account.clone())
        );
        assert_eq!(store.login("alice", "wrong pass").await.unwrap(), None);
        assert_eq!(store.login("nobody", "correct horse").await.unwrap(), None);
    }
}

/// Hardening defect 6: the WAL grew to 218 MB over 17k comments and was
/// never folded back. A checkpoint empties it into the database file, and
/// closing the store leaves no WAL behind.
#[tokio::test]
async fn a_checkpoint_empties_the_wal_into_the_database() {
    let dir = std::env::temp_dir().join(format!(
        "relaycast-wal-{}-{}-{}",
        std::process::id(),
        now_ms(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("test.db");
    let wal = dir.join("test.db-wal");
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let store = Store::open_sqlite(&db).await.unwrap();
    for i in 0..300 {
        store
            .add_comment("live", "u1", "Ann", &format!("comment number {i}"))
            .await
            .unwrap();
    }
    assert!(size(&wal) > 1024 * 1024, "300 comments fill the WAL first");
    assert!(store.checkpoint().await.unwrap(), "a checkpoint completes");
    assert_eq!(size(&wal), 0, "TRUNCATE leaves an empty WAL");
    assert!(size(&db) > 16 * 1024, "the rows are in the database file");
    store
        .add_comment("live", "u1", "Ann", "after the checkpoint")
        .await
        .unwrap();
    store.close().await;
    assert_eq!(size(&wal), 0, "closing checkpoints: {} B", size(&wal));
    let reopened = Store::open_sqlite(&db).await.unwrap();
    assert_eq!(
        reopened.comments("live", None, 1).await.unwrap()[0].comment,
        "after the checkpoint"
    );
    reopened.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn channels_are_unique_listed_per_owner_suspended_and_deleted_softly() {
    use crate::store::ChannelError;
    for store in stores().await {
        let made = store
            .create_channel("ada-live", "u-1", "ada", "hash-1")
            .await
            .unwrap();
        assert_eq!(made.suspended, None);
        assert!(matches!(
            store
                .create_channel("ada-live", "u-2", "bob", "hash-2")
                .await,
            Err(ChannelError::Taken)
        ));
        store
            .create_channel("ada-two", "u-1", "ada", "hash-3")
            .await
            .unwrap();
        let mine: Vec<String> = store
            .channels_of("u-1")
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(mine, ["ada-live", "ada-two"]);
        assert!(store.channels_of("u-2").await.unwrap().is_empty());
        // Its metadata row exists, titled with the name.
        assert_eq!(
            store
                .broadcast_meta("ada-live")
                .await
                .unwrap()
                .unwrap()
                .title,
            "ada-live"
        );

        assert!(store.set_channel_key("ada-live", "hash-9").await.unwrap());
        assert_eq!(
            store.channel("ada-live").await.unwrap().unwrap().key_hash,
            "hash-9"
        );
        assert!(store
            .set_channel_suspended("ada-live", Some("spam"))
            .await
            .unwrap());
        assert_eq!(
            store
                .channel("ada-live")
                .await
                .unwrap()
                .unwrap()
                .suspended
                .as_deref(),
            Some("spam")
        );
        assert!(store.set_channel_suspended("ada-live", None).await.unwrap());
        assert_eq!(
            store.channel("ada-live").await.unwrap().unwrap().suspended,
            None
        );

        assert!(store.delete_channel("ada-live").await.unwrap());
        assert!(
            !store.delete_channel("ada-live").await.unwrap(),
            "already deleted"
        );
        assert!(store.channel("ada-live").await.unwrap().is_none());
        assert!(
            store.channel_name_used("ada-live").await.unwrap(),
            "the name stays taken"
        );
        assert!(!store.set_channel_key("ada-live", "hash-10").await.unwrap());
        assert_eq!(store.channels().await.unwrap().len(), 1);
        assert!(matches!(
            store
                .create_channel("ada-live", "u-1", "ada", "hash-11")
                .await,
            Err(ChannelError::Taken)
        ));
    }
}

#[tokio::test]
async fn recordings_are_indexed_updated_searched_and_repaired() {
    use crate::store::{RecordedLayer, VideoQuery};
    for store in stores().await {
        store.ensure_broadcast("show").await.unwrap();
        store
            .insert_recording("v1", "show", Some("s-1"), 1_000)
            .await
            .unwrap();
        store
            .insert_recording("v2", "other", None, 2_000)
            .await
            .unwrap();
        let layer = RecordedLayer {
            name: "720p".into(),
            width: 1280,
            height: 720,
            codecs: "avc1.64001f,opus".into(),
            bytes: 5_000_000,
            bitrate_bps: 2_000_000,
            segments: 10,
            seconds: 20.0,
        };
        store
            .update_recording("v1", 20_000, std::slice::from_ref(&layer), None)
            .await
            .unwrap();
        let v1 = store.recording("v1").await.unwrap().unwrap();
        // The title is the broadcast's at the start; the layers as reported.
        assert_eq!(
            (v1.title.as_str(), v1.status.as_str()),
            ("show", "recording")
        );
        assert_eq!((v1.duration_ms, v1.layers), (20_000, vec![layer]));
        assert_eq!(store.open_recordings().await.unwrap().len(), 2);
        store
            .update_recording("v1", 20_000, &[], Some("ready"))
            .await
            .unwrap();
        assert_eq!(store.open_recordings().await.unwrap(), ["v2"]);
        assert!(store
            .recording("v1")
            .await
            .unwrap()
            .unwrap()
            .ended_ms
            .is_some());

        let list = |q: Option<&str>, broadcast: Option<&str>, before_ms| {
            let store = store.clone();
            let query = VideoQuery {
                q: q.map(str::to_string),
                broadcast: broadcast.map(str::to_string),
                before_ms,
                limit: 10,
            };
            async move {
                let rows = store.list_recordings(&query).await.unwrap();
                rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(list(None, None, None).await, ["v2", "v1"], "newest first");
        assert_eq!(list(Some("SHO"), None, None).await, ["v1"]);
        assert_eq!(list(Some("50%_"), None, None).await, Vec::<String>::new());
        assert_eq!(list(None, Some("other"), None).await, ["v2"]);
        assert_eq!(list(None, None, Some(2_000)).await, ["v1"]);
        assert_eq!(store.recordings_before(1_500).await.unwrap(), ["v1"]);
        assert!(store.delete_recording("v1").await.unwrap());
        assert!(!store.delete_recording("v1").await.unwrap());
    }
}

mod ads;
