//! The WHEP viewer: a recvonly webrtc-rs PeerConnection that records every
//! RTP packet it receives, and [`ViewerReport`], the questions tests ask of
//! those recordings (keyframes, gaps, layers, publisher generations).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::{sleep, Instant};
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_remote::TrackRemote;

use super::media::{parse_vp8, FrameTag};
use super::rtc::{close_pc, gathered_offer, loopback_api, watch_state};
use super::server::{http_client, post_offer, TestServer, STREAM};

#[derive(Clone, Copy, Debug)]
pub enum Layer {
    Auto,
    High,
    Low,
}

impl Layer {
    pub fn query(self) -> &'static str {
        match self {
            Layer::Auto => "",
            Layer::High => "?layer=high",
            Layer::Low => "?layer=low",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VideoPacket {
    pub at: Instant,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub frame_start: bool,
    /// Descriptor S=1, partition 0, payload header P=0.
    pub keyframe_start: bool,
    pub width: Option<u16>,
    pub tag: Option<FrameTag>,
}

#[derive(Clone, Debug)]
pub struct AudioPacket {
    pub seq: u16,
    pub generation: Option<u8>,
}

/// Everything a viewer received; `Viewer::report` hands out a copy.
#[derive(Clone, Debug, Default)]
pub struct ViewerReport {
    pub posted_at: Option<Instant>,
    pub answered_at: Option<Instant>,
    pub connected_at: Option<Instant>,
    pub video_tracks: u32,
    pub audio_tracks: u32,
    pub video_codec: String,
    pub video: Vec<VideoPacket>,
    pub audio: Vec<AudioPacket>,
}

pub struct Viewer {
    pub pc: Arc<RTCPeerConnection>,
    http: reqwest::Client,
    resource: String,
    report: Arc<Mutex<ViewerReport>>,
    connected_at: Arc<Mutex<Option<Instant>>>,
}

/// Time to first keyframe of one join.
pub struct JoinLatency {
    pub post_to_keyframe: Duration,
    /// POST sent → 201 + answer received.
    pub post_to_answer: Duration,
    /// Answer applied → ICE + DTLS done (webrtc-rs paces ICE checks every 200 ms).
    pub answer_to_connected: Duration,
    pub connected_to_keyframe: Duration,
}

impl Viewer {
    /// WHEP: recvonly audio + video, full offer after gathering, POST, answer.
    pub async fn join(server: &TestServer, layer: Layer) -> anyhow::Result<Viewer> {
        Self::join_from(server, layer, None).await
    }

    /// As [`Viewer::join`], with its ICE candidate on one loopback address
    /// (e.g. 127.0.0.3, which a test can shape with `tc`).
    pub async fn join_from(
        server: &TestServer,
        layer: Layer,
        address: Option<std::net::IpAddr>,
    ) -> anyhow::Result<Viewer> {
        let http = http_client();
        let path = format!("/whep/{STREAM}{}", layer.query());
        Self::join_signaled(address, |offer| async move {
            post_offer(&http, &server.base, &path, None, offer).await
        })
        .await
    }

    /// As [`Viewer::join_from`], with the offer/answer exchange left to
    /// `signal` (WHEP, or the websocket's `viewer.offer`), which returns
    /// (resource URL or session id, answer SDP).
    pub async fn join_signaled<F, Fut>(
        address: Option<std::net::IpAddr>,
        signal: F,
    ) -> anyhow::Result<Viewer>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<(String, String)>>,
    {
        // VP8 without RTX: webrtc-rs 0.14 reads RTX repair streams and
        // discards them, so with RTX negotiated a lost packet could never
        // be recovered. Without it the server retransmits on the media SSRC,
        // which is what these viewers' NACKs can use.
        let mut media = MediaEngine::default();
        for (capability, payload_type, kind) in [
            (super::publisher::vp8_capability(), 96, RTPCodecType::Video),
            (
                super::publisher::opus_capability(),
                111,
                RTPCodecType::Audio,
            ),
        ] {
            media.register_codec(
                RTCRtpCodecParameters {
                    capability,
                    payload_type,
                    ..Default::default()
                },
                kind,
            )?;
        }
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
        let api = loopback_api(media, registry, address);
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
        let posted_at = Instant::now();
        report.lock().unwrap().posted_at = Some(posted_at);
        let (resource, answer) = signal(offer).await?;
        report.lock().unwrap().answered_at = Some(Instant::now());
        pc.set_remote_description(RTCSessionDescription::answer(answer)?)
            .await
            .context("applying the WHEP answer")?;
        Ok(Viewer {
            pc,
            http: http_client(),
            resource,
            report,
            connected_at,
        })
    }

    /// A copy of everything received so far.
    pub fn report(&self) -> ViewerReport {
        let mut report = self.report.lock().unwrap().clone();
        report.connected_at = *self.connected_at.lock().unwrap();
        report
    }

    /// Waits (bounded) for the first keyframe packet and the connected state.
    pub async fn wait_first_keyframe(&self, limit: Duration) -> anyhow::Result<JoinLatency> {
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

    /// The WHEP resource URL (or the websocket session id).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The session id: the last segment of the resource URL.
    pub fn session_id(&self) -> Option<relaycast_sfu::SessionId> {
        relaycast_sfu::SessionId::parse(self.resource.rsplit('/').next()?)
    }

    /// Asks for another layer (`POST {resource}/layer`), without renegotiation.
    pub async fn choose_layer(&self, layer: &str) -> anyhow::Result<()> {
        let res = self
            .http
            .post(format!("{}/layer", self.resource))
            .header("content-type", "application/json")
            .body(format!(r#"{{"layer":"{layer}"}}"#))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "layer change: {}", res.status());
        Ok(())
    }

    /// Reports what its player shows (`POST {resource}/view`).
    pub async fn set_view(&self, width: u32, height: u32, visible: bool) -> anyhow::Result<()> {
        let res = self
            .http
            .post(format!("{}/view", self.resource))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"width":{width},"height":{height},"visible":{visible}}}"#
            ))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "view report: {}", res.status());
        Ok(())
    }

    /// Its viewer resource (`GET {resource}`): layer, limits, bytes sent.
    pub async fn status(&self) -> anyhow::Result<serde_json::Value> {
        let res = self.http.get(&self.resource).send().await?;
        anyhow::ensure!(res.status().is_success(), "viewer status: {}", res.status());
        Ok(serde_json::from_str(&res.text().await?)?)
    }

    /// DELETEs the WHEP session (status not checked) and closes.
    pub async fn leave(self) {
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
    pub fn video_seq_gaps(&self) -> usize {
        seq_gaps(self.video.iter().map(|p| p.seq))
    }

    pub fn audio_seq_gaps(&self) -> usize {
        seq_gaps(self.audio.iter().map(|p| p.seq))
    }

    pub fn first_keyframe_at(&self) -> Option<Instant> {
        self.video.iter().find(|p| p.keyframe_start).map(|p| p.at)
    }

    /// Widths of the keyframes received, in order.
    pub fn keyframe_widths(&self) -> Vec<u16> {
        self.video.iter().filter_map(|p| p.width).collect()
    }

    pub fn last_keyframe_width(&self) -> Option<u16> {
        self.keyframe_widths().last().copied()
    }

    pub fn video_ssrcs(&self) -> BTreeSet<u32> {
        self.video.iter().map(|p| p.ssrc).collect()
    }

    pub fn frame_tags(&self) -> impl Iterator<Item = FrameTag> + '_ {
        self.frame_tags_from(0)
    }

    pub fn frame_tags_from(&self, index: usize) -> impl Iterator<Item = FrameTag> + '_ {
        self.video[index..].iter().filter_map(|p| p.tag)
    }

    pub fn first_frame_tag(&self) -> Option<FrameTag> {
        self.frame_tags().next()
    }

    /// Index of the first video packet sent by publisher `generation`.
    pub fn first_packet_of_generation(&self, generation: u8) -> Option<usize> {
        self.video
            .iter()
            .position(|p| p.tag.is_some_and(|t| t.generation == generation))
    }

    /// Runs of consecutive frames from the same layer: (layer, frames).
    pub fn layer_runs(&self) -> Vec<(u8, usize)> {
        runs(self.frame_tags().map(|t| t.layer))
    }

    /// Runs of consecutive frames from the same publisher and layer.
    pub fn generation_layer_runs(&self, from: usize) -> Vec<((u8, u8), usize)> {
        runs(self.frame_tags_from(from).map(|t| (t.generation, t.layer)))
    }

    /// (previous seq, seq) wherever the sequence is not contiguous.
    pub fn video_gap_places(&self) -> Vec<(u16, u16)> {
        self.video
            .windows(2)
            .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
            .map(|w| (w[0].seq, w[1].seq))
            .collect()
    }

    /// Sequence numbers missing from the span received (after unwrapping),
    /// however the rest arrived: a loss repaired by a retransmission shows
    /// as reordering, not here.
    pub fn video_missing(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        let (mut ext, mut last): (i64, Option<u16>) = (0, None);
        for p in &self.video {
            if let Some(prev) = last {
                ext += i64::from(p.seq.wrapping_sub(prev) as i16);
            }
            last = Some(p.seq);
            seen.insert(ext);
        }
        match (seen.iter().min(), seen.iter().max()) {
            (Some(lo), Some(hi)) => (hi - lo + 1) as usize - seen.len(),
            _ => 0,
        }
    }

    /// Video packets received more than once (same SSRC and sequence
    /// number): a forwarder that resends what a viewer already has.
    pub fn video_duplicates(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.video
            .iter()
            .filter(|p| !seen.insert((p.ssrc, p.seq)))
            .count()
    }

    pub fn summary(&self) -> String {
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
