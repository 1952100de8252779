//! `POST /api/alerts` (moderators and admins) and `GET /api/alerts`: the
//! same alerts the websocket's `alert.send` makes, for tools and for the
//! moderator page when its websocket is down. Persisted first, then
//! delivered to every connection in scope.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, QueryParams};
use super::{require_moderator, Caller};
use crate::error::ApiError;
use crate::store::{now_ms, Alert, NewAlert, Severity};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    severity: Severity,
    text: String,
    #[serde(default = "all")]
    scope: String,
    ttl: u32,
}

fn all() -> String {
    "all".into()
}

#[derive(Serialize)]
pub struct AlertState {
    pub alert: Alert,
    pub delivered: u64,
    pub acked: u64,
}

pub async fn post_alert(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(request): JsonBody<AlertRequest>,
) -> Result<(StatusCode, Json<AlertState>), ApiError> {
    require_moderator(&who)?;
    let scope = request.scope.trim().to_owned();
    if scope != "all" && !state.streams().exists(&scope).await? {
        return Err(ApiError::BadRequest(format!(
            "scope must be \"all\" or a stream name; no stream named {scope:?}"
        )));
    }
    let new = NewAlert {
        severity: request.severity,
        text: request.text,
        scope,
        ttl_secs: request.ttl,
        sender: who,
    };
    new.validate().map_err(ApiError::BadRequest)?;
    let alert = state.store().insert_alert(&new).await?;
    let delivered = state.hub().publish_alert(&alert);
    Ok((
        StatusCode::CREATED,
        Json(AlertState {
            alert,
            delivered,
            acked: 0,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    active: Option<bool>,
}

#[derive(Serialize)]
pub struct AlertList {
    pub alerts: Vec<AlertState>,
}

/// Moderators see delivery counts; the list is theirs.
pub async fn list_alerts(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<AlertQuery>,
) -> Result<Json<AlertList>, ApiError> {
    require_moderator(&who)?;
    let alerts = if q.active.unwrap_or(false) {
        state.store().active_alerts(now_ms()).await?
    } else {
        state.store().recent_alerts(100).await?
    };
    Ok(Json(AlertList {
        alerts: alerts
            .into_iter()
            .map(|alert| {
                let (delivered, acked) = state.hub().alert_status(alert.id).unwrap_or((0, 0));
                AlertState {
                    alert,
                    delivered,
                    acked,
                }
            })
            .collect(),
    }))
}
