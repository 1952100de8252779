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
