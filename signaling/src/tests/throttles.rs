//! Hardening defects 4 and 7: wrong passwords and wrong stream keys are
//! throttled per client address and per account/stream (429 with
//! `Retry-After`, the credential not even compared meanwhile), the owner's
//! own address keeps working while its account or stream is under attack,
//! and the throttle recovers after its window. Before the fix, thousands
//! of guesses a second were all answered 401. Requests carry the client
//! address as the real server's connect info does.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::fake_media::FakeMedia;
use crate::guard::{Limits, RateSetting};
use crate::{router, AppState, Settings};

const KEY: &str = "streamkey-live-1";
const OFFER: &str = "v=0\r\n";

async fn app(limits: Limits) -> axum::Router {
    let store = crate::store::tests::sqlite_store().await;
    let mut settings = Settings {
        jwt_secret: b"throttle-test-secret".to_vec(),
        limits,
        ..Settings::default()
    };
    settings.stream_keys.insert("live".into(), KEY.into());
    store.ensure_broadcast("live").await.unwrap();
    router(AppState::new(Arc::new(FakeMedia::new()), store, settings))
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    retry_after: Option<u64>,
    body: Value,
}

async fn send(
    app: &axum::Router,
    from: IpAddr,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: (&str, String),
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, body.0);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(body.1)).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(from, 40_000)));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let retry_after = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        location,
        retry_after,
        body,
    }
}

async fn login(app: &axum::Router, from: IpAddr, user: &str, password: &str) -> Answer {
    let creds = json!({"username": user, "password": password}).to_string();
    send(
        app,
        from,
        Method::POST,
        "/api/login",
        None,
        ("application/json", creds),
    )
    .await
}

async fn publish(app: &axum::Router, from: IpAddr, key: &str) -> Answer {
    send(
        app,
        from,
        Method::POST,
        "/whip/live",
        Some(key),
        ("application/sdp", OFFER.into()),
    )
    .await
}

fn assert_throttled(a: &Answer, context: &str) {
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{context}: {:?}",
        a.body
    );
    assert_eq!(a.body["error"], "rate_limited", "{context}");
    assert!(
        a.retry_after.is_some_and(|s| s >= 1),
        "{context}: Retry-After {:?}",
        a.retry_after
    );
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_for_strangers_but_not_its_owner_then_recover() {
    let limits = Limits {
        // One failure back every 0.5 s, so recovery is quick to test.
        login_failures_per_account: RateSetting::new(5, 120.0),
        ..Limits::default()
    };
    let app = app(limits).await;
    let creds = json!({"username": "erin", "password": "correct-horse"}).to_string();
    let made = send(
        &app,
        ip(1),
        Method::POST,
        "/api/accounts",
        None,
        ("application/json", creds),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let (owner, attacker, newcomer) = (ip(1), ip(66), ip(7));
    assert_eq!(
        login(&app, owner, "erin", "correct-horse").await.status,
        StatusCode::OK
    );

    for i in 0..5 {
        let a = login(&app, attacker, "erin", &format!("guess-{i:04}")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // The account is locked for untrusted addresses: even the right
    // password is not checked.
    assert_throttled(
        &login(&app, attacker, "erin", "guess-9999").await,
        "6th guess",
    );
    assert_throttled(
        &login(&app, newcomer, "erin", "correct-horse").await,
        "an untrusted address with the right password",
    );
    let owners = login(&app, owner, "erin", "correct-horse").await;
    assert_eq!(
        owners.status,
        StatusCode::OK,
        "the owner's address still logs in"
    );

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let later = login(&app, newcomer, "erin", "correct-horse").await;
    assert_eq!(later.status, StatusCode::OK, "recovered after the window");
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_throttled() {
    let app = app(Limits::default()).await;
    let guesser = ip(66);
    // The default: 10 wrong passwords per address, whatever the account.
    for i in 0..10 {
        let a = login(&app, guesser, &format!("user{i}"), "password123").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_throttled(&login(&app, guesser, "user99", "password123").await, "11th");
    let other = login(&app, ip(2), "user99", "password123").await;
    assert_eq!(
        other.status,
        StatusCode::UNAUTHORIZED,
        "other addresses unaffected"
    );
}

#[tokio::test]
async fn stream_key_guesses_are_throttled_and_obs_keeps_publishing() {
    let app = app(Limits::default()).await;
    let (obs, attacker, second_attacker) = (ip(10), ip(66), ip(67));
    let first = publish(&app, obs, KEY).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let first_location = first.location.expect("a WHIP answer has a Location");

    // 20 wrong keys from one address (the per-client default), then 429.
    for i in 0..20 {
        let a = publish(&app, attacker, &format!("guess-{i:08}")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let locked = publish(&app, attacker, KEY).await;
    assert_throttled(&locked, "the right key from a locked-out address");
    // DELETE and PATCH of a WHIP resource check the same key, same throttle.
    let delete = send(
        &app,
        attacker,
        Method::DELETE,
        "/whip/live/00000000000000000000000000000000",
        Some("guess"),
        ("text/plain", String::new()),
    )
    .await;
    assert_throttled(&delete, "DELETE from a locked-out address");
    // A second address has spent the stream's remaining untrusted budget
    // (20 per stream): now any untrusted address waits, OBS does not.
    let mut throttled = false;
    for i in 0..20 {
        let a = publish(&app, second_attacker, &format!("other-{i:08}")).await;
        throttled |= a.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(throttled, "the stream's lockout engaged");
    assert_throttled(&publish(&app, ip(99), KEY).await, "an untrusted newcomer");
    // OBS stops (DELETE with its key) and goes live again.
    let stop = send(
        &app,
        obs,
        Method::DELETE,
        &first_location,
        Some(KEY),
        ("text/plain", String::new()),
    )
    .await;
    assert_eq!(stop.status, StatusCode::OK, "OBS's DELETE: {:?}", stop.body);
    let again = publish(&app, obs, KEY).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "OBS reconnects: {:?}",
        again.body
    );
}

#[tokio::test]
async fn invalid_bearer_tokens_on_the_api_are_throttled_per_address() {
    let app = app(Limits::default()).await;
    let get = |from, token: &'static str| {
        let app = app.clone();
        async move {
            send(
                &app,
                from,
                Method::GET,
                "/api/me",
                Some(token),
                ("text/plain", String::new()),
            )
            .await
        }
    };
    for i in 0..20 {
        assert_eq!(
            get(ip(66), "not-a-token").await.status,
            StatusCode::UNAUTHORIZED,
            "{i}"
        );
    }
    assert_throttled(&get(ip(66), "not-a-token").await, "21st wrong token");
    assert_eq!(
        get(ip(5), "not-a-token").await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Behind a trusted reverse proxy the throttles key on the client named by
/// `X-Forwarded-For` (its right-most untrusted hop), so one locked-out
/// client does not lock out everyone behind the proxy; from an untrusted
/// peer the header is ignored, so a client cannot dodge its lockout by
/// forging it.
#[tokio::test]
async fn throttles_follow_x_forwarded_for_only_from_trusted_proxies() {
    let store = crate::store::tests::sqlite_store().await;
    let settings = Settings {
        jwt_secret: b"throttle-test-secret".to_vec(),
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..Settings::default()
    };
    let app = router(AppState::new(Arc::new(FakeMedia::new()), store, settings));
    let login_via = |peer: IpAddr, xff: &str, i: usize| {
        let xff = xff.to_owned();
        let app = app.clone();
        async move {
            let mut req = Request::post("/api/login")
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-forwarded-for", xff)
                .body(Body::from(
                    json!({"username": format!("user{i}"), "password": "password123"}).to_string(),
                ))
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(peer, 40_000)));
            app.oneshot(req).await.unwrap().status()
        }
    };
    let proxy = IpAddr::from([10, 0, 0, 5]);
    // A client forges a hop to the left; the proxy appended the real one.
    for i in 0..10 {
        let status = login_via(proxy, "198.51.100.1, 203.0.113.7, 10.0.0.9", i).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        login_via(proxy, "192.0.2.200, 203.0.113.7", 10).await,
        StatusCode::TOO_MANY_REQUESTS,
        "203.0.113.7 is locked out, whatever it puts to the left"
    );
    assert_eq!(
        login_via(proxy, "203.0.113.8", 11).await,
        StatusCode::UNAUTHORIZED,
        "another client behind the same proxy is not"
    );
    // Not a trusted proxy: the header means nothing.
    let direct = ip(66);
    for i in 0..10 {
        let xff = format!("203.0.113.{}", 100 + i);
        assert_eq!(login_via(direct, &xff, i).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_via(direct, "203.0.113.250", 12).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged header from an untrusted peer does not dodge the lockout"
    );
}
