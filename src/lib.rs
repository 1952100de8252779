//! The `relaycast` server as a library: [`start`] wires the media plane
//! (`relaycast-sfu`), the HTTP control plane (`relaycast-signaling`) and the
//! embedded web client into one running [`Server`]. `main.rs` only parses the
//! command line; end-to-end tests call [`start`] directly on loopback.

pub mod capacity;
pub mod cli;
pub mod config;
pub mod entitlement;
mod http;
mod secrets;
pub mod token;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Config;

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    /// The bound HTTP address (useful when the config asked for port 0).
    pub http_addr: SocketAddr,
    /// The first media worker's bound UDP address.
    pub udp_addr: SocketAddr,
    /// Every media worker's bound UDP address, in worker order.
    pub udp_addrs: Vec<SocketAddr>,
    /// Stream keys in force, including a generated one.
    pub stream_keys: std::collections::BTreeMap<String, String>,
    stop: oneshot::Sender<()>,
    http: JoinHandle<()>,
    media: relaycast_sfu::SfuHandle,
    store: relaycast_signaling::Store,
    checkpoints: Option<JoinHandle<()>>,
    recorder: Option<JoinHandle<()>>,
    recordings_index: Option<JoinHandle<()>>,
    retention: Option<JoinHandle<()>>,
    ad_schedule: JoinHandle<()>,
}

/// Starts the media workers and the HTTP server.
pub async fn start(mut config: Config) -> anyhow::Result<Server> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    if config.stream_keys.is_empty() {
        let secret = secrets::stream_key(&config.data_dir)?;
        config.stream_keys.insert("live".to_owned(), secret);
    }

    let recordings = open_recordings(&config)?;
    let (recorder, recorder_task, recorder_events) = match (&recordings, config.recordings.enabled)
    {
        (Some(objects), true) => {
            let (events_tx, events_rx) = tokio::sync::mpsc::channel(1024);
            let r = &config.recordings;
            let (tap, task) = relaycast_sfu::recorder::spawn(
                objects.clone(),
                relaycast_sfu::recorder::RecorderConfig {
                    segment_target: std::time::Duration::from_secs(r.segment_secs),
                    reconnect_grace: std::time::Duration::from_secs(r.reconnect_grace_secs),
                    max_length: std::time::Duration::from_secs(r.max_hours * 3600),
                    dvr_window: std::time::Duration::from_secs(r.dvr_window_secs),
                    keyframe_interval: std::time::Duration::from_secs(r.keyframe_interval_secs),
                    queue: r.queue,
                },
                events_tx,
            );
            (Some(tap), Some(task), Some(events_rx))
        }
        _ => (None, None, None),
    };

    let candidate_ip = config.candidate_ip();
    let records = recorder.is_some();
    let media = relaycast_sfu::SfuHandle::start(relaycast_sfu::MediaConfig {
        udp_bind: SocketAddr::new(bind_ip_for(candidate_ip), config.udp_port),
        candidate_ip,
        viewer_bounds: config.viewer_bounds(),
        workers: config.media_workers(),
        max_viewers: (config.max_viewers != 0).then_some(config.max_viewers),
        recorder,
    })
    .context("starting the media workers")?;
    let udp_addr = media.udp_addr();
    let udp_addrs = media.udp_addrs();

    let store = open_store(&config).await?;
    let store = store.with_password_limits(config.limits.passwords);
    for stream in config.stream_keys.keys() {
        store
            .ensure_broadcast(stream)
            .await
            .context("recording the configured streams")?;
    }
    if let Some(objects) = &recordings {
        let closed = relaycast_signaling::recordings::repair(&store, objects.as_ref())
            .await
            .context("closing recordings left open")?;
        if closed > 0 {
            tracing::info!(closed, "recordings a previous run left open were closed");
        }
    }
    let recordings_index = recorder_events.map(|events| {
        tokio::spawn(relaycast_signaling::recordings::persist(
            store.clone(),
            events,
        ))
    });
    let retention = match (&recordings, config.recordings.retention_days) {
        (Some(objects), days) if days > 0 => Some(tokio::spawn(
            relaycast_signaling::recordings::retention_loop(
                store.clone(),
                objects.clone(),
                std::time::Duration::from_secs(days * 86_400),
                std::time::Duration::from_secs(3600),
            ),
        )),
        _ => None,
    };
    let checkpoints = (config.wal_checkpoint_secs > 0).then(|| {
        tokio::spawn(checkpoint_loop(
            store.clone(),
            std::time::Duration::from_secs(config.wal_checkpoint_secs),
        ))
    });
    let state = relaycast_signaling::AppState::new(
        std::sync::Arc::new(media.clone()),
        store.clone(),
        relaycast_signaling::Settings {
            stream_keys: config.stream_keys.clone(),
            ice_servers: config.ice_servers.clone(),
            turn: config.turn_secret.as_ref().map(|s| {
                relaycast_signaling::ice_servers::TurnSecret::new(
                    s.as_bytes(),
                    std::time::Duration::from_secs(config.turn_ttl_secs),
                )
            }),
            trusted_proxies: config.trusted_proxy_nets()?,
            jwt_secret: jwt_secret(&config)?.into_bytes(),
            limits: config.limits,
            recordings: recordings.clone(),
            records,
            ads: config.ads,
        },
    );
    let ad_schedule = tokio::spawn(relaycast_signaling::ad_schedule_loop(state.clone()));
    let app = relaycast_signaling::router(state).merge(relaycast_web_client::router());

    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http_addr))?;
    let http_addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let http_limits = http::HttpLimits {
        max_connections: config.limits.max_connections,
        max_connections_per_client: config.limits.max_connections_per_client,
        header_read: std::time::Duration::from_secs(config.limits.header_read_secs.max(1)),
    };
    let http = tokio::spawn(async move {
        http::serve(listener, app, http_limits, async {
            let _ = stopped.await;
        })
        .await;
    });
    Ok(Server {
        http_addr,
        udp_addr,
        udp_addrs,
        stream_keys: config.stream_keys,
        stop,
        http,
        media,
        store,
        checkpoints,
        recorder: recorder_task,
        recordings_index,
        retention,
        ad_schedule,
    })
}

/// The control-plane database the config names: PostgreSQL by URL, else
/// the SQLite file in the data dir (the CLI's subcommands open it too).
pub async fn open_store(config: &Config) -> anyhow::Result<relaycast_signaling::Store> {
    Ok(match &config.database_url {
        Some(url) => relaycast_signaling::Store::open_postgres(url)
            .await
            .context("connecting to PostgreSQL")?,
        None => {
            let path = config.data_dir.join("relaycast.db");
            relaycast_signaling::Store::open_sqlite(&path)
                .await
                .with_context(|| format!("opening the SQLite database {}", path.display()))?
        }
    })
}

/// The recordings store: S3-compatible storage when a URL is configured,
/// else the configured directory or `recordings` in the data dir
/// (created); `None` only when recording is off and that directory does
/// not exist (nothing to serve).
fn open_recordings(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<dyn object_store::ObjectStore>>> {
    if let Some(url) = &config.recordings.url {
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_url(url)
            .build()
            .with_context(|| format!("opening the recordings store {url}"))?;
        let store: std::sync::Arc<dyn object_store::ObjectStore> = match url
            .trim_start_matches("s3://")
            .split_once('/')
            .map(|(_, prefix)| prefix.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            Some(prefix) => std::sync::Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)),
            None => std::sync::Arc::new(s3),
        };
        return Ok(Some(store));
    }
    let dir = config
        .recordings
        .dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("recordings"));
    if !config.recordings.enabled && !dir.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the recordings dir {}", dir.display()))?;
    let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
        .with_context(|| format!("opening the recordings dir {}", dir.display()))?;
    Ok(Some(std::sync::Arc::new(local)))
}

/// Keeps the SQLite WAL small: a checkpoint every `every` (a no-op on
/// PostgreSQL). Runs until aborted at shutdown.
async fn checkpoint_loop(store: relaycast_signaling::Store, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "checkpointing the database");
        }
    }
}

/// The identity-token secret: configured, else generated once in the data
/// dir.
pub fn jwt_secret(config: &Config) -> anyhow::Result<String> {
    match &config.jwt_secret {
        Some(secret) => Ok(secret.clone()),
        None => secrets::jwt_secret(&config.data_dir),
    }
}

/// Bind the media socket where its candidate can be reached: loopback-only
/// setups stay on loopback; anything else listens on every interface.
fn bind_ip_for(candidate: std::net::IpAddr) -> std::net::IpAddr {
    if candidate.is_loopback() {
        candidate
    } else if candidate.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    }
}

impl Server {
    /// The media plane, for tests and metrics.
    pub fn media(&self) -> &relaycast_sfu::SfuHandle {
        &self.media
    }

    /// Stops accepting HTTP, ends every session, joins the media workers,
    /// then checkpoints and closes the database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.http.await;
        self.media.shutdown().await;
        // The workers are gone, so is every recorder tap: the recorder
        // finishes each recording, then the index hears the last of it.
        for (task, limit) in [(self.recorder, 20), (self.recordings_index, 5)] {
            if let Some(task) = task {
                if tokio::time::timeout(std::time::Duration::from_secs(limit), task)
                    .await
                    .is_err()
                {
                    tracing::warn!("recordings did not finish within {limit} s of shutdown");
                }
            }
        }
        self.ad_schedule.abort();
        for task in [self.checkpoints, self.retention].into_iter().flatten() {
            task.abort();
        }
        // Last: everything that could still write has stopped.
        self.store.close().await;
    }
}
