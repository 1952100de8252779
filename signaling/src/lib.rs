//! relaycast's control plane: the axum [`router`] serving WHIP ingest, WHEP
//! egress, the broadcast directory API, health and metrics, over a shared
//! [`AppState`]. Handlers never touch media state: they call the media
//! plane through the [`MediaPlane`] trait (the sfu's handle, or a fake in
//! tests).
//!
//! Every error a client can cause is an [`ApiError`]: an HTTP status plus a
//! JSON body `{"error": code, "message": text}`, never a panic.

mod ad_breaks;
mod admin;
pub mod ads;
mod api;
mod auth;
pub mod channels;
mod chat_log;
mod error;
#[cfg(test)]
mod fake_media;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod guard;
pub mod ice_servers;
pub mod identity;
mod layers;
pub mod media;
pub mod realtime;
pub mod recordings;
mod rest;
pub mod store;
mod text;
mod whip_whep;
mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use ad_breaks::{schedule_loop as ad_schedule_loop, AdSettings};
pub use error::ApiError;
pub use guard::Limits;
pub use identity::{Identity, Role, Tokens};
pub use media::MediaPlane;
pub use store::{Store, StoreError};

/// Settings read once at start; handlers never read env or files.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Stream name → the bearer token its broadcaster must present.
    pub stream_keys: BTreeMap<String, String>,
    /// STUN/TURN URLs announced in `Link` headers and `/api/ice-servers`.
    pub ice_servers: Vec<String>,
    /// Issues time-limited TURN credentials (TURN REST convention).
    pub turn: Option<ice_servers::TurnSecret>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see
    /// [`guard::client_ip`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The HS256 secret identity tokens are signed with. The binary always
    /// sets one (from config, or generated once and kept in the data dir).
    pub jwt_secret: Vec<u8>,
    /// Abuse limits (throttles, queues).
    pub limits: Limits,
    /// Where recordings are kept (`None`: this node serves no videos).
    pub recordings: Option<Arc<dyn object_store::ObjectStore>>,
    /// Whether this node records broadcasts: only then is chat logged for
    /// replay beside the recordings.
    pub records: bool,
    /// `[ads]`: ad breaks and the ad server's limits.
    pub ads: AdSettings,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    media: Arc<dyn MediaPlane>,
    store: Store,
    settings: Settings,
    tokens: Tokens,
    hub: realtime::Hub,
    guards: guard::Guards,
    /// The one metrics registry `/metrics` encodes.
    metrics: prometheus_client::registry::Registry,
    streams: channels::Streams,
    chat_log: chat_log::ChatLog,
    ads: ad_breaks::AdRuntime,
}

impl AppState {
    pub fn new(media: Arc<dyn MediaPlane>, store: Store, settings: Settings) -> Self {
        let hub = realtime::Hub::new();
        let mut metrics = prometheus_client::registry::Registry::default();
        metrics.register_collector(media.metrics_collector());
        metrics.register_collector(Box::new(api::NodeCollector::new(hub.clone())));
        let streams = channels::Streams::new(
            settings.stream_keys.clone(),
            store.clone(),
            &settings.jwt_secret,
        );
        let dropped = prometheus_client::metrics::counter::Counter::default();
        metrics.register(
            "relaycast_chat_log_dropped",
            "Chat lines missing from the chat log (its queue was full or a write failed)",
            dropped.clone(),
        );
        let chat_log = if settings.records {
            chat_log::ChatLog::spawn(store.clone(), settings.limits.chat_log_queue, dropped)
        } else {
            chat_log::ChatLog::off()
        };
        AppState {
            inner: Arc::new(Inner {
                ads: ad_breaks::AdRuntime::new(&settings.jwt_secret, settings.ads),
                streams,
                chat_log,
                media,
                store,
                tokens: Tokens::new(&settings.jwt_secret),
                guards: guard::Guards::new(&settings.limits),
                settings,
                hub,
                metrics,
            }),
        }
    }

    /// Which streams exist (the operator's and channels) and their keys.
    pub fn streams(&self) -> &channels::Streams {
        &self.inner.streams
    }

    /// The registry `/metrics` encodes.
    pub fn metrics(&self) -> &prometheus_client::registry::Registry {
        &self.inner.metrics
    }

    pub fn media(&self) -> &dyn MediaPlane {
        &*self.inner.media
    }

    /// The media plane as a shared handle, for tasks that outlive a request.
    pub fn media_arc(&self) -> Arc<dyn MediaPlane> {
        self.inner.media.clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn recordings(&self) -> Option<&Arc<dyn object_store::ObjectStore>> {
        self.inner.settings.recordings.as_ref()
    }

    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// Credential-check throttles.
    pub fn guards(&self) -> &guard::Guards {
        &self.inner.guards
    }

    /// Realtime connections and rooms: REST handlers push through it
    /// (alerts, likes, comments, broadcast edits).
    pub fn hub(&self) -> &realtime::Hub {
        &self.inner.hub
    }

    /// The ad server's state (URL signing, running breaks).
    pub(crate) fn ads(&self) -> &ad_breaks::AdRuntime {
        &self.inner.ads
    }

    pub(crate) fn chat_log(&self) -> &chat_log::ChatLog {
        &self.inner.chat_log
    }

    /// The identity behind a bearer token: a valid identity token, or a
    /// stream key, which makes its holder that stream's broadcaster.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        if let Ok(identity) = self.tokens().verify(token) {
            return Some(identity);
        }
        self.settings()
            .stream_keys
            .iter()
            .find(|(_, key)| auth::constant_time_eq(token.as_bytes(), key.as_bytes()))
            .map(|(stream, _)| Identity {
                id: format!("b-{stream}"),
                name: stream.clone(),
                role: Role::Broadcaster,
                stream: Some(stream.clone()),
            })
    }
}

/// An upload's body: the largest creative plus room for the form's fields.
fn creative_body_limit(state: &AppState) -> usize {
    let mb = state.settings().ads.max_creative_mb as usize;
    mb.saturating_mul(1024 * 1024).saturating_add(64 * 1024)
}

/// The whole HTTP API. Tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    let limits = state.settings().limits;
    let routes =
        Router::new()
            .route(
                "/whip/{stream}",
                post(whip_whep::whip_post).options(whip_whep::options_post),
            )
            .route(
                "/whip/{stream}/{session}",
                axum::routing::delete(whip_whep::whip_delete)
                    .patch(whip_whep::whip_patch)
                    .options(whip_whep::options_resource),
            )
            .route(
                "/whep/{stream}",
                post(whip_whep::whep_post).options(whip_whep::options_post),
            )
            .route(
                "/whep/{stream}/{session}",
                axum::routing::delete(whip_whep::whep_delete)
                    .patch(whip_whep::whep_patch)
                    .get(api::whep_state)
                    .options(whip_whep::options_resource),
            )
            .route("/api/broadcasts", get(rest::list_broadcasts))
            .route(
                "/api/broadcasts/{id}",
                get(rest::get_broadcast).put(rest::put_broadcast),
            )
            .route(
                "/api/broadcasts/{id}/comments",
                get(rest::list_comments).post(rest::post_comment),
            )
            .route(
                "/api/broadcasts/{id}/comments/{cid}",
                axum::routing::delete(rest::delete_comment),
            )
            .route(
                "/api/broadcasts/{id}/like",
                get(rest::get_like)
                    .put(rest::put_like)
                    .delete(rest::delete_like),
            )
            .route("/api/guest", post(rest::create_guest))
            .route("/api/accounts", post(rest::create_account))
            .route("/api/login", post(rest::login))
            .route("/api/me", get(rest::get_me).patch(rest::patch_me))
            .route("/api/alerts", get(rest::list_alerts).post(rest::post_alert))
            .route(
                "/api/ads",
                get(rest::list_ads).post(rest::create_ad).layer(
                    axum::extract::DefaultBodyLimit::max(creative_body_limit(&state)),
                ),
            )
            .route("/api/ads/report", get(rest::ad_report))
            .route("/api/ads/breaks/{id}/events", get(rest::break_events))
            .route("/api/ads/{id}", axum::routing::delete(rest::retire_ad))
            .route("/api/broadcasts/{id}/ad-breaks", post(rest::start_break))
            .route("/api/entitlements", post(rest::grant_entitlement))
            .route("/api/me/entitlements", get(rest::my_entitlements))
            .route("/ads/vast", get(rest::vast_pod))
            .route("/ads/track", get(rest::track))
            .route("/ads/creatives/{id}", get(rest::creative))
            .route("/ads/companions/{id}", get(rest::companion))
            .route("/videos/{id}/ads.vmap", get(rest::video_vmap))
            .route("/api/broadcasts/{id}/viewers", get(api::list_viewers))
            .route("/api/admin/overview", get(admin::overview))
            .route("/api/channels", post(rest::create_channel))
            .route("/api/channels/mine", get(rest::my_channels))
            .route("/api/channels/{name}/key", post(rest::rotate_key))
            .route(
                "/api/channels/{name}",
                axum::routing::delete(rest::delete_channel),
            )
            .route(
                "/api/channels/{name}/suspension",
                axum::routing::put(rest::set_suspension),
            )
            .route("/api/videos", get(rest::list_videos))
            .route(
                "/api/videos/{id}",
                get(rest::get_video).delete(rest::delete_video),
            )
            .route("/api/videos/{id}/download", get(rest::download_video))
            .route("/api/videos/{id}/chat", get(rest::video_chat))
            .route("/videos/{id}/master.m3u8", get(rest::master_playlist))
            .route("/videos/{id}/poster.jpg", get(rest::video_poster))
            .route(
                "/api/broadcasts/{id}/poster.jpg",
                get(rest::broadcast_poster),
            )
            .route("/videos/{id}/{rendition}/{file}", get(rest::rendition_file))
            .route(
                "/whep/{stream}/{session}/layer",
                post(whip_whep::whep_layer),
            )
            .route("/whep/{stream}/{session}/view", post(whip_whep::whep_view))
            .route("/api/ice-servers", get(whip_whep::ice_servers))
            .route("/ws", get(ws::upgrade))
            .route("/healthz", get(api::healthz))
            .route("/readyz", get(api::readyz))
            .route("/metrics", get(api::metrics))
            .with_state(state);
    layers::layers(routes, &limits)
}

#[cfg(test)]
mod tests;
