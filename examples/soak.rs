//! Soak traffic: everything but the media that `loadtest/soak.sh` puts on a
//! running server for an hour, and the check that nothing acknowledged was
//! lost.
//!
//! - **Websocket audience** (`--clients`): guests that join the broadcast,
//!   stay a random 30–180 s, leave and come back as new guests (churn). One
//!   in five chats every ~10 s; a chat counts as acknowledged when its echo
//!   (same nonce, with an id) comes back, and every other client joined at
//!   the time must receive it too.
//! - **Alerts**: a moderator sends a scope-`all` alert every 30 s; each
//!   client acknowledges what it receives (in `alert`, or in `joined` when
//!   it joins while one is active); every client joined when the server
//!   confirmed an alert, and still there 5 s later, must have received it.
//!   The server's delivered/acked counts are reported beside.
//! - **Comments**: one `POST /api/broadcasts/live/comments` every 5 s; at
//!   the end every comment answered 201 must be listed.
//! - **Bad input**, a trickle (one every 2 s, rotating): a WHEP offer that
//!   is not SDP (400), a malformed websocket message (an `error` reply), a
//!   frame over the 64 KiB limit (close 1009), a stranger's DELETE of a
//!   made-up WHIP resource (refused), 100 garbage datagrams at the media
//!   port.
//!
//! Prints progress every minute and one JSON line at the end; exits 1 when
//! something acknowledged was lost or a bad input got an unexpected answer.
//! Bounded: `--duration` (at most 2 h) plus a 60 s drain.

use anyhow::{anyhow, bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

const STREAM: &str = "live";

#[derive(Default)]
struct Tally {
    chats_acked: AtomicU64,
    chats_unacked: AtomicU64,
    chat_receipts: AtomicU64,
    alerts_received: AtomicU64,
    sessions: AtomicU64,
    connect_failures: AtomicU64,
    comments_acked: AtomicU64,
    comments_refused: AtomicU64,
    bad_inputs: AtomicU64,
    bad_input_surprises: AtomicU64,
}

/// Who was joined when: a chat id must reach every client joined from
/// before it was sent to after it arrived.
#[derive(Default)]
struct Ledger {
    /// chat id → clients that received it.
    receipts: HashMap<i64, HashSet<u64>>,
    /// chat id → clients joined throughout its send (checked at the end).
    expected: HashMap<i64, Vec<u64>>,
    /// Clients currently joined.
    joined: HashSet<u64>,
    /// Alert id → (delivered, acked) from the latest `alert.status`.
    alerts: HashMap<i64, (u64, u64)>,
    /// Alert id → when the server confirmed it and who was joined then.
    alert_audience: HashMap<i64, (Instant, Vec<u64>)>,
    /// Alert id → clients that received it.
    alert_receipts: HashMap<i64, HashSet<u64>>,
    /// Client → when it left.
    left_at: HashMap<u64, Instant>,
    surprises: Vec<String>,
}

struct Soak {
    server: SocketAddr,
    http: reqwest::Client,
    tally: Tally,
    ledger: Mutex<Ledger>,
    deadline: Instant,
    next_client: AtomicU64,
}

#[path = "support/args.rs"]
mod args;
use args::arg;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let server: SocketAddr = arg(&args, "--server")
        .context("--server host:port is required")?
        .parse()
        .context("--server must be host:port")?;
    let moderator = arg(&args, "--moderator").context("--moderator <token> is required")?;
    let media: SocketAddr = arg(&args, "--media")
        .context("--media host:port (the media UDP port) is required")?
        .parse()
        .context("--media must be host:port")?;
    let secs: u64 = arg(&args, "--duration")
        .unwrap_or_else(|| "3600".into())
        .parse()
        .context("--duration is seconds")?;
    ensure!((10..=7200).contains(&secs), "--duration must be 10..=7200");
    let clients: usize = arg(&args, "--clients")
        .unwrap_or_else(|| "100".into())
        .parse()
        .context("--clients must be a number")?;
    ensure!((1..=2000).contains(&clients), "--clients must be 1..=2000");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let soak = Arc::new(Soak {
        server,
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?,
        tally: Tally::default(),
        ledger: Mutex::new(Ledger::default()),
        deadline: Instant::now() + Duration::from_secs(secs),
        next_client: AtomicU64::new(0),
    });
    let ok = runtime.block_on(run(soak.clone(), moderator, media, clients))?;
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run(
    soak: Arc<Soak>,
    moderator: String,
    media: SocketAddr,
    clients: usize,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let soak = soak.clone();
        tasks.push(tokio::spawn(async move {
            // Spread the first joins over 10 s.
            sleep(Duration::from_millis(i as u64 * 10_000 / clients as u64)).await;
            audience_member(soak).await
        }));
    }
    let alerts = tokio::spawn(alerts(soak.clone(), moderator));
    let comments = tokio::spawn(comments(soak.clone()));
    let bad = tokio::spawn(bad_input(soak.clone(), media));
    let progress = {
        let soak = soak.clone();
        tokio::spawn(async move {
            while Instant::now() < soak.deadline {
                sleep(Duration::from_secs(60)).await;
                eprintln!(
                    "soak {:>5} s: {}",
                    started.elapsed().as_secs(),
                    summary(&soak)
                );
            }
        })
    };
    for t in tasks {
        t.await?;
    }
    let alert_ids = alerts.await??;
    let comment_ids = comments.await??;
    bad.await??;
    progress.abort();

    let listed = list_comments(&soak).await?;
    let lost_comments: Vec<i64> = comment_ids
        .iter()
        .filter(|id| !listed.contains(id))
        .copied()
        .collect();
    let ledger = soak.ledger.lock().expect("ledger lock: no panics hold it");
    let mut missed_receipts = 0u64;
    let mut expected_receipts = 0u64;
    for (id, clients) in &ledger.expected {
        let got = ledger.receipts.get(id);
        for c in clients {
            expected_receipts += 1;
            if !got.is_some_and(|g| g.contains(c)) {
                missed_receipts += 1;
            }
        }
    }
    // An alert must reach every client joined when the server confirmed
    // it that stayed at least 5 s more (a client leaving at that moment may
    // be gone before it is delivered).
    let (mut alert_expected, mut alert_missed) = (0u64, Vec::new());
    for (id, (at, audience)) in &ledger.alert_audience {
        let got = ledger.alert_receipts.get(id);
        for c in audience {
            if ledger
                .left_at
                .get(c)
                .is_some_and(|l| *l < *at + Duration::from_secs(5))
            {
                continue;
            }
            alert_expected += 1;
            if !got.is_some_and(|g| g.contains(c)) {
                alert_missed.push((*id, *c));
            }
        }
    }
    // The server's own count: every delivery it made minus the acks it
    // counted (short-lived bad-input connections are delivered to and never
    // acknowledge, so this is information, not a failure).
    let (delivered, acked) = alert_ids.iter().fold((0u64, 0u64), |(d, a), id| {
        let (dd, aa) = ledger.alerts.get(id).copied().unwrap_or((0, 0));
        (d + dd, a + aa)
    });
    let t = &soak.tally;
    let report = json!({
        "secs": started.elapsed().as_secs(),
        "sessions": t.sessions.load(Relaxed),
        "connect_failures": t.connect_failures.load(Relaxed),
        "chats_acked": t.chats_acked.load(Relaxed),
        "chats_unacked": t.chats_unacked.load(Relaxed),
        "chat_receipts_expected": expected_receipts,
        "chat_receipts_missed": missed_receipts,
        "alerts_sent": alert_ids.len(),
        "alert_receipts_expected": alert_expected,
        "alert_receipts_missed": alert_missed.len(),
        "alert_deliveries_counted_by_server": delivered,
        "alert_acks_counted_by_server": acked,
        "alerts_received": t.alerts_received.load(Relaxed),
        "comments_acked": comment_ids.len(),
        "comments_refused": t.comments_refused.load(Relaxed),
        "comments_lost": lost_comments.len(),
        "bad_inputs": t.bad_inputs.load(Relaxed),
        "bad_input_surprises": ledger.surprises.len(),
    });
    for s in ledger.surprises.iter().take(20) {
        eprintln!("surprise: {s}");
    }
    if !alert_missed.is_empty() {
        eprintln!("alerts not received (alert id, client): {alert_missed:?}");
    }
    if !lost_comments.is_empty() {
        eprintln!("comments answered 201 but not listed: {lost_comments:?}");
    }
    println!("{report}");
    Ok(lost_comments.is_empty()
        && missed_receipts == 0
        && alert_missed.is_empty()
        && t.chats_unacked.load(Relaxed) == 0
        && t.connect_failures.load(Relaxed) == 0
        && ledger.surprises.is_empty())
}

fn summary(soak: &Soak) -> String {
    let t = &soak.tally;
    format!(
        "sessions {} chats {} (unacked {}) receipts {} alerts {} comments {} bad {} (surprises {}) connect failures {}",
        t.sessions.load(Relaxed),
        t.chats_acked.load(Relaxed),
        t.chats_unacked.load(Relaxed),
        t.chat_receipts.load(Relaxed),
        t.alerts_received.load(Relaxed),
        t.comments_acked.load(Relaxed),
        t.bad_inputs.load(Relaxed),
        t.bad_input_surprises.load(Relaxed),
        t.connect_failures.load(Relaxed),
    )
}

fn surprise(soak: &Soak, what: String) {
    soak.tally.bad_input_surprises.fetch_add(1, Relaxed);
    let mut ledger = soak.ledger.lock().expect("ledger lock: no panics hold it");
    if ledger.surprises.len() < 100 {
        ledger.surprises.push(what);
    }
}

async fn guest(soak: &Soak, name: &str) -> anyhow::Result<String> {
    let response = soak
        .http
        .post(format!("http://{}/api/guest", soak.server))
        .header("Content-Type", "application/json")
        .body(json!({ "name": name }).to_string())
        .send()
        .await?;
    let status = response.status();
    let body: Value = serde_json::from_str(&response.text().await?)?;
    ensure!(status.as_u16() == 201, "POST /api/guest: {status} {body}");
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no token in {body}"))
}

async fn connect(soak: &Soak, token: &str) -> anyhow::Result<Ws> {
    let stream = tokio::net::TcpStream::connect(soak.server).await?;
    let url = format!("ws://{}/ws?token={token}", soak.server);
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    Ok(ws)
}

async fn next_json(ws: &mut Ws, limit: Duration) -> anyhow::Result<Option<Value>> {
    match timeout(limit, ws.next()).await {
        Err(_) => Ok(None),
        Ok(None) => bail!("connection closed"),
        Ok(Some(m)) => match m? {
            Message::Text(t) => Ok(Some(serde_json::from_str(&t)?)),
            Message::Close(c) => bail!("closed by the server: {c:?}"),
            _ => Ok(Some(Value::Null)),
        },
    }
}

async fn expect(ws: &mut Ws, kind: &str, limit: Duration) -> anyhow::Result<Value> {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match next_json(ws, left).await? {
            Some(v) if v["type"] == kind => return Ok(v),
            Some(_) => {}
            None => bail!("no {kind} within {limit:?}"),
        }
    }
}

/// One seat of the audience: join, stay, leave, come back as someone new.
async fn audience_member(soak: Arc<Soak>) {
    while Instant::now() < soak.deadline {
        let id = soak.next_client.fetch_add(1, Relaxed);
        let stay = Duration::from_secs(30 + rand::random::<u64>() % 150);
        let chatty = id % 5 == 0;
        if let Err(e) = session(&soak, id, stay, chatty).await {
            soak.tally.connect_failures.fetch_add(1, Relaxed);
            eprintln!("client {id}: {e:#}");
            sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn session(soak: &Soak, id: u64, stay: Duration, chatty: bool) -> anyhow::Result<()> {
    let token = guest(soak, &format!("soak{id}")).await?;
    let mut ws = connect(soak, &token).await?;
    expect(&mut ws, "identity", Duration::from_secs(10)).await?;
    ws.send(Message::text(
        json!({"type": "join", "stream": STREAM}).to_string(),
    ))
    .await?;
    let joined = expect(&mut ws, "joined", Duration::from_secs(10)).await?;
    // Alerts active at join come in `joined`: received, and acknowledged.
    for alert in joined["alerts"].as_array().into_iter().flatten() {
        if let Some(alert_id) = alert["id"].as_i64() {
            handle_broadcast(
                soak,
                &mut ws,
                id,
                &json!({"type": "alert", "alert": {"id": alert_id}}),
            )
            .await?;
        }
    }
    soak.tally.sessions.fetch_add(1, Relaxed);
    soak.ledger
        .lock()
        .expect("ledger lock: no panics hold it")
        .joined
        .insert(id);
    let result = stay_joined(soak, &mut ws, id, stay, chatty).await;
    // Leave the ledger before the socket, so nobody expects a receipt
    // from a client that is going.
    {
        let mut ledger = soak.ledger.lock().expect("ledger lock: no panics hold it");
        ledger.joined.remove(&id);
        ledger.left_at.insert(id, Instant::now());
    }
    // Still joined on the server: read what is in flight for 2 s more, so
    // chats and alerts sent before leaving the ledger are received and
    // acknowledged.
    if result.is_ok() {
        let drain_end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < drain_end {
            match next_json(&mut ws, Duration::from_millis(200)).await {
                Ok(Some(m)) => handle_broadcast(soak, &mut ws, id, &m).await?,
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
    let _ = ws.close(None).await;
    result
}

async fn stay_joined(
    soak: &Soak,
    ws: &mut Ws,
    id: u64,
    stay: Duration,
    chatty: bool,
) -> anyhow::Result<()> {
    let end = (Instant::now() + stay).min(soak.deadline);
    let mut next_chat = Instant::now() + Duration::from_secs(rand::random::<u64>() % 10);
    // nonce → (sent at, clients joined at send time)
    let mut pending: HashMap<String, (Instant, Vec<u64>)> = HashMap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        if now >= end && pending.is_empty() {
            return Ok(());
        }
        if chatty && now >= next_chat && now < end {
            seq += 1;
            let nonce = format!("{id}-{seq}");
            let joined: Vec<u64> = soak
                .ledger
                .lock()
                .expect("ledger lock: no panics hold it")
                .joined
                .iter()
                .copied()
                .collect();
            ws.send(Message::text(
                json!({"type": "chat.send", "text": format!("soak chat {nonce}"), "nonce": nonce})
                    .to_string(),
            ))
            .await?;
            pending.insert(nonce, (now, joined));
            next_chat = now + Duration::from_secs(8 + rand::random::<u64>() % 5);
        }
        for (nonce, (sent, _)) in &pending {
            if sent.elapsed() > Duration::from_secs(10) {
                soak.tally.chats_unacked.fetch_add(1, Relaxed);
                bail!("chat {nonce} not echoed within 10 s");
            }
        }
        let Some(m) = next_json(ws, Duration::from_millis(500)).await? else {
            continue;
        };
        if m["type"] == "chat" {
            if let (Some(chat_id), Some(nonce)) = (m["id"].as_i64(), m["nonce"].as_str()) {
                if let Some((_, joined)) = pending.remove(nonce) {
                    soak.tally.chats_acked.fetch_add(1, Relaxed);
                    let mut ledger = soak.ledger.lock().expect("ledger lock: no panics hold it");
                    // Expected: joined at send time and still joined now.
                    let still: Vec<u64> = joined
                        .into_iter()
                        .filter(|c| ledger.joined.contains(c))
                        .collect();
                    ledger.expected.insert(chat_id, still);
                }
            }
        }
        handle_broadcast(soak, ws, id, &m).await?;
    }
}

/// What every joined client does with a message meant for all: count chat
/// receipts, acknowledge alerts.
async fn handle_broadcast(soak: &Soak, ws: &mut Ws, id: u64, m: &Value) -> anyhow::Result<()> {
    match m["type"].as_str() {
        Some("chat") => {
            let chat_id = m["id"].as_i64().context("chat without an id")?;
            soak.tally.chat_receipts.fetch_add(1, Relaxed);
            let mut ledger = soak.ledger.lock().expect("ledger lock: no panics hold it");
            ledger.receipts.entry(chat_id).or_default().insert(id);
        }
        Some("alert") => {
            soak.tally.alerts_received.fetch_add(1, Relaxed);
            let alert = m["alert"]["id"].as_i64().context("alert without an id")?;
            soak.ledger
                .lock()
                .expect("ledger lock: no panics hold it")
                .alert_receipts
                .entry(alert)
                .or_default()
                .insert(id);
            ws.send(Message::text(
                json!({"type": "alert.ack", "id": alert}).to_string(),
            ))
            .await?;
        }
        Some("error") => bail!("server error: {m}"),
        _ => {}
    }
    Ok(())
}

/// A moderator sends a scope-`all` alert every 30 s; returns the ids.
async fn alerts(soak: Arc<Soak>, token: String) -> anyhow::Result<Vec<i64>> {
    let mut ws = connect(&soak, &token).await?;
    expect(&mut ws, "identity", Duration::from_secs(10)).await?;
    ws.send(Message::text(
        json!({"type": "join", "stream": STREAM}).to_string(),
    ))
    .await?;
    expect(&mut ws, "joined", Duration::from_secs(10)).await?;
    let mut ids = Vec::new();
    let mut next = Instant::now() + Duration::from_secs(20);
    // Keep reading statuses 30 s past the end so the last acks are counted.
    let end = soak.deadline + Duration::from_secs(30);
    while Instant::now() < end {
        if Instant::now() >= next && Instant::now() < soak.deadline {
            ws.send(Message::text(
                json!({"type": "alert.send", "severity": "info",
                       "text": format!("soak alert {}", ids.len()), "scope": "all", "ttl": 20})
                .to_string(),
            ))
            .await?;
            let sent = expect(&mut ws, "alert.sent", Duration::from_secs(10)).await?;
            let id = sent["alert"]["id"]
                .as_i64()
                .context("alert.sent without id")?;
            let delivered = sent["delivered"].as_u64().unwrap_or(0);
            // The moderator is joined too, so it is one of the deliveries.
            ws.send(Message::text(
                json!({"type": "alert.ack", "id": id}).to_string(),
            ))
            .await?;
            {
                let mut ledger = soak.ledger.lock().expect("ledger lock: no panics hold it");
                ledger.alerts.insert(id, (delivered, 0));
                let audience: Vec<u64> = ledger.joined.iter().copied().collect();
                ledger.alert_audience.insert(id, (Instant::now(), audience));
            }
            ids.push(id);
            next += Duration::from_secs(30);
        }
        if let Some(m) = next_json(&mut ws, Duration::from_millis(500)).await? {
            if m["type"] == "alert.status" {
                if let (Some(id), Some(d), Some(a)) = (
                    m["id"].as_i64(),
                    m["delivered"].as_u64(),
                    m["acked"].as_u64(),
                ) {
                    soak.ledger
                        .lock()
                        .expect("ledger lock: no panics hold it")
                        .alerts
                        .insert(id, (d, a));
                }
            }
        }
    }
    Ok(ids)
}

/// One comment every 5 s (within the per-address quota); returns the ids
/// answered 201.
async fn comments(soak: Arc<Soak>) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    let mut n = 0u64;
    let mut token = guest(&soak, "soak-commenter").await?;
    while Instant::now() < soak.deadline {
        sleep(Duration::from_secs(5)).await;
        n += 1;
        if n % 100 == 0 {
            // A fresh identity now and then, as real commenters come and go.
            token = guest(&soak, &format!("soak-commenter-{n}")).await?;
        }
        let response = soak
            .http
            .post(format!(
                "http://{}/api/broadcasts/{STREAM}/comments",
                soak.server
            ))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(json!({ "comment": format!("soak comment {n}") }).to_string())
            .send()
            .await;
        match response {
            Ok(r) if r.status().as_u16() == 201 => {
                let body: Value = serde_json::from_str(&r.text().await?)?;
                let id = body["id"]
                    .as_i64()
                    .or_else(|| body["comment"]["id"].as_i64())
                    .with_context(|| format!("no id in {body}"))?;
                ids.push(id);
                soak.tally.comments_acked.fetch_add(1, Relaxed);
            }
            Ok(r) => {
                // Refused (e.g. 429) is not a loss: it was never acknowledged.
                soak.tally.comments_refused.fetch_add(1, Relaxed);
                eprintln!("comment {n}: {}", r.status());
            }
            Err(e) => {
                soak.tally.comments_refused.fetch_add(1, Relaxed);
                eprintln!("comment {n}: {e}");
            }
        }
    }
    Ok(ids)
}

async fn list_comments(soak: &Soak) -> anyhow::Result<HashSet<i64>> {
    let mut ids = HashSet::new();
    let mut cursor = String::new();
    for _ in 0..10_000 {
        let url = format!(
            "http://{}/api/broadcasts/{STREAM}/comments?limit=100&cursor={cursor}",
            soak.server
        );
        let body: Value = serde_json::from_str(&soak.http.get(url).send().await?.text().await?)?;
        for c in body["comments"].as_array().context("no comments array")? {
            ids.insert(c["id"].as_i64().context("comment without id")?);
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return Ok(ids),
        }
    }
    bail!("more than 10,000 pages of comments")
}

/// The trickle of bad input; each kind must get its documented answer.
async fn bad_input(soak: Arc<Soak>, media: SocketAddr) -> anyhow::Result<()> {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let mut n = 0u64;
    while Instant::now() < soak.deadline {
        sleep(Duration::from_secs(2)).await;
        n += 1;
        soak.tally.bad_inputs.fetch_add(1, Relaxed);
        let outcome = match n % 5 {
            0 => {
                let r = soak
                    .http
                    .post(format!("http://{}/whep/{STREAM}", soak.server))
                    .header("Content-Type", "application/sdp")
                    .body("this is not an offer")
                    .send()
                    .await?;
                let status = r.status().as_u16();
                (status == 400)
                    .then_some(())
                    .ok_or(format!("garbage WHEP offer: {status}"))
            }
            1 => {
                let token = guest(&soak, "soak-bad").await?;
                let mut ws = connect(&soak, &token).await?;
                expect(&mut ws, "identity", Duration::from_secs(10)).await?;
                ws.send(Message::text("{\"type\": 7")).await?;
                let r = expect(&mut ws, "error", Duration::from_secs(5)).await;
                let _ = ws.close(None).await;
                r.map(|_| ())
                    .map_err(|e| format!("malformed ws message: {e}"))
            }
            2 => {
                let token = guest(&soak, "soak-big").await?;
                let mut ws = connect(&soak, &token).await?;
                expect(&mut ws, "identity", Duration::from_secs(10)).await?;
                ws.send(Message::text("x".repeat(70_000))).await?;
                let code = loop {
                    match timeout(Duration::from_secs(5), ws.next()).await {
                        Ok(Some(Ok(Message::Close(Some(c))))) => break Some(u16::from(c.code)),
                        Ok(Some(Ok(_))) => {}
                        _ => break None,
                    }
                };
                (code == Some(1009))
                    .then_some(())
                    .ok_or(format!("oversize frame closed with {code:?}"))
            }
            3 => {
                let id = format!("{:032x}", rand::random::<u128>());
                let r = soak
                    .http
                    .delete(format!("http://{}/whip/{STREAM}/{id}", soak.server))
                    .send()
                    .await?;
                let status = r.status().as_u16();
                matches!(status, 401 | 403 | 404)
                    .then_some(())
                    .ok_or(format!("stranger's DELETE: {status}"))
            }
            _ => {
                for i in 0..100u32 {
                    let mut junk = [0u8; 200];
                    junk[..4].copy_from_slice(&i.to_be_bytes());
                    junk[4] = rand::random();
                    let _ = udp.send_to(&junk, media).await;
                }
                Ok(())
            }
        };
        if let Err(what) = outcome {
            surprise(&soak, what);
        }
    }
    Ok(())
}
