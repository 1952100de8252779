//! Regression tests for the live exploits the attack probe found (the
//! hardening issue's first three defects), each failing before its fix.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::{app, app_with_media, fixture, json_error, post, viewer_offer, KEY};

async fn status_of(app: &axum::Router, req: Request<Body>) -> StatusCode {
    app.clone().oneshot(req).await.unwrap().status()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn location(res: &axum::http::Response<Body>) -> String {
    res.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// Defect 1: an OBS reconnect while nobody watches (two publishes 0.2 s
/// apart, no viewers) panicked the media worker; every later WHIP/WHEP
/// request failed and `/readyz` said 503.
#[tokio::test]
async fn two_publishes_in_quick_succession_with_no_viewers_keep_the_media_plane_up() {
    let app = app().await;
    let offer = fixture("obs-emulated-3layer-offer.sdp");
    let first = app
        .clone()
        .oneshot(post(
            "/whip/live",
            Some(KEY),
            "application/sdp",
            offer.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = app
        .clone()
        .oneshot(post("/whip/live", Some(KEY), "application/sdp", offer))
        .await
        .unwrap();
    assert_eq!(
        second.status(),
        StatusCode::CREATED,
        "the reconnect takes over"
    );
    let viewer = app
        .clone()
        .oneshot(post("/whep/live", None, "application/sdp", viewer_offer()))
        .await
        .unwrap();
    assert_eq!(
        viewer.status(),
        StatusCode::CREATED,
        "the worker still serves"
    );
    assert_eq!(status_of(&app, get("/readyz")).await, StatusCode::OK);
    assert_eq!(status_of(&app, get("/healthz")).await, StatusCode::OK);
}

/// A worker that panics outside any session is restarted with no sessions;
/// one that keeps panicking stays down and `/healthz` reports it.
#[tokio::test]
async fn a_panicking_worker_is_restarted_and_a_dead_one_fails_healthz() {
    let (app, media) = app_with_media().await;
    media
        .inject_fault(relaycast_sfu::Fault::WorkerPanic)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while media.metric_total(|m| &m.worker_restarts) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let viewer = app
        .clone()
        .oneshot(post("/whep/live", None, "application/sdp", viewer_offer()))
        .await
        .unwrap();
    assert_eq!(
        viewer.status(),
        StatusCode::CREATED,
        "the restarted worker serves"
    );
    assert_eq!(status_of(&app, get("/healthz")).await, StatusCode::OK);

    for _ in 0..relaycast_sfu::MAX_WORKER_RESTARTS {
        // Ignore a send that finds the worker already gone.
        let _ = media.inject_fault(relaycast_sfu::Fault::WorkerPanic).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while status_of(&app, get("/healthz")).await != StatusCode::SERVICE_UNAVAILABLE {
        assert!(tokio::time::Instant::now() < deadline, "healthz still 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status_of(&app, get("/readyz")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// Defect 2: anyone could DELETE a live broadcast's WHIP resource.
#[tokio::test]
async fn whip_delete_and_patch_need_the_stream_key() {
    let app = app().await;
    let res = app
        .clone()
        .oneshot(post(
            "/whip/live",
            Some(KEY),
            "application/sdp",
            fixture("obs-emulated-1layer-offer.sdp"),
        ))
        .await
        .unwrap();
    let resource = location(&res);
    let with = |method: &str, token: Option<&str>| {
        let mut req = Request::builder()
            .method(method)
            .uri(&resource)
            .header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Body::from("a=ice-ufrag:abcd\r\n")).unwrap()
    };
    for method in ["PATCH", "DELETE"] {
        for token in [None, Some("wrong-key")] {
            let res = app.clone().oneshot(with(method, token)).await.unwrap();
            let (status, body) = json_error(res).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {token:?}: {body}"
            );
        }
    }
    assert_eq!(
        status_of(&app, with("PATCH", Some(KEY))).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&app, with("DELETE", Some(KEY))).await,
        StatusCode::OK
    );
}

/// Defect 2: ids were a scrambled counter, so two of your own revealed
/// everyone's. Now each is 128 bits from the OS's generator.
#[tokio::test]
async fn session_ids_in_locations_are_128_bit_and_unrelated() {
    let app = app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let res = app
            .clone()
            .oneshot(post("/whep/live", None, "application/sdp", viewer_offer()))
            .await
            .unwrap();
        let loc = location(&res);
        let id = loc.rsplit('/').next().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{loc}");
        ids.push(u128::from_str_radix(&id, 16).unwrap());
    }
    // A counter times a constant, XOR a key, has constant differences
    // between consecutive XORs of ids; random ids do not.
    let d1 = ids[0] ^ ids[1];
    let d2 = ids[1] ^ ids[2];
    assert_ne!(d1, d2);
    assert_ne!(ids[0], ids[1]);
    // An id one bit off is not a session.
    let guess = format!("/whep/live/{:032x}", ids[0] ^ 1);
    assert_eq!(status_of(&app, get(&guess)).await, StatusCode::NOT_FOUND);
}

/// Defect 3: one payload type in the audio and the video section panicked
/// inside str0m and the request got no response.
#[tokio::test]
async fn an_offer_with_one_payload_type_in_two_sections_is_refused() {
    let app = app().await;
    let poisoned = |offer: String| {
        offer.replacen(
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:96 H264/90000",
            1,
        )
    };
    let cases = [
        ("/whep/live", None, poisoned(viewer_offer())),
        (
            "/whip/live",
            Some(KEY),
            poisoned(fixture("obs-emulated-1layer-offer.sdp")),
        ),
    ];
    for (path, token, offer) in cases {
        assert!(offer.contains("a=rtpmap:96 H264/90000\r\n"), "{offer}");
        let res = app
            .clone()
            .oneshot(post(path, token, "application/sdp", offer))
            .await
            .unwrap();
        let (status, body) = json_error(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("rtpmap:96"),
            "{path}: {body}"
        );
    }
    assert_eq!(status_of(&app, get("/readyz")).await, StatusCode::OK);
}
