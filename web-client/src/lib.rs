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
const VIDEO: &str = include_str!("../static/video.html");

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
    "modads.js" => "text/javascript",
    "adsadmin.js" => "text/javascript",
    "admin.js" => "text/javascript",
    "charts.js" => "text/javascript",
    "golive.js" => "text/javascript",
    "video.js" => "text/javascript",
    "videolist.js" => "text/javascript",
    "chatreplay.js" => "text/javascript",
    "webmplayer.js" => "text/javascript",
    "adbreak.js" => "text/javascript",
    "viewport.js" => "text/javascript",
    "iceservers.js" => "text/javascript",
    "vodads.js" => "text/javascript",
    // @dailymotion/vast-client 6.4.5 (MIT, static/vast-client.LICENSE),
    // its ES module build from npm unchanged: VAST parsing and tracking.
    "vast-client.min.js" => "text/javascript",
    // hls.js 1.7.4 (Apache-2.0, static/hls.js.LICENSE), the light build
    // from npm without its source-map comment: the on-demand player.
    "hls.light.min.js" => "text/javascript",
];

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// A recorded video's id (`v` and 32 hex digits, longer than any stream
/// name): `/watch/{id}` is then the on-demand page.
fn is_video_id(name: &str) -> bool {
    name.len() == 33
        && name.starts_with('v')
        && name[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Routes for the pages; merged into the server's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/watch/{stream}",
            get(|axum::extract::Path(name): axum::extract::Path<String>| async move {
                Html(if is_video_id(&name) { VIDEO } else { WATCH })
            }),
        )
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
        let pages = [INDEX, WATCH, PUBLISH, MODERATE, ADMIN, GO_LIVE, VIDEO];
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
