//! The browser pages, compiled into the binary (no CDN, no fonts, works
//! offline). Pages are plain HTML and ES modules served from `/static/`;
//! the player and the publisher also speak standard WHEP and WHIP, so they
//! double as reference clients.
//!
//! Invariant (tested below): every `/static/…` name a page or script
//! references is in [`ASSETS`].

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../static/index.html");
const WATCH: &str = include_str!("../static/watch.html");
const PUBLISH: &str = include_str!("../static/publish.html");
const MODERATE: &str = include_str!("../static/moderate.html");
const ADMIN: &str = include_str!("../static/admin.html");
const GO_LIVE: &str = include_str!("../static/golive.html");

macro_rules! assets {
    ($($name:literal => $type:literal),* $(,)?) => {
        &[$(($name, $type, include_str!(concat!("../static/", $name)))),*]
    };
}

/// Scripts and styles, by file name under `/static/`: (name, type, body).
const ASSETS: &[(&str, &str, &str)] = assets![
    "style.css" => "text/css",
    "whep.js" => "text/javascript",
    "whip.js" => "text/javascript",
    "api.js" => "text/javascript",
    "realtime.js" => "text/javascript",
    "wsview.js" => "text/javascript",
    "player.js" => "text/javascript",
    "watch.js" => "text/javascript",
    "gate.js" => "text/javascript",
    "alerts.js" => "text/javascript",
    "chat.js" => "text/javascript",
    "reactions.js" => "text/javascript",
    "likes.js" => "text/javascript",
    "comments.js" => "text/javascript",
    "account.js" => "text/javascript",
    "directory.js" => "text/javascript",
    "moderate.js" => "text/javascript",
    "admin.js" => "text/javascript",
    "charts.js" => "text/javascript",
    "golive.js" => "text/javascript",
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
        .route("/moderate", get(|| async { Html(MODERATE) }))
        .route("/admin", get(|| async { Html(ADMIN) }))
        .route("/go-live", get(|| async { Html(GO_LIVE) }))
        .route(
            "/static/{name}",
            get(|axum::extract::Path(name): axum::extract::Path<String>| async move { asset(&name) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/static/…` a page or script references is served.
    #[test]
    fn every_asset_a_page_references_exists() {
        let pages = [INDEX, WATCH, PUBLISH, MODERATE, ADMIN, GO_LIVE];
        for page in pages.into_iter().chain(ASSETS.iter().map(|a| a.2)) {
            for (at, _) in page.match_indices("/static/") {
                let name: String = page[at + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "/static/{name} is referenced but not served"
                );
            }
        }
    }
}
