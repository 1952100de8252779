//! Harness for the websocket tests (`ws_*.rs`): a relaycast server on
//! loopback with a throwaway data dir, tokens minted the way an operator
//! does it (`relaycast token create`, guest tokens over `POST /api/guest`),
//! and [`Client`], a tokio-tungstenite client that reads the protocol's
//! JSON messages with deadlines.

// Every test binary compiles this whole module but uses only part of it.
#![allow(dead_code)]

pub mod alert_bench;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const STREAM: &str = "live";
pub const OTHER_STREAM: &str = "other";
pub const STREAM_KEY: &str = "ws-test-key-1234";

/// Runs a test body with an overall deadline.
pub async fn run(limit: Duration, body: impl std::future::Future<Output = anyhow::Result<()>>) {
    match timeout(limit, body).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e:#}"),
        Err(_) => panic!("test did not finish within {limit:?}"),
    }
}

pub struct Server {
    server: relaycast::Server,
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub ws_url: String,
    dir: PathBuf,
}

impl Server {
    pub async fn start() -> anyhow::Result<Server> {
        let dir = std::env::temp_dir().join(format!(
            "relaycast-ws-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut config = relaycast::Config {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            udp_port: 0,
            public_ip: Some("127.0.0.1".parse().unwrap()),
            data_dir: dir.clone(),
            ..Default::default()
        };
        config.stream_keys.insert(STREAM.into(), STREAM_KEY.into());
        config
            .stream_keys
            .insert(OTHER_STREAM.into(), format!("{STREAM_KEY}-2"));
        let server = relaycast::start(config)
            .await
            .context("starting relaycast")?;
        let addr = server.http_addr;
        Ok(Server {
            server,
            addr,
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/ws"),
            dir,
        })
    }

    /// The texts of `stream`'s chat log, once the log's writer has caught
    /// up with `want` lines (read from the server's own SQLite file).
    pub async fn chat_log(&self, stream: &str, want: usize) -> anyhow::Result<Vec<String>> {
        let store = relaycast_signaling::Store::open_sqlite(&self.dir.join("relaycast.db")).await?;
        let mut texts = Vec::new();
        for _ in 0..50 {
            texts = store
                .chat_lines(stream, 0, i64::MAX, None, 100)
                .await?
                .into_iter()
                .map(|l| l.text)
                .collect();
            if texts.len() == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(texts)
    }

    /// A token made by `relaycast token create` on this server's data dir.
    pub fn token(&self, role: &str, name: &str) -> anyhow::Result<String> {
        mint(&self.dir, role, name)
    }

    /// A guest token from `POST /api/guest` (while that endpoint is not
    /// served, a viewer token from `relaycast token create`).
    pub async fn guest(&self, name: &str) -> anyhow::Result<String> {
        let response = http()
            .post(format!("{}/api/guest", self.base))
            .header("Content-Type", "application/json")
            .body(json!({ "name": name }).to_string())
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() == 404 {
            let name = format!("{name}-{:08x}", rand::random::<u32>());
            let dir = self.dir.clone();
            return tokio::task::spawn_blocking(move || mint(&dir, "viewer", &name)).await?;
        }
        let body: Value = serde_json::from_str(&response.text().await?)?;
        ensure!(status.as_u16() == 201, "POST /api/guest: {status} {body}");
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no token in {body}"))
    }

    /// A connected, authenticated client.
    pub async fn client(&self, token: &str) -> anyhow::Result<Client> {
        let mut client = Client::connect(&format!("{}?token={token}", self.ws_url)).await?;
        client.expect("identity", Duration::from_secs(5)).await?;
        Ok(client)
    }

    /// An authenticated guest that joined `stream`.
    pub async fn joined_guest(&self, name: &str, stream: &str) -> anyhow::Result<Client> {
        let token = self.guest(name).await?;
        let mut client = self.client(&token).await?;
        client.join(stream).await?;
        Ok(client)
    }

    pub async fn stop(self) {
        if timeout(Duration::from_secs(10), self.server.shutdown())
            .await
            .is_err()
        {
            panic!("server shutdown took more than 10 s");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `relaycast token create` on a data dir; the token is its last line.
fn mint(dir: &std::path::Path, role: &str, name: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relaycast"))
        .args([
            "token",
            "create",
            "--role",
            role,
            "--name",
            name,
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .context("running relaycast token create")?;
    ensure!(
        output.status.success(),
        "relaycast token create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    let token = stdout
        .lines()
        .last()
        .ok_or_else(|| anyhow!("relaycast token create printed nothing"))?;
    Ok(token.trim().to_owned())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type WsSink = futures_util::stream::SplitSink<Ws, Message>;
pub type WsStream = futures_util::stream::SplitStream<Ws>;

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug)]
pub enum Ended {
    Closed(Option<CloseFrame>),
    /// The TCP connection ended without a close frame.
    Dropped,
}

impl Client {
    /// Connects and reads the `hello`.
    pub async fn connect(url: &str) -> anyhow::Result<Client> {
        let (ws, _) = timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .context("websocket connect timed out")?
        .context("websocket connect")?;
        let mut client = Client { ws };
        let hello = client.recv(Duration::from_secs(5)).await?;
        ensure!(hello["type"] == "hello", "expected hello, got {hello}");
        Ok(client)
    }

    pub async fn send(&mut self, message: Value) -> anyhow::Result<()> {
        self.send_text(message.to_string()).await
    }

    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        timeout(
            Duration::from_secs(5),
            self.ws.send(Message::Text(text.into())),
        )
        .await
        .context("send timed out")?
        .context("send")
    }

    /// The next protocol message.
    pub async fn recv(&mut self, limit: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| anyhow!("no message within {limit:?}"))?;
            match next {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
                Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("websocket error: {e}"),
                None => bail!("connection ended"),
            }
        }
    }

    /// The next message of type `kind`, skipping periodic pushes and other
    /// types; an `error` fails unless `kind` is "error".
    pub async fn expect(&mut self, kind: &str, limit: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .recv(left)
                .await
                .with_context(|| format!("waiting for {kind}"))?;
            if message["type"] == kind {
                return Ok(message);
            }
            if message["type"] == "error" {
                bail!("waiting for {kind}, got {message}");
            }
        }
    }

    /// Expects an `error` with this code.
    pub async fn expect_error(&mut self, code: &str) -> anyhow::Result<Value> {
        let error = self.expect("error", Duration::from_secs(5)).await?;
        ensure!(error["code"] == code, "expected error {code}, got {error}");
        Ok(error)
    }

    pub async fn join(&mut self, stream: &str) -> anyhow::Result<Value> {
        self.send(json!({"type": "join", "stream": stream})).await?;
        self.expect("joined", Duration::from_secs(10)).await
    }

    /// Reads until the connection ends (bounded); returns how, and how many
    /// messages came before.
    pub async fn until_end(&mut self, limit: Duration) -> anyhow::Result<(Ended, usize)> {
        let deadline = Instant::now() + limit;
        let mut count = 0;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| anyhow!("still open after {limit:?} ({count} messages)"))?;
            match next {
                Some(Ok(Message::Text(_))) => count += 1,
                Some(Ok(Message::Close(frame))) => return Ok((Ended::Closed(frame), count)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok((Ended::Dropped, count)),
            }
        }
    }

    /// The socket halves, for a test that sends and reads concurrently.
    pub fn into_parts(self) -> (WsSink, WsStream) {
        self.ws.split()
    }

    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
