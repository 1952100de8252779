//! [`ApiError`]: every way a request can fail, each with its status and a
//! stable machine-readable code. Client mistakes are logged at debug level
//! at most; internal errors once, at error level.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use relaycast_sfu::MediaError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Publishing without this stream's key as the bearer token.
    #[error("this stream's key is required as the bearer token")]
    WrongStreamKey,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The request cannot be done in the resource's present state (an ad
    /// break while one runs, a pod that is not over).
    #[error("{0}")]
    InvalidState(String),
    /// The resource is still being made (a recording while it runs).
    #[error("{0}")]
    InProgress(String),
    /// A name (e.g. a username) that is already in use.
    #[error("{0}")]
    Taken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the username or password is wrong")]
    BadCredentials,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body stopped arriving")]
    BodyTimeout,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the server is busy; retry shortly")]
    Unavailable,
    /// A throttle refused the request: 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// Admission control refused a viewer: 503 with `Retry-After`.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized | ApiError::WrongStreamKey => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "already_live"),
            ApiError::InvalidState(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::InProgress(_) => (StatusCode::CONFLICT, "in_progress"),
            ApiError::Taken(_) => (StatusCode::CONFLICT, "taken"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::BadSdp(_) | MediaError::UnusableOffer(_) => {
                ApiError::BadRequest(e.to_string())
            }
            MediaError::UnsupportedCodecs { .. } => ApiError::UnsupportedMediaType(e.to_string()),
            MediaError::AlreadyLive(_) => ApiError::Conflict(e.to_string()),
            MediaError::NoSuchSession => ApiError::NotFound("no such session".into()),
            MediaError::Busy => ApiError::Unavailable,
            MediaError::Overloaded { retry_after, .. } => ApiError::Overloaded {
                message: e.to_string(),
                retry_after_secs: retry_after.as_secs().max(1),
            },
            MediaError::WorkerGone => ApiError::Internal(e.to_string()),
        }
    }
}

impl ApiError {
    /// 429 for a throttle that frees up after `wait` (rounded up to whole
    /// seconds, as `Retry-After` counts them).
    pub fn too_many(what: &str, wait: std::time::Duration) -> ApiError {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        ApiError::TooManyRequests {
            message: format!("too many {what}; retry in {secs} s"),
            retry_after_secs: secs,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = serde_json::json!({ "error": code, "message": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized | ApiError::WrongStreamKey) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Overloaded {
            retry_after_secs, ..
        }
        | ApiError::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}
