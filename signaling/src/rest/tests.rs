//! The REST API's statuses and role checks, driven with `oneshot` against
//! the real router and a SQLite store, with the fake media plane
//! (`fake_media.rs`): REST only reads the media plane's snapshots.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::fake_media::FakeMedia;
use crate::identity::{Identity, Role};
use crate::{router, AppState, Settings};

mod ads;
mod likes;

const KEY: &str = "streamkey-live-1";

async fn state() -> AppState {
    state_with_media().await.0
}

async fn state_with_media() -> (AppState, std::sync::Arc<FakeMedia>) {
    let media = std::sync::Arc::new(FakeMedia::new());
    let store = crate::store::tests::sqlite_store().await;
    let mut settings = Settings {
        jwt_secret: b"rest-test-secret".to_vec(),
        ..Settings::default()
    };
    settings.stream_keys.insert("live".into(), KEY.into());
    settings
        .stream_keys
        .insert("news".into(), "streamkey-news-1".into());
    for id in ["live", "news"] {
        store.ensure_broadcast(id).await.unwrap();
    }
    (AppState::new(media.clone(), store, settings), media)
}

fn token(state: &AppState, role: Role, id: &str) -> String {
    state.tokens().issue(
        &Identity {
            id: id.into(),
            name: id.into(),
            role,
            stream: None,
        },
        Duration::from_secs(600),
    )
}

/// Sends a request; returns the status and the JSON body (Null if none).
async fn call(
    state: &AppState,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = router(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

/// Only the status of [`call`].
async fn status_of(
    state: &AppState,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> StatusCode {
    call(state, method, uri, token, body).await.0
}

#[tokio::test]
async fn guests_get_a_token_that_identifies_them() {
    let s = state().await;
    let (status, made) = call(
        &s,
        Method::POST,
        "/api/guest",
        None,
        Some(json!({"name": "Ann"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(made["identity"]["name"], "Ann");
    assert_eq!(made["identity"]["role"], "viewer");
    let t = made["token"].as_str().unwrap();
    let (status, me) = call(&s, Method::GET, "/api/me", Some(t), None).await;
    assert_eq!(
        (status, &me["id"]),
        (StatusCode::OK, &made["identity"]["id"])
    );
    let (status, renamed) = call(
        &s,
        Method::PATCH,
        "/api/me",
        Some(t),
        Some(json!({"name": "Bo"})),
    )
    .await;
    assert_eq!(
        (status, &renamed["identity"]["name"]),
        (StatusCode::OK, &json!("Bo"))
    );
    // A bare POST works too.
    assert_eq!(
        status_of(&s, Method::POST, "/api/guest", None, None).await,
        StatusCode::CREATED
    );
    for (token, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("garbage"), StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) = call(&s, Method::GET, "/api/me", token, None).await;
        assert_eq!(status, want);
        assert_eq!(body["error"], "unauthorized");
    }
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/guest",
        None,
        Some(json!({"name": "x".repeat(41)})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

#[tokio::test]
async fn accounts_register_once_and_log_in() {
    let s = state().await;
    let creds = json!({"username": "carol", "password": "hunter2hunter2"});
    let (status, made) = call(&s, Method::POST, "/api/accounts", None, Some(creds.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        made["identity"]["role"], "viewer",
        "accounts made over HTTP are viewers"
    );
    let (status, body) = call(&s, Method::POST, "/api/accounts", None, Some(creds.clone())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("taken"))
    );
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/accounts",
        None,
        Some(json!({"username": "dave", "password": "short"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, logged) = call(&s, Method::POST, "/api/login", None, Some(creds)).await;
    assert_eq!(
        (status, &logged["identity"]["id"]),
        (StatusCode::OK, &made["identity"]["id"])
    );
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/login",
        None,
        Some(json!({"username": "carol", "password": "wrongwrong"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
    );
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/login",
        None,
        Some(json!({"user": "carol"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

#[tokio::test]
async fn only_the_streams_broadcaster_or_an_admin_edits_it() {
    let s = state().await;
    let edit = json!({"title": "Evening News", "description": "daily", "tags": ["News"], "disclaimer": "Strong language"});
    let guest = token(&s, Role::Viewer, "g-1");
    let moderator = token(&s, Role::Moderator, "m-mod");
    let admin = token(&s, Role::Admin, "m-root");
    let cases = [
        (None, "live", StatusCode::UNAUTHORIZED),
        (Some(guest.as_str()), "live", StatusCode::FORBIDDEN),
        (Some(moderator.as_str()), "live", StatusCode::FORBIDDEN),
        (Some("streamkey-news-1"), "live", StatusCode::FORBIDDEN),
        (Some(KEY), "live", StatusCode::OK),
        (Some(admin.as_str()), "news", StatusCode::OK),
        (Some(admin.as_str()), "nope", StatusCode::NOT_FOUND),
    ];
    for (who, id, want) in cases {
        let (status, body) = call(
            &s,
            Method::PUT,
            &format!("/api/broadcasts/{id}"),
            who,
            Some(edit.clone()),
        )
        .await;
        assert_eq!(status, want, "{who:?} {id}: {body}");
    }
    let (status, b) = call(&s, Method::GET, "/api/broadcasts/live", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (b["title"].as_str(), b["tags"][0].as_str()),
        (Some("Evening News"), Some("news"))
    );
    assert_eq!(b["disclaimer"], "Strong language");
    let (status, _) = call(
        &s,
        Method::PUT,
        "/api/broadcasts/live",
        Some(KEY),
        Some(json!({"title": " "})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_catalog_searches_filters_and_pages() {
    let s = state().await;
    call(
        &s,
        Method::PUT,
        "/api/broadcasts/news",
        Some("streamkey-news-1"),
        Some(json!({"title": "News", "tags": ["news"]})),
    )
    .await;
    call(
        &s,
        Method::PUT,
        "/api/broadcasts/live",
        Some(KEY),
        Some(json!({"title": "Jazz and news tonight"})),
    )
    .await;
    let (status, page) = call(&s, Method::GET, "/api/broadcasts?q=news", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = page["broadcasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["news", "live"], "an exact title match first");
    let (_, page) = call(&s, Method::GET, "/api/broadcasts?live=true", None, None).await;
    assert!(
        page["broadcasts"].as_array().unwrap().is_empty(),
        "nothing is live"
    );
    let (_, page) = call(&s, Method::GET, "/api/broadcasts?limit=1", None, None).await;
    assert_eq!(page["broadcasts"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = call(
        &s,
        Method::GET,
        &format!("/api/broadcasts?limit=1&cursor={cursor}"),
        None,
        None,
    )
    .await;
    assert_eq!(next["broadcasts"].as_array().unwrap().len(), 1);
    assert!(next["next_cursor"].is_null());
    for bad in [
        "/api/broadcasts?sort=likes",
        "/api/broadcasts?cursor=zzz",
        "/api/broadcasts?live=maybe",
        "/api/broadcasts?limit=0",
        "/api/broadcasts?limit=101",
        "/api/broadcasts/live/comments?limit=0",
        "/api/broadcasts/live/comments?limit=101",
    ] {
        let (status, body) = call(&s, Method::GET, bad, None, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn comments_need_an_identity_and_only_authors_or_moderators_delete() {
    let s = state().await;
    let ann = token(&s, Role::Viewer, "g-ann");
    let bob = token(&s, Role::Viewer, "g-bob");
    let moderator = token(&s, Role::Moderator, "m-mod");
    let uri = "/api/broadcasts/live/comments";
    assert_eq!(
        status_of(&s, Method::POST, uri, None, Some(json!({"comment": "hi"}))).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, c1) = call(
        &s,
        Method::POST,
        uri,
        Some(&ann),
        Some(json!({"comment": "first!"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (c1["user_id"].as_str(), c1["video_id"].as_str()),
        (Some("g-ann"), Some("live"))
    );
    let (status, _) = call(
        &s,
        Method::POST,
        uri,
        Some(&ann),
        Some(json!({"comment": "x".repeat(2001)})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, c2) = call(
        &s,
        Method::POST,
        uri,
        Some(&bob),
        Some(json!({"comment": "second"})),
    )
    .await;
    let (status, page) = call(&s, Method::GET, uri, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let texts: Vec<&str> = page["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["comment"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["second", "first!"]);
    let c1 = format!("{uri}/{}", c1["id"]);
    let c2 = format!("{uri}/{}", c2["id"]);
    assert_eq!(
        status_of(&s, Method::DELETE, &c1, Some(&bob), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&s, Method::DELETE, &c1, Some(&ann), None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&s, Method::DELETE, &c2, Some(&moderator), None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&s, Method::DELETE, &c2, Some(&moderator), None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(
            &s,
            Method::DELETE,
            &format!("{uri}/abc"),
            Some(&moderator),
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(&s, Method::GET, "/api/broadcasts/nope/comments", None, None).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn only_moderators_send_and_list_alerts_and_see_viewers() {
    let s = state().await;
    let viewer = token(&s, Role::Viewer, "g-v");
    let moderator = token(&s, Role::Moderator, "m-mod");
    let alert =
        json!({"severity": "emergency", "text": "Shelter in place", "scope": "all", "ttl": 30});
    assert_eq!(
        status_of(&s, Method::POST, "/api/alerts", None, Some(alert.clone())).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/alerts",
        Some(&viewer),
        Some(alert.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            "/api/alerts",
            Some(KEY),
            Some(alert.clone())
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let (status, sent) = call(
        &s,
        Method::POST,
        "/api/alerts",
        Some(&moderator),
        Some(alert),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (
            sent["alert"]["sender_name"].as_str(),
            sent["delivered"].as_u64()
        ),
        (Some("m-mod"), Some(0))
    );
    for bad in [
        json!({"severity": "panic", "text": "x", "ttl": 30}),
        json!({"severity": "info", "text": "", "ttl": 30}),
        json!({"severity": "info", "text": "x", "ttl": 0}),
        json!({"severity": "info", "text": "x", "ttl": 30, "scope": "nope"}),
    ] {
        let (status, body) = call(
            &s,
            Method::POST,
            "/api/alerts",
            Some(&moderator),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, list) = call(
        &s,
        Method::GET,
        "/api/alerts?active=true",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        status_of(&s, Method::GET, "/api/alerts", Some(&viewer), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(
            &s,
            Method::GET,
            "/api/broadcasts/live/viewers",
            Some(&viewer),
            None
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&s, Method::GET, "/api/broadcasts/live/viewers", None, None).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, viewers) = call(
        &s,
        Method::GET,
        "/api/broadcasts/live/viewers",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!((status, viewers), (StatusCode::OK, json!([])));
}

/// Sends `offer` as a WHIP/WHEP body; the raw response, headers and all.
async fn sdp_post(
    state: &AppState,
    uri: &str,
    token: Option<&str>,
    offer: &str,
) -> axum::response::Response {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/sdp");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    router(state.clone())
        .oneshot(req.body(Body::from(offer.to_owned())).unwrap())
        .await
        .unwrap()
}

const FAKE_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

#[tokio::test]
async fn the_catalog_and_viewer_table_show_what_the_media_plane_reports() {
    let (s, _media) = state_with_media().await;
    assert_eq!(
        sdp_post(&s, "/whip/live", Some(KEY), FAKE_OFFER)
            .await
            .status(),
        StatusCode::CREATED
    );
    for _ in 0..2 {
        assert_eq!(
            sdp_post(&s, "/whep/live", None, FAKE_OFFER).await.status(),
            StatusCode::CREATED
        );
    }
    let (status, b) = call(&s, Method::GET, "/api/broadcasts/live", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (b["live"].as_bool(), b["viewers"].as_u64()),
        (Some(true), Some(2)),
        "{b}"
    );
    let (_, page) = call(&s, Method::GET, "/api/broadcasts?live=true", None, None).await;
    let ids: Vec<&str> = page["broadcasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["live"], "only the live one");
    let moderator = token(&s, Role::Moderator, "m-mod");
    let (status, viewers) = call(
        &s,
        Method::GET,
        "/api/broadcasts/live/viewers",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let viewers = viewers.as_array().unwrap();
    assert_eq!(viewers.len(), 2);
    assert!(
        viewers.iter().all(|v| v["remote"] == "192.0.2.7:40000"),
        "moderators see addresses: {viewers:?}"
    );
}

#[tokio::test]
async fn admission_refusals_are_503_with_retry_after_and_a_json_error() {
    let (s, media) = state_with_media().await;
    for (node_full, retry) in [(false, 5), (true, 30)] {
        media.set_admission(crate::fake_media::Admission::Refuse(
            Duration::from_secs(retry),
            node_full,
        ));
        let res = sdp_post(&s, "/whep/live", None, FAKE_OFFER).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some(retry.to_string().as_str())
        );
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], "overloaded", "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("capacity") || message.contains("configured"),
            "{body}"
        );
    }
    media.set_admission(crate::fake_media::Admission::Admit);
    assert_eq!(
        sdp_post(&s, "/whep/live", None, FAKE_OFFER).await.status(),
        StatusCode::CREATED,
        "admitted again once the load is gone"
    );
}

#[tokio::test]
async fn a_dead_media_plane_fails_health_and_readiness() {
    let (s, media) = state_with_media().await;
    let healthz = Request::get("/healthz").body(Body::empty()).unwrap();
    let res = router(s.clone()).oneshot(healthz).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    media.set_alive(false);
    for uri in ["/healthz", "/readyz"] {
        let req = Request::get(uri).body(Body::empty()).unwrap();
        let res = router(s.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
    }
}

#[tokio::test]
async fn a_viewers_own_state_never_shows_its_address() {
    let (s, _media) = state_with_media().await;
    let res = sdp_post(&s, "/whep/live", None, FAKE_OFFER).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let (status, body) = call(&s, Method::GET, &location, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("remote").is_none(), "{body}");
    assert!(!body.to_string().contains("192.0.2.7"), "{body}");
}
