//! The hardening issue's live exploits, end to end against a real server
//! with a real (webrtc-rs) publisher and viewer: an OBS-style reconnect
//! while nobody watches leaves the media plane serving; a stranger cannot
//! end a broadcast or learn where a viewer's media goes.
//!
//! Harness in `tests/common/`.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::sleep;

use common::publisher::{whip_path, Publisher, PublisherOffer, PublisherOptions};
use common::server::{http_client, post_sdp, TestServer, STREAM_KEY};
use common::viewer::{Layer, Viewer};
use common::{run, shared_gate};

/// Two WHIP POSTs 0.2 s apart with nobody watching (OBS reconnecting): the
/// second takes over, and a real publisher and viewer then still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_double_publish_with_no_viewers_leaves_the_media_plane_serving() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let http = http_client();
        for attempt in 0..2 {
            let offer = PublisherOffer::new(&PublisherOptions::generation(attempt + 1)).await?;
            let response = post_sdp(
                &http,
                &server.base,
                &whip_path(),
                Some(STREAM_KEY),
                offer.sdp.clone(),
            )
            .await?;
            offer.close().await;
            ensure!(
                response.status.as_u16() == 201,
                "publish {attempt}: {} {}",
                response.status,
                response.body
            );
            sleep(Duration::from_millis(200)).await;
        }
        let ready = http.get(format!("{}/readyz", server.base)).send().await?;
        ensure!(ready.status().as_u16() == 200, "readyz {}", ready.status());

        let publisher = Publisher::start(&server, PublisherOptions::generation(3)).await?;
        let viewer = Viewer::join(&server, Layer::High).await?;
        viewer
            .wait_first_keyframe(Duration::from_secs(10))
            .await
            .context("a viewer after the double publish")?;
        viewer.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        Ok(())
    })
    .await;
}

/// A stranger's DELETE of the WHIP resource is refused and the broadcast
/// stays live; the viewer's own resource shows its state but not its
/// address, which only the moderators' table has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_end_a_broadcast_or_learn_a_viewers_address() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let http = http_client();
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let viewer = Viewer::join(&server, Layer::High).await?;
        viewer.wait_first_keyframe(Duration::from_secs(10)).await?;

        let whip_resource = publisher.resource().to_owned();
        for auth in [None, Some("Bearer not-the-key")] {
            let mut request = http.delete(&whip_resource);
            if let Some(a) = auth {
                request = request.header("Authorization", a);
            }
            let status = request.send().await?.status();
            ensure!(
                status.as_u16() == 401,
                "stranger's DELETE ({auth:?}): {status}"
            );
        }
        let frames_before = viewer.report().frame_tags().count();
        sleep(Duration::from_secs(1)).await;
        let frames_after = viewer.report().frame_tags().count();
        ensure!(
            frames_after > frames_before + 10,
            "video stopped after a refused DELETE: {frames_before} → {frames_after} frames"
        );

        let own: Value =
            serde_json::from_str(&http.get(viewer.resource()).send().await?.text().await?)?;
        ensure!(own["connected"] == true, "own state: {own}");
        ensure!(
            own.get("remote").is_none(),
            "own state reveals an address: {own}"
        );
        let table: Value = serde_json::from_str(
            &http
                .get(format!("{}/api/broadcasts/live/viewers", server.base))
                .bearer_auth(server.token(relaycast_signaling::Role::Moderator, "mod"))
                .send()
                .await?
                .text()
                .await?,
        )?;
        ensure!(
            table[0]["remote"]
                .as_str()
                .is_some_and(|r| r.starts_with("127.0.0.1:")),
            "the moderators' table shows the address: {table}"
        );
        let strangers = http
            .get(format!("{}/api/broadcasts/live/viewers", server.base))
            .send()
            .await?
            .status();
        ensure!(
            strangers.as_u16() == 401,
            "viewer table without a token: {strangers}"
        );

        viewer.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        Ok(())
    })
    .await;
}

/// Resident memory of this process (the server runs in it), in MiB.
fn rss_mib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/self/status")?;
    Ok(kib / 1024)
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> anyhow::Result<(u16, Option<String>)> {
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), retry))
}

/// Defect 4: 32 connections sending wrong passwords for 4 s (throttles
/// relaxed so only the password pool bounds the work) leave memory flat
/// (at most one argon2 block per password thread, 19 MiB each) and the
/// owner able to log in. Before the fix each check ran on its own blocking
/// thread and RSS grew by gigabytes; with the pool but argon2's allocating
/// API it still grew 48 -> 344 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_leaves_memory_flat() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start_with(|config| {
            let open = relaycast_signaling::guard::RateSetting::new(1_000_000, 1_000_000.0);
            config.limits.login_failures_per_client = open;
            config.limits.login_failures_per_account = open;
        })
        .await?;
        let http = http_client();
        let account = serde_json::json!({"username": "flooded", "password": "right-password-1"});
        let (made, _) =
            post_json(&http, &format!("{}/api/accounts", server.base), &account).await?;
        ensure!(made == 201, "creating the account: {made}");
        let login = format!("{}/api/login", server.base);
        let (ok, _) = post_json(&http, &login, &account).await?;
        ensure!(ok == 200, "first login: {ok}");
        let before = rss_mib()?;

        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        let wrong = serde_json::json!({"username": "flooded", "password": "wrong-password-1"});
        let mut flood = Vec::new();
        for _ in 0..32 {
            let (http, login, wrong) = (http.clone(), login.clone(), wrong.clone());
            flood.push(tokio::spawn(async move {
                let (mut refused, mut busy) = (0u32, 0u32);
                while tokio::time::Instant::now() < until {
                    match post_json(&http, &login, &wrong).await? {
                        (401, _) => refused += 1,
                        (503, Some(_)) => {
                            busy += 1;
                            sleep(Duration::from_millis(20)).await;
                        }
                        other => anyhow::bail!("a wrong login answered {other:?}"),
                    }
                }
                anyhow::Ok((refused, busy))
            }));
        }
        let (mut refused, mut busy) = (0, 0);
        for task in flood {
            let (r, b) = task.await??;
            refused += r;
            busy += b;
        }
        let after = rss_mib()?;
        eprintln!("login flood: {refused} refused, {busy} busy; RSS {before} -> {after} MiB");
        ensure!(refused > 0, "no wrong login was checked");
        ensure!(busy > 0, "the pool never said busy to 32 connections");
        ensure!(
            after < before + 64,
            "RSS grew from {before} to {after} MiB under a login flood"
        );
        let (ok, _) = post_json(&http, &login, &account).await?;
        ensure!(ok == 200, "the owner's login after the flood: {ok}");
        server.stop().await;
        Ok(())
    })
    .await;
}

/// Defect 7 end to end (the client address comes from the real
/// connection): wrong passwords get 429 with `Retry-After` after the
/// burst, and so do wrong stream keys on WHIP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_passwords_and_stream_keys_is_throttled() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let http = http_client();
        let login = format!("{}/api/login", server.base);
        let mut statuses = Vec::new();
        for i in 0..12 {
            // Distinct accounts, so the client's limit (10) trips before
            // any account's (5).
            let wrong = serde_json::json!({"username": format!("nobody-{i}"), "password": "wrong-password-1"});
            statuses.push(post_json(&http, &login, &wrong).await?);
        }
        ensure!(
            statuses[..10].iter().all(|s| s.0 == 401),
            "the first ten wrong logins: {statuses:?}"
        );
        ensure!(
            statuses[10..]
                .iter()
                .all(|s| s.0 == 429 && s.1.is_some()),
            "wrong logins past the burst: {statuses:?}"
        );

        let mut keys = Vec::new();
        for i in 0..22 {
            let response = post_sdp(
                &http,
                &server.base,
                &whip_path(),
                Some(&format!("guess-{i}")),
                "v=0\r\n".into(),
            )
            .await?;
            keys.push(response.status.as_u16());
        }
        ensure!(
            keys[..20].iter().all(|s| *s == 401) && keys[20..].iter().all(|s| *s == 429),
            "stream-key guesses: {keys:?}"
        );
        server.stop().await;
        Ok(())
    })
    .await;
}

/// Size of a file, 0 when absent.
fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Defect 6: comments through the real server leave a small WAL (a
/// checkpoint every second here) and none after shutdown; one guest's
/// comment flood gets 429 with `Retry-After` past its quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_keep_the_wal_small_and_are_rate_limited() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(60), async {
        let server = TestServer::start_with(|config| {
            config.wal_checkpoint_secs = 1;
            let open = relaycast_signaling::guard::RateSetting::new(1_000_000, 1_000_000.0);
            config.limits.comments_per_identity = open;
            config.limits.comments_per_client = open;
        })
        .await?;
        let http = http_client();
        let wal = server.data_dir().join("relaycast.db-wal");
        let token = server.token(relaycast_signaling::Role::Viewer, "writer");
        let url = format!("{}/api/broadcasts/live/comments", server.base);
        let mut largest = 0;
        for i in 0..1500 {
            let response = http
                .post(&url)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .body(serde_json::json!({ "comment": format!("comment {i}") }).to_string())
                .send()
                .await?;
            ensure!(
                response.status().as_u16() == 201,
                "comment {i}: {}",
                response.status()
            );
            largest = largest.max(file_len(&wal));
        }
        sleep(Duration::from_millis(1500)).await;
        let settled = file_len(&wal);
        eprintln!("WAL: largest {largest} B, after a checkpoint {settled} B");
        ensure!(settled < 1024 * 1024, "the WAL stayed at {settled} B");
        let dir = server.stop_keeping_data().await;
        let (db, wal) = (
            dir.path().join("relaycast.db"),
            dir.path().join("relaycast.db-wal"),
        );
        ensure!(
            file_len(&wal) == 0,
            "a WAL of {} B is left after shutdown",
            file_len(&wal)
        );
        ensure!(
            file_len(&db) > 100 * 1024,
            "the comments are not in the database file"
        );

        // Default quotas: a guest gets 5 comments back to back, then 429.
        let server = TestServer::start().await?;
        let guest: Value = serde_json::from_str(
            &http
                .post(format!("{}/api/guest", server.base))
                .header("Content-Type", "application/json")
                .body(r#"{"name":"flooder"}"#)
                .send()
                .await?
                .text()
                .await?,
        )?;
        let token = guest["token"].as_str().context("a guest token")?.to_owned();
        let url = format!("{}/api/broadcasts/live/comments", server.base);
        let mut statuses = Vec::new();
        for i in 0..7 {
            let response = http
                .post(&url)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .body(serde_json::json!({ "comment": format!("flood {i}") }).to_string())
                .send()
                .await?;
            let retry = response.headers().contains_key("retry-after");
            statuses.push((response.status().as_u16(), retry));
        }
        ensure!(
            statuses[..5].iter().all(|s| s.0 == 201)
                && statuses[5..].iter().all(|s| *s == (429, true)),
            "a guest's comment flood: {statuses:?}"
        );
        server.stop().await;
        Ok(())
    })
    .await;
}

/// Defect 8: 300 connections from one address trickling a header byte at
/// a time left `/healthz` and WHEP unanswered, and idle websockets were
/// all accepted. Now each address has its share of connections, the
/// total is capped, a request head must arrive within `header_read_secs`,
/// and websockets have their own cap: refusals are 503s with a JSON body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_connection_floods_leave_the_server_answering() {
    run(Duration::from_secs(90), async {
        let server = TestServer::start_with(|c| {
            c.limits.header_read_secs = 2;
            c.limits.max_connections_per_client = 50;
            c.limits.max_connections = 80;
            c.limits.max_websockets = 3;
        })
        .await?;
        let addr = server.http_addr();
        let from = |ip: &str| -> anyhow::Result<tokio::net::TcpSocket> {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(std::net::SocketAddr::new(ip.parse()?, 0))?;
            Ok(socket)
        };
        // 300 slowloris connections from 127.0.0.1, one header byte each.
        let started = tokio::time::Instant::now();
        let mut trickling = Vec::new();
        for _ in 0..300 {
            let mut stream = from("127.0.0.1")?.connect(addr).await?;
            stream.write_all(b"G").await?;
            trickling.push(stream);
        }
        // Each keeps trickling a byte every 300 ms until the server answers
        // or closes it.
        let outcomes =
            futures_util::future::join_all(trickling.into_iter().map(|mut s| async move {
                let mut got = Vec::new();
                for _ in 0..20 {
                    let _ = s.write_all(b"E").await;
                    let mut buf = [0u8; 1024];
                    match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                        Err(_) => continue,
                        Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(started.elapsed())),
                        Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    }
                }
                (got, None)
            }));
        // Meanwhile, another address is answered at once.
        let other = reqwest::Client::builder()
            .local_address("127.0.0.2".parse::<std::net::IpAddr>()?)
            .build()?;
        let probe = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = tokio::time::Instant::now();
            let r = other.get(format!("{}/healthz", server.base)).send().await?;
            anyhow::Ok((r.status(), t.elapsed()))
        };
        let (outcomes, probe) = tokio::join!(outcomes, probe);
        let (status, took) = probe?;
        ensure!(status == 200, "healthz from another address: {status}");
        ensure!(took < Duration::from_secs(1), "healthz took {took:?}");
        let refused = outcomes
            .iter()
            .filter(|(got, _)| {
                let text = String::from_utf8_lossy(got);
                text.starts_with("HTTP/1.1 503")
                    && text.contains("too many connections from your address")
            })
            .count();
        ensure!(
            refused == 250,
            "{refused} of 300 refused with a 503 (50 admitted)"
        );
        let timed_out: Vec<Duration> = outcomes
            .iter()
            .filter(|(got, _)| got.is_empty() || !got.starts_with(b"HTTP/1.1 503"))
            .map(|(_, closed)| closed.context("an admitted slow connection was never closed"))
            .collect::<anyhow::Result<_>>()?;
        ensure!(timed_out.len() == 50, "{} admitted", timed_out.len());
        let latest = timed_out.iter().max().expect("50 entries");
        ensure!(
            *latest < Duration::from_secs(5),
            "the header timeout (2 s) closed the last slow connection after {latest:?}"
        );
        // Their places are free again: 127.0.0.1 is answered.
        let r = http_client()
            .get(format!("{}/healthz", server.base))
            .send()
            .await?;
        ensure!(r.status() == 200, "{}", r.status());

        // The total: 50 held from .3 and 30 from .4 fill 80; the next,
        // from a fresh address, is refused with the total's message.
        let mut held = Vec::new();
        for ip in std::iter::repeat_n("127.0.0.3", 50).chain(std::iter::repeat_n("127.0.0.4", 30)) {
            held.push(from(ip)?.connect(addr).await?);
        }
        let mut full = from("127.0.0.5")?.connect(addr).await?;
        full.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await?;
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(3), full.read_to_string(&mut answer))
            .await
            .context("no answer when full")??;
        ensure!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        ensure!(answer.contains(r#""error":"unavailable""#), "{answer}");
        ensure!(answer.contains("connection limit"), "{answer}");
        ensure!(
            answer.to_ascii_lowercase().contains("retry-after: 1"),
            "{answer}"
        );
        // Closed by the client, they leave the gate once the server reads
        // their end.
        drop(held);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !http_client()
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the gate kept closed connections"
            );
            sleep(Duration::from_millis(50)).await;
        }

        // Websockets: three are accepted, the fourth is refused with a 503.
        let ws_url = format!("ws://{addr}/ws");
        let mut sockets = Vec::new();
        for _ in 0..3 {
            sockets.push(tokio_tungstenite::connect_async(&ws_url).await?.0);
        }
        match tokio_tungstenite::connect_async(&ws_url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                ensure!(response.status() == 503, "{:?}", response.status())
            }
            other => anyhow::bail!("a fourth websocket: {:?}", other.map(|_| ())),
        }
        // One closes: a new one gets in (the hub lets go asynchronously).
        drop(sockets.pop());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            match tokio_tungstenite::connect_async(&ws_url).await {
                Ok((socket, _)) => {
                    sockets.push(socket);
                    break;
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => anyhow::bail!("no websocket after one closed: {e}"),
            }
        }
        drop(sockets);
        server.stop().await;
        Ok(())
    })
    .await;
}

/// Defect 10: a corrupt database was reported as a pool timeout after 30 s
/// (the cause only in earlier log lines). Start-up now fails at once with
/// the real cause and names what it was opening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_come_at_once_with_their_cause() {
    run(Duration::from_secs(60), async {
        let config = |dir: &common::server::TempDir| relaycast::Config {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            udp_port: 0,
            public_ip: Some("127.0.0.1".parse().unwrap()),
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let failure = |config: relaycast::Config| async move {
            let started = tokio::time::Instant::now();
            match relaycast::start(config).await {
                Ok(server) => {
                    server.shutdown().await;
                    anyhow::bail!("the server started")
                }
                Err(e) => anyhow::Ok((format!("{e:#}"), started.elapsed())),
            }
        };

        let dir = common::server::TempDir::new()?;
        let db = dir.path().join("relaycast.db");
        std::fs::write(&db, vec![0x5a; 8192])?;
        let (error, took) = failure(config(&dir)).await?;
        ensure!(took < Duration::from_secs(5), "took {took:?}: {error}");
        ensure!(error.contains("file is not a database"), "{error}");
        ensure!(error.contains(&db.display().to_string()), "{error}");

        let dir = common::server::TempDir::new()?;
        let busy = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = busy.local_addr()?.port();
        let (error, _) = failure(relaycast::Config {
            udp_port: port,
            ..config(&dir)
        })
        .await?;
        ensure!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
        ensure!(error.contains("in use"), "{error}");

        let (error, took) = failure(relaycast::Config {
            database_url: Some("postgres://relaycast:x@127.0.0.1:1/relaycast".into()),
            ..config(&dir)
        })
        .await?;
        ensure!(took < Duration::from_secs(5), "took {took:?}: {error}");
        ensure!(error.contains("refused"), "{error}");
        ensure!(!error.contains(":x@"), "the password leaked: {error}");
        Ok(())
    })
    .await;
}
