//! The alert fan-out measurement shared by the CI-sized test
//! (`tests/ws_alert_fanout.rs`, 1,000 clients) and the benchmark
//! (`examples/ws_alert_bench.rs`, 10,000 clients): N websocket clients
//! connect (spread over loopback source addresses 127.0.0.1–127.0.0.8 so
//! ephemeral ports never run short), a moderator sends one scope-`all`
//! alert, and each client records when it arrived and acknowledges it.
//! Every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

pub struct AlertBench {
    pub clients: usize,
    pub connect_time: Duration,
    /// Per client: alert.send written by the moderator → alert received.
    pub latencies: Vec<Duration>,
    /// `delivered` in the moderator's `alert.sent`.
    pub delivered: u64,
    /// alert.send → an `alert.status` with every client's ack.
    pub all_acked_after: Duration,
}

impl AlertBench {
    /// Nearest-rank percentile of the latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    pub fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} clients (connected in {:.1?}): alert received p50 {:.1?} p99 {:.1?} max {:.1?}; \
             delivered {}; all acks counted after {:.1?}",
            self.clients,
            self.connect_time,
            self.percentile(0.50),
            self.percentile(0.99),
            self.max(),
            self.delivered,
            self.all_acked_after
        )
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Connects from 127.0.0.(1 + n % 8) to the server.
async fn connect(server: SocketAddr, url: &str, n: usize) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    let source = Ipv4Addr::new(127, 0, 0, 1 + (n % 8) as u8);
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("TCP connect from {source}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    match timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"hello\"") => Ok(ws),
        other => bail!("expected hello, got {other:?}"),
    }
}

async fn next_json(ws: &mut Ws, limit: Duration) -> anyhow::Result<Value> {
    loop {
        match timeout(limit, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(&t)?),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => bail!("connection ended: {other:?}"),
            Err(_) => bail!("nothing within {limit:?}"),
        }
    }
}

/// One client: connect, report ready, wait for the alert, ack it, stay
/// connected until `stop`.
async fn client(
    server: SocketAddr,
    url: String,
    n: usize,
    connecting: std::sync::Arc<Semaphore>,
    ready: mpsc::Sender<()>,
    received: mpsc::Sender<Instant>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut ws = {
        let _permit = connecting.acquire().await?;
        connect(server, &url, n).await?
    };
    ready.send(()).await?;
    // The arrival time is taken before any parsing.
    let (at, alert) = loop {
        let text = match timeout(Duration::from_secs(120), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            other => bail!("client {n}: no alert ({other:?})"),
        };
        let at = Instant::now();
        let message: Value = serde_json::from_str(&text)?;
        if message["type"] == "alert" {
            break (at, message);
        }
    };
    received.send(at).await?;
    let id = alert["alert"]["id"].clone();
    ws.send(Message::Text(
        json!({"type": "alert.ack", "id": id}).to_string().into(),
    ))
    .await?;
    // Keep reading (pings, pushes) until the run ends.
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            next = ws.next() => if !matches!(next, Some(Ok(_))) { break },
        }
    }
    let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(())
}

/// Runs the measurement against a server at `server` (its `/ws`), with a
/// moderator `token`.
pub async fn run(server: SocketAddr, token: &str, clients: usize) -> anyhow::Result<AlertBench> {
    let url = format!("ws://{server}/ws");
    let connecting = std::sync::Arc::new(Semaphore::new(128));
    let (ready_tx, mut ready_rx) = mpsc::channel(clients.max(1));
    let (received_tx, mut received_rx) = mpsc::channel(clients.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..clients {
        tasks.spawn(client(
            server,
            url.clone(),
            n,
            connecting.clone(),
            ready_tx.clone(),
            received_tx.clone(),
            stop_rx.clone(),
        ));
    }
    drop((ready_tx, received_tx));
    for connected in 0..clients {
        let ok = timeout(Duration::from_secs(120), ready_rx.recv()).await;
        if !matches!(ok, Ok(Some(()))) {
            // Report the first client error, if there is one.
            while let Some(done) = tasks.try_join_next() {
                done??;
            }
            bail!("only {connected} of {clients} clients connected");
        }
    }
    let connect_time = started.elapsed();

    let mut moderator = connect(server, &format!("{url}?token={token}"), 0).await?;
    let identity = next_json(&mut moderator, Duration::from_secs(10)).await?;
    ensure!(
        identity["identity"]["role"] == "moderator",
        "not a moderator: {identity}"
    );
    let sent_at = Instant::now();
    let send = json!({"type": "alert.send", "severity": "emergency", "text": "benchmark flash",
                      "scope": "all", "ttl": 60});
    moderator
        .send(Message::Text(send.to_string().into()))
        .await?;

    // Deliveries and the moderator's messages are read together, so an
    // error answer to the alert fails the run at once.
    let mut latencies = Vec::with_capacity(clients);
    let mut delivered = None;
    let mut all_acked_after = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.len() < clients || all_acked_after.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            at = received_rx.recv(), if latencies.len() < clients => match at {
                Some(at) => latencies.push(at.saturating_duration_since(sent_at)),
                None => bail!("clients ended after {} of {clients} got the alert", latencies.len()),
            },
            message = next_json(&mut moderator, left) => {
                let message = message.with_context(|| format!(
                    "{} of {clients} clients got the alert; waiting for all acks", latencies.len()))?;
                match message["type"].as_str() {
                    Some("alert.sent") => delivered = message["delivered"].as_u64(),
                    Some("alert.status") if message["acked"].as_u64() == Some(clients as u64) => {
                        all_acked_after = Some(sent_at.elapsed());
                    }
                    Some("error") => bail!("the moderator got {message}"),
                    _ => {}
                }
            }
        }
    }
    let all_acked_after = all_acked_after.expect("the loop runs until it is set");
    let delivered = delivered.ok_or_else(|| anyhow!("no alert.sent before the final status"))?;
    let _ = stop_tx.send(true);
    let _ = moderator.close(None).await;
    while let Some(done) = timeout(Duration::from_secs(30), tasks.join_next())
        .await
        .context("clients did not finish")?
    {
        done??;
    }
    Ok(AlertBench {
        clients,
        connect_time,
        latencies,
        delivered,
        all_acked_after,
    })
}
