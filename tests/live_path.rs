//! End-to-end live path over loopback: a WHIP publisher (webrtc-rs, VP8
//! simulcast h/m/l + Opus, synthetic RTP) → relaycast → WHEP viewers
//! (webrtc-rs, recvonly). webrtc-rs is an independent WebRTC stack, so these
//! tests check the server against the wire protocol, not against itself.
//!
//! The tests come first and read as specifications; the harness (server
//! fixture, publisher, viewer, VP8 bit-twiddling) follows below them.
//!
//! Every frame's first packet carries a tag right after the VP8 frame header
//! (`"RC"`, publisher generation, layer, frame number), so a viewer can tell
//! which publisher connection and which layer a forwarded frame came from even
//! though the server rewrites SSRC, sequence numbers and timestamps.
//!
//! Debug a failure with `RUST_LOG=debug cargo test --test live_path -- --nocapture`.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use bytes::Bytes;
use tokio::sync::{watch, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::{RTCPFeedback, RTCRtpTransceiverInit};
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalContext, TrackLocalWriter};
use webrtc::track::track_remote::TrackRemote;

// ===========================================================================
// The tests
// ===========================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_receive_keyframe_first_contiguous_video_and_audio() {
    let _gate = shared_gate().await;
    run(Duration::from_secs(30), async {
        let server = TestServer::start().await?;
        // One viewer is waiting before the broadcast starts, two join it live.
        let early = Viewer::join(&server, Layer::Auto).await?;
        let publisher = Publisher::start(&server, PublisherOptions::generation(1)).await?;
        let late_a = Viewer::join(&server, Layer::Auto).await?;
        let late_b = Viewer::join(&server, Layer::Auto).await?;

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
                    "{who}: an auto viewer on loopback should end up on the 1280-wide layer \
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
        let viewer = Viewer::join(&server, Layer::Auto).await?;
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
            let viewer = Viewer::join(&server, Layer::Auto).await?;
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

/// Viewers (auto and low) watch publisher `first` for 2 s; it DELETEs its
/// WHIP session and closes; publisher `second` connects and sends for 2.5 s.
/// The viewers' PeerConnections are never renegotiated.
async fn reconnect_scenario(
    first: PublisherOptions,
    second: PublisherOptions,
) -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let auto = Viewer::join(&server, Layer::Auto).await?;
    let low = Viewer::join(&server, Layer::Low).await?;

    let publisher = Publisher::start(&server, first).await?;
    sleep(Duration::from_secs(2)).await;
    eprintln!("first publisher: {}", publisher.stats_line());
    publisher.stop_and_delete().await?;
    let reconnected_at = Instant::now();
    let publisher = Publisher::start(&server, second).await?;
    sleep(Duration::from_millis(2500)).await;

    let mut checks = Checks::default();
    for (name, viewer, width) in [("auto", &auto, 1280), ("low", &low, 320)] {
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

        let Some(switch) = rx.first_packet_of_generation(2) else {
            checks.fail(format!("{who}: no video from the reconnected publisher"));
            continue;
        };
        let (before, after) = (&rx.video[switch - 1], &rx.video[switch]);
        checks.check(after.keyframe_start, || {
            format!("{who}: first packet from the new publisher is not a keyframe start: {after:?}")
        });
        checks.check(after.width == Some(width), || {
            format!(
                "{who}: first keyframe after the reconnect is {:?} wide, expected {width}; \
                 frames after the reconnect as ((generation, layer 0=h/1=m/2=l), count): {:?}",
                after.width,
                rx.generation_layer_runs(switch)
            )
        });
        checks.check(
            rx.frame_tags_from(switch).all(|t| t.generation == 2),
            || format!("{who}: frames of the old publisher were forwarded after the new one's"),
        );
        let ts_step = after.ts.wrapping_sub(before.ts) as i32;
        checks.check(ts_step > 0 && ts_step <= 10 * 90_000, || {
            format!(
                "{who}: RTP timestamp jumps by {ts_step} ticks across the reconnect \
                 (seq {} → {})",
                before.seq, after.seq
            )
        });
        let frames_after = rx.frame_tags_from(switch).count();
        checks.check(frames_after >= 30, || {
            format!("{who}: only {frames_after} frames in the 2.5 s after the reconnect")
        });
        let audio_after = rx.audio.iter().filter(|a| a.generation == Some(2)).count();
        checks.check(audio_after > 0, || {
            format!("{who}: no audio after the reconnect")
        });
        eprintln!(
            "{who}: reconnect→first new keyframe {:?}, ts step {ts_step}, {frames_after} frames \
             and {audio_after} audio packets after, audio seq gaps {}",
            after.at.saturating_duration_since(reconnected_at),
            rx.audio_seq_gaps()
        );
    }
    eprintln!("second publisher: {}", publisher.stats_line());

    auto.leave().await;
    low.leave().await;
    publisher.stop_and_delete().await?;
    server.stop().await;
    checks.finish();
    Ok(())
}

// ===========================================================================
// Test plumbing
// ===========================================================================

/// Runs a test body with an overall deadline; errors fail the test with their
/// full context chain.
async fn run(limit: Duration, body: impl Future<Output = anyhow::Result<()>>) {
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

async fn shared_gate() -> RwLockReadGuard<'static, ()> {
    CPU_GATE.read().await
}

async fn exclusive_gate() -> RwLockWriteGuard<'static, ()> {
    CPU_GATE.write().await
}

/// Collects failed expectations so one run reports all of them.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(message());
        }
    }

    fn fail(&mut self, message: String) {
        eprintln!("CHECK FAILED: {message}");
        self.0.push(message);
    }

    fn first_video_packet_is_keyframe_start(&mut self, who: &str, rx: &ViewerReport) {
        match rx.video.first() {
            None => self.fail(format!("{who}: no video received ({})", rx.summary())),
            Some(first) => self.check(first.keyframe_start, || {
                format!("{who}: the first video packet is not the start of a keyframe: {first:?}")
            }),
        }
    }

    fn no_video_gaps(&mut self, who: &str, rx: &ViewerReport) {
        let gaps = rx.video_gap_places();
        self.check(gaps.is_empty(), || {
            format!(
                "{who}: {} video sequence gaps (prev → next): {gaps:?}",
                gaps.len()
            )
        });
    }

    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failed check(s):\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// Nearest-rank percentile.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// ===========================================================================
// Server fixture
// ===========================================================================

const STREAM: &str = "live";
const STREAM_KEY: &str = "testsecret123";

struct TestServer {
    server: relaycast::Server,
    base: String,
    _dir: TempDir,
}

impl TestServer {
    async fn start() -> anyhow::Result<TestServer> {
        let dir = TempDir::new()?;
        let mut config = relaycast::Config {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            udp_port: 0,
            public_ip: Some("127.0.0.1".parse().unwrap()),
            data_dir: dir.0.clone(),
            ..Default::default()
        };
        config.stream_keys.insert(STREAM.into(), STREAM_KEY.into());
        let server = relaycast::start(config)
            .await
            .context("starting relaycast")?;
        let base = format!("http://{}", server.http_addr);
        Ok(TestServer {
            server,
            base,
            _dir: dir,
        })
    }

    async fn stop(self) {
        if timeout(Duration::from_secs(10), self.server.shutdown())
            .await
            .is_err()
        {
            panic!("server shutdown took more than 10 s");
        }
    }
}

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "relaycast-live-path-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy() // loopback only, whatever the environment says
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

/// POSTs an SDP offer; returns (absolute resource URL, answer SDP).
async fn post_offer(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    offer: String,
) -> anyhow::Result<(String, String)> {
    let mut request = http
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/sdp")
        .body(offer);
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let location = response
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of POST {path}"))?;
    ensure!(
        status.as_u16() == 201,
        "POST {path}: expected 201 Created, got {status}: {body}"
    );
    let location = location.ok_or_else(|| anyhow!("POST {path}: 201 without a Location header"))?;
    ensure!(
        location.starts_with('/'),
        "POST {path}: Location {location:?} is not an absolute path"
    );
    Ok((format!("{base}{location}"), body))
}

// ===========================================================================
// webrtc-rs setup shared by publisher and viewer
// ===========================================================================

/// A webrtc-rs API that only gathers a UDP/IPv4 host candidate on loopback.
fn loopback_api(media: MediaEngine, registry: Registry) -> API {
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    settings.set_network_types(vec![NetworkType::Udp4]);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build()
}

/// Non-trickle: creates the offer, waits for ICE gathering to complete and
/// returns the full local description.
async fn gathered_offer(pc: &RTCPeerConnection) -> anyhow::Result<String> {
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    timeout(Duration::from_secs(5), gathered.recv())
        .await
        .context("ICE gathering did not complete within 5 s")?;
    Ok(pc
        .local_description()
        .await
        .ok_or_else(|| anyhow!("no local description"))?
        .sdp)
}

/// A watch of the PeerConnection state, plus the moment it became connected.
fn watch_state(
    pc: &RTCPeerConnection,
    connected_at: Arc<Mutex<Option<Instant>>>,
) -> watch::Receiver<RTCPeerConnectionState> {
    let (tx, rx) = watch::channel(RTCPeerConnectionState::New);
    pc.on_peer_connection_state_change(Box::new(move |state| {
        if state == RTCPeerConnectionState::Connected {
            connected_at
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
        }
        let _ = tx.send(state);
        Box::pin(async {})
    }));
    rx
}

async fn wait_connected(
    mut state: watch::Receiver<RTCPeerConnectionState>,
    who: &str,
) -> anyhow::Result<()> {
    let result = timeout(
        Duration::from_secs(10),
        state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        }),
    )
    .await
    .with_context(|| format!("{who}: PeerConnection not connected within 10 s"))?
    .map(|s| *s);
    match result {
        Ok(RTCPeerConnectionState::Connected) => Ok(()),
        Ok(other) => bail!("{who}: PeerConnection went {other} instead of connected"),
        Err(_) => bail!("{who}: PeerConnection state watch closed"),
    }
}

async fn close_pc(pc: &RTCPeerConnection) {
    let _ = timeout(Duration::from_secs(5), pc.close()).await;
}

// ===========================================================================
// Publisher
// ===========================================================================

struct LayerSpec {
    rid: &'static str,
    width: u16,
    height: u16,
    bitrate_bps: u32,
}

/// Top to bottom; the index is what frame tags call "layer".
const LAYERS: [LayerSpec; 3] = [
    LayerSpec {
        rid: "h",
        width: 1280,
        height: 720,
        bitrate_bps: 2_500_000,
    },
    LayerSpec {
        rid: "m",
        width: 640,
        height: 360,
        bitrate_bps: 500_000,
    },
    LayerSpec {
        rid: "l",
        width: 320,
        height: 180,
        bitrate_bps: 150_000,
    },
];
const LOW_LAYER_INDEX: u8 = 2;

const FPS: u32 = 30;
const KEYFRAME_EVERY: u64 = FPS as u64; // one keyframe per second
const FRAME_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / FPS as u64);
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const MAX_RTP_PAYLOAD: usize = 1100;
const VP8_DESCRIPTOR_LEN: usize = 4;
/// Upper bound on how long a publisher sends, whatever the test does.
const MAX_PUBLISH: Duration = Duration::from_secs(60);

impl LayerSpec {
    /// Keyframes are 3× an average frame, delta frames make up the rest, so
    /// the layer averages `bitrate_bps`.
    fn frame_bytes(&self, keyframe: bool) -> usize {
        let average = (self.bitrate_bps / 8 / FPS) as usize;
        if keyframe {
            3 * average
        } else {
            average * 27 / 29
        }
    }
}

/// SSRCs the publisher should put on the wire instead of webrtc-rs's random ones.
#[derive(Clone, Copy, Debug)]
struct PinnedSsrcs {
    video: [u32; 3],
    audio: u32,
}

impl PinnedSsrcs {
    fn random() -> PinnedSsrcs {
        PinnedSsrcs {
            video: [rand::random(), rand::random(), rand::random()],
            audio: rand::random(),
        }
    }
}

struct PublisherOptions {
    /// Written into every frame tag, to tell publisher connections apart.
    generation: u8,
    ssrcs: Option<PinnedSsrcs>,
}

impl PublisherOptions {
    fn generation(generation: u8) -> PublisherOptions {
        PublisherOptions {
            generation,
            ssrcs: None,
        }
    }

    fn with_ssrcs(self, ssrcs: PinnedSsrcs) -> PublisherOptions {
        PublisherOptions {
            ssrcs: Some(ssrcs),
            ..self
        }
    }
}

#[derive(Default, Debug)]
struct PublisherStats {
    frames: [u64; 3],
    keyframes: [u64; 3],
    video_packets: [u64; 3],
    audio_packets: u64,
    write_errors: u64,
    last_write_error: Option<String>,
    plis: u64,
}

struct Publisher {
    pc: Arc<RTCPeerConnection>,
    http: reqwest::Client,
    resource: String,
    /// When media started: frame n goes out at `media_start + n × 1/30 s`.
    media_start: Instant,
    stop: watch::Sender<bool>,
    media: JoinHandle<()>,
    stats: Arc<Mutex<PublisherStats>>,
}

/// Either webrtc-rs's stock track (random SSRC) or ours (pinned SSRC).
enum MediaTrack {
    Stock(Arc<TrackLocalStaticRTP>),
    Pinned(Arc<PinnedSsrcTrack>),
}

impl MediaTrack {
    fn new(
        codec: RTCRtpCodecCapability,
        id: &str,
        rid: Option<&str>,
        ssrc: Option<u32>,
    ) -> MediaTrack {
        let stream_id = "relaycast-test".to_owned();
        match ssrc {
            Some(ssrc) => MediaTrack::Pinned(Arc::new(PinnedSsrcTrack::new(
                codec,
                id.to_owned(),
                rid.map(str::to_owned),
                stream_id,
                ssrc,
            ))),
            None => MediaTrack::Stock(Arc::new(match rid {
                Some(rid) => TrackLocalStaticRTP::new_with_rid(
                    codec,
                    id.to_owned(),
                    rid.to_owned(),
                    stream_id,
                ),
                None => TrackLocalStaticRTP::new(codec, id.to_owned(), stream_id),
            })),
        }
    }

    fn as_track_local(&self) -> Arc<dyn TrackLocal + Send + Sync> {
        match self {
            MediaTrack::Stock(t) => t.clone(),
            MediaTrack::Pinned(t) => t.clone(),
        }
    }

    async fn write(&self, packet: &webrtc::rtp::packet::Packet) -> webrtc::error::Result<usize> {
        match self {
            MediaTrack::Stock(t) => t.write_rtp(packet).await,
            MediaTrack::Pinned(t) => t.write_rtp(packet).await,
        }
    }
}

fn vp8_capability() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            RTCPFeedback {
                typ: "goog-remb".to_owned(),
                parameter: String::new(),
            },
            RTCPFeedback {
                typ: "ccm".to_owned(),
                parameter: "fir".to_owned(),
            },
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: String::new(),
            },
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: "pli".to_owned(),
            },
        ],
    }
}

fn opus_capability() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

impl Publisher {
    /// Connects over WHIP (non-trickle), waits for the PeerConnection to be
    /// connected, then starts sending 3 VP8 layers + Opus.
    async fn start(server: &TestServer, options: PublisherOptions) -> anyhow::Result<Publisher> {
        // Like an encoder: offer one video and one audio codec only.
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                capability: vp8_capability(),
                payload_type: 96,
                ..Default::default()
            },
            RTPCodecType::Video,
        )?;
        media.register_codec(
            RTCRtpCodecParameters {
                capability: opus_capability(),
                payload_type: 111,
                ..Default::default()
            },
            RTPCodecType::Audio,
        )?;
        // mid on both sections, rid on video: so layers can be told apart on the wire.
        for (uri, kind) in [
            (webrtc::sdp::extmap::SDES_MID_URI, RTPCodecType::Video),
            (webrtc::sdp::extmap::SDES_MID_URI, RTPCodecType::Audio),
            (
                webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI,
                RTPCodecType::Video,
            ),
        ] {
            media.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: uri.to_owned(),
                },
                kind,
                None,
            )?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let api = loopback_api(media, registry);
        let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);

        let connected_at = Arc::new(Mutex::new(None));
        let state = watch_state(&pc, connected_at);

        let sendonly = || {
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                send_encodings: vec![],
            })
        };
        let video: Vec<MediaTrack> = LAYERS
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                MediaTrack::new(
                    vp8_capability(),
                    "video",
                    Some(layer.rid),
                    options.ssrcs.map(|s| s.video[i]),
                )
            })
            .collect();
        let video_sender = pc
            .add_transceiver_from_track(video[0].as_track_local(), sendonly())
            .await?
            .sender()
            .await;
        for layer in &video[1..] {
            video_sender.add_encoding(layer.as_track_local()).await?;
        }
        let audio = MediaTrack::new(
            opus_capability(),
            "audio",
            None,
            options.ssrcs.map(|s| s.audio),
        );
        let audio_sender = pc
            .add_transceiver_from_track(audio.as_track_local(), sendonly())
            .await?
            .sender()
            .await;

        let mut offer = gathered_offer(&pc).await.context("publisher offer")?;
        ensure!(
            offer.contains("a=simulcast:send h;m;l") && offer.contains("a=rid:h send"),
            "webrtc-rs did not produce a simulcast offer:\n{offer}"
        );
        if let Some(pinned) = options.ssrcs {
            // webrtc-rs announced its own random SSRCs; announce what we send.
            offer = announce_pinned_ssrcs(offer, &video_sender, &audio_sender, pinned).await;
        }

        let http = http_client();
        let path = format!("/whip/{STREAM}");
        let (resource, answer) =
            post_offer(&http, &server.base, &path, Some(STREAM_KEY), offer).await?;
        pc.set_remote_description(RTCSessionDescription::answer(answer)?)
            .await
            .context("applying the WHIP answer")?;
        wait_connected(state, "publisher").await?;

        let stats = Arc::new(Mutex::new(PublisherStats::default()));
        count_plis(&video_sender, &stats);

        let (stop, stop_rx) = watch::channel(false);
        let media_start = Instant::now();
        let media = tokio::spawn(send_media(
            video,
            audio,
            options.generation,
            media_start,
            stop_rx,
            stats.clone(),
        ));
        Ok(Publisher {
            pc,
            http,
            resource,
            media_start,
            stop,
            media,
            stats,
        })
    }

    /// The send time of the first keyframe at or after `media_start + at_least`.
    fn keyframe_time_at_or_after(&self, at_least: Duration) -> Instant {
        let gop = FRAME_INTERVAL * KEYFRAME_EVERY as u32;
        let gops = at_least.as_nanos().div_ceil(gop.as_nanos()) as u32;
        self.media_start + gop * gops
    }

    fn frame_number_at(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.media_start).as_nanos() / FRAME_INTERVAL.as_nanos()
    }

    fn stats_line(&self) -> String {
        let s = self.stats.lock().unwrap();
        format!(
            "frames {:?}, keyframes {:?}, video packets {:?}, audio packets {}, PLIs received {}, \
             write errors {} ({:?})",
            s.frames,
            s.keyframes,
            s.video_packets,
            s.audio_packets,
            s.plis,
            s.write_errors,
            s.last_write_error
        )
    }

    /// Stops media after the frame in flight, DELETEs the WHIP session
    /// (expects 200) and closes the PeerConnection.
    async fn stop_and_delete(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        timeout(Duration::from_secs(5), self.media)
            .await
            .context("publisher media task did not stop within 5 s")??;
        let response = self
            .http
            .delete(&self.resource)
            .header("Authorization", format!("Bearer {STREAM_KEY}"))
            .send()
            .await
            .context("DELETE of the WHIP session")?;
        let status = response.status();
        close_pc(&self.pc).await;
        ensure!(
            status.as_u16() == 200,
            "DELETE {}: expected 200, got {status}",
            self.resource
        );
        Ok(())
    }
}

/// Rewrites webrtc-rs's `a=ssrc:` lines to the SSRCs we actually send.
async fn announce_pinned_ssrcs(
    mut offer: String,
    video: &RTCRtpSender,
    audio: &RTCRtpSender,
    pinned: PinnedSsrcs,
) -> String {
    let mut replace = |from: u32, to: u32| {
        offer = offer.replace(&format!("a=ssrc:{from} "), &format!("a=ssrc:{to} "))
    };
    for encoding in video.get_parameters().await.encodings {
        let layer = LAYERS
            .iter()
            .position(|l| l.rid == encoding.rid.as_str())
            .expect("known rid");
        replace(encoding.ssrc, pinned.video[layer]);
    }
    for encoding in audio.get_parameters().await.encodings {
        replace(encoding.ssrc, pinned.audio);
    }
    offer
}

/// Drains the RTCP of each simulcast encoding (webrtc-rs's interceptors only
/// see RTCP that someone reads) and counts PLIs. The synthetic encoder does
/// not react to them: keyframes come once a second regardless. (With pinned
/// SSRCs the server's RTCP targets SSRCs webrtc-rs doesn't know: no counts.)
fn count_plis(sender: &Arc<RTCRtpSender>, stats: &Arc<Mutex<PublisherStats>>) {
    for layer in &LAYERS {
        let (sender, stats) = (sender.clone(), stats.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + MAX_PUBLISH;
            while let Ok(Ok((packets, _))) =
                tokio::time::timeout_at(deadline, sender.read_rtcp_simulcast(layer.rid)).await
            {
                let plis = packets
                    .iter()
                    .filter(|p| p.as_any().downcast_ref::<PictureLossIndication>().is_some())
                    .count();
                stats.lock().unwrap().plis += plis as u64;
            }
        });
    }
}

struct LayerState {
    seq: u16,
    ts_base: u32,
    picture_id: u16,
}

/// Paces 30 fps × 3 layers of VP8 and 50 packets/s of Opus until stopped.
async fn send_media(
    video: Vec<MediaTrack>,
    audio: MediaTrack,
    generation: u8,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Mutex<PublisherStats>>,
) {
    // A fresh RTP session: random sequence numbers, timestamps, picture ids.
    let mut layers: Vec<LayerState> = (0..LAYERS.len())
        .map(|_| LayerState {
            seq: rand::random(),
            ts_base: rand::random(),
            picture_id: rand::random::<u16>() & 0x7fff,
        })
        .collect();
    let (mut audio_seq, audio_ts_base) = (rand::random::<u16>(), rand::random::<u32>());
    let (mut frame_no, mut audio_no) = (0u64, 0u64);

    let record = |result: webrtc::error::Result<usize>| {
        if let Err(e) = result {
            let mut s = stats.lock().unwrap();
            s.write_errors += 1;
            s.last_write_error = Some(e.to_string());
        }
    };

    loop {
        let next_video = start + FRAME_INTERVAL * frame_no as u32;
        let next_audio = start + AUDIO_INTERVAL * audio_no as u32;
        let next = next_video.min(next_audio);
        if next > start + MAX_PUBLISH {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = sleep_until(next) => {}
        }

        if next_video <= next_audio {
            let keyframe = frame_no % KEYFRAME_EVERY == 0;
            for (index, (spec, state)) in LAYERS.iter().zip(layers.iter_mut()).enumerate() {
                let tag = FrameTag {
                    generation,
                    layer: index as u8,
                    frame_no: frame_no as u32,
                };
                let frame = vp8_frame(spec, keyframe, tag);
                let payloads = vp8_payloads(&frame, state.picture_id);
                let last = payloads.len() - 1;
                for (i, payload) in payloads.into_iter().enumerate() {
                    let packet = rtp_packet(
                        state.seq,
                        state.ts_base.wrapping_add(frame_no as u32 * (90_000 / FPS)),
                        i == last,
                        payload,
                    );
                    state.seq = state.seq.wrapping_add(1);
                    record(video[index].write(&packet).await);
                }
                state.picture_id = (state.picture_id + 1) & 0x7fff;
                let mut s = stats.lock().unwrap();
                s.frames[index] += 1;
                s.keyframes[index] += keyframe as u64;
                s.video_packets[index] += (last + 1) as u64;
            }
            frame_no += 1;
        } else {
            let packet = rtp_packet(
                audio_seq,
                audio_ts_base.wrapping_add(audio_no as u32 * 960),
                false,
                opus_payload(generation, audio_no as u32),
            );
            audio_seq = audio_seq.wrapping_add(1);
            record(audio.write(&packet).await);
            stats.lock().unwrap().audio_packets += 1;
            audio_no += 1;
        }
    }
}

fn rtp_packet(seq: u16, ts: u32, marker: bool, payload: Bytes) -> webrtc::rtp::packet::Packet {
    webrtc::rtp::packet::Packet {
        header: webrtc::rtp::header::Header {
            version: 2,
            marker,
            payload_type: 96, // replaced by the negotiated one on write
            sequence_number: seq,
            timestamp: ts,
            ..Default::default()
        },
        payload,
    }
}

/// A TrackLocal that writes with an SSRC of our choosing (webrtc-rs 0.14
/// draws every sender/encoding SSRC at random in `add_encoding_internal` and
/// `TrackLocalStaticRTP` stamps that SSRC on every packet; there is no API to
/// choose it). Mirrors what `TrackLocalStaticRTP::bind` does otherwise: the
/// negotiated payload type plus the mid and rid header extensions.
#[derive(Debug)]
struct PinnedSsrcTrack {
    codec: RTCRtpCodecCapability,
    id: String,
    rid: Option<String>,
    stream_id: String,
    ssrc: u32,
    binding: Mutex<Option<PinnedBinding>>,
}

#[derive(Debug, Clone)]
struct PinnedBinding {
    context_id: String,
    payload_type: u8,
    extensions: Vec<(u8, Bytes)>,
    writer: Arc<dyn TrackLocalWriter + Send + Sync>,
}

impl PinnedSsrcTrack {
    fn new(
        codec: RTCRtpCodecCapability,
        id: String,
        rid: Option<String>,
        stream_id: String,
        ssrc: u32,
    ) -> Self {
        PinnedSsrcTrack {
            codec,
            id,
            rid,
            stream_id,
            ssrc,
            binding: Mutex::new(None),
        }
    }

    async fn write_rtp(
        &self,
        packet: &webrtc::rtp::packet::Packet,
    ) -> webrtc::error::Result<usize> {
        let Some(binding) = self.binding.lock().unwrap().clone() else {
            return Ok(0);
        };
        let mut packet = packet.clone();
        packet.header.ssrc = self.ssrc;
        packet.header.payload_type = binding.payload_type;
        for (id, value) in &binding.extensions {
            packet.header.set_extension(*id, value.clone())?;
        }
        binding.writer.write_rtp(&packet).await
    }

    fn bind_now(
        &self,
        context: &TrackLocalContext,
    ) -> webrtc::error::Result<RTCRtpCodecParameters> {
        let codec = context
            .codec_parameters()
            .iter()
            .find(|c| {
                c.capability
                    .mime_type
                    .eq_ignore_ascii_case(&self.codec.mime_type)
            })
            .cloned()
            .ok_or(webrtc::Error::ErrUnsupportedCodec)?;
        let extension_id = |uri: &str| {
            context
                .header_extensions()
                .iter()
                .find(|e| e.uri == uri)
                .map(|e| e.id as u8)
        };
        let mut extensions = Vec::new();
        if let (Some(id), Some(mid)) = (
            extension_id(webrtc::sdp::extmap::SDES_MID_URI),
            context.mid(),
        ) {
            extensions.push((id, Bytes::copy_from_slice(mid.as_bytes())));
        }
        if let (Some(id), Some(rid)) = (
            extension_id(webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI),
            &self.rid,
        ) {
            extensions.push((id, Bytes::copy_from_slice(rid.as_bytes())));
        }
        *self.binding.lock().unwrap() = Some(PinnedBinding {
            context_id: context.id(),
            payload_type: codec.payload_type,
            extensions,
            writer: context.write_stream(),
        });
        Ok(codec)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// `TrackLocal` is an `#[async_trait]` trait; this is its desugared form (the
// `async-trait` crate is not a dev-dependency).
impl TrackLocal for PinnedSsrcTrack {
    fn bind<'life0, 'life1, 'async_trait>(
        &'life0 self,
        t: &'life1 TrackLocalContext,
    ) -> BoxFuture<'async_trait, webrtc::error::Result<RTCRtpCodecParameters>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.bind_now(t) })
    }

    fn unbind<'life0, 'life1, 'async_trait>(
        &'life0 self,
        t: &'life1 TrackLocalContext,
    ) -> BoxFuture<'async_trait, webrtc::error::Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let mut binding = self.binding.lock().unwrap();
            match binding.as_ref() {
                Some(b) if b.context_id == t.id() => {
                    *binding = None;
                    Ok(())
                }
                _ => Err(webrtc::Error::ErrUnbindFailed),
            }
        })
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn rid(&self) -> Option<&str> {
        self.rid.as_deref()
    }

    fn stream_id(&self) -> &str {
        &self.stream_id
    }

    fn kind(&self) -> RTPCodecType {
        if self.codec.mime_type.starts_with("audio/") {
            RTPCodecType::Audio
        } else {
            RTPCodecType::Video
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ===========================================================================
// Synthetic VP8 and Opus
// ===========================================================================

/// Identifies a frame end to end, whatever the server rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameTag {
    generation: u8,
    layer: u8,
    frame_no: u32,
}

const TAG_MAGIC: &[u8; 2] = b"RC";

/// A VP8 frame: the 3-byte frame tag (key-frame bit 0 = keyframe,
/// show_frame = 1), for keyframes the start code and 16-bit little-endian
/// width/height, then our tag, then filler.
fn vp8_frame(spec: &LayerSpec, keyframe: bool, tag: FrameTag) -> Vec<u8> {
    let size = spec.frame_bytes(keyframe);
    let first_partition_size = (size as u32 / 4).min(0x7_ffff);
    // Bit 0: P (0 = keyframe); bits 1-3: version 0; bit 4: show_frame.
    let frame_tag: u32 = u32::from(!keyframe) | (1 << 4) | (first_partition_size << 5);
    let mut frame = Vec::with_capacity(size);
    frame.extend_from_slice(&frame_tag.to_le_bytes()[..3]);
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&spec.width.to_le_bytes());
        frame.extend_from_slice(&spec.height.to_le_bytes());
    }
    frame.extend_from_slice(TAG_MAGIC);
    frame.push(tag.generation);
    frame.push(tag.layer);
    frame.extend_from_slice(&tag.frame_no.to_be_bytes());
    let mut filler = tag.frame_no.wrapping_mul(2_654_435_761);
    while frame.len() < size {
        filler = filler.rotate_left(5) ^ 0x9e37_79b9;
        frame.push(filler as u8);
    }
    frame
}

/// RTP payloads of one frame, each ≤ 1100 bytes: a VP8 payload descriptor
/// (X=1, S on the first packet, partition index 0, I=1 with a 15-bit
/// PictureID) followed by a slice of the frame.
fn vp8_payloads(frame: &[u8], picture_id: u16) -> Vec<Bytes> {
    frame
        .chunks(MAX_RTP_PAYLOAD - VP8_DESCRIPTOR_LEN)
        .enumerate()
        .map(|(i, chunk)| {
            let mut payload = Vec::with_capacity(VP8_DESCRIPTOR_LEN + chunk.len());
            payload.push(if i == 0 { 0x90 } else { 0x80 }); // X, S, PID=0
            payload.push(0x80); // I
            payload.push(0x80 | (picture_id >> 8) as u8); // M=1: 15-bit PictureID
            payload.push(picture_id as u8);
            payload.extend_from_slice(chunk);
            Bytes::from(payload)
        })
        .collect()
}

/// ~100 bytes: a TOC byte (CELT fullband 20 ms, mono, one frame), then
/// "A", the publisher generation and a counter, then filler.
fn opus_payload(generation: u8, n: u32) -> Bytes {
    let mut payload = vec![0xf8, b'A', generation];
    payload.extend_from_slice(&n.to_be_bytes());
    payload.resize(100, 0x55);
    Bytes::from(payload)
}

/// What the first packet of a VP8 frame tells (None for other packets).
#[derive(Debug)]
struct Vp8FrameStart {
    keyframe: bool,
    width: Option<u16>,
    tag: Option<FrameTag>,
}

/// Parses the VP8 payload descriptor (RFC 7741 §4.2) and, on the first
/// packet of partition 0, the VP8 payload header (§4.3) and keyframe header.
fn parse_vp8(payload: &[u8]) -> Option<Vp8FrameStart> {
    let first = *payload.first()?;
    let (extended, start, partition) = (first & 0x80 != 0, first & 0x10 != 0, first & 0x07);
    let mut at = 1;
    if extended {
        let x = *payload.get(1)?;
        at = 2;
        if x & 0x80 != 0 {
            at += if *payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    if !start || partition != 0 {
        return None;
    }
    let frame = payload.get(at..)?;
    let keyframe = frame.first()? & 0x01 == 0;
    let (width, rest) = if keyframe {
        if frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
            return Some(Vp8FrameStart {
                keyframe,
                width: None,
                tag: None,
            });
        }
        let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
        (Some(width), frame.get(10..))
    } else {
        (None, frame.get(3..))
    };
    let tag = rest
        .filter(|r| r.len() >= 8 && &r[..2] == TAG_MAGIC)
        .map(|r| FrameTag {
            generation: r[2],
            layer: r[3],
            frame_no: u32::from_be_bytes([r[4], r[5], r[6], r[7]]),
        });
    Some(Vp8FrameStart {
        keyframe,
        width,
        tag,
    })
}

// ===========================================================================
// Viewer
// ===========================================================================

#[derive(Clone, Copy, Debug)]
enum Layer {
    Auto,
    Low,
}

impl Layer {
    fn query(self) -> &'static str {
        match self {
            Layer::Auto => "",
            Layer::Low => "?layer=low",
        }
    }
}

#[derive(Clone, Debug)]
struct VideoPacket {
    at: Instant,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    frame_start: bool,
    /// Descriptor S=1, partition 0, payload header P=0.
    keyframe_start: bool,
    width: Option<u16>,
    tag: Option<FrameTag>,
}

#[derive(Clone, Debug)]
struct AudioPacket {
    seq: u16,
    generation: Option<u8>,
}

/// Everything a viewer received; `Viewer::report` hands out a copy.
#[derive(Clone, Debug, Default)]
struct ViewerReport {
    posted_at: Option<Instant>,
    answered_at: Option<Instant>,
    connected_at: Option<Instant>,
    video_tracks: u32,
    audio_tracks: u32,
    video_codec: String,
    video: Vec<VideoPacket>,
    audio: Vec<AudioPacket>,
}

struct Viewer {
    pc: Arc<RTCPeerConnection>,
    http: reqwest::Client,
    resource: String,
    report: Arc<Mutex<ViewerReport>>,
    connected_at: Arc<Mutex<Option<Instant>>>,
}

/// Time to first keyframe of one join.
struct JoinLatency {
    post_to_keyframe: Duration,
    /// POST sent → 201 + answer received.
    post_to_answer: Duration,
    /// Answer applied → ICE + DTLS done (webrtc-rs paces ICE checks every 200 ms).
    answer_to_connected: Duration,
    connected_to_keyframe: Duration,
}

impl Viewer {
    /// WHEP: recvonly audio + video, full offer after gathering, POST, answer.
    async fn join(server: &TestServer, layer: Layer) -> anyhow::Result<Viewer> {
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
            media.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: webrtc::sdp::extmap::SDES_MID_URI.to_owned(),
                },
                kind,
                None,
            )?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let api = loopback_api(media, registry);
        let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
        let report = Arc::new(Mutex::new(ViewerReport::default()));

        let connected_at = Arc::new(Mutex::new(None));
        let _state = watch_state(&pc, connected_at.clone());
        {
            let report = report.clone();
            pc.on_track(Box::new(move |track, _, _| {
                tokio::spawn(read_track(track, report.clone()));
                Box::pin(async {})
            }));
        }
        for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    send_encodings: vec![],
                }),
            )
            .await?;
        }

        let offer = gathered_offer(&pc).await.context("viewer offer")?;
        let http = http_client();
        let path = format!("/whep/{STREAM}{}", layer.query());
        let posted_at = Instant::now();
        report.lock().unwrap().posted_at = Some(posted_at);
        let (resource, answer) = post_offer(&http, &server.base, &path, None, offer).await?;
        report.lock().unwrap().answered_at = Some(Instant::now());
        pc.set_remote_description(RTCSessionDescription::answer(answer)?)
            .await
            .context("applying the WHEP answer")?;
        Ok(Viewer {
            pc,
            http,
            resource,
            report,
            connected_at,
        })
    }

    /// A copy of everything received so far.
    fn report(&self) -> ViewerReport {
        let mut report = self.report.lock().unwrap().clone();
        report.connected_at = *self.connected_at.lock().unwrap();
        report
    }

    /// Waits (bounded) for the first keyframe packet and the connected state.
    async fn wait_first_keyframe(&self, limit: Duration) -> anyhow::Result<JoinLatency> {
        let deadline = Instant::now() + limit;
        loop {
            let report = self.report();
            if let (Some(posted), Some(answered), Some(connected), Some(keyframe)) = (
                report.posted_at,
                report.answered_at,
                report.connected_at,
                report.first_keyframe_at(),
            ) {
                return Ok(JoinLatency {
                    post_to_keyframe: keyframe.saturating_duration_since(posted),
                    post_to_answer: answered.saturating_duration_since(posted),
                    answer_to_connected: connected.saturating_duration_since(answered),
                    // The first packets may be read before the state handler ran.
                    connected_to_keyframe: keyframe.saturating_duration_since(connected),
                });
            }
            if Instant::now() >= deadline {
                bail!(
                    "no keyframe within {limit:?} of joining (connected: {}; {})",
                    report.connected_at.is_some(),
                    report.summary()
                );
            }
            sleep(Duration::from_millis(2)).await;
        }
    }

    /// DELETEs the WHEP session (status not checked) and closes.
    async fn leave(self) {
        let _ = self.http.delete(&self.resource).send().await;
        close_pc(&self.pc).await;
    }
}

/// Records every RTP packet of a remote track until it ends (bounded).
async fn read_track(track: Arc<TrackRemote>, report: Arc<Mutex<ViewerReport>>) {
    let video = track.kind() == RTPCodecType::Video;
    {
        let mut r = report.lock().unwrap();
        if video {
            r.video_tracks += 1;
            r.video_codec = track.codec().capability.mime_type;
        } else {
            r.audio_tracks += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Ok(Ok((packet, _))) = tokio::time::timeout_at(deadline, track.read_rtp()).await {
        let at = Instant::now();
        let h = &packet.header;
        let mut r = report.lock().unwrap();
        if video {
            let start = parse_vp8(&packet.payload);
            r.video.push(VideoPacket {
                at,
                seq: h.sequence_number,
                ts: h.timestamp,
                ssrc: h.ssrc,
                marker: h.marker,
                frame_start: start.is_some(),
                keyframe_start: start.as_ref().is_some_and(|s| s.keyframe),
                width: start.as_ref().and_then(|s| s.width),
                tag: start.and_then(|s| s.tag),
            });
        } else {
            let p = &packet.payload;
            let generation = (p.len() >= 3 && p[1] == b'A').then(|| p[2]);
            r.audio.push(AudioPacket {
                seq: h.sequence_number,
                generation,
            });
        }
    }
}

/// Number of places where a sequence number is not the previous one + 1
/// (mod 2^16).
fn seq_gaps(seqs: impl Iterator<Item = u16>) -> usize {
    let mut previous: Option<u16> = None;
    let mut gaps = 0;
    for seq in seqs {
        if previous.is_some_and(|p| seq != p.wrapping_add(1)) {
            gaps += 1;
        }
        previous = Some(seq);
    }
    gaps
}

impl ViewerReport {
    fn video_seq_gaps(&self) -> usize {
        seq_gaps(self.video.iter().map(|p| p.seq))
    }

    fn audio_seq_gaps(&self) -> usize {
        seq_gaps(self.audio.iter().map(|p| p.seq))
    }

    fn first_keyframe_at(&self) -> Option<Instant> {
        self.video.iter().find(|p| p.keyframe_start).map(|p| p.at)
    }

    /// Widths of the keyframes received, in order.
    fn keyframe_widths(&self) -> Vec<u16> {
        self.video.iter().filter_map(|p| p.width).collect()
    }

    fn last_keyframe_width(&self) -> Option<u16> {
        self.keyframe_widths().last().copied()
    }

    fn video_ssrcs(&self) -> BTreeSet<u32> {
        self.video.iter().map(|p| p.ssrc).collect()
    }

    fn frame_tags(&self) -> impl Iterator<Item = FrameTag> + '_ {
        self.frame_tags_from(0)
    }

    fn frame_tags_from(&self, index: usize) -> impl Iterator<Item = FrameTag> + '_ {
        self.video[index..].iter().filter_map(|p| p.tag)
    }

    fn first_frame_tag(&self) -> Option<FrameTag> {
        self.frame_tags().next()
    }

    /// Index of the first video packet sent by publisher `generation`.
    fn first_packet_of_generation(&self, generation: u8) -> Option<usize> {
        self.video
            .iter()
            .position(|p| p.tag.is_some_and(|t| t.generation == generation))
    }

    /// Runs of consecutive frames from the same layer: (layer, frames).
    fn layer_runs(&self) -> Vec<(u8, usize)> {
        runs(self.frame_tags().map(|t| t.layer))
    }

    /// Runs of consecutive frames from the same publisher and layer.
    fn generation_layer_runs(&self, from: usize) -> Vec<((u8, u8), usize)> {
        runs(self.frame_tags_from(from).map(|t| (t.generation, t.layer)))
    }

    /// (previous seq, seq) wherever the sequence is not contiguous.
    fn video_gap_places(&self) -> Vec<(u16, u16)> {
        self.video
            .windows(2)
            .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
            .map(|w| (w[0].seq, w[1].seq))
            .collect()
    }

    fn summary(&self) -> String {
        let frames = self.video.iter().filter(|p| p.frame_start).count();
        let keyframes = self.video.iter().filter(|p| p.keyframe_start).count();
        let ends = self.video.iter().filter(|p| p.marker).count();
        let span = match (self.video.first(), self.video.last()) {
            (Some(a), Some(b)) => b.at.saturating_duration_since(a.at),
            _ => Duration::ZERO,
        };
        format!(
            "video {} pkts ({}; {} tracks, ssrcs {:?}) = {frames} frame starts / {ends} markers / \
             {keyframes} keyframes, widths {:?}, seq gaps {}, over {span:?}; audio {} pkts ({} tracks), \
             seq gaps {}",
            self.video.len(),
            self.video_codec,
            self.video_tracks,
            self.video_ssrcs(),
            dedup(self.keyframe_widths()),
            self.video_seq_gaps(),
            self.audio.len(),
            self.audio_tracks,
            self.audio_seq_gaps(),
        )
    }
}

fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(T, usize)> {
    let mut out: Vec<(T, usize)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

/// Collapses runs of equal values: [1280, 1280, 320] → [1280, 320].
fn dedup(mut values: Vec<u16>) -> Vec<u16> {
    values.dedup();
    values
}
