//! End to end with two media workers (`--workers 2`): one publisher's
//! packets reach the viewers of both workers (the other worker's Mirror is
//! fed over the bus), layer switches and a publisher reconnect work on
//! either worker, and a session that panics on one worker, or a whole
//! worker that panics, leaves the other worker's viewers playing.
//!
//! Placement puts each viewer on the worker with the fewest viewers (ties:
//! the lowest index), so consecutive joins alternate between the workers;
//! every test asserts where its viewers landed rather than assuming it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context};
use tokio::time::{sleep, Instant};

use common::publisher::{Publisher, PublisherOptions};
use common::server::TestServer;
use common::viewer::{Layer, Viewer};
use common::{run, shared_gate, Checks};

/// The worker holding this viewer's session.
fn worker_of(server: &TestServer, viewer: &Viewer) -> anyhow::Result<usize> {
    let id = viewer
        .session_id()
        .context("a session id in the resource URL")?;
    let status = server.media().viewer(id).context("the viewer's status")?;
    Ok(status.worker)
}

/// Viewers are placed on both workers as they join; the status snapshot
/// that tells which may lag a join by one publication period.
async fn workers_of(server: &TestServer, viewers: &[&Viewer]) -> anyhow::Result<Vec<usize>> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let placed: anyhow::Result<Vec<usize>> =
            viewers.iter().map(|v| worker_of(server, v)).collect();
        match placed {
            Ok(placed) => return Ok(placed),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_both_workers_get_keyframe_first_contiguous_media_and_switch_layers() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start_with_workers(2).await?;
        ensure!(server.media().workers() == 2);
        // One viewer waits before the broadcast starts, three join it live.
        let early = Viewer::join(&server, Layer::High).await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let late_a = Viewer::join(&server, Layer::High).await?;
        let late_b = Viewer::join(&server, Layer::High).await?;
        let late_c = Viewer::join(&server, Layer::High).await?;
        let all = [&early, &late_a, &late_b, &late_c];
        let placed = workers_of(&server, &all).await?;
        ensure!(
            placed.iter().copied().collect::<BTreeSet<_>>() == BTreeSet::from([0, 1]),
            "viewers should be on both workers: {placed:?}"
        );

        sleep(Duration::from_secs(3)).await;
        let mut checks = Checks::default();
        for (name, viewer) in [
            ("early", &early),
            ("late_a", &late_a),
            ("late_b", &late_b),
            ("late_c", &late_c),
        ] {
            let who = format!("viewer {name} on worker {}", worker_of(&server, viewer)?);
            let rx = viewer.report();
            eprintln!("{who}: {}", rx.summary());
            checks.first_video_packet_is_keyframe_start(&who, &rx);
            checks.no_video_gaps(&who, &rx);
            checks.check(!rx.audio.is_empty(), || format!("{who}: no audio packets"));
            checks.check(rx.audio_seq_gaps() == 0, || {
                format!("{who}: {} audio sequence gaps", rx.audio_seq_gaps())
            });
            checks.check(rx.last_keyframe_width() == Some(1280), || {
                format!(
                    "{who}: keyframe widths {:?}, want 1280",
                    rx.keyframe_widths()
                )
            });
        }

        // A layer switch on each worker: to the small layer without
        // renegotiation, at its next keyframe.
        let switched: Vec<&Viewer> = {
            let mut by_worker = Vec::new();
            for w in [0, 1] {
                let i = placed
                    .iter()
                    .position(|p| *p == w)
                    .expect("both workers hold a viewer");
                by_worker.push(all[i]);
            }
            by_worker
        };
        let before: Vec<usize> = switched.iter().map(|v| v.report().video.len()).collect();
        for v in &switched {
            v.choose_layer("low").await?;
        }
        sleep(Duration::from_millis(2500)).await;
        for (v, from) in switched.iter().zip(before) {
            let who = format!("switched viewer on worker {}", worker_of(&server, v)?);
            let rx = v.report();
            let after: Vec<u16> = rx.video[from..].iter().filter_map(|p| p.width).collect();
            checks.check(after.last() == Some(&320), || {
                format!("{who}: keyframe widths after the switch {after:?}, want 320 last")
            });
            checks.no_video_gaps(&who, &rx);
        }

        for viewer in [early, late_a, late_b, late_c] {
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
async fn a_publisher_reconnect_continues_on_both_workers() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start_with_workers(2).await?;
        let first = Viewer::join(&server, Layer::High).await?;
        let second = Viewer::join(&server, Layer::High).await?;
        let placed = workers_of(&server, &[&first, &second]).await?;
        ensure!(placed[0] != placed[1], "one viewer per worker: {placed:?}");

        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        sleep(Duration::from_secs(2)).await;
        publisher.stop_and_delete().await?;
        let reconnected_at = Instant::now();
        let publisher = Publisher::start(&server, PublisherOptions::generation(2)).await?;
        sleep(Duration::from_millis(2500)).await;

        let mut checks = Checks::default();
        for (viewer, worker) in [(&first, placed[0]), (&second, placed[1])] {
            let who = format!("viewer on worker {worker}");
            let rx = viewer.report();
            eprintln!("{who}: {}", rx.summary());
            checks.first_video_packet_is_keyframe_start(&who, &rx);
            checks.no_video_gaps(&who, &rx);
            checks.check(rx.video_ssrcs().len() == 1, || {
                format!("{who}: video SSRCs {:?}", rx.video_ssrcs())
            });
            checks.continued_on_second_publisher(&who, &rx, 1280, reconnected_at);
        }
        first.leave().await;
        second.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

/// Packets received by `viewer` in the last `window`.
/// Regression: a viewer joining a worker whose Mirror exists (the Source
/// local) used to make the Source feed that Mirror its cached GOP again,
/// so everyone already watching there received the GOP a second time:
/// old packets, duplicates, seconds of latency at a few hundred viewers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_joining_later_do_not_resend_the_gop_to_those_watching() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        let server = TestServer::start_with_workers(1).await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let first = Viewer::join(&server, Layer::High).await?;
        first.wait_first_keyframe(Duration::from_secs(5)).await?;
        sleep(Duration::from_millis(1500)).await;
        let mut later = Vec::new();
        for _ in 0..3 {
            later.push(Viewer::join(&server, Layer::High).await?);
            sleep(Duration::from_millis(300)).await;
        }
        for viewer in &later {
            viewer.wait_first_keyframe(Duration::from_secs(5)).await?;
        }
        sleep(Duration::from_millis(1000)).await;

        // Every packet forwarded reaches its viewer on loopback, and an
        // SRTP receiver silently discards a resent one (replay
        // protection), so resends show as forwarded but never received.
        let forwarded = server.media().metric_total(|m| &m.packets_forwarded);
        sleep(Duration::from_millis(300)).await;
        let received: usize = std::iter::once(&first)
            .chain(later.iter())
            .map(|v| {
                let rx = v.report();
                rx.video.len() + rx.audio.len()
            })
            .sum();
        eprintln!("{forwarded} packets forwarded, {received} received");
        let mut checks = Checks::default();
        checks.check(forwarded <= received as u64 + 20, || {
            format!("{forwarded} packets forwarded, {received} received: some were sent twice")
        });
        let rx = first.report();
        eprintln!("first viewer: {}", rx.summary());
        checks.no_video_gaps("first viewer", &rx);
        let duplicates = rx.video_duplicates();
        checks.check(duplicates == 0, || {
            format!("first viewer: {duplicates} video packets received twice")
        });
        for (i, viewer) in later.iter().enumerate() {
            let rx = viewer.report();
            let duplicates = rx.video_duplicates();
            checks.check(duplicates == 0, || {
                format!("later viewer {i}: {duplicates} video packets received twice")
            });
        }
        first.leave().await;
        for viewer in later {
            viewer.leave().await;
        }
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}

/// The longest time without a video packet from the last one before
/// `from` until `window` after it.
fn longest_silence(rx: &common::viewer::ViewerReport, from: Instant, window: Duration) -> Duration {
    let mut last = rx.video.iter().map(|p| p.at).rfind(|at| *at < from);
    let mut longest = Duration::ZERO;
    for p in rx
        .video
        .iter()
        .filter(|p| p.at >= from && p.at < from + window)
    {
        if let Some(previous) = last {
            longest = longest.max(p.at - previous);
        }
        last = Some(p.at);
    }
    longest
}

fn received_within(viewer: &Viewer, window: Duration) -> usize {
    let since = Instant::now() - window;
    viewer
        .report()
        .video
        .iter()
        .filter(|p| p.at >= since)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_one_worker_leaves_the_other_workers_viewers_playing() {
    // Backtraces on, as operators run: std's hook would resolve and print
    // one on the panicking worker (set before anything here panics: std
    // reads it once per process).
    std::env::set_var("RUST_BACKTRACE", "1");
    let _gate = shared_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start_with_workers(2).await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let mut viewers = Vec::new();
        for _ in 0..4 {
            viewers.push(Viewer::join(&server, Layer::High).await?);
        }
        let placed = workers_of(&server, &viewers.iter().collect::<Vec<_>>()).await?;
        sleep(Duration::from_millis(1500)).await;

        // A session panic inside the fast egress: the viewer on the
        // publisher's worker dies, nobody else notices.
        let victim = placed
            .iter()
            .position(|w| *w == 0)
            .context("a viewer on worker 0")?;
        let victim_id = viewers[victim].session_id().context("victim id")?;
        let faulted = Instant::now();
        let mut ended = server.media().ended();
        server
            .media()
            .inject_fault(relaycast_sfu::Fault::SessionPanic(victim_id))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left = tokio::time::timeout_at(deadline, ended.recv())
                .await
                .context("the panicking session never ended")??;
            if left == victim_id {
                break;
            }
        }
        let viewers_now = server
            .media()
            .broadcast(&relaycast_sfu::BroadcastName::new(common::server::STREAM))
            .map(|b| b.viewers);
        // The status snapshot follows within a publication period.
        sleep(Duration::from_millis(500)).await;
        let viewers_later = server
            .media()
            .broadcast(&relaycast_sfu::BroadcastName::new(common::server::STREAM))
            .map(|b| b.viewers);
        ensure!(
            viewers_later == Some(3),
            "the failed viewer is gone from the count: {viewers_now:?} then {viewers_later:?}"
        );

        // A whole worker panics (worker 1 holds no Source): it restarts
        // empty, worker 0 goes on.
        server
            .media()
            .inject_fault(relaycast_sfu::Fault::WorkerPanicOn(1))
            .await?;
        sleep(Duration::from_millis(1500)).await;

        let mut checks = Checks::default();
        let mut watched_the_panicking_worker = false;
        for (i, (viewer, worker)) in viewers.iter().zip(&placed).enumerate() {
            if i == victim || *worker == 1 {
                continue;
            }
            let who = format!("viewer {i} on worker {worker}");
            let rx = viewer.report();
            eprintln!("{who}: {}", rx.summary());
            // Two workers restarting and panicking on two cores: the
            // receiver may drop a datagram, repaired by a NACK (reordered).
            checks.no_video_loss(&who, &rx);
            if *worker == 0 {
                watched_the_panicking_worker = true;
                // The panic's report (a backtrace resolved from debug info)
                // held the panicking worker ~0.4 s when it ran on it.
                let stall = longest_silence(&rx, faulted, Duration::from_secs(1));
                checks.check(stall < Duration::from_millis(250), || {
                    format!("{who}: no video for {stall:?} around the session panic")
                });
            }
            let recent = received_within(viewer, Duration::from_millis(500));
            checks.check(recent > 10, || {
                format!("{who}: only {recent} video packets in the last 0.5 s")
            });
        }
        // Placement alternates (fewest viewers first): worker 0 holds the
        // victim and one more viewer, whose silence is what is measured.
        checks.check(watched_the_panicking_worker, || {
            format!("no other viewer on worker 0 to watch the panic from: {placed:?}")
        });
        checks.check(server.media().is_alive(), || {
            "worker 1 was not restarted".into()
        });
        checks.check(
            server.media().metric_total(|m| &m.worker_restarts) == 1,
            || "one restart expected".into(),
        );

        // The restarted worker takes viewers again, fed by the Source.
        let fresh = Viewer::join(&server, Layer::High).await?;
        fresh.wait_first_keyframe(Duration::from_secs(5)).await?;
        let fresh_worker = workers_of(&server, &[&fresh]).await?[0];
        eprintln!("a new viewer joined worker {fresh_worker} after the restart");

        for viewer in viewers {
            viewer.leave().await;
        }
        fresh.leave().await;
        publisher.stop_and_delete().await?;
        server.stop().await;
        checks.finish();
        Ok(())
    })
    .await;
}
