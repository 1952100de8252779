//! Hardening defect 11: names accepted `""` and U+202E (a bidi override
//! that makes one name read as another); comments, alerts and titles
//! accepted U+0000; a 401 on an endpoint with no stream said "…for this
//! stream…". Each now gets a 400 (or the right 401) naming the problem.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::fake_media::FakeMedia;
use crate::identity::{Identity, Role};
use crate::{router, AppState, Settings};

async fn app() -> (axum::Router, String) {
    let store = crate::store::tests::sqlite_store().await;
    let mut settings = Settings {
        jwt_secret: b"text-test-secret".to_vec(),
        ..Settings::default()
    };
    settings.stream_keys.insert("live".into(), "key-1".into());
    store.ensure_broadcast("live").await.unwrap();
    let state = AppState::new(Arc::new(FakeMedia::new()), store, settings);
    let admin = Identity {
        id: "m-admin".into(),
        name: "mod".into(),
        role: Role::Admin,
        stream: None,
    };
    let token = state.tokens().issue(&admin, Duration::from_secs(600));
    (router(state), token)
}

async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn names_titles_comments_and_alerts_refuse_invisible_and_control_characters() {
    let (app, admin) = app().await;
    let (status, guest) = send(&app, Method::POST, "/api/guest", None, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{guest}");
    let token = guest["token"].as_str().unwrap().to_owned();

    let refused: &[(Method, &str, &str, Value, &str)] = &[
        (
            Method::PATCH,
            "/api/me",
            "guest",
            json!({"name": ""}),
            "1-40 characters",
        ),
        (
            Method::PATCH,
            "/api/me",
            "guest",
            json!({"name": "   "}),
            "1-40 characters",
        ),
        (
            Method::PATCH,
            "/api/me",
            "guest",
            json!({"name": "admin\u{202E}nimda"}),
            "invisible",
        ),
        (
            Method::PATCH,
            "/api/me",
            "guest",
            json!({"name": "a\u{0}b"}),
            "control",
        ),
        (
            Method::POST,
            "/api/guest",
            "",
            json!({"name": "\u{2067}mod"}),
            "invisible",
        ),
        (
            Method::POST,
            "/api/broadcasts/live/comments",
            "guest",
            json!({"comment": "hi\u{0}there"}),
            "control",
        ),
        (
            Method::PUT,
            "/api/broadcasts/live",
            "admin",
            json!({"title": "News\u{0}", "description": "", "tags": []}),
            "control",
        ),
        (
            Method::PUT,
            "/api/broadcasts/live",
            "admin",
            json!({"title": "News", "description": "", "tags": ["a\u{202E}b"]}),
            "invisible",
        ),
        (
            Method::POST,
            "/api/alerts",
            "admin",
            json!({"severity": "info", "text": "alert\u{0}", "ttl": 60}),
            "control",
        ),
    ];
    for (method, uri, who, body, why) in refused {
        let token = match *who {
            "guest" => Some(token.as_str()),
            "admin" => Some(admin.as_str()),
            _ => None,
        };
        let (status, answer) = send(&app, method.clone(), uri, token, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {uri} {body}: {answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{method} {uri} {body}: {answer}");
    }

    // What people really write still goes through.
    let accepted: &[(Method, &str, &str, Value)] = &[
        (
            Method::PATCH,
            "/api/me",
            "guest",
            json!({"name": "Zoë 李 👨‍👩‍👧"}),
        ),
        (
            Method::POST,
            "/api/broadcasts/live/comments",
            "guest",
            json!({"comment": "two\nlines\tand مرحبا\u{202B}"}),
        ),
        (
            Method::PUT,
            "/api/broadcasts/live",
            "admin",
            json!({"title": "Nachrichten", "description": "line one\nline two", "tags": ["news"]}),
        ),
    ];
    for (method, uri, who, body) in accepted {
        let token = if *who == "guest" { &token } else { &admin };
        let (status, answer) = send(&app, method.clone(), uri, Some(token), body.clone()).await;
        assert!(
            status.is_success(),
            "{method} {uri} {body}: {status} {answer}"
        );
    }
}

#[tokio::test]
async fn a_401_names_the_stream_only_where_there_is_one() {
    let (app, _) = app().await;
    let (status, answer) = send(&app, Method::GET, "/api/me", None, Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer["message"], "a valid bearer token is required",
        "{answer}"
    );
    let (status, answer) = send(&app, Method::POST, "/api/alerts", Some("nope"), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !answer["message"].as_str().unwrap().contains("stream"),
        "{answer}"
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/whip/live")
        .header(header::CONTENT_TYPE, "application/sdp")
        .header(header::AUTHORIZATION, "Bearer wrong")
        .body(Body::from("v=0\r\n"))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        answer["message"],
        "this stream's key is required as the bearer token"
    );
}
