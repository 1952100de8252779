//! The layer fits the player, and a hidden player costs no video: a WHEP
//! viewer (webrtc-rs) reports what its player shows (`POST …/view`, the
//! websocket's `viewer.view`) and the server caps its automatic layer to
//! the smallest one covering the picture, and pauses its video once the
//! page has been hidden for 5 s, audio continuing; visible again resumes
//! from the GopCache at once. The publisher is the synthetic VP8 simulcast
//! of `tests/common` (1280/640/320 wide, a keyframe every second).
//!
//! The browser side (the watch page's reports from its real player) is in
//! `web-client/tests/player-fit.test.js`.

mod common;

use std::time::Duration;

use tokio::time::{sleep, Instant};

use common::publisher::{Publisher, PublisherOptions};
use common::server::TestServer;
use common::viewer::{Layer, VideoPacket, Viewer};
use common::{run, shared_gate, Checks};

/// Widths of the keyframes received from packet `from` on.
fn widths_from(viewer: &Viewer, from: usize) -> Vec<u16> {
    viewer.report().video[from..]
        .iter()
        .filter_map(|p| p.width)
        .collect()
}

/// Waits (bounded) for a keyframe of `width` after packet `from`; how long
/// after `since` its first packet arrived.
async fn wait_keyframe(
    viewer: &Viewer,
    from: usize,
    width: u16,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    wait_keyframe_where(viewer, from, |w| w == width, since, limit).await
}

async fn wait_keyframe_where(
    viewer: &Viewer,
    from: usize,
    width: impl Fn(u16) -> bool,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    wait_packet(viewer, from, |p| p.width.is_some_and(&width), since, limit).await
}

/// Waits (bounded) for any keyframe after packet `from`.
async fn first_keyframe(
    viewer: &Viewer,
    from: usize,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    wait_packet(viewer, from, |p| p.keyframe_start, since, limit).await
}

/// Waits (bounded) for a video packet after packet `from` that `wanted`
/// accepts; how long after `since` it arrived.
async fn wait_packet(
    viewer: &Viewer,
    from: usize,
    wanted: impl Fn(&VideoPacket) -> bool,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let rx = viewer.report();
        if let Some(p) = rx.video[from.min(rx.video.len())..]
            .iter()
            .find(|p| wanted(p))
        {
            return Some(p.at.saturating_duration_since(since));
        }
        sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_viewer_gets_the_smallest_layer_covering_its_player() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(50), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let small = Viewer::join(&server, Layer::Auto).await?;
        // Reported before the peer connects: its first picture is already small.
        small.set_view(320, 180, true).await?;
        let large = Viewer::join(&server, Layer::Auto).await?;
        large.set_view(1280, 720, true).await?;
        // A manual choice is the user's: the small player does not cap it.
        let manual = Viewer::join(&server, Layer::High).await?;
        manual.set_view(320, 180, true).await?;
        sleep(Duration::from_secs(3)).await;

        let mut checks = Checks::default();
        let rx = small.report();
        eprintln!("small: {}", rx.summary());
        checks.first_video_packet_is_keyframe_start("small", &rx);
        let widths = rx.keyframe_widths();
        checks.check(!widths.is_empty() && widths.iter().all(|&w| w == 320), || {
            format!("a 320×180 player: keyframe widths {widths:?}, want only 320")
        });
        let status = small.status().await?;
        checks.check(status["fitted_to_player"] == true, || {
            format!("the small player's status says it is fitted: {status}")
        });
        checks.check(
            status["player"]["width"] == 320 && status["player"]["visible"] == true,
            || format!("the small player's report is shown: {status}"),
        );
        for (who, viewer) in [("large", &large), ("manual high", &manual)] {
            let rx = viewer.report();
            checks.check(rx.last_keyframe_width() == Some(1280), || {
                format!("{who}: keyframe widths {:?}, want 1280", rx.keyframe_widths())
            });
        }

        // A player shrunk moves down, grown again moves back up, each at
        // the layer's next keyframe: the estimate it had is kept.
        for (width, height, layer) in [(320, 180, 320u16), (640, 360, 640), (1280, 720, 1280)] {
            let from = large.report().video.len();
            let asked = Instant::now();
            large.set_view(width, height, true).await?;
            let took = wait_keyframe(&large, from, layer, asked, Duration::from_secs(4)).await;
            eprintln!("player resized to {width}×{height}: first {layer}-wide keyframe after {took:?}");
            checks.check(took.is_some_and(|t| t <= Duration::from_millis(1500)), || {
                format!(
                    "player resized to {width}×{height}: the {layer}-wide layer within a \
                     keyframe interval (1 s here, plus 0.5 s), took {took:?}; widths since: {:?}",
                    widths_from(&large, from)
                )
            });
        }
        // A player small from the start knows only the estimator's starting
        // value: grown, it starts from that as a new viewer does, and climbs
        // at the estimator's pace.
        let from = small.report().video.len();
        let asked = Instant::now();
        small.set_view(1280, 720, true).await?;
        let took = wait_keyframe_where(&small, from, |w| w > 320, asked, Duration::from_secs(4)).await;
        eprintln!(
            "small from the start, grown to 1280×720: first larger keyframe after {took:?}, widths {:?}",
            widths_from(&small, from)
        );
        checks.check(took.is_some_and(|t| t <= Duration::from_millis(1500)), || {
            format!(
                "a player small from the start, grown: a larger layer within a keyframe \
                 interval, took {took:?}; widths since: {:?}",
                widths_from(&small, from)
            )
        });
        let rx = small.report();
        checks.no_video_gaps("small", &rx);

        for viewer in [small, large, manual] {
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
async fn a_hidden_player_gets_no_video_after_5_s_and_resumes_at_once() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let viewer = Viewer::join(&server, Layer::Auto).await?;
        viewer.wait_first_keyframe(Duration::from_secs(5)).await?;
        sleep(Duration::from_secs(1)).await;

        let mut checks = Checks::default();
        let hidden_at = Instant::now();
        viewer.set_view(1280, 720, false).await?;
        // Within the grace video keeps coming: a quick tab switch is free.
        sleep(Duration::from_secs(4)).await;
        let rx = viewer.report();
        let late = rx.video.last().map(|p| p.at);
        checks.check(
            late.is_some_and(|at| at + Duration::from_millis(500) > Instant::now()),
            || "video stopped within the 5 s grace".to_owned(),
        );
        sleep(Duration::from_millis(2000)).await;
        let rx = viewer.report();
        let last_video = rx.video.last().map(|p| p.at);
        let paused_after = last_video.map(|at| at.saturating_duration_since(hidden_at));
        eprintln!("hidden: last video packet {paused_after:?} after the report");
        checks.check(
            // The last frame before the pause may arrive a frame early.
            paused_after.is_some_and(|d| d >= Duration::from_millis(4900) && d <= Duration::from_millis(5500)),
            || format!("video pauses 5 s after the page is hidden (last packet at {paused_after:?})"),
        );
        let status = viewer.status().await?;
        checks.check(status["paused_hidden"] == true, || {
            format!("its status says paused while hidden: {status}")
        });
        // Nothing more while hidden; audio never stops.
        let (video_before, audio_before) = (rx.video.len(), rx.audio.len());
        sleep(Duration::from_secs(2)).await;
        let rx = viewer.report();
        checks.check(rx.video.len() == video_before, || {
            format!("{} video packets while paused", rx.video.len() - video_before)
        });
        checks.check(rx.audio.len() >= audio_before + 50, || {
            format!(
                "audio continues while hidden: {} packets in 2 s",
                rx.audio.len() - audio_before
            )
        });
        let status_a = viewer.status().await?;
        sleep(Duration::from_millis(1500)).await;
        let status_b = viewer.status().await?;
        checks.check(
            status_a["video_bytes_sent"] == status_b["video_bytes_sent"],
            || format!("the server's counter shows no video bytes while hidden: {status_a} then {status_b}"),
        );

        // Visible again: the GopCache's keyframe at once, no waiting for the next.
        let from = viewer.report().video.len();
        let shown = Instant::now();
        viewer.set_view(1280, 720, true).await?;
        let took = first_keyframe(&viewer, from, shown, Duration::from_secs(3)).await;
        let top = wait_keyframe(&viewer, from, 1280, shown, Duration::from_secs(5)).await;
        eprintln!("visible again: first keyframe after {took:?}, the top layer's after {top:?}");
        checks.check(took.is_some_and(|t| t <= Duration::from_millis(500)), || {
            format!("video again within 500 ms of becoming visible, took {took:?}")
        });

        let rx = viewer.report();
        checks.check(rx.video.get(from).is_some_and(|p| p.keyframe_start), || {
            "the first packet after resuming starts a keyframe".to_owned()
        });

        viewer.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbelievable_player_report_is_refused() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(20), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let viewer = Viewer::join(&server, Layer::Auto).await?;
        let http = reqwest::Client::new();
        for body in [
            r#"{"width":100000,"height":720,"visible":true}"#,
            r#"{"width":-1,"height":720,"visible":true}"#,
            r#"{"width":640,"height":360}"#,
            r#"{"width":640,"height":360,"visible":true,"dpr":2}"#,
        ] {
            let res = http
                .post(format!("{}/view", viewer.resource()))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = res.status();
            let json: serde_json::Value = serde_json::from_str(&res.text().await?)?;
            anyhow::ensure!(
                status == 400 && json["error"].is_string(),
                "{body}: {status} {json}"
            );
        }
        let res = http
            .post(format!("{}/whep/live/00000000deadbeef/view", server.base))
            .header("content-type", "application/json")
            .body(r#"{"width":640,"height":360,"visible":true}"#)
            .send()
            .await?;
        anyhow::ensure!(res.status() == 404, "unknown session: {}", res.status());
        viewer.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        Ok(())
    })
    .await;
}
