//! `POST /api/guest`, `POST /api/accounts`, `POST /api/login`,
//! `GET`/`PATCH /api/me`: getting and renaming an identity. Guests get a
//! random id and a signed token; accounts are viewers with a password.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::extract::JsonBody;
use super::Caller;
use crate::error::ApiError;
use crate::guard::{ClientIp, Credential};
use crate::identity::{Identity, Role};
use crate::store::UserError;
use crate::AppState;

/// Guests and accounts keep their token for 30 days.
pub const TOKEN_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Longest display name, in characters.
pub const MAX_NAME: usize = 40;

#[derive(Serialize)]
pub struct Issued {
    pub token: String,
    pub identity: Identity,
}

fn issue(state: &AppState, identity: Identity) -> Json<Issued> {
    Json(Issued {
        token: state.tokens().issue(&identity, TOKEN_TTL),
        identity,
    })
}

fn display_name(name: Option<&str>, fallback: impl FnOnce() -> String) -> Result<String, ApiError> {
    let Some(n) = name.map(str::trim) else {
        return Ok(fallback());
    };
    let chars = n.chars().count();
    if !(1..=MAX_NAME).contains(&chars) {
        return Err(ApiError::BadRequest(format!(
            "name must be 1-{MAX_NAME} characters (this one is {chars})"
        )));
    }
    crate::text::label(n).map_err(|why| ApiError::BadRequest(format!("the name {why}")))?;
    Ok(n.to_owned())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GuestRequest {
    #[serde(default)]
    name: Option<String>,
}

/// The body is optional (`{}` or empty) so a bare POST works.
pub async fn create_guest(
    State(state): State<AppState>,
    super::extract::RawBody(body): super::extract::RawBody,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    let request: GuestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GuestRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    let suffix: u64 = rand::rng().random();
    let id = format!("g-{suffix:016x}");
    let name = display_name(request.name.as_deref(), || format!("guest-{}", &id[2..6]))?;
    let who = Identity {
        id,
        name,
        role: Role::Viewer,
        stream: None,
    };
    Ok((StatusCode::CREATED, issue(&state, who)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

fn account_identity(id: i64, name: &str) -> Identity {
    Identity {
        id: format!("u-{id}"),
        name: name.to_owned(),
        role: Role::Viewer,
        stream: None,
    }
}

pub async fn create_account(
    State(state): State<AppState>,
    JsonBody(c): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    let account = state
        .store()
        .create_account(c.username.trim(), &c.password)
        .await
        .map_err(|e| match e {
            UserError::Invalid(m) => ApiError::BadRequest(m),
            UserError::Taken => ApiError::Taken("that username is taken".into()),
            UserError::Store(e) => e.into(),
        })?;
    let who = account_identity(account.id, &account.display_name);
    Ok((StatusCode::CREATED, issue(&state, who)))
}

/// Throttled per client and per account ([`crate::guard`]): while locked
/// out, the password is not even checked.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(c): JsonBody<Credentials>,
) -> Result<Json<Issued>, ApiError> {
    let username = c.username.trim();
    let guards = state.guards();
    guards.check(Credential::Password, client, Some(username))?;
    let Some(account) = state.store().login(username, &c.password).await? else {
        guards.failed(Credential::Password, client, Some(username));
        return Err(ApiError::BadCredentials);
    };
    guards.succeeded(Credential::Password, client, username);
    Ok(issue(
        &state,
        account_identity(account.id, &account.display_name),
    ))
}

pub async fn get_me(Caller(who): Caller) -> Json<Identity> {
    Json(who)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    name: String,
}

/// A new token carrying the new display name (accounts keep it too).
pub async fn patch_me(
    State(state): State<AppState>,
    Caller(mut who): Caller,
    JsonBody(r): JsonBody<Rename>,
) -> Result<Json<Issued>, ApiError> {
    if who.role == Role::Broadcaster {
        return Err(ApiError::Forbidden(
            "a stream key's name is its stream's name".into(),
        ));
    }
    who.name = display_name(Some(&r.name), String::new)?;
    if let Some(id) = who.id.strip_prefix("u-").and_then(|n| n.parse().ok()) {
        state.store().set_display_name(id, &who.name).await?;
    }
    Ok(issue(&state, who))
}
