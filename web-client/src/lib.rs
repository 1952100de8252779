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
    (
        "watch.js",
        "text/javascript",
        include_str!("../static/watch.js"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/static/…` a page references is served.
    #[test]
    fn every_asset_a_page_references_exists() {
        for page in [INDEX, WATCH, PUBLISH, ASSETS[0].2, ASSETS[1].2, ASSETS[2].2] {
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
