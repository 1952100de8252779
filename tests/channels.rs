//! Channels end to end: an account creates a channel over HTTP, a WHIP
//! publisher (webrtc-rs) goes live with the returned key, a WHEP viewer
//! (webrtc-rs) gets keyframe-first video; after a key rotation the old key
//! is refused while the running broadcast continues to the viewer.
//! (The OBS-faithful publisher does the same in the browser test of the
//! Go-live page.)

mod common;

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tokio::time::sleep;

use common::publisher::{Publisher, PublisherOptions};
use common::server::{http_client, post_offer, post_sdp, TestServer};
use common::viewer::Viewer;
use common::{run, shared_gate, Checks};

async fn post_json(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut req = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_goes_live_on_its_channel_and_a_rotation_spares_the_running_broadcast() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let http = http_client();
        let (status, account) = post_json(
            &http,
            format!("{}/api/accounts", server.base),
            None,
            json!({"username": "ada", "password": "correct horse battery"}),
        )
        .await?;
        ensure!(status == 201, "account: {status} {account}");
        let token = account["token"].as_str().context("account token")?.to_owned();
        let (status, channel) = post_json(
            &http,
            format!("{}/api/channels", server.base),
            Some(&token),
            json!({"name": "ada-live"}),
        )
        .await?;
        ensure!(status == 201, "channel: {status} {channel}");
        let key = channel["stream_key"].as_str().context("stream_key")?.to_owned();

        let publisher = Publisher::start_on(
            &server,
            PublisherOptions::generation(1),
            "/whip/ada-live",
            &key,
        )
        .await?;
        let viewer = Viewer::join_signaled(None, |offer| {
            let http = http.clone();
            let base = server.base.clone();
            async move { post_offer(&http, &base, "/whep/ada-live?layer=high", None, offer).await }
        })
        .await?;
        sleep(Duration::from_secs(2)).await;
        let before = viewer.report().video.len();

        let (status, rotated) = post_json(
            &http,
            format!("{}/api/channels/ada-live/key", server.base),
            Some(&token),
            json!({}),
        )
        .await?;
        ensure!(status == 200, "rotate: {status} {rotated}");
        let refused = post_sdp(&http, &server.base, "/whip/ada-live", Some(&key), "v=0\r\n".into()).await?;
        sleep(Duration::from_secs(2)).await;

        let rx = viewer.report();
        let mut checks = Checks::default();
        eprintln!("viewer: {}", rx.summary());
        checks.first_video_packet_is_keyframe_start("viewer", &rx);
        checks.no_video_gaps("viewer", &rx);
        checks.check(before > 0, || "no video before the rotation".into());
        checks.check(rx.video.len() > before + 60, || {
            format!(
                "the broadcast stopped after the rotation: {before} video packets before, {} after 2 s",
                rx.video.len()
            )
        });
        checks.check(refused.status.as_u16() == 401, || {
            format!("the old key after rotation: {} {}", refused.status, refused.body)
        });
        viewer.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}
