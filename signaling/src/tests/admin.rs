//! `GET /api/admin/overview`, what the operator page draws: admins only
//! (401 without a token, 403 for a moderator), and with a viewer watching a
//! real media plane it lists the broadcast, the viewer in its health table
//! and the media counters.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::{app, json_error, post, viewer_offer};
use crate::identity::{Identity, Role, Tokens};

fn token(role: Role, name: &str) -> String {
    Tokens::new(b"signaling-test-secret").issue(
        &Identity {
            id: format!("m-{name}"),
            name: name.into(),
            role,
            stream: None,
        },
        Duration::from_secs(600),
    )
}

fn get(token: Option<&str>) -> Request<Body> {
    let mut req = Request::get("/api/admin/overview");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_overview_is_for_admins_and_lists_broadcasts_viewers_and_counters() {
    let app = app().await;
    let (status, body) = json_error(app.clone().oneshot(get(None)).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let moderator = token(Role::Moderator, "mod");
    let (status, body) =
        json_error(app.clone().oneshot(get(Some(&moderator))).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let res = app
        .clone()
        .oneshot(post("/whep/live", None, "application/sdp", viewer_offer()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let admin = token(Role::Admin, "ops");
    // The workers publish their status on their own tick.
    let mut last = serde_json::Value::Null;
    for _ in 0..50 {
        let res = app.clone().oneshot(get(Some(&admin))).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        last = serde_json::from_slice(&bytes).unwrap();
        let table = &last["broadcasts"][0]["viewer_table"];
        if table.as_array().is_some_and(|t| t.len() == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["broadcasts"][0]["name"], "live", "{last}");
    assert_eq!(
        last["broadcasts"][0]["viewer_table"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{last}"
    );
    assert!(last["counters"]["rtp_packets_forwarded"].is_u64(), "{last}");
    assert!(last["drops"]["unknown_peer"].is_u64(), "{last}");
    assert!(
        last["workers"].as_array().is_some_and(|w| !w.is_empty()),
        "{last}"
    );
    assert!(last["at_ms"].as_u64().is_some_and(|t| t > 0), "{last}");
}
