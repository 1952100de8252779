//! The HTTP layers around every route:
//!
//! - **CORS** for browser WHIP/WHEP clients on other origins. Media
//!   endpoints are public by design (WHIP is guarded by its bearer token,
//!   not by origin), so any origin may call them; the headers a WHIP/WHEP
//!   client must read are exposed on every response. Written here rather
//!   than with `tower_http::cors`: that layer answers *every* `OPTIONS` as a
//!   preflight without calling the route, which would drop the `Link`
//!   (ICE servers) a WHIP client's `OPTIONS` gets under RFC 9725, and it
//!   adds nothing to requests without an `Origin`.
//! - **Time limits** (`tower-http`): a request body may pause at most
//!   `body_read_secs` between pieces (408 `timeout`), and a request is
//!   answered within `request_secs` (503 `unavailable`), so a client
//!   trickling its body holds a handler for seconds, not forever.
//! - **Tracing** (`tower-http`): one span per request, at `debug`.
//!
//! Invariant: every error a layer produces gets the same JSON body as the
//! handlers' errors (`{"error": …, "message": …}`), see [`json_errors`].

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use crate::Limits;

pub fn layers(router: Router, limits: &Limits) -> Router {
    router
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            limits.body_read_secs,
        )))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(limits.request_secs),
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_response(add_cors_headers))
        .layer(TraceLayer::new_for_http())
}

async fn add_cors_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, ETag, Accept-Patch, Accept-Post"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// A layer's bare error (a timeout's empty 503) gets the JSON body every
/// other error has; handlers' responses pass untouched.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (code, message) = match status {
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the server took too long to answer"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request body took too long to arrive"),
        _ => ("error", status.canonical_reason().unwrap_or("error")),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// Whether a body error (anywhere in its chain of causes) is the body
/// pausing longer than `body_read_secs`.
pub fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}
