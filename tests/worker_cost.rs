//! The media worker's CPU cost per forwarded packet, measured while a
//! webrtc-rs publisher (3-layer VP8 simulcast + Opus) feeds webrtc-rs
//! viewers of the top layer. The worker thread's own CPU time (procfs, via
//! `/metrics`) divided by the packets it forwarded gives µs per packet, and
//! 1 s ÷ that cost is the rate at which one worker would saturate one core.
//! The figure is printed; in a debug build it is only indicative (run with
//! `--release` for the real number). The assertions are about correctness
//! under that load: every viewer receives contiguous video.

mod common;

use std::time::Duration;

use tokio::time::{sleep, Instant};

use common::publisher::{Publisher, PublisherOptions};
use common::server::{http_client, TestServer};
use common::viewer::{Layer, Viewer};
use common::{exclusive_gate, run, Checks};

const VIEWERS: usize = 8;

async fn metric(server: &TestServer, name: &str) -> anyhow::Result<f64> {
    let text = http_client()
        .get(format!("{}/metrics", server.base))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
        .ok_or_else(|| anyhow::anyhow!("metric {name} missing"))
}

/// (distinct sequence numbers received, numbers missing between the first
/// and the last), unwrapping the 16-bit sequence as it goes.
fn unrecovered(seqs: impl Iterator<Item = u16>) -> (usize, usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut last: Option<i64> = None;
    for seq in seqs {
        let ext = match last {
            None => i64::from(seq),
            Some(l) => l + i64::from(seq.wrapping_sub(l as u16) as i16),
        };
        last = Some(ext);
        seen.insert(ext);
    }
    let span = match (seen.first(), seen.last()) {
        (Some(a), Some(b)) => (b - a + 1) as usize,
        _ => 0,
    };
    (seen.len(), span - seen.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_cost_per_forwarded_packet() {
    let _gate = exclusive_gate().await;
    run(Duration::from_secs(40), async {
        let server = TestServer::start().await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let mut viewers = Vec::new();
        for _ in 0..VIEWERS {
            viewers.push(Viewer::join(&server, Layer::High).await?);
        }
        sleep(Duration::from_secs(2)).await;

        let window_start = Instant::now();
        let cpu0 = metric(&server, "relaycast_media_worker_cpu_seconds_total ").await?;
        let fwd0 = metric(&server, "relaycast_rtp_packets_forwarded_total ").await?;
        let in0 = metric(&server, "relaycast_rtp_packets_in_total ").await?;
        let window = Duration::from_secs(5);
        sleep(window).await;
        let cpu1 = metric(&server, "relaycast_media_worker_cpu_seconds_total ").await?;
        let fwd1 = metric(&server, "relaycast_rtp_packets_forwarded_total ").await?;
        let in1 = metric(&server, "relaycast_rtp_packets_in_total ").await?;

        let forwarded = fwd1 - fwd0;
        let cpu_us = (cpu1 - cpu0) * 1e6;
        let per_packet = cpu_us / forwarded.max(1.0);
        eprintln!(
            "worker cost ({} build): {VIEWERS} viewers, {:.0} packets in/s, {:.0} forwarded/s, \
             worker CPU {:.1}% of a core, {per_packet:.2} µs per forwarded packet \
             (incl. receive, SRTP, send) → one worker saturates a core at ~{:.0} forwarded packets/s",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            (in1 - in0) / window.as_secs_f64(),
            forwarded / window.as_secs_f64(),
            cpu_us / window.as_secs_f64() / 1e4,
            1e6 / per_packet.max(0.01),
        );

        let mut checks = Checks::default();
        checks.check(forwarded > 0.0, || "nothing was forwarded".into());
        for (i, viewer) in viewers.iter().enumerate() {
            let rx = viewer.report();
            let (received, missing) = unrecovered(rx.video.iter().map(|p| p.seq));
            let loss = missing as f64 / (received + missing).max(1) as f64;
            // The measured window only: joining (GOP replays to eight
            // viewers in turn) is not the load this test is about.
            let (w_received, w_missing) = unrecovered(
                rx.video.iter().filter(|p| p.at >= window_start).map(|p| p.seq),
            );
            let w_loss = w_missing as f64 / (w_received + w_missing).max(1) as f64;
            eprintln!(
                "viewer {i}: {received} video packets, {missing} never arrived ({:.2}%); \
                 in the measured window {w_received}, {w_missing} never arrived ({:.2}%)",
                loss * 100.0,
                w_loss * 100.0
            );
            checks.first_video_packet_is_keyframe_start(&format!("viewer {i}"), &rx);
            // The debug-built webrtc-rs viewers, eight of them sharing two
            // cores with the server, can overflow their own receive buffers
            // while catching up on the GOP replay, and webrtc-rs 0.14 drops
            // RTX repairs, so such a loss stays: that is their loss. Once
            // all have joined, what this allows is under 1 % (the live-path
            // tests require zero).
            checks.check(w_loss < 0.01, || {
                format!("viewer {i}: {:.2}% of video in the measured window never arrived", w_loss * 100.0)
            });
            checks.check(rx.last_keyframe_width() == Some(1280), || format!("viewer {i} is not on the top layer"));
        }
        checks.finish();
        for viewer in viewers {
            viewer.leave().await;
        }
        publisher.stop_and_delete().await?;
        server.stop().await;
        Ok(())
    })
    .await;
}
