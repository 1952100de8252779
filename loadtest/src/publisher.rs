//! The synthetic WHIP publisher: a client-side str0m `Rtc` in RTP mode (full
//! ICE, controlling, one host candidate on loopback) that sends three VP8
//! simulcast layers by RID and Opus-sized audio, on its own thread and UDP
//! socket.
//!
//! Invariants:
//! - str0m's rule: after every input or write, `poll_output` is drained until
//!   `Timeout`; the thread sleeps only in `recv_from` with a read timeout no
//!   later than the next str0m timeout, frame or audio packet.
//! - A keyframe request (PLI/FIR) for a layer makes that layer's next frame
//!   a keyframe; otherwise each layer sends one every [`KEYFRAME_EVERY`]
//!   frames.
//! - Frames are paced on a fixed 30 fps schedule; if the thread falls more
//!   than a second behind it skips ahead rather than bursting.
//! - str0m sends the RTCP (sender reports, RTX answers to NACKs).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::http::{self, ServerUrl};
use crate::media::{
    self, AUDIO_CLOCK_PER_PACKET, AUDIO_INTERVAL, FRAME_INTERVAL, KEYFRAME_EVERY, LAYERS,
    VIDEO_CLOCK_PER_FRAME,
};

/// What the publisher did, readable while it runs.
#[derive(Debug, Default)]
pub struct PublisherCounters {
    pub connected: AtomicBool,
    pub frames: AtomicU64,
    pub packets: AtomicU64,
    pub keyframe_requests: AtomicU64,
}

pub struct Publisher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
    pub counters: Arc<PublisherCounters>,
    /// The WHIP resource path, for DELETE.
    resource: String,
    server: ServerUrl,
    /// `Bearer <stream key>`: a WHIP DELETE needs it.
    auth: String,
}

struct Sender {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    audio: (Mid, Pt),
    video: (Mid, Pt),
    counters: Arc<PublisherCounters>,
    /// Per layer (bottom to top): next extended sequence number, PictureID,
    /// and whether the next frame must be a keyframe.
    seq: [u64; 3],
    picture_id: [u16; 3],
    force_keyframe: [bool; 3],
    audio_seq: u64,
    frame_no: u64,
    audio_no: u64,
}

impl Publisher {
    /// POSTs the WHIP offer, applies the answer and starts sending.
    pub fn start(server: &ServerUrl, stream: &str, token: &str) -> Result<Publisher, String> {
        let socket =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("publisher socket: {e}"))?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let now = Instant::now();
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .set_stats_interval(None)
            .clear_codecs()
            .enable_opus(true, false);
        config.codec_config().enable_vp8(true);
        let mut rtc = config.build(now);
        let host = Candidate::host(local, "udp").map_err(|e| e.to_string())?;
        rtc.add_local_candidate(host);

        let mut sdp = rtc.sdp_api();
        let audio_mid = sdp.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some("loadtest".into()),
            Some("audio".into()),
            None,
        );
        let mut simulcast = Simulcast::new();
        for spec in LAYERS {
            simulcast.add_send_layer(SimulcastLayer::new(spec.rid));
        }
        let video_mid = sdp.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some("loadtest".into()),
            Some("video".into()),
            Some(simulcast),
        );
        let (offer, pending) = sdp.apply().ok_or("str0m produced no offer")?;

        let auth = format!("Bearer {token}");
        let path = format!("/whip/{stream}");
        let response = http::request(
            server,
            "POST",
            &path,
            &[
                ("Content-Type", "application/sdp"),
                ("Authorization", &auth),
            ],
            &offer.to_sdp_string(),
        )?;
        if response.status != 201 {
            return Err(format!(
                "POST {path}: {} {}",
                response.status,
                response.body.trim()
            ));
        }
        let resource = response
            .header("location")
            .ok_or_else(|| format!("POST {path}: 201 without Location"))?
            .to_owned();
        let answer =
            SdpAnswer::from_sdp_string(&response.body).map_err(|e| format!("WHIP answer: {e}"))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| format!("applying the WHIP answer: {e}"))?;

        let audio_pt =
            negotiated_pt(&rtc, audio_mid, Codec::Opus).ok_or("the server refused Opus")?;
        let video_pt =
            negotiated_pt(&rtc, video_mid, Codec::Vp8).ok_or("the server refused VP8")?;
        let counters = Arc::new(PublisherCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            rtc,
            socket,
            local,
            audio: (audio_mid, audio_pt),
            video: (video_mid, video_pt),
            counters: counters.clone(),
            seq: [1_000, 11_000, 21_000],
            picture_id: [100, 200, 300],
            force_keyframe: [true; 3],
            audio_seq: 31_000,
            frame_no: 0,
            audio_no: 0,
        };
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lt-publisher".into())
            .spawn(move || sender.run(&thread_stop))
            .map_err(|e| e.to_string())?;
        Ok(Publisher {
            stop,
            thread: Some(thread),
            counters,
            resource,
            server: server.clone(),
            auth: auth.clone(),
        })
    }

    /// Waits until media flows (connected and `frames` frames sent).
    pub fn wait_live(&self, frames: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.counters.frames.load(Relaxed) < frames {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return Err("the publisher stopped before going live".into());
            }
            if Instant::now() >= deadline {
                return Err(format!("the publisher did not go live within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops sending and DELETEs the WHIP session.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.store(true, Relaxed);
        let result = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the publisher thread panicked".into()),
            None => Ok(()),
        };
        let _ = http::request(
            &self.server,
            "DELETE",
            &self.resource,
            &[("Authorization", &self.auth)],
            "",
        );
        result
    }
}

/// The payload type both sides agreed on for `codec` on `mid`.
fn negotiated_pt(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let remote = rtc.media(mid)?.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
        .map(|p| p.pt())
}

impl Sender {
    fn run(mut self, stop: &AtomicBool) -> Result<(), String> {
        let mut buf = vec![0u8; 2048];
        let start = Instant::now();
        let mut next_frame = start;
        let mut next_audio = start;
        let mut rtc_timeout = self.drain()?;
        while !stop.load(Relaxed) {
            let now = Instant::now();
            if now >= rtc_timeout {
                self.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| e.to_string())?;
                rtc_timeout = self.drain()?;
            }
            if self.counters.connected.load(Relaxed) {
                if now >= next_frame {
                    rtc_timeout = rtc_timeout.min(self.send_frame(now)?);
                    next_frame += FRAME_INTERVAL;
                    if now.saturating_duration_since(next_frame) > Duration::from_secs(1) {
                        next_frame = now + FRAME_INTERVAL;
                    }
                }
                if now >= next_audio {
                    rtc_timeout = rtc_timeout.min(self.send_audio(now)?);
                    next_audio += AUDIO_INTERVAL;
                    if now.saturating_duration_since(next_audio) > Duration::from_secs(1) {
                        next_audio = now + AUDIO_INTERVAL;
                    }
                }
            }
            let wake = rtc_timeout
                .min(next_frame)
                .min(next_audio)
                .min(now + Duration::from_millis(50));
            let wait = wake
                .saturating_duration_since(Instant::now())
                .max(Duration::from_micros(200));
            self.socket
                .set_read_timeout(Some(wait))
                .map_err(|e| e.to_string())?;
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..n])
                    else {
                        continue;
                    };
                    self.rtc
                        .handle_input(Input::Receive(Instant::now(), receive))
                        .map_err(|e| e.to_string())?;
                    rtc_timeout = self.drain()?;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // ICMP port unreachable surfaces here on Linux; it is not fatal.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(format!("publisher socket: {e}")),
            }
        }
        self.rtc.disconnect();
        Ok(())
    }

    fn send_frame(&mut self, now: Instant) -> Result<Instant, String> {
        let sent = media::stamp(now);
        let time = (self.frame_no as u32).wrapping_mul(VIDEO_CLOCK_PER_FRAME);
        let mut timeout = now + Duration::from_secs(1);
        for (i, spec) in LAYERS.iter().enumerate() {
            let keyframe =
                std::mem::take(&mut self.force_keyframe[i]) || self.frame_no % KEYFRAME_EVERY == 0;
            let payloads =
                media::vp8_frame(spec, keyframe, self.picture_id[i], self.frame_no, sent);
            self.picture_id[i] = (self.picture_id[i] + 1) & 0x7fff;
            let count = payloads.len();
            for (k, payload) in payloads.into_iter().enumerate() {
                let mut api = self.rtc.direct_api();
                let Some(tx) = api.stream_tx_by_mid(self.video.0, Some(Rid::from(spec.rid))) else {
                    break;
                };
                tx.write_rtp(
                    RtpWrite::new(self.video.1, self.seq[i].into(), time, now, payload)
                        .marker(k + 1 == count)
                        .nackable(true),
                );
                self.seq[i] += 1;
                self.counters.packets.fetch_add(1, Relaxed);
                timeout = self.drain()?;
            }
        }
        self.frame_no += 1;
        self.counters.frames.fetch_add(1, Relaxed);
        Ok(timeout)
    }

    fn send_audio(&mut self, now: Instant) -> Result<Instant, String> {
        let time = (self.audio_no as u32).wrapping_mul(AUDIO_CLOCK_PER_PACKET);
        let payload = media::opus_payload(media::stamp(now));
        let mut api = self.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(self.audio.0, None) {
            tx.write_rtp(
                RtpWrite::new(self.audio.1, self.audio_seq.into(), time, now, payload).marker(true),
            );
            self.audio_seq += 1;
            self.counters.packets.fetch_add(1, Relaxed);
        }
        self.audio_no += 1;
        self.drain()
    }

    /// Polls until `Timeout`, sending transmits and handling events.
    fn drain(&mut self) -> Result<Instant, String> {
        loop {
            match self
                .rtc
                .poll_output()
                .map_err(|e| format!("publisher: {e}"))?
            {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    // Loopback drops are the kernel's; str0m retransmits.
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.counters.connected.store(true, Relaxed),
                Output::Event(Event::KeyframeRequest(req)) if req.mid == self.video.0 => {
                    self.counters.keyframe_requests.fetch_add(1, Relaxed);
                    match req
                        .rid
                        .and_then(|rid| LAYERS.iter().position(|l| *rid == *l.rid))
                    {
                        Some(i) => self.force_keyframe[i] = true,
                        None => self.force_keyframe = [true; 3],
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}
