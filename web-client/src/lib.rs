//! The browser pages, compiled into the binary (no CDN, works offline).
//! Pages are plain HTML and ES modules; the player speaks standard WHEP, so
//! it doubles as a reference WHEP client.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../static/index.html");
const WATCH: &str = include_str!("../static/watch.html");
const WHEP_JS: &str = include_str!("../static/whep.js");
const STYLE: &str = include_str!("../static/style.css");

/// Routes for the pages; merged into the server's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/watch/{stream}", get(|| async { Html(WATCH) }))
        .route(
            "/static/whep.js",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/javascript")], WHEP_JS).into_response()
            }),
        )
        .route(
            "/static/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE).into_response() }),
        )
}
