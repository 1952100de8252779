//! The browser pages, compiled into the binary (no CDN, works offline).
//! Pages are plain HTML and ES modules; the player and the publisher speak
//! standard WHEP and WHIP, so they double as reference clients.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../static/index.html");
const WATCH: &str = include_str!("../static/watch.html");
const PUBLISH: &str = include_str!("../static/publish.html");

/// Scripts and styles, by file name under `/static/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "whep.js",
        "text/javascript",
        include_str!("../static/whep.js"),
    ),
    (
        "whip.js",
        "text/javascript",
        include_str!("../static/whip.js"),
    ),
    ("style.css", "text/css", include_str!("../static/style.css")),
];

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// Routes for the pages; merged into the server's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/watch/{stream}", get(|| async { Html(WATCH) }))
        .route("/publish/{stream}", get(|| async { Html(PUBLISH) }))
        .route(
            "/static/{name}",
            get(|axum::extract::Path(name): axum::extract::Path<String>| async move { asset(&name) }),
        )
}
