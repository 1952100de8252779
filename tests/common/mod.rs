//! Harness shared by the end-to-end tests (`live_path`, `publisher_sessions`):
//! a relaycast server on loopback, a WHIP publisher (webrtc-rs, VP8 simulcast
//! h/m/l + Opus, synthetic RTP) and WHEP viewers (webrtc-rs, recvonly).
//! webrtc-rs is an independent WebRTC stack, so the tests check the server
//! against the wire protocol, not against itself.
//!
//! Every frame's first packet carries a tag right after the VP8 frame header
//! (`"RC"`, publisher generation, layer, frame number), so a viewer can tell
//! which publisher connection and which layer a forwarded frame came from even
//! though the server rewrites SSRC, sequence numbers and timestamps.
//!
//! This file owns the test plumbing: the overall deadline, the CPU gate and
//! [`Checks`]; the modules below own the rest.

// Every test binary compiles this whole module but uses only part of it.
#![allow(dead_code)]

pub mod media;
pub mod pinned_track;
pub mod publisher;
pub mod rtc;
pub mod server;
pub mod viewer;

use std::future::Future;
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::time::timeout;

use self::viewer::ViewerReport;

/// Runs a test body with an overall deadline; errors fail the test with their
/// full context chain.
pub async fn run(limit: Duration, body: impl Future<Output = anyhow::Result<()>>) {
    init_tracing();
    match timeout(limit, body).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e:#}"),
        Err(_) => panic!("test did not finish within {limit:?}"),
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The machine has 2 cores: the latency test takes this exclusively, the
/// others share it (and may run in parallel with each other).
static CPU_GATE: RwLock<()> = RwLock::const_new(());

pub async fn shared_gate() -> RwLockReadGuard<'static, ()> {
    CPU_GATE.read().await
}

pub async fn exclusive_gate() -> RwLockWriteGuard<'static, ()> {
    CPU_GATE.write().await
}

/// Collects failed expectations so one run reports all of them.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(message());
        }
    }

    pub fn fail(&mut self, message: String) {
        eprintln!("CHECK FAILED: {message}");
        self.0.push(message);
    }

    pub fn first_video_packet_is_keyframe_start(&mut self, who: &str, rx: &ViewerReport) {
        match rx.video.first() {
            None => self.fail(format!("{who}: no video received ({})", rx.summary())),
            Some(first) => self.check(first.keyframe_start, || {
                format!("{who}: the first video packet is not the start of a keyframe: {first:?}")
            }),
        }
    }

    /// The viewer kept playing when publisher generation 2 took over from
    /// generation 1: it starts on a keyframe `width` wide, nothing of the old
    /// publisher follows, the RTP clock steps forward by at most 10 s, and
    /// video and audio keep flowing. `since` is when the takeover began.
    pub fn continued_on_second_publisher(
        &mut self,
        who: &str,
        rx: &ViewerReport,
        width: u16,
        since: tokio::time::Instant,
    ) {
        let switch = match rx.first_packet_of_generation(2) {
            None => return self.fail(format!("{who}: no video from the second publisher")),
            Some(0) => return self.fail(format!("{who}: no video from the first publisher")),
            Some(switch) => switch,
        };
        let (before, after) = (&rx.video[switch - 1], &rx.video[switch]);
        self.check(after.keyframe_start, || {
            format!(
                "{who}: first packet from the second publisher is not a keyframe start: {after:?}"
            )
        });
        self.check(after.width == Some(width), || {
            format!(
                "{who}: first keyframe from the second publisher is {:?} wide, expected {width}; \
                 frames after the switch as ((generation, layer 0=h/1=m/2=l), count): {:?}",
                after.width,
                rx.generation_layer_runs(switch)
            )
        });
        self.check(
            rx.frame_tags_from(switch).all(|t| t.generation == 2),
            || format!("{who}: frames of the first publisher were forwarded after the second's"),
        );
        let ts_step = after.ts.wrapping_sub(before.ts) as i32;
        self.check(ts_step > 0 && ts_step <= 10 * 90_000, || {
            format!(
                "{who}: RTP timestamp jumps by {ts_step} ticks across the switch (seq {} → {})",
                before.seq, after.seq
            )
        });
        let frames_after = rx.frame_tags_from(switch).count();
        self.check(frames_after >= 30, || {
            format!("{who}: only {frames_after} frames in the 2.5 s after the switch")
        });
        let audio_after = rx.audio.iter().filter(|a| a.generation == Some(2)).count();
        self.check(audio_after > 0, || {
            format!("{who}: no audio from the second publisher")
        });
        eprintln!(
            "{who}: switch→first new keyframe {:?}, ts step {ts_step}, {frames_after} frames \
             and {audio_after} audio packets after, audio seq gaps {}",
            after.at.saturating_duration_since(since),
            rx.audio_seq_gaps()
        );
    }

    pub fn no_video_gaps(&mut self, who: &str, rx: &ViewerReport) {
        let gaps = rx.video_gap_places();
        self.check(gaps.is_empty(), || {
            format!(
                "{who}: {} video sequence gaps (prev → next): {gaps:?}",
                gaps.len()
            )
        });
    }

    /// Every video packet arrived, possibly reordered by a repair (for
    /// runs loaded enough that a debug-built receiver may drop a datagram).
    pub fn no_video_loss(&mut self, who: &str, rx: &ViewerReport) {
        let missing = rx.video_missing();
        self.check(missing == 0, || {
            format!("{who}: {missing} video packets never arrived")
        });
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failed check(s):\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// Nearest-rank percentile.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
