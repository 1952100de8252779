//! Abuse guards on credential checks: [`Guards`] throttles wrong
//! passwords (per client address and per account) and wrong bearer
//! tokens and stream keys (per client address and per stream), answering
//! 429 with `Retry-After` while a lockout lasts; [`Limits`] holds every
//! such limit as a setting (`[limits]` in `relaycast.toml`, listed in
//! `docs/security.md`).
//!
//! The policy is [`lockout::Lockout`], pure and table-tested; this module
//! only holds it behind a mutex (HTTP and websocket paths, never media),
//! finds the client's address and logs one line when a lockout starts —
//! the address and the subject (account name or stream), never the
//! password, key or token.
//!
//! Why not `governor`: a lockout must exempt the addresses its owner used
//! (else anyone could lock OBS out of its own stream), forget idle entries
//! under a hard cap, and run on a clock the tests step by hand; the token
//! bucket beneath it is the realtime layer's, already table-tested.

pub mod connections;
pub mod lockout;
pub mod quota;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use serde::Deserialize;

use self::lockout::{client_key, LockedOut, Lockout, LockoutLimits};
use self::quota::Quota;
use crate::error::ApiError;
use crate::realtime::rate::Rate;
use crate::store::PasswordLimits;

/// A rate as operators write it: `{ burst = 10, per_minute = 6 }`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSetting {
    /// How many may happen back to back.
    pub burst: u32,
    /// How many more each minute after that.
    pub per_minute: f64,
}

impl RateSetting {
    pub const fn new(burst: u32, per_minute: f64) -> RateSetting {
        RateSetting { burst, per_minute }
    }

    pub fn rate(self) -> Rate {
        Rate {
            per_sec: self.per_minute / 60.0,
            burst: f64::from(self.burst.max(1)),
        }
    }
}

/// Every abuse limit of the control plane, with its default.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wrong passwords one client address may send.
    pub login_failures_per_client: RateSetting,
    /// Wrong passwords one account may receive from addresses that have
    /// not logged into it recently.
    pub login_failures_per_account: RateSetting,
    /// Wrong stream keys and bearer tokens one client address may send.
    pub key_failures_per_client: RateSetting,
    /// Wrong keys one stream may receive from addresses that have not
    /// published it recently.
    pub key_failures_per_stream: RateSetting,
    /// Client addresses (and subjects) each throttle tracks at most.
    pub max_tracked_clients: usize,
    /// How long a successful login or publish exempts its address from
    /// its account's or stream's lockout, in hours.
    pub trust_hours: u64,
    /// Comments one identity may post.
    pub comments_per_identity: RateSetting,
    /// Comments one client address may post, whatever identities it uses
    /// (guest tokens are free to make).
    pub comments_per_client: RateSetting,
    /// Argon2 work: threads and queue.
    pub passwords: PasswordLimits,
    /// TCP connections the HTTP server holds at once, websockets included
    /// (keep it below the process's file descriptor limit).
    pub max_connections: usize,
    /// TCP connections one client address (an IPv6 /64) may hold.
    pub max_connections_per_client: usize,
    /// Seconds a client has to send a request's head; a keep-alive
    /// connection idle this long is closed too.
    pub header_read_secs: u64,
    /// Websocket connections at once (each may queue up to 512 KiB).
    pub max_websockets: usize,
    /// Seconds a client has to send a request's body once its head is in.
    pub body_read_secs: u64,
    /// Seconds a request may take to be answered (503 beyond).
    pub request_secs: u64,
    /// Channels one account may have (deleted ones do not count).
    pub max_channels_per_account: usize,
    /// Chat lines (and deletions) waiting to be written to the chat log at
    /// most; past it lines are missing from replays (counted as
    /// `relaycast_chat_log_dropped_total`), never from live chat.
    pub chat_log_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_failures_per_client: RateSetting::new(10, 10.0),
            login_failures_per_account: RateSetting::new(5, 2.0),
            key_failures_per_client: RateSetting::new(20, 20.0),
            key_failures_per_stream: RateSetting::new(20, 10.0),
            max_tracked_clients: 100_000,
            trust_hours: 24 * 30,
            comments_per_identity: RateSetting::new(5, 10.0),
            comments_per_client: RateSetting::new(20, 60.0),
            passwords: PasswordLimits::default(),
            max_connections: 16_384,
            max_connections_per_client: 1_000,
            header_read_secs: 10,
            max_websockets: 10_000,
            body_read_secs: 10,
            request_secs: 30,
            max_channels_per_account: 3,
            chat_log_queue: 4096,
        }
    }
}

/// Which credential is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An account's password (subject: the username).
    Password,
    /// A stream key or identity token (subject: the stream, when known).
    Key,
}

impl Credential {
    fn what(self) -> &'static str {
        match self {
            Credential::Password => "failed logins",
            Credential::Key => "wrong keys or tokens",
        }
    }
}

pub struct Guards {
    passwords: Mutex<Lockout>,
    keys: Mutex<Lockout>,
    comments: Mutex<CommentQuotas>,
}

struct CommentQuotas {
    per_identity: Quota<String>,
    per_client: Quota<IpAddr>,
}

impl Guards {
    pub fn new(limits: &Limits) -> Guards {
        let trust_for = Duration::from_secs(limits.trust_hours.saturating_mul(3600));
        let lockout = |per_client: RateSetting, per_subject: RateSetting| {
            Mutex::new(Lockout::new(LockoutLimits {
                per_client: per_client.rate(),
                per_subject: per_subject.rate(),
                max_tracked: limits.max_tracked_clients.max(1),
                trust_for,
            }))
        };
        Guards {
            passwords: lockout(
                limits.login_failures_per_client,
                limits.login_failures_per_account,
            ),
            keys: lockout(
                limits.key_failures_per_client,
                limits.key_failures_per_stream,
            ),
            comments: Mutex::new(CommentQuotas {
                per_identity: Quota::new(
                    limits.comments_per_identity.rate(),
                    limits.max_tracked_clients,
                ),
                per_client: Quota::new(
                    limits.comments_per_client.rate(),
                    limits.max_tracked_clients,
                ),
            }),
        }
    }

    /// Spends one comment of `identity` and of `client`, or 429 with when
    /// to retry (neither is spent then).
    pub fn comment(&self, client: IpAddr, identity: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let client = client_key(client);
        let identity = identity.to_owned();
        // The quotas hold no invariant a panic elsewhere could break.
        let mut q = self
            .comments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let refused = q
            .per_identity
            .check(&identity, now)
            .and_then(|()| q.per_client.check(&client, now))
            .and_then(|()| q.per_client.take(&client, now))
            .and_then(|()| q.per_identity.take(&identity, now));
        refused.map_err(|wait| ApiError::too_many("comments", wait))
    }

    fn lockout(&self, kind: Credential) -> std::sync::MutexGuard<'_, Lockout> {
        let m = match kind {
            Credential::Password => &self.passwords,
            Credential::Key => &self.keys,
        };
        // The lockout holds no invariant a panic elsewhere could break.
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// 429 while `client` (or `subject`, for an untrusted client) is
    /// locked out of `kind` checks.
    pub fn check(
        &self,
        kind: Credential,
        client: IpAddr,
        subject: Option<&str>,
    ) -> Result<(), ApiError> {
        self.lockout(kind)
            .check(client, subject, Instant::now())
            .map_err(|wait| ApiError::too_many(kind.what(), wait))
    }

    /// A wrong credential; logs one line when it starts a lockout.
    pub fn failed(&self, kind: Credential, client: IpAddr, subject: Option<&str>) {
        let locked = self.lockout(kind).failed(client, subject, Instant::now());
        match locked {
            Some(LockedOut::Client) => tracing::warn!(
                %client, subject = subject.unwrap_or("-"), kind = kind.what(),
                "throttling a client: too many wrong credentials"
            ),
            Some(LockedOut::Subject) => tracing::warn!(
                %client, subject = subject.unwrap_or("-"), kind = kind.what(),
                "throttling untrusted clients of a subject: too many wrong credentials"
            ),
            None => {}
        }
    }

    /// The right credential: `client` is trusted for `subject`.
    pub fn succeeded(&self, kind: Credential, client: IpAddr, subject: &str) {
        self.lockout(kind)
            .succeeded(client, subject, Instant::now());
    }
}

/// The client's address (see [`client_ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<crate::AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(
            parts,
            &state.settings().trusted_proxies,
        )))
    }
}

/// The client's address: the connection's peer (`0.0.0.0` when the server
/// was not given connect info, as in `oneshot` tests), unless that peer is
/// a trusted proxy: then the right-most address of `X-Forwarded-For` that
/// is not itself a trusted proxy (each proxy appends the address it saw, so
/// only the part our own proxies wrote can be believed; anything a client
/// put to the left is ignored). A malformed header counts as none.
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in parts.headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        hops.extend(text.split(','));
    }
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return peer;
        };
        if !is_trusted(&ip) {
            return ip;
        }
    }
    peer
}
