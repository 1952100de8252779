//! Likes over REST: one per identity per broadcast, changeable and
//! withdrawable, read back with or without a token.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{call, state, status_of, token};
use crate::identity::Role;

#[tokio::test]
async fn likes_count_one_per_identity() {
    let s = state().await;
    let ann = token(&s, Role::Viewer, "g-ann");
    let bob = token(&s, Role::Viewer, "g-bob");
    let uri = "/api/broadcasts/live/like";
    assert_eq!(
        status_of(&s, Method::PUT, uri, None, Some(json!({"liked": true}))).await,
        StatusCode::UNAUTHORIZED
    );
    call(
        &s,
        Method::PUT,
        uri,
        Some(&ann),
        Some(json!({"liked": true})),
    )
    .await;
    call(
        &s,
        Method::PUT,
        uri,
        Some(&ann),
        Some(json!({"liked": true})),
    )
    .await;
    let (status, state_) = call(
        &s,
        Method::PUT,
        uri,
        Some(&bob),
        Some(json!({"liked": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            state_["likes"].as_i64(),
            state_["dislikes"].as_i64(),
            state_["mine"].as_bool()
        ),
        (Some(1), Some(1), Some(false))
    );
    let (_, after) = call(&s, Method::DELETE, uri, Some(&ann), None).await;
    assert_eq!(
        (after["likes"].as_i64(), after["mine"].is_null()),
        (Some(0), true)
    );
    let (_, b) = call(&s, Method::GET, "/api/broadcasts/live", None, None).await;
    assert_eq!(
        (b["likes"].as_i64(), b["dislikes"].as_i64()),
        (Some(0), Some(1))
    );
    let (status, _) = call(
        &s,
        Method::PUT,
        uri,
        Some(&ann),
        Some(json!({"liked": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Read back: the counts for anyone, the caller's own choice with a token.
    let (status, anyone) = call(&s, Method::GET, uri, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            anyone["likes"].as_i64(),
            anyone["dislikes"].as_i64(),
            anyone["mine"].is_null()
        ),
        (Some(0), Some(1), true)
    );
    let (_, own) = call(&s, Method::GET, uri, Some(&bob), None).await;
    assert_eq!(own["mine"].as_bool(), Some(false));
    assert_eq!(
        status_of(&s, Method::GET, "/api/broadcasts/nope/like", None, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&s, Method::GET, uri, Some("not-a-token"), None).await,
        StatusCode::UNAUTHORIZED
    );
}
