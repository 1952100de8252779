//! WHIP/WHEP HTTP behaviour, driven with `oneshot` against the real media
//! worker (it binds an ephemeral loopback UDP port; no fake needed).

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use tower::ServiceExt;

use super::*;

pub(super) const KEY: &str = "testsecret123";

pub(super) fn fixture(name: &str) -> String {
    // The run-time variable (cargo sets it for test processes): a test
    // binary reused from a checkout at another path still finds its files.
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{dir}/../sfu/fixtures/whip-offers/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// A WHEP-style offer: OBS's single-layer offer turned around to receive.
pub(super) fn viewer_offer() -> String {
    fixture("obs-emulated-1layer-offer.sdp")
        .lines()
        .filter(|l| !l.starts_with("a=ssrc") && !l.starts_with("a=msid"))
        .map(|l| if l == "a=sendonly" { "a=recvonly" } else { l })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

pub(super) async fn app() -> Router {
    app_with_media().await.0
}

/// The router and its media plane, for tests that reach the worker directly.
pub(super) async fn app_with_media() -> (Router, relaycast_sfu::SfuHandle) {
    let media = relaycast_sfu::SfuHandle::start(relaycast_sfu::MediaConfig {
        udp_bind: "127.0.0.1:0".parse().unwrap(),
        candidate_ip: "127.0.0.1".parse().unwrap(),
        ..Default::default()
    })
    .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "relaycast-signaling-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open_sqlite(&dir.join("test.db")).await.unwrap();
    let mut settings = Settings {
        jwt_secret: b"signaling-test-secret".to_vec(),
        ..Settings::default()
    };
    settings.stream_keys.insert("live".into(), KEY.into());
    settings
        .ice_servers
        .push("stun:stun.example.org:3478".into());
    settings
        .ice_servers
        .push("turn:turn.example.org:3478?transport=udp".into());
    settings.turn = Some(crate::ice_servers::TurnSecret::new(
        "signaling-test-turn-secret",
        std::time::Duration::from_secs(3600),
    ));
    (
        router(AppState::new(
            std::sync::Arc::new(media.clone()),
            store,
            settings,
        )),
        media,
    )
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

pub(super) fn post(
    uri: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req.body(body.into()).unwrap()
}

pub(super) async fn json_error(res: Response<Body>) -> (StatusCode, serde_json::Value) {
    let status = res.status();
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/json",
        "errors are JSON"
    );
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn table_of_whip_errors() {
    let app = app().await;
    let obs = fixture("obs-emulated-1layer-offer.sdp");
    let unsupported = obs
        .replace("opus/48000/2", "G7221/16000")
        .replace("H264/90000", "MP4V-ES/90000");
    let huge = "a".repeat(64 * 1024 + 1);
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "no token",
            post("/whip/live", None, "application/sdp", obs.clone()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong token",
            post(
                "/whip/live",
                Some("nope-nope-nope"),
                "application/sdp",
                obs.clone(),
            ),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "unknown stream",
            post("/whip/other", Some(KEY), "application/sdp", obs.clone()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "wrong content type",
            post("/whip/live", Some(KEY), "text/plain", obs.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "malformed sdp",
            post("/whip/live", Some(KEY), "application/sdp", "v=0 nonsense"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "body over 64 KiB",
            post("/whip/live", Some(KEY), "application/sdp", huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "unsupported codecs only",
            post("/whip/live", Some(KEY), "application/sdp", unsupported),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "non-utf8 body",
            post(
                "/whip/live",
                Some(KEY),
                "application/sdp",
                vec![0xffu8, 0xfe],
            ),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (name, req, status, code) in cases {
        let res = app.clone().oneshot(req).await.unwrap();
        let (got, body) = json_error(res).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"], code, "{name}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn unsupported_codec_error_names_what_was_offered() {
    let app = app().await;
    let offer = fixture("obs-emulated-1layer-offer.sdp")
        .replace("H264/90000", "MP4V-ES/90000")
        .replace("opus/48000/2", "G7221/16000");
    let res = app
        .oneshot(post("/whip/live", Some(KEY), "application/sdp", offer))
        .await
        .unwrap();
    let (_, body) = json_error(res).await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("MP4V-ES") && message.contains("G7221"),
        "{message}"
    );
}

#[tokio::test]
async fn whip_publish_answers_201_with_location_etag_link_and_cors() {
    let app = app().await;
    let res = app
        .clone()
        .oneshot(post(
            "/whip/live",
            Some(KEY),
            "application/sdp",
            fixture("obs-emulated-3layer-offer.sdp"),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let h = res.headers().clone();
    let location = h[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/whip/live/"), "{location}");
    assert_eq!(h[header::CONTENT_TYPE], "application/sdp");
    assert!(h.contains_key(header::ETAG));
    assert_eq!(
        h[header::LINK],
        "<stun:stun.example.org:3478>; rel=\"ice-server\""
    );
    let exposed = h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
    for name in ["Location", "Link", "ETag"] {
        assert!(exposed.contains(name), "{name} exposed");
    }
    let answer = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(answer.contains("a=simulcast:recv 0;1;2"), "{answer}");
    assert!(
        answer.contains("a=candidate:"),
        "answer carries our candidate"
    );

    let patch = Request::patch(&location)
        .header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::from(
            "a=ice-ufrag:ImHx\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n",
        ))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(patch).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let bad_patch = Request::patch(&location)
        .header(header::CONTENT_TYPE, "application/sdp")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(bad_patch).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let delete = || {
        Request::delete(&location)
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.clone().oneshot(delete()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        app.clone().oneshot(delete()).await.unwrap().status(),
        StatusCode::OK,
        "DELETE is idempotent for a session that just ended (OBS may close first)"
    );
    let unknown = Request::delete("/whip/live/123abc")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::empty())
        .unwrap();
    let (status, _) = json_error(app.clone().oneshot(unknown).await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a session that never existed"
    );
}

#[tokio::test]
async fn options_preflight_allows_cross_origin_whip() {
    let app = app().await;
    let req = Request::options("/whip/live")
        .header(header::ORIGIN, "https://studio.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let h = res.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .contains("Authorization"));
    assert!(h.contains_key(header::LINK));
}

#[tokio::test]
async fn table_of_whep_outcomes() {
    let app = app().await;
    let cases: Vec<(&str, &str, StatusCode)> = vec![
        ("unknown stream", "/whep/nosuch", StatusCode::NOT_FOUND),
        (
            "bad layer",
            "/whep/live?layer=ultra",
            StatusCode::BAD_REQUEST,
        ),
        (
            "viewer before the broadcaster",
            "/whep/live",
            StatusCode::CREATED,
        ),
        ("low layer", "/whep/live?layer=low", StatusCode::CREATED),
    ];
    for (name, uri, status) in cases {
        let res = app
            .clone()
            .oneshot(post(uri, None, "application/sdp", viewer_offer()))
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{name}");
        if status == StatusCode::CREATED {
            assert!(
                res.headers()[header::LOCATION]
                    .to_str()
                    .unwrap()
                    .starts_with("/whep/live/"),
                "{name}"
            );
        } else {
            json_error(res).await;
        }
    }
}

#[tokio::test]
async fn a_publish_offer_on_whep_is_refused() {
    let app = app().await;
    let res = app
        .oneshot(post(
            "/whep/live",
            None,
            "application/sdp",
            fixture("obs-emulated-1layer-offer.sdp"),
        ))
        .await
        .unwrap();
    let (status, _) = json_error(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_and_health_answer() {
    let app = app().await;
    let res = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("relaycast_drops_total{reason=\"unknown_peer\"}"),
        "{text}"
    );
    let res = app
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn turn_servers_come_with_fresh_credentials_in_link_headers_and_the_api() {
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
    assert_eq!(res.status(), StatusCode::CREATED);
    let links: Vec<String> = res
        .headers()
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links[1].starts_with(
        "<turn:turn.example.org:3478?transport=udp>; rel=\"ice-server\"; username=\""
    ));
    assert!(
        links[1].ends_with("; credential-type=\"password\""),
        "{links:?}"
    );
    let res = app
        .oneshot(
            Request::get("/api/ice-servers")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let body: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    let servers = body["ice_servers"].as_array().unwrap();
    assert_eq!(
        servers[0],
        serde_json::json!({"urls": "stun:stun.example.org:3478"})
    );
    let user = servers[1]["username"].as_str().unwrap();
    let (expiry, name) = user.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 3500..=now + 3700).contains(&expiry), "{user}");
    assert_eq!(name, "relaycast");
    assert_eq!(servers[1]["credential"].as_str().unwrap().len(), 28);
}

mod admin;
mod channels;
mod hardening;
mod text_inputs;
mod throttles;
mod time_limits;
mod videos;
