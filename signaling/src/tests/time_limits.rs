//! The HTTP time limits (`layers.rs`): a body that pauses longer than
//! `body_read_secs` is answered 408 `timeout`, a request that takes longer
//! than `request_secs` in total (a body trickled just fast enough) 503
//! `unavailable`, both with the JSON error body. Without the layers these
//! requests wait for as long as the client likes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use crate::fake_media::FakeMedia;
use crate::guard::Limits;
use crate::{router, AppState, Settings};

async fn app(limits: Limits) -> axum::Router {
    let store = crate::store::tests::sqlite_store().await;
    let mut settings = Settings {
        jwt_secret: b"time-limit-test-secret".to_vec(),
        limits,
        ..Settings::default()
    };
    settings
        .stream_keys
        .insert("live".into(), "key-live-1".into());
    store.ensure_broadcast("live").await.unwrap();
    router(AppState::new(Arc::new(FakeMedia::new()), store, settings))
}

/// A body that sends `first`, then one byte every `every`, forever (the
/// sender task stops when the request is dropped).
fn trickle(first: &'static str, every: Duration) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        if tx
            .send(Ok(Bytes::from_static(first.as_bytes())))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::time::sleep(every).await;
            if tx.send(Ok(Bytes::from_static(b" "))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}

async fn answer(app: axum::Router, req: Request<Body>) -> (StatusCode, Value, Duration) {
    let began = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(20), app.oneshot(req))
        .await
        .expect("answered within 20 s")
        .unwrap();
    let took = began.elapsed();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{status}: not JSON: {:?}", String::from_utf8_lossy(&bytes)));
    (status, body, took)
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_on_whep_and_on_the_api() {
    let limits = Limits {
        body_read_secs: 1,
        ..Limits::default()
    };
    let app = app(limits).await;
    let stalled = |uri: &str, content_type: &str, first: &'static str| {
        Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(trickle(first, Duration::from_secs(3600)))
            .unwrap()
    };
    let (status, body, took) = answer(
        app.clone(),
        stalled("/whep/live", "application/sdp", "v=0\r\n"),
    )
    .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body["error"], "timeout");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let (status, body, _) = answer(
        app,
        stalled("/api/guest", "application/json", "{\"name\": "),
    )
    .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body["error"], "timeout");
}

#[tokio::test]
async fn a_body_trickled_past_the_request_limit_is_answered_503() {
    let limits = Limits {
        body_read_secs: 5,
        request_secs: 2,
        ..Limits::default()
    };
    let app = app(limits).await;
    let req = Request::post("/whep/live")
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(trickle("v=0\r\n", Duration::from_millis(200)))
        .unwrap();
    let (status, body, took) = answer(app, req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "took {took:?}"
    );
}
