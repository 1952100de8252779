//! Channels over REST with `oneshot`: an account creates one and gets its
//! key once; duplicates (and the operator's names) are 409; a guest may
//! not; the list shows no keys; publishing needs the current key (the old
//! one is 401 after a rotation, while the session it started keeps its
//! WHIP resource); strangers cannot manage it; an admin's suspension is
//! 403 with the reason; the per-account limit; deletion keeps the name
//! taken; the catalog names the owner, who may edit the details.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::fake_media::FakeMedia;
use crate::guard::Limits;
use crate::identity::{Identity, Role, Tokens};
use crate::{router, AppState, Settings};

pub(super) const SECRET: &[u8] = b"channel-test-secret";
const OFFER: &str = "v=0\r\n";

async fn app() -> axum::Router {
    let store = crate::store::tests::sqlite_store().await;
    let mut settings = Settings {
        jwt_secret: SECRET.to_vec(),
        limits: Limits {
            max_channels_per_account: 2,
            ..Limits::default()
        },
        ..Settings::default()
    };
    settings
        .stream_keys
        .insert("live".into(), "operator-key-0001".into());
    store.ensure_broadcast("live").await.unwrap();
    router(AppState::new(Arc::new(FakeMedia::new()), store, settings))
}

pub(super) struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
}

pub(super) async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some((content_type, text)) => {
            req = req.header(header::CONTENT_TYPE, content_type);
            Body::from(text)
        }
        None => Body::empty(),
    };
    let mut req = req.body(body).unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        IpAddr::from([192, 0, 2, 9]),
        40_000,
    )));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        location,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

pub(super) fn json_body(v: Value) -> Option<(&'static str, String)> {
    Some(("application/json", v.to_string()))
}

pub(super) async fn account(app: &axum::Router, name: &str) -> String {
    let a = send(
        app,
        Method::POST,
        "/api/accounts",
        None,
        json_body(json!({"username": name, "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["token"].as_str().unwrap().to_owned()
}

async fn publish(app: &axum::Router, stream: &str, key: &str) -> Answer {
    send(
        app,
        Method::POST,
        &format!("/whip/{stream}"),
        Some(key),
        Some(("application/sdp", OFFER.into())),
    )
    .await
}

pub(super) fn admin() -> String {
    Tokens::new(SECRET).issue(
        &Identity {
            id: "m-ops".into(),
            name: "ops".into(),
            role: Role::Admin,
            stream: None,
        },
        Duration::from_secs(600),
    )
}

#[tokio::test]
async fn an_account_creates_publishes_rotates_and_deletes_its_channel() {
    let app = app().await;
    let ada = account(&app, "ada").await;
    let bob = account(&app, "bob").await;
    let guest = send(
        &app,
        Method::POST,
        "/api/guest",
        None,
        json_body(json!({"name": "Gus"})),
    )
    .await;
    let guest = guest.body["token"].as_str().unwrap().to_owned();
    let create = |token: String, name: &'static str| {
        let app = app.clone();
        async move {
            send(
                &app,
                Method::POST,
                "/api/channels",
                Some(&token),
                json_body(json!({"name": name})),
            )
            .await
        }
    };

    // Who may create, and which names.
    assert_eq!(
        create(guest.clone(), "gus-live").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/api/channels",
            None,
            json_body(json!({"name": "x-live"}))
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        create(ada.clone(), "no").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        create(ada.clone(), "has space").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        create(ada.clone(), "live").await.status,
        StatusCode::CONFLICT,
        "the operator's"
    );

    let made = create(ada.clone(), "ada-live").await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let key1 = made.body["stream_key"].as_str().unwrap().to_owned();
    assert!(key1.starts_with("rck_"), "{key1}");
    assert_eq!(made.body["whip_url"], "/whip/ada-live");
    assert_eq!(made.body["owner"], "ada");
    let dup = create(bob.clone(), "ada-live").await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body["error"], "taken");

    // Listed without its key, for its owner only.
    let mine = send(&app, Method::GET, "/api/channels/mine", Some(&ada), None).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    assert_eq!(mine.body[0]["name"], "ada-live");
    assert!(mine.body[0].get("stream_key").is_none(), "{}", mine.body);
    let theirs = send(&app, Method::GET, "/api/channels/mine", Some(&bob), None).await;
    assert_eq!(theirs.body, json!([]));

    // The key publishes; the stream exists for viewers and the catalog.
    assert_eq!(
        publish(&app, "ada-live", "rck_wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let first = publish(&app, "ada-live", &key1).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let first_resource = first.location.unwrap();
    let entry = send(&app, Method::GET, "/api/broadcasts/ada-live", None, None).await;
    assert_eq!(entry.status, StatusCode::OK);
    assert_eq!(entry.body["owner"], "ada");
    let catalog = send(&app, Method::GET, "/api/broadcasts", None, None).await;
    let ids: Vec<&str> = catalog.body["broadcasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"ada-live") && ids.contains(&"live"),
        "{ids:?}"
    );

    // The owner edits its details; a stranger may not.
    let edit = json_body(json!({"title": "Ada codes live"}));
    assert_eq!(
        send(
            &app,
            Method::PUT,
            "/api/broadcasts/ada-live",
            Some(&bob),
            edit.clone()
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let edited = send(
        &app,
        Method::PUT,
        "/api/broadcasts/ada-live",
        Some(&ada),
        edit,
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["title"], "Ada codes live");

    // Strangers cannot rotate or delete it (404: they learn nothing).
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/api/channels/ada-live/key",
            Some(&bob),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &app,
            Method::DELETE,
            "/api/channels/ada-live",
            Some(&bob),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Rotation: the old key starts nothing; its session keeps its resource.
    let rotated = send(
        &app,
        Method::POST,
        "/api/channels/ada-live/key",
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let key2 = rotated.body["stream_key"].as_str().unwrap().to_owned();
    assert_ne!(key1, key2);
    assert_eq!(
        publish(&app, "ada-live", &key1).await.status,
        StatusCode::UNAUTHORIZED
    );
    let gone = send(&app, Method::DELETE, &first_resource, Some(&key1), None).await;
    assert_eq!(
        gone.status,
        StatusCode::OK,
        "the session started on the old key ends with it: {}",
        gone.body
    );
    let second = publish(&app, "ada-live", &key2).await;
    assert_eq!(second.status, StatusCode::CREATED);
    let second_resource = second.location.unwrap();

    // Suspension: the right key gets 403 and the reason; a wrong key 401.
    let body = json_body(json!({"suspended": true, "reason": "copyright strike"}));
    assert_eq!(
        send(
            &app,
            Method::PUT,
            "/api/channels/ada-live/suspension",
            Some(&ada),
            body.clone()
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let suspended = send(
        &app,
        Method::PUT,
        "/api/channels/ada-live/suspension",
        Some(&admin()),
        body,
    )
    .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    let refused = publish(&app, "ada-live", &key2).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("copyright strike"),
        "{}",
        refused.body
    );
    assert_eq!(
        publish(&app, "ada-live", "rck_wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let body = json_body(json!({"suspended": false}));
    assert_eq!(
        send(
            &app,
            Method::PUT,
            "/api/channels/ada-live/suspension",
            Some(&admin()),
            body
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::DELETE, &second_resource, Some(&key2), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        publish(&app, "ada-live", &key2).await.status,
        StatusCode::CREATED
    );

    // The per-account limit (2 here).
    assert_eq!(
        create(ada.clone(), "ada-second").await.status,
        StatusCode::CREATED
    );
    let third = create(ada.clone(), "ada-third").await;
    assert_eq!(third.status, StatusCode::FORBIDDEN, "{}", third.body);

    // Deletion: gone for publishers, viewers and the catalog; the name stays taken.
    assert_eq!(
        send(
            &app,
            Method::DELETE,
            "/api/channels/ada-live",
            Some(&ada),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        publish(&app, "ada-live", &key2).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::GET, "/api/broadcasts/ada-live", None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let whep = send(
        &app,
        Method::POST,
        "/whep/ada-live",
        None,
        Some(("application/sdp", OFFER.into())),
    )
    .await;
    assert_eq!(whep.status, StatusCode::NOT_FOUND);
    assert_eq!(
        create(bob.clone(), "ada-live").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        create(ada.clone(), "ada-third").await.status,
        StatusCode::CREATED,
        "a deleted channel frees its place"
    );
}
