//! SDP over the websocket: a webrtc-rs viewer (the shared harness in
//! `tests/common/`) negotiates with `viewer.offer` instead of WHEP and
//! receives the publisher's video; a re-offer naming its session replaces
//! it (renegotiation); its sessions end when the socket closes.

mod common;
mod ws_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::time::{sleep, Instant};

use common::publisher::{Publisher, PublisherOptions};
use common::server::{http_client, TestServer, STREAM};
use common::viewer::Viewer;
use common::{run, shared_gate};
use ws_support::Client;

/// Offers over `client`, optionally replacing `session`; returns (session, answer).
async fn offer_over_ws(
    client: Arc<Mutex<Client>>,
    offer: String,
    replaces: Option<String>,
) -> anyhow::Result<(String, String)> {
    let mut client = client.lock().await;
    let mut message =
        json!({"type": "viewer.offer", "stream": STREAM, "sdp": offer, "layer": "high"});
    if let Some(session) = replaces {
        message["session"] = json!(session);
    }
    client.send(message).await?;
    let answer = client
        .expect("viewer.answer", Duration::from_secs(10))
        .await?;
    ensure!(answer["stream"] == STREAM, "{answer}");
    Ok((
        answer["session"].as_str().context("session")?.to_owned(),
        answer["sdp"].as_str().context("sdp")?.to_owned(),
    ))
}

/// The broadcast's viewer count from the REST API.
async fn viewer_count(server: &TestServer) -> anyhow::Result<u64> {
    let response = http_client()
        .get(format!("{}/api/broadcasts/{STREAM}", server.base))
        .send()
        .await?;
    let body: Value = serde_json::from_str(&response.text().await?)?;
    body["viewers"]
        .as_u64()
        .with_context(|| format!("no viewers in {body}"))
}

async fn wait_viewer_count(server: &TestServer, expected: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = viewer_count(server).await?;
        if count == expected {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "viewer count {count}, expected {expected}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_negotiated_over_the_websocket_receives_video_and_renegotiates() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(60), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let ws_url = format!("{}/ws", server.base.replacen("http", "ws", 1));
        let client = Arc::new(Mutex::new(Client::connect(&ws_url).await?));

        let first = {
            let client = client.clone();
            Viewer::join_signaled(None, |offer| offer_over_ws(client, offer, None)).await?
        };
        let latency = first.wait_first_keyframe(Duration::from_secs(10)).await?;
        eprintln!("websocket viewer: offer → keyframe {:?}", latency.post_to_keyframe);
        let session = first.resource().to_owned();
        wait_viewer_count(&server, 1).await?;

        // Trickled candidates for our session are accepted silently; for
        // someone else's, not_found.
        {
            let mut c = client.lock().await;
            c.send(json!({"type": "viewer.candidate", "session": session,
                          "candidate": {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMid": "0"}}))
                .await?;
            c.send(json!({"type": "viewer.candidate", "session": "00000000000000ff", "candidate": null})).await?;
            let error = c.expect_error("not_found").await?;
            ensure!(error["ref"] == "viewer.candidate", "{error}");
            c.send(json!({"type": "viewer.offer", "stream": "nope", "sdp": "v=0"})).await?;
            c.expect_error("not_found").await?;
            c.send(json!({"type": "viewer.offer", "stream": STREAM, "sdp": "garbage"})).await?;
            c.expect_error("invalid").await?;
        }

        // Renegotiation: a new offer naming the session replaces it.
        let second = {
            let client = client.clone();
            let old = session.clone();
            Viewer::join_signaled(None, |offer| offer_over_ws(client, offer, Some(old))).await?
        };
        ensure!(second.resource() != session, "the re-offer kept the old session id");
        second.wait_first_keyframe(Duration::from_secs(10)).await?;
        wait_viewer_count(&server, 1).await?;
        {
            let mut c = client.lock().await;
            c.send(json!({"type": "viewer.leave", "session": session})).await?;
            c.expect_error("not_found").await?;
        }
        first.leave().await;

        // Closing the socket ends the sessions it created.
        let client = Arc::try_unwrap(client)
            .map_err(|_| anyhow::anyhow!("client still shared"))?
            .into_inner();
        client.close().await;
        wait_viewer_count(&server, 0).await?;
        second.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_leave_ends_the_session() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(60), async {
        let server = TestServer::start().await?;
        let ws_url = format!("{}/ws", server.base.replacen("http", "ws", 1));
        // A client in the broadcast's room sees it go live and its viewer
        // count change.
        let mut watcher = Client::connect(&ws_url).await?;
        let joined = watcher.join(STREAM).await?;
        ensure!(joined["broadcast"]["live"] == false, "{joined}");
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let live = watcher.expect("broadcast", Duration::from_secs(5)).await?;
        ensure!(live["broadcast"]["live"] == true, "{live}");
        let client = Arc::new(Mutex::new(Client::connect(&ws_url).await?));
        let viewer = {
            let client = client.clone();
            Viewer::join_signaled(None, |offer| offer_over_ws(client, offer, None)).await?
        };
        viewer.wait_first_keyframe(Duration::from_secs(10)).await?;
        wait_viewer_count(&server, 1).await?;
        // Pushed within a tick (2 s) of the change.
        let viewers = watcher.expect("viewers", Duration::from_secs(5)).await?;
        ensure!(viewers["count"] == 1, "{viewers}");
        {
            let mut c = client.lock().await;
            c.send(json!({"type": "viewer.layer", "stream": STREAM, "session": viewer.resource(), "layer": "low"})).await?;
            let ok = c.expect("layer.ok", Duration::from_secs(5)).await?;
            ensure!(ok["layer"] == "low", "{ok}");
            c.send(json!({"type": "viewer.leave", "session": viewer.resource()})).await?;
            let ended = c.expect("viewer.ended", Duration::from_secs(5)).await?;
            ensure!(ended["session"] == viewer.resource(), "{ended}");
        }
        wait_viewer_count(&server, 0).await?;
        let viewers = watcher.expect("viewers", Duration::from_secs(5)).await?;
        ensure!(viewers["count"] == 0, "{viewers}");
        viewer.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        Ok(())
    })
    .await;
}

/// An offer str0m would have panicked on (one payload type in the audio and
/// the video section) gets an error over the websocket; connections that
/// sent one and closed leave nothing behind (no registration counted by
/// `/metrics` or by an alert's `delivered`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_offer_over_the_websocket_is_refused_and_leaves_nothing_behind() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        let server = ws_support::Server::start().await?;
        let offer = common::publisher::PublisherOffer::new(
            &common::publisher::PublisherOptions::generation(1),
        )
        .await?;
        let poisoned = offer
            .sdp
            .replacen("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus/48000/2\r\na=rtpmap:96 VP8/90000", 1)
            .replace("a=sendonly", "a=recvonly")
            .replace("a=sendrecv", "a=recvonly");
        offer.close().await;
        ensure!(poisoned.contains("a=rtpmap:96 VP8/90000"), "{poisoned}");
        for _ in 0..10 {
            let mut client = ws_support::Client::connect(&server.ws_url).await?;
            client
                .send(json!({"type": "viewer.offer", "stream": STREAM, "sdp": poisoned}))
                .await?;
            let error = client.expect_error("invalid").await?;
            ensure!(error["ref"] == "viewer.offer", "{error}");
            client.close().await;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let metrics = ws_support::http()
                .get(format!("{}/metrics", server.base))
                .send()
                .await?
                .text()
                .await?;
            if metrics.contains("relaycast_ws_connections 0\n") {
                break;
            }
            ensure!(Instant::now() < deadline, "connections left behind:\n{metrics}");
            sleep(Duration::from_millis(50)).await;
        }
        let mut moderator = server.client(&server.token("moderator", "mod")?).await?;
        moderator
            .send(json!({"type": "alert.send", "severity": "info", "text": "hello", "scope": "all", "ttl": 60}))
            .await?;
        let sent = moderator.expect("alert.sent", Duration::from_secs(5)).await?;
        ensure!(sent["delivered"] == 1, "only the moderator is connected: {sent}");
        server.stop().await;
        Ok(())
    })
    .await;
}
