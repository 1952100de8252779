//! The ad server over HTTP: creatives, breaks, signed VAST pods (checked
//! against the IAB's XSD), tracking that counts once and refuses tampered
//! URLs, on-demand schedules, entitlements and reports.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{call, status_of, token};
use crate::ads::vast::tests::assert_valid_vast;
use crate::fake_media::FakeMedia;
use crate::identity::Role;
use crate::store::now_ms;
use crate::{router, AppState, Settings};

const CREATIVE: &[u8] = include_bytes!("../../../fixtures/ads/creative-6s.mp4");

async fn state() -> AppState {
    let store = crate::store::tests::sqlite_store().await;
    let dir = std::env::temp_dir().join(format!(
        "relaycast-ads-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap();
    let mut settings = Settings {
        jwt_secret: b"ads-test-secret".to_vec(),
        recordings: Some(Arc::new(objects)),
        ..Settings::default()
    };
    settings.stream_keys.insert("live".into(), "key-1".into());
    store.ensure_broadcast("live").await.unwrap();
    AppState::new(Arc::new(FakeMedia::new()), store, settings)
}

/// A raw request: status, headers and body text.
async fn raw(
    state: &AppState,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router(state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A multipart form with `file`, text fields and more files.
fn form(file: &[u8], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    form_with(file, fields, &[])
}

fn form_with(file: &[u8], fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "relaycastboundary7";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\
             Content-Type: video/mp4\r\n\r\n"
        )
        .bytes(),
    );
    body.extend(file);
    for (name, bytes) in files {
        body.extend(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}\"\r\n\r\n"
            )
            .bytes(),
        );
        body.extend(*bytes);
    }
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(state: &AppState, admin: &str, file: &[u8]) -> (StatusCode, Value) {
    let (content_type, body) = form(
        file,
        &[
            ("title", "Spring sale"),
            ("click_url", "https://example.com/sale"),
            ("skip_after_s", "2"),
        ],
    );
    let auth = format!("Bearer {admin}");
    let (status, _, text) = raw(
        state,
        Method::POST,
        "/api/ads",
        &[("content-type", &content_type), ("authorization", &auth)],
        body,
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every tracking URL in a VAST document, by event.
fn tracking_urls(doc: &str) -> Vec<(String, String)> {
    doc.split("<![CDATA[")
        .skip(1)
        .filter_map(|s| s.split("]]>").next())
        .filter(|u| u.contains("/ads/track?"))
        .map(|u| {
            let event = u
                .split('&')
                .find_map(|p| p.strip_prefix("e="))
                .unwrap_or_default()
                .to_owned();
            (event, u.to_owned())
        })
        .collect()
}

/// The path and query of an absolute URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    &rest[rest.find('/').unwrap_or(rest.len())..]
}

#[tokio::test]
async fn creatives_are_uploaded_probed_served_and_retired_by_admins_only() {
    let s = state().await;
    let admin = token(&s, Role::Admin, "m-root");
    let moderator = token(&s, Role::Moderator, "m-mod");
    assert_eq!(
        upload(&s, &moderator, CREATIVE).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, ad) = upload(&s, &admin, CREATIVE).await;
    assert_eq!(status, StatusCode::CREATED, "{ad}");
    assert_eq!(
        (
            &ad["mime_type"],
            &ad["width"],
            &ad["height"],
            &ad["duration_ms"]
        ),
        (&json!("video/mp4"), &json!(320), &json!(180), &json!(6000)),
        "probed from the file's moov"
    );
    assert_eq!(ad["size_bytes"], json!(CREATIVE.len()));
    let (status, err) = upload(&s, &admin, b"GIF89a not a video").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{err}");
    let (status, tag) = call(
        &s,
        Method::POST,
        "/api/ads",
        Some(&admin),
        Some(json!({"title": "Partner", "vast_tag_url": "https://ads.example/vast?x=1", "duration_s": 15})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{tag}");
    let bad: &[(Value, &str)] = &[
        (json!({"title": "No tag"}), "a JSON ad needs a tag"),
        (
            json!({"title": "x", "vast_tag_url": "javascript:alert(1)", "duration_s": 5}),
            "http(s) only",
        ),
        (
            json!({"title": "x", "vast_tag_url": "https://a.example/", "duration_s": 5, "skip_after_s": 9}),
            "skip after the end",
        ),
        (
            json!({"title": "", "vast_tag_url": "https://a.example/", "duration_s": 5}),
            "empty title",
        ),
    ];
    for (body, why) in bad {
        let (status, err) = call(
            &s,
            Method::POST,
            "/api/ads",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {err}");
        assert!(err["message"].is_string(), "{why}");
    }
    let id = ad["id"].as_i64().unwrap();
    let (status, headers, _) = raw(
        &s,
        Method::GET,
        &format!("/ads/creatives/{id}"),
        &[("range", "bytes=0-99")],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_LENGTH], "100");
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes 0-99/{}", CREATIVE.len()).as_str()
    );
    assert_eq!(headers[header::CONTENT_TYPE], "video/mp4");
    let (_, listed) = call(&s, Method::GET, "/api/ads", Some(&admin), None).await;
    assert_eq!(listed["ads"].as_array().unwrap().len(), 2);
    assert_eq!(
        status_of(
            &s,
            Method::DELETE,
            &format!("/api/ads/{id}"),
            Some(&admin),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (_, listed) = call(&s, Method::GET, "/api/ads", Some(&admin), None).await;
    let retired = listed["ads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == json!(id))
        .unwrap();
    assert_eq!(retired["active"], json!(false));
    assert_eq!(
        status_of(&s, Method::DELETE, "/api/ads/999", Some(&admin), None).await,
        StatusCode::NOT_FOUND
    );
}

/// A 300×250 PNG's first bytes (signature and header: all a probe reads).
fn banner() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(300u32.to_be_bytes());
    png.extend(250u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}

#[tokio::test]
async fn a_creative_may_carry_a_companion_banner_served_in_its_pod() {
    let s = state().await;
    let admin = token(&s, Role::Admin, "m-root");
    let auth = format!("Bearer {admin}");
    let png = banner();
    let (content_type, body) = form_with(
        CREATIVE,
        &[
            ("title", "With banner"),
            ("click_url", "https://example.com/"),
        ],
        &[("companion", &png)],
    );
    let (status, _, text) = raw(
        &s,
        Method::POST,
        "/api/ads",
        &[("content-type", &content_type), ("authorization", &auth)],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let ad: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            &ad["companion_mime"],
            &ad["companion_width"],
            &ad["companion_height"]
        ),
        (&json!("image/png"), &json!(300), &json!(250))
    );
    let (content_type, body) = form_with(
        CREATIVE,
        &[("title", "Bad banner")],
        &[("companion", b"<svg/>")],
    );
    let (status, _, _) = raw(
        &s,
        Method::POST,
        "/api/ads",
        &[("content-type", &content_type), ("authorization", &auth)],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let moderator = token(&s, Role::Moderator, "m-mod");
    let (_, brk) = call(
        &s,
        Method::POST,
        "/api/broadcasts/live/ad-breaks",
        Some(&moderator),
        Some(json!({"duration_s": 10})),
    )
    .await;
    let path = s.ads().vast_path(
        brk["id"].as_i64().unwrap(),
        &crate::ad_breaks::new_session(),
        "",
    );
    let (_, _, doc) = raw(&s, Method::GET, &path, &[("host", "h")], vec![]).await;
    assert_valid_vast(&doc);
    assert!(
        doc.contains(
            r#"<StaticResource creativeType="image/png"><![CDATA[http://h/ads/companions/"#
        ),
        "{doc}"
    );
    let id = ad["id"].as_i64().unwrap();
    let (status, headers, _) = raw(
        &s,
        Method::GET,
        &format!("/ads/companions/{id}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        png.len().to_string().as_str()
    );
}

#[tokio::test]
async fn a_break_serves_a_signed_pod_whose_tracking_counts_once() {
    let s = state().await;
    let admin = token(&s, Role::Admin, "m-root");
    let moderator = token(&s, Role::Moderator, "m-mod");
    let viewer = token(&s, Role::Viewer, "g-ann");
    let uri = "/api/broadcasts/live/ad-breaks";
    let body = || Some(json!({"duration_s": 30}));
    let (status, err) = call(&s, Method::POST, uri, Some(&moderator), body()).await;
    assert_eq!(status, StatusCode::CONFLICT, "no inventory yet: {err}");
    let (_, ad) = upload(&s, &admin, CREATIVE).await;
    let ad_id = ad["id"].as_i64().unwrap();
    assert_eq!(
        status_of(&s, Method::POST, uri, Some(&viewer), body()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            uri,
            Some(&moderator),
            Some(json!({"duration_s": 1}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            "/api/broadcasts/nope/ad-breaks",
            Some(&moderator),
            body()
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let (status, brk) = call(&s, Method::POST, uri, Some(&moderator), body()).await;
    assert_eq!(status, StatusCode::CREATED, "{brk}");
    assert_eq!(brk["pod"], json!([ad_id]), "one 6 s ad fits, once");
    let (status, err) = call(&s, Method::POST, uri, Some(&moderator), body()).await;
    assert_eq!(status, StatusCode::CONFLICT, "one break at a time: {err}");
    assert_eq!(err["error"], json!("conflict"));

    let break_id = brk["id"].as_i64().unwrap();
    let session = crate::ad_breaks::new_session();
    let path = s.ads().vast_path(break_id, &session, "g-ann");
    let (status, headers, doc) = raw(
        &s,
        Method::GET,
        &path,
        &[("host", "tv.example:8080")],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    assert_valid_vast(&doc);
    assert!(
        doc.contains("http://tv.example:8080/ads/creatives/"),
        "absolute URLs: {doc}"
    );
    let tampered = path.replace("viewer=g-ann", "viewer=u-1");
    assert_eq!(
        raw(&s, Method::GET, &tampered, &[], vec![]).await.0,
        StatusCode::FORBIDDEN
    );

    let urls = tracking_urls(&doc);
    let events: Vec<&str> = urls.iter().map(|(e, _)| e.as_str()).collect();
    for e in [
        "impression",
        "error",
        "start",
        "firstQuartile",
        "midpoint",
        "thirdQuartile",
        "complete",
        "skip",
        "click",
    ] {
        assert!(events.contains(&e), "{e} is tracked: {events:?}");
    }
    let url = |event: &str| {
        let (_, u) = urls.iter().find(|(e, _)| e == event).unwrap();
        path_of(u).to_owned()
    };
    for _ in 0..3 {
        let (status, headers, _) = raw(&s, Method::GET, &url("impression"), &[], vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/gif");
    }
    let error = url("error").replace("[ERRORCODE]", "405");
    assert_eq!(
        raw(&s, Method::GET, &error, &[], vec![]).await.0,
        StatusCode::OK
    );
    let forged = url("impression").replace("e=impression", "e=complete");
    assert_eq!(
        raw(&s, Method::GET, &forged, &[], vec![]).await.0,
        StatusCode::FORBIDDEN
    );
    let other_ad = url("start").replace(&format!("a={ad_id}"), &format!("a={}", ad_id + 1));
    assert_eq!(
        raw(&s, Method::GET, &other_ad, &[], vec![]).await.0,
        StatusCode::FORBIDDEN
    );
    let events = s.store().ad_events(break_id, &session).await.unwrap();
    assert_eq!(
        events,
        vec![
            (ad_id, "impression".to_owned(), None),
            (ad_id, "error".to_owned(), Some(405))
        ],
        "three hits of one URL are one row; forged ones none"
    );

    let (status, report) = call(
        &s,
        Method::GET,
        "/api/ads/report?broadcast=live",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["totals"]["impressions"], json!(1));
    assert_eq!(report["totals"]["errors"], json!(1));
    assert_eq!(
        status_of(&s, Method::GET, "/api/ads/report", Some(&viewer), None).await,
        StatusCode::FORBIDDEN
    );

    // An entitled viewer's request gets no ad, whatever the URL says.
    let now = now_ms();
    s.store()
        .grant_entitlement("u-7", "ad-free", now + 60_000, "m-root")
        .await
        .unwrap();
    let path = s
        .ads()
        .vast_path(break_id, &crate::ad_breaks::new_session(), "u-7");
    let (status, _, doc) = raw(&s, Method::GET, &path, &[], vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_valid_vast(&doc);
    assert!(!doc.contains("<Ad "), "empty VAST: {doc}");
}

#[tokio::test]
async fn an_on_demand_video_has_a_pre_roll_and_its_live_breaks_as_mid_rolls() {
    let s = state().await;
    let admin = token(&s, Role::Admin, "m-root");
    let (_, ad) = upload(&s, &admin, CREATIVE).await;
    let ad_id = ad["id"].as_i64().unwrap();
    let store = s.store();
    store
        .insert_recording("rec1", "live", None, now_ms())
        .await
        .unwrap();
    for position_ms in [15_000, 5_000] {
        store
            .insert_break(&crate::store::NewBreak {
                broadcast: "live".into(),
                recording: Some("rec1".into()),
                triggered_by: "m-mod".into(),
                started_ms: now_ms(),
                position_ms,
                duration_ms: 30_000,
                pod: vec![ad_id],
            })
            .await
            .unwrap();
    }
    let (status, _, vmap) = raw(&s, Method::GET, "/videos/rec1/ads.vmap", &[], vec![]).await;
    assert_eq!(status, StatusCode::OK, "{vmap}");
    let offsets: Vec<&str> = vmap
        .split("timeOffset=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(offsets, ["start", "00:00:05.000", "00:00:15.000"]);
    let (_, _, again) = raw(&s, Method::GET, "/videos/rec1/ads.vmap", &[], vec![]).await;
    let preroll = |d: &str| {
        d.split("breakId=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .map(str::to_owned)
    };
    assert_eq!(preroll(&vmap), preroll(&again), "one pre-roll per video");
    // Each AdTagURI is a signed pod request that plays.
    let tag = vmap
        .split("<![CDATA[")
        .nth(2)
        .and_then(|s| s.split("]]>").next())
        .unwrap();
    let (status, _, doc) = raw(&s, Method::GET, path_of(tag), &[], vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_valid_vast(&doc);
    assert!(doc.contains("<Ad "));

    let account = store
        .create_account("paying", "correct horse")
        .await
        .unwrap();
    let who = format!("u-{}", account.id);
    store
        .grant_entitlement(&who, "ad-free", now_ms() + 60_000, "cli")
        .await
        .unwrap();
    let paid = token(&s, Role::Viewer, &who);
    let auth = format!("Bearer {paid}");
    let (_, _, none) = raw(
        &s,
        Method::GET,
        "/videos/rec1/ads.vmap",
        &[("authorization", &auth)],
        vec![],
    )
    .await;
    assert!(!none.contains("AdBreak"), "ad-free: {none}");
    assert_eq!(
        raw(&s, Method::GET, "/videos/nope/ads.vmap", &[], vec![])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admins_grant_and_revoke_the_ad_free_plan() {
    let s = state().await;
    let admin = token(&s, Role::Admin, "m-root");
    let account = s
        .store()
        .create_account("carol", "correct horse")
        .await
        .unwrap();
    let carol = token(&s, Role::Viewer, &format!("u-{}", account.id));
    let grant = |days: u32, plan: &str| Some(json!({"user": "carol", "plan": plan, "days": days}));
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            "/api/entitlements",
            Some(&carol),
            grant(30, "ad-free")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            "/api/entitlements",
            Some(&admin),
            grant(30, "gold")
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            "/api/entitlements",
            Some(&admin),
            Some(json!({"user": "nobody", "plan": "ad-free", "days": 1}))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let (status, granted) = call(
        &s,
        Method::POST,
        "/api/entitlements",
        Some(&admin),
        grant(30, "ad-free"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    let until = granted["until_ms"].as_i64().unwrap();
    assert!((until - now_ms() - 30 * 86_400_000).abs() < 60_000);
    let (_, mine) = call(&s, Method::GET, "/api/me/entitlements", Some(&carol), None).await;
    assert_eq!(mine["until_ms"], json!(until));
    call(
        &s,
        Method::POST,
        "/api/entitlements",
        Some(&admin),
        grant(0, "ad-free"),
    )
    .await;
    let (_, mine) = call(&s, Method::GET, "/api/me/entitlements", Some(&carol), None).await;
    assert_eq!(mine["until_ms"], Value::Null, "revoked");
}

#[tokio::test]
async fn a_broadcast_with_its_own_ad_tag_runs_only_that_in_its_breaks() {
    let s = state().await;
    let admin = token(&s, Role::Admin, "m-root");
    let moderator = token(&s, Role::Moderator, "m-mod");
    let tag = |title: &str, broadcast: Option<&str>| json!({"title": title, "vast_tag_url": "https://ads.example/vast", "duration_s": 10, "broadcast": broadcast});
    let (_, global) = call(
        &s,
        Method::POST,
        "/api/ads",
        Some(&admin),
        Some(tag("Network", None)),
    )
    .await;
    assert_eq!(
        status_of(
            &s,
            Method::POST,
            "/api/ads",
            Some(&admin),
            Some(tag("Nowhere", Some("nope")))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let (status, own) = call(
        &s,
        Method::POST,
        "/api/ads",
        Some(&admin),
        Some(tag("Channel partner", Some("live"))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert_eq!(own["broadcast"], json!("live"));
    let (_, brk) = call(
        &s,
        Method::POST,
        "/api/broadcasts/live/ad-breaks",
        Some(&moderator),
        Some(json!({"duration_s": 15})),
    )
    .await;
    assert_eq!(
        brk["pod"],
        json!([own["id"]]),
        "the broadcast's own tag, not {global}"
    );
}
