//! The server fixture: a relaycast instance on 127.0.0.1 with ephemeral
//! ports and a throwaway data dir, the loopback-only HTTP client, and the
//! WHIP/WHEP POST of an SDP offer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context};
use tokio::time::timeout;

pub const STREAM: &str = "live";
pub const STREAM_KEY: &str = "testsecret123";

pub struct TestServer {
    server: relaycast::Server,
    pub base: String,
    _dir: TempDir,
}

impl TestServer {
    /// A server with one media worker per core (the default).
    pub async fn start() -> anyhow::Result<TestServer> {
        Self::start_with_workers(0).await
    }

    /// A server with this many media workers (0: one per core).
    pub async fn start_with_workers(workers: usize) -> anyhow::Result<TestServer> {
        Self::start_with(|config| config.workers = workers).await
    }

    /// A server whose config `tweak` adjusts (ports, data dir and the
    /// test stream's key are set before it).
    pub async fn start_with(
        tweak: impl FnOnce(&mut relaycast::Config),
    ) -> anyhow::Result<TestServer> {
        let dir = TempDir::new()?;
        let mut config = relaycast::Config {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            udp_port: 0,
            public_ip: Some("127.0.0.1".parse().unwrap()),
            data_dir: dir.0.clone(),
            ..Default::default()
        };
        config.stream_keys.insert(STREAM.into(), STREAM_KEY.into());
        tweak(&mut config);
        let server = relaycast::start(config)
            .await
            .context("starting relaycast")?;
        let base = format!("http://{}", server.http_addr);
        Ok(TestServer {
            server,
            base,
            _dir: dir,
        })
    }

    /// A signed identity token for this server, e.g. a moderator's for the
    /// moderator-only endpoints (signed with the secret in its data dir, as
    /// `relaycast token create` does).
    #[allow(dead_code)] // not every test binary needs one
    pub fn token(&self, role: relaycast_signaling::Role, name: &str) -> String {
        let config = relaycast::Config {
            data_dir: self._dir.0.clone(),
            ..Default::default()
        };
        let secret = relaycast::jwt_secret(&config).expect("the server made its token secret");
        relaycast_signaling::Tokens::new(secret.as_bytes()).issue(
            &relaycast_signaling::Identity {
                id: format!("m-{name}"),
                name: name.into(),
                role,
                stream: None,
            },
            Duration::from_secs(3600),
        )
    }

    /// Where this server keeps its database and secrets (removed when the
    /// last `TempDir` handle goes: the test's server value).
    #[allow(dead_code)] // not every test binary needs it
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.server.http_addr
    }

    #[allow(dead_code)] // not every test binary needs it
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.0.clone()
    }

    /// The media plane, for placement and status queries.
    pub fn media(&self) -> &relaycast_sfu::SfuHandle {
        self.server.media()
    }

    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and hands over its data dir (removed on drop), to
    /// look at what shutdown left behind.
    pub async fn stop_keeping_data(self) -> TempDir {
        if timeout(Duration::from_secs(10), self.server.shutdown())
            .await
            .is_err()
        {
            panic!("server shutdown took more than 10 s");
        }
        self._dir
    }
}

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    #[allow(dead_code)] // not every test binary needs it
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn new() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "relaycast-live-path-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy() // loopback only, whatever the environment says
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

/// What came back from a POST of an SDP offer.
#[derive(Debug)]
pub struct PostResponse {
    pub status: reqwest::StatusCode,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// POSTs an SDP offer and returns the response, whatever its status.
pub async fn post_sdp(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    offer: String,
) -> anyhow::Result<PostResponse> {
    let mut request = http
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/sdp")
        .body(offer);
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, location, content_type) = (
        response.status(),
        header("Location"),
        header("Content-Type"),
    );
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of POST {path}"))?;
    Ok(PostResponse {
        status,
        location,
        content_type,
        body,
    })
}

/// POSTs an SDP offer; returns (absolute resource URL, answer SDP).
pub async fn post_offer(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    offer: String,
) -> anyhow::Result<(String, String)> {
    let PostResponse {
        status,
        location,
        body,
        ..
    } = post_sdp(http, base, path, bearer, offer).await?;
    ensure!(
        status.as_u16() == 201,
        "POST {path}: expected 201 Created, got {status}: {body}"
    );
    let location = location.ok_or_else(|| anyhow!("POST {path}: 201 without a Location header"))?;
    ensure!(
        location.starts_with('/'),
        "POST {path}: Location {location:?} is not an absolute path"
    );
    Ok((format!("{base}{location}"), body))
}
