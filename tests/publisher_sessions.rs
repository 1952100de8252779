//! Who gets to publish a stream: a second WHIP publish is refused while the
//! current publisher is sending, and replaces it once it has gone silent
//! (the server's rule: 409 while the current publisher sent media within the
//! last 1.5 s, otherwise the new session takes over), in both cases without
//! disturbing the viewers.
//!
//! Harness in `tests/common/`. Debug a failure with
//! `RUST_LOG=debug cargo test --test publisher_sessions -- --nocapture`.

mod common;

use std::time::Duration;

use anyhow::Context;
use tokio::time::{sleep, sleep_until, Instant};
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

use common::publisher::{whip_path, PinnedSsrcs, Publisher, PublisherOffer, PublisherOptions};
use common::server::{http_client, post_sdp, TestServer, STREAM_KEY};
use common::viewer::{Layer, Viewer, ViewerReport};
use common::{run, shared_gate, Checks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_while_live_gets_409() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let viewer = Viewer::join(&server, Layer::High).await?;
        sleep(Duration::from_millis(1500)).await;

        // A complete, valid offer with the right token: only "already live"
        // can be the reason to refuse it.
        let second = PublisherOffer::new(&PublisherOptions::generation(2)).await?;
        let posted_at = Instant::now();
        let response = post_sdp(
            &http_client(),
            &server.base,
            &whip_path(),
            Some(STREAM_KEY),
            second.sdp.clone(),
        )
        .await?;
        second.close().await;
        eprintln!(
            "second WHIP POST while live: {} (Content-Type {:?}, Location {:?}) {}",
            response.status, response.content_type, response.location, response.body
        );
        sleep(Duration::from_secs(2)).await;

        let mut checks = Checks::default();
        checks.check(response.status.as_u16() == 409, || {
            format!(
                "second publish while live: expected 409 Conflict, got {}: {}",
                response.status, response.body
            )
        });
        checks.check(
            response
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json")),
            || format!("409 Content-Type is {:?}", response.content_type),
        );
        match serde_json::from_str::<serde_json::Value>(&response.body) {
            Ok(json) => {
                checks.check(json["error"] == "already_live", || {
                    format!("409 body: expected \"error\":\"already_live\", got {json}")
                });
                checks.check(
                    json["message"].as_str().is_some_and(|m| !m.is_empty()),
                    || format!("409 body: expected a non-empty \"message\" string, got {json}"),
                );
            }
            Err(e) => checks.fail(format!("409 body is not JSON ({e}): {:?}", response.body)),
        }
        checks.check(response.location.is_none(), || {
            format!("refused publish has a Location: {:?}", response.location)
        });

        let who = "viewer of the first publisher";
        let rx = viewer.report();
        eprintln!("{who}: {}", rx.summary());
        checks.first_video_packet_is_keyframe_start(who, &rx);
        checks.no_video_gaps(who, &rx);
        still_connected(&mut checks, who, &viewer, &rx);
        checks.check(rx.frame_tags().all(|t| t.generation == 1), || {
            format!("{who}: frames from a publisher other than the first")
        });
        let frames_after = rx
            .video
            .iter()
            .filter(|p| p.frame_start && p.at >= posted_at)
            .count();
        checks.check(frames_after >= 30, || {
            format!("{who}: only {frames_after} frames in the 2 s after the refused publish")
        });
        let stall = longest_video_pause_after(&rx, posted_at);
        checks.check(stall < Duration::from_secs(1), || {
            format!("{who}: video paused for {stall:?} after the refused publish")
        });
        eprintln!(
            "{who}: {frames_after} frames after the refused publish, longest pause {stall:?}"
        );
        eprintln!("first publisher: {}", publisher.stats_line());

        viewer.leave().await;
        // 200 here also shows the first session survived the refused publish.
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

/// OBS losing its network: no DELETE, media just stops; when OBS comes back
/// it publishes again with the same SSRCs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_went_silent_is_replaced_without_delete() {
    let _gate = shared_gate().await;
    let ssrcs = PinnedSsrcs::random();
    eprintln!("pinned SSRCs for both publishers: {ssrcs:?}");
    run(Duration::from_secs(30), async {
        let server = TestServer::start().await?;
        let viewer = Viewer::join(&server, Layer::High).await?;
        let first =
            Publisher::start(&server, PublisherOptions::generation(1).with_ssrcs(ssrcs)).await?;
        sleep(Duration::from_secs(2)).await;

        first.stop_media().await?;
        let silent_at = Instant::now();
        eprintln!(
            "first publisher (now silent, no DELETE): {}",
            first.stats_line()
        );
        sleep_until(silent_at + Duration::from_secs(2)).await;
        let second = Publisher::start(&server, PublisherOptions::generation(2).with_ssrcs(ssrcs))
            .await
            .context("second publish after the first was silent for 2 s (expected 201)")?;
        let replaced_at = Instant::now();
        sleep(Duration::from_millis(2500)).await;

        let mut checks = Checks::default();
        let who = "viewer";
        let rx = viewer.report();
        eprintln!("{who}: {}", rx.summary());
        checks.first_video_packet_is_keyframe_start(who, &rx);
        checks.no_video_gaps(who, &rx);
        still_connected(&mut checks, who, &viewer, &rx);
        checks.check(rx.video_ssrcs().len() == 1, || {
            format!("{who}: video SSRCs {:?}", rx.video_ssrcs())
        });

        checks.continued_on_second_publisher(who, &rx, 1280, replaced_at);
        eprintln!("second publisher: {}", second.stats_line());

        viewer.leave().await;
        second.stop_and_delete().await?;
        first.close_without_delete().await;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

/// The viewer's PeerConnection is up and was never renegotiated.
fn still_connected(checks: &mut Checks, who: &str, viewer: &Viewer, rx: &ViewerReport) {
    let state = viewer.pc.connection_state();
    checks.check(state == RTCPeerConnectionState::Connected, || {
        format!("{who}: PeerConnection is {state}")
    });
    checks.check(rx.video_tracks == 1, || {
        format!(
            "{who}: {} video on_track calls (renegotiated?)",
            rx.video_tracks
        )
    });
}

/// The longest time without a video packet from `from` to the last packet.
fn longest_video_pause_after(rx: &ViewerReport, from: Instant) -> Duration {
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for packet in rx.video.iter().filter(|p| p.at >= from) {
        longest = longest.max(packet.at.saturating_duration_since(previous));
        previous = packet.at;
    }
    longest
}
