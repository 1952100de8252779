//! End-to-end live path over loopback: a WHIP publisher (webrtc-rs, VP8
//! simulcast h/m/l + Opus, synthetic RTP) → relaycast → WHEP viewers
//! (webrtc-rs, recvonly). webrtc-rs is an independent WebRTC stack, so these
//! tests check the server against the wire protocol, not against itself.
//!
//! Viewers ask for `high` (or `low`): `auto` follows each viewer's bandwidth
//! estimate, which `constrained_viewer.rs` and the browser tests cover.
//!
//! The tests read as specifications; the harness (server fixture, publisher,
//! viewer, VP8 bit-twiddling) lives in `tests/common/`.
//!
//! Every frame's first packet carries a tag right after the VP8 frame header
//! (`"RC"`, publisher generation, layer, frame number), so a viewer can tell
//! which publisher connection and which layer a forwarded frame came from even
//! though the server rewrites SSRC, sequence numbers and timestamps.
//!
//! Debug a failure with `RUST_LOG=debug cargo test --test live_path -- --nocapture`.

mod common;

use std::time::Duration;

use anyhow::Context;
use tokio::time::{sleep, sleep_until, Instant};
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

use common::media::LOW_LAYER_INDEX;
use common::publisher::{PinnedSsrcs, Publisher, PublisherOptions};
use common::server::TestServer;
use common::viewer::{JoinLatency, Layer, Viewer};
use common::{exclusive_gate, percentile, run, shared_gate, Checks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_receive_keyframe_first_contiguous_video_and_audio() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        let server = TestServer::start().await?;
        // One viewer is waiting before the broadcast starts, two join it live.
        let early = Viewer::join(&server, Layer::High).await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let late_a = Viewer::join(&server, Layer::High).await?;
        let late_b = Viewer::join(&server, Layer::High).await?;

        sleep(Duration::from_secs(3)).await;

        let mut checks = Checks::default();
        for (name, viewer) in [("early", &early), ("late_a", &late_a), ("late_b", &late_b)] {
            let who = format!("viewer {name}");
            let rx = viewer.report();
            eprintln!("{who}: {}", rx.summary());
            checks.first_video_packet_is_keyframe_start(&who, &rx);
            checks.no_video_gaps(&who, &rx);
            checks.check(!rx.audio.is_empty(), || format!("{who}: no audio packets"));
            checks.check(rx.last_keyframe_width() == Some(1280), || {
                format!(
                    "{who}: a `high` viewer should be on the 1280-wide layer \
                     (keyframe widths seen: {:?})",
                    rx.keyframe_widths()
                )
            });
        }
        eprintln!("publisher: {}", publisher.stats_line());

        for viewer in [early, late_a, late_b] {
            viewer.leave().await;
        }
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_layer_viewer_gets_the_small_layer() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        let server = TestServer::start().await?;
        // Asked for before any layer has been measured, and after.
        let early = Viewer::join(&server, Layer::Low).await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        sleep(Duration::from_millis(1200)).await;
        let late = Viewer::join(&server, Layer::Low).await?;

        sleep(Duration::from_millis(2500)).await;

        let mut checks = Checks::default();
        for (name, viewer) in [
            ("early (joined before the publisher)", &early),
            ("late", &late),
        ] {
            let who = format!("low viewer {name}");
            let rx = viewer.report();
            eprintln!("{who}: {}", rx.summary());
            checks.first_video_packet_is_keyframe_start(&who, &rx);
            checks.no_video_gaps(&who, &rx);
            let widths = rx.keyframe_widths();
            checks.check(!widths.is_empty(), || {
                format!("{who}: no keyframe received")
            });
            checks.check(widths.iter().all(|&w| w == 320), || {
                format!(
                    "{who}: expected only 320-wide keyframes, got widths {widths:?}; frames \
                     in arrival order as (layer 0=h/1=m/2=l, count): {:?}",
                    rx.layer_runs()
                )
            });
            checks.check(rx.frame_tags().all(|t| t.layer == LOW_LAYER_INDEX), || {
                format!(
                    "{who}: frames (not only keyframes) from layers other than l: {:?}",
                    rx.layer_runs()
                )
            });
        }

        early.leave().await;
        late.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_gop_join_gets_first_keyframe_within_100ms() {
    // Timing test: runs alone so the other tests don't steal its 2 cores.
    let _gate = exclusive_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;

        // Join 0.5 s into a GOP, with the broadcast running for at least 1.5 s.
        let join_at = publisher.keyframe_time_at_or_after(Duration::from_millis(1000))
            + Duration::from_millis(500);
        sleep_until(join_at).await;
        let viewer = Viewer::join(&server, Layer::High).await?;
        let join = viewer.wait_first_keyframe(Duration::from_secs(5)).await?;
        let rx = viewer.report();
        eprintln!(
            "mid-GOP join: POST→first keyframe {:?} (POST→answer {:?}, answer→connected {:?}, \
             connected→first keyframe {:?}); the keyframe is frame #{:?}, joined at frame ~#{}, \
             width {:?}",
            join.post_to_keyframe,
            join.post_to_answer,
            join.answer_to_connected,
            join.connected_to_keyframe,
            rx.first_frame_tag().map(|t| t.frame_no),
            publisher.frame_number_at(join_at),
            rx.keyframe_widths().first(),
        );
        let mut checks = Checks::default();
        checks.first_video_packet_is_keyframe_start("mid-GOP viewer", &rx);
        checks.check(
            join.connected_to_keyframe < Duration::from_millis(100),
            || {
                format!(
                    "a mid-GOP joiner must get a keyframe from the GOP cache at once: \
                 connected→first keyframe took {:?}",
                    join.connected_to_keyframe
                )
            },
        );
        viewer.leave().await;

        // The figure to report: POST→first keyframe over 20 sequential joins
        // landing at assorted points of the GOP.
        let mut joins = Vec::new();
        for i in 0..20 {
            sleep(Duration::from_millis(rand::random_range(0..200))).await;
            let viewer = Viewer::join(&server, Layer::High).await?;
            let join = viewer
                .wait_first_keyframe(Duration::from_secs(5))
                .await
                .with_context(|| format!("join #{i}"))?;
            checks.first_video_packet_is_keyframe_start(&format!("join #{i}"), &viewer.report());
            joins.push(join);
            viewer.leave().await;
        }
        let stat = |name: &str, pick: fn(&JoinLatency) -> Duration| {
            let samples: Vec<Duration> = joins.iter().map(pick).collect();
            format!(
                "{name} p50 {:?} p99 {:?} (min {:?}, max {:?})",
                percentile(&samples, 0.50),
                percentile(&samples, 0.99),
                samples.iter().min().unwrap(),
                samples.iter().max().unwrap(),
            )
        };
        eprintln!(
            "20 joins: {}",
            stat("POST→first keyframe", |j| j.post_to_keyframe)
        );
        eprintln!("20 joins: {}", stat("  POST→answer", |j| j.post_to_answer));
        eprintln!(
            "20 joins: {}",
            stat("  answer→connected", |j| j.answer_to_connected)
        );
        eprintln!(
            "20 joins: {}",
            stat("  connected→first keyframe", |j| j.connected_to_keyframe)
        );
        eprintln!("publisher: {}", publisher.stats_line());

        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

/// OBS-style reconnect: the new PeerConnection reuses the old SSRCs (but, as
/// a fresh RTP session, starts from new sequence numbers and timestamps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_reconnect_keeps_viewers_playing() {
    let _gate = shared_gate().await;
    let ssrcs = PinnedSsrcs::random();
    eprintln!("pinned SSRCs for both publishers: {ssrcs:?}");
    run(Duration::from_secs(30), async {
        reconnect_scenario(
            PublisherOptions::generation(1).with_ssrcs(ssrcs),
            PublisherOptions::generation(2).with_ssrcs(ssrcs),
        )
        .await
    })
    .await;
}

/// Browser-style reconnect: the new PeerConnection picks new SSRCs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_reconnect_with_new_ssrcs_keeps_viewers_playing() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        reconnect_scenario(
            PublisherOptions::generation(1),
            PublisherOptions::generation(2),
        )
        .await
    })
    .await;
}

/// Viewers (high and low) watch publisher `first` for 2 s; it DELETEs its
/// WHIP session and closes; publisher `second` connects and sends for 2.5 s.
/// The viewers' PeerConnections are never renegotiated.
async fn reconnect_scenario(
    first: PublisherOptions,
    second: PublisherOptions,
) -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let high = Viewer::join(&server, Layer::High).await?;
    let low = Viewer::join(&server, Layer::Low).await?;

    let publisher = Publisher::start(&server, first).await?;
    sleep(Duration::from_secs(2)).await;
    eprintln!("first publisher: {}", publisher.stats_line());
    publisher.stop_and_delete().await?;
    let reconnected_at = Instant::now();
    let publisher = Publisher::start(&server, second).await?;
    sleep(Duration::from_millis(2500)).await;

    let mut checks = Checks::default();
    for (name, viewer, width) in [("high", &high, 1280), ("low", &low, 320)] {
        let who = format!("{name} viewer");
        let rx = viewer.report();
        eprintln!("{who}: {}", rx.summary());
        checks.first_video_packet_is_keyframe_start(&who, &rx);
        let state = viewer.pc.connection_state();
        checks.check(state == RTCPeerConnectionState::Connected, || {
            format!("{who}: PeerConnection is {state} after the publisher reconnect")
        });
        checks.check(rx.video_tracks == 1, || {
            format!(
                "{who}: {} video on_track calls (renegotiated?)",
                rx.video_tracks
            )
        });
        checks.check(rx.video_ssrcs().len() == 1, || {
            format!("{who}: video SSRCs {:?}", rx.video_ssrcs())
        });
        checks.no_video_gaps(&who, &rx);

        checks.continued_on_second_publisher(&who, &rx, width, reconnected_at);
    }
    eprintln!("second publisher: {}", publisher.stats_line());

    high.leave().await;
    low.leave().await;
    publisher.stop_and_delete().await?;
    server.stop().await;
    checks.finish();
    Ok(())
}
