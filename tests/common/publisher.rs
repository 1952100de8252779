//! The WHIP publisher: a webrtc-rs PeerConnection offering VP8 simulcast
//! h/m/l + Opus (with webrtc-rs's random SSRCs or pinned ones), the WHIP
//! exchange, and the task pacing synthetic media onto the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8};
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
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

use super::media::{
    opus_payload, vp8_frame, vp8_payloads, FrameTag, AUDIO_INTERVAL, FPS, FRAME_INTERVAL,
    KEYFRAME_EVERY, LAYERS,
};
use super::pinned_track::PinnedSsrcTrack;
use super::rtc::{close_pc, gathered_offer, loopback_api, wait_connected, watch_state};
use super::server::{http_client, post_offer, TestServer, STREAM, STREAM_KEY};

/// Upper bound on how long a publisher sends, whatever the test does.
const MAX_PUBLISH: Duration = Duration::from_secs(60);

/// SSRCs the publisher should put on the wire instead of webrtc-rs's random ones.
#[derive(Clone, Copy, Debug)]
pub struct PinnedSsrcs {
    pub video: [u32; 3],
    pub audio: u32,
}

impl PinnedSsrcs {
    pub fn random() -> PinnedSsrcs {
        PinnedSsrcs {
            video: [rand::random(), rand::random(), rand::random()],
            audio: rand::random(),
        }
    }
}

pub struct PublisherOptions {
    /// Written into every frame tag, to tell publisher connections apart.
    pub generation: u8,
    pub ssrcs: Option<PinnedSsrcs>,
}

impl PublisherOptions {
    pub fn generation(generation: u8) -> PublisherOptions {
        PublisherOptions {
            generation,
            ssrcs: None,
        }
    }

    pub fn with_ssrcs(self, ssrcs: PinnedSsrcs) -> PublisherOptions {
        PublisherOptions {
            ssrcs: Some(ssrcs),
            ..self
        }
    }
}

#[derive(Default, Debug)]
pub struct PublisherStats {
    pub frames: [u64; 3],
    pub keyframes: [u64; 3],
    pub video_packets: [u64; 3],
    pub audio_packets: u64,
    pub write_errors: u64,
    pub last_write_error: Option<String>,
    pub plis: u64,
}

pub struct Publisher {
    pc: Arc<RTCPeerConnection>,
    http: reqwest::Client,
    resource: String,
    /// When media started: frame n goes out at `media_start + n × 1/30 s`.
    media_start: Instant,
    stop: watch::Sender<bool>,
    media: JoinHandle<()>,
    stats: Arc<Mutex<PublisherStats>>,
    /// The key it published with (its WHIP resource's DELETE uses it).
    key: String,
}

/// Either webrtc-rs's stock track (random SSRC) or ours (pinned SSRC).
enum MediaTrack {
    Stock(Arc<TrackLocalStaticRTP>),
    Pinned(Arc<PinnedSsrcTrack>),
}

impl MediaTrack {
    pub fn new(
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

    pub fn as_track_local(&self) -> Arc<dyn TrackLocal + Send + Sync> {
        match self {
            MediaTrack::Stock(t) => t.clone(),
            MediaTrack::Pinned(t) => t.clone(),
        }
    }

    pub async fn write(
        &self,
        packet: &webrtc::rtp::packet::Packet,
    ) -> webrtc::error::Result<usize> {
        match self {
            MediaTrack::Stock(t) => t.write_rtp(packet).await,
            MediaTrack::Pinned(t) => t.write_rtp(packet).await,
        }
    }
}

pub fn vp8_capability() -> RTCRtpCodecCapability {
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

pub fn opus_capability() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// A publisher PeerConnection with its tracks and full (gathered) offer,
/// before any WHIP request: [`Publisher::start`] posts it, a test that
/// expects the POST to be refused posts [`PublisherOffer::sdp`] itself.
pub struct PublisherOffer {
    pub sdp: String,
    pc: Arc<RTCPeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
    video: Vec<MediaTrack>,
    video_sender: Arc<RTCRtpSender>,
    audio: MediaTrack,
    generation: u8,
}

impl PublisherOffer {
    /// Sendonly VP8 simulcast h/m/l + Opus, SSRCs as `options` say.
    pub async fn new(options: &PublisherOptions) -> anyhow::Result<PublisherOffer> {
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
        let api = loopback_api(media, registry, None);
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

        Ok(PublisherOffer {
            sdp: offer,
            pc,
            state,
            video,
            video_sender,
            audio,
            generation: options.generation,
        })
    }

    /// Closes the PeerConnection of an offer that was never answered.
    pub async fn close(self) {
        close_pc(&self.pc).await;
    }
}

impl Publisher {
    /// Connects over WHIP (non-trickle), waits for the PeerConnection to be
    /// connected, then starts sending 3 VP8 layers + Opus.
    pub async fn start(
        server: &TestServer,
        options: PublisherOptions,
    ) -> anyhow::Result<Publisher> {
        Self::start_on(server, options, &whip_path(), STREAM_KEY).await
    }

    /// As [`Publisher::start`], on another WHIP endpoint with its key.
    pub async fn start_on(
        server: &TestServer,
        options: PublisherOptions,
        whip: &str,
        key: &str,
    ) -> anyhow::Result<Publisher> {
        let PublisherOffer {
            sdp,
            pc,
            state,
            video,
            video_sender,
            audio,
            generation,
        } = PublisherOffer::new(&options).await?;
        let http = http_client();
        let (resource, answer) = post_offer(&http, &server.base, whip, Some(key), sdp).await?;
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
            generation,
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
            key: key.to_owned(),
        })
    }

    /// The send time of the first keyframe at or after `media_start + at_least`.
    /// The WHIP resource URL.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub fn keyframe_time_at_or_after(&self, at_least: Duration) -> Instant {
        let gop = FRAME_INTERVAL * KEYFRAME_EVERY as u32;
        let gops = at_least.as_nanos().div_ceil(gop.as_nanos()) as u32;
        self.media_start + gop * gops
    }

    pub fn frame_number_at(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.media_start).as_nanos() / FRAME_INTERVAL.as_nanos()
    }

    pub fn stats_line(&self) -> String {
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

    /// Stops media after the frame in flight and returns when the media task
    /// has ended; neither DELETEs the WHIP session nor closes the
    /// PeerConnection (ICE and RTCP carry on): to the server this looks like
    /// an encoder whose network went away.
    pub async fn stop_media(&self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.media.is_finished() {
            ensure!(
                Instant::now() < deadline,
                "publisher media task did not stop within 5 s"
            );
            sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops media and closes the PeerConnection without a DELETE (for a
    /// session the server has already ended).
    pub async fn close_without_delete(self) {
        let _ = self.stop.send(true);
        let _ = timeout(Duration::from_secs(5), self.media).await;
        close_pc(&self.pc).await;
    }

    /// Stops media after the frame in flight, DELETEs the WHIP session
    /// (expects 200) and closes the PeerConnection.
    pub async fn stop_and_delete(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        timeout(Duration::from_secs(5), self.media)
            .await
            .context("publisher media task did not stop within 5 s")??;
        let response = self
            .http
            .delete(&self.resource)
            .header("Authorization", format!("Bearer {}", self.key))
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

/// The WHIP endpoint of the test stream.
pub fn whip_path() -> String {
    format!("/whip/{STREAM}")
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
