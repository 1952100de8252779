//! One WHEP viewer: a client-side str0m `Rtc` in RTP mode (full ICE,
//! controlling, recvonly audio + video) on its own loopback UDP socket, and
//! what it measures: packets, unrecovered loss per SSRC, time to connect,
//! time to first complete keyframe (TTFF) and forwarding latency.
//!
//! Invariants:
//! - [`join`] does the blocking HTTP work; everything after runs on a viewer
//!   thread ([`crate::swarm`]) and never blocks: the socket is non-blocking
//!   and every input is followed by a drain of `poll_output` to `Timeout`.
//! - str0m sends the RTCP (receiver reports, NACKs, TWCC feedback) and hands
//!   up each packet once, retransmissions unwrapped to their original
//!   sequence number; [`SeqTracker`] turns that into unrecovered loss.
//! - Latency is recorded only for packets our publisher sent after this
//!   viewer's POST, so a GOP replay (old packets by design) does not count as
//!   forwarding delay.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use str0m::change::SdpAnswer;
use str0m::config::DtlsCert;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::http::{self, ServerUrl};
use crate::loss::SeqTracker;
use crate::media;
use crate::options::LayerChoice;
use crate::stats::Histograms;

/// Where a viewer is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Answered; ICE/DTLS under way.
    Connecting,
    Connected,
    Failed(String),
    /// Left on purpose (churn) after its first frame; DELETEd by the run.
    Left,
}

/// Progress towards the first complete keyframe.
#[derive(Debug)]
enum FirstFrame {
    Waiting,
    /// A keyframe started at `start`; `end` is its marker packet once seen.
    Assembling {
        ssrc: Ssrc,
        start: u64,
        end: Option<u64>,
        got: BTreeSet<u64>,
    },
    Done,
}

pub struct Viewer {
    pub index: usize,
    rtc: Rtc,
    pub socket: UdpSocket,
    local: SocketAddr,
    /// The WHEP resource path, for DELETE.
    pub resource: String,
    posted_at: Instant,
    posted_stamp: u64,
    vp8_pts: Vec<Pt>,
    pub phase: Phase,
    pub connect: Option<Duration>,
    pub ttff: Option<Duration>,
    first_frame: FirstFrame,
    streams: Vec<(Ssrc, SeqTracker)>,
    nack_window: Duration,
    pub packets: u64,
    pub bytes: u64,
    /// When the latest media packet arrived: a viewer whose stream stopped
    /// has lost everything since, though no sequence gap shows it.
    pub last_media: Option<Instant>,
    /// The latest timeout str0m asked for.
    pub next_timeout: Instant,
    /// The earliest entry this viewer has in its thread's timer heap.
    pub scheduled: Option<Instant>,
}

/// Receive buffer asked for on each viewer socket: ~3 s of the top layer.
pub const VIEWER_RCVBUF: usize = 1 << 20;

/// How long a viewer may take to connect and to show its first frame.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs a WHEP offer and applies the answer; the viewer is ready to be
/// driven by a viewer thread.
pub fn join(
    index: usize,
    server: &ServerUrl,
    stream: &str,
    choice: LayerChoice,
    cert: Option<&DtlsCert>,
    nack_window: Duration,
) -> Result<Viewer, String> {
    let std_socket =
        std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("viewer socket: {e}"))?;
    std_socket
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    // The default (~208 KB) overflows in a keyframe or GOP-replay burst while
    // the thread serves other viewers; those drops would be the tool's, not
    // the server's. The kernel caps this at net.core.rmem_max.
    socket2::SockRef::from(&std_socket)
        .set_recv_buffer_size(VIEWER_RCVBUF)
        .map_err(|e| format!("viewer socket SO_RCVBUF: {e}"))?;
    let local = std_socket.local_addr().map_err(|e| e.to_string())?;
    let now = Instant::now();
    let mut config = Rtc::builder()
        .set_rtp_mode(true)
        .set_stats_interval(None)
        .clear_codecs()
        .enable_opus(true, false);
    config.codec_config().enable_vp8(true);
    if let Some(cert) = cert {
        config = config.set_dtls_cert(cert.clone());
    }
    let mut rtc = config.build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
    let mut sdp = rtc.sdp_api();
    sdp.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    sdp.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = sdp.apply().ok_or("str0m produced no offer")?;

    let path = format!("/whep/{stream}?layer={}", choice.query());
    let posted_at = Instant::now();
    let response = http::request(
        server,
        "POST",
        &path,
        &[("Content-Type", "application/sdp")],
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
        SdpAnswer::from_sdp_string(&response.body).map_err(|e| format!("WHEP answer: {e}"))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| format!("applying the WHEP answer: {e}"))?;
    let vp8_pts = rtc
        .codec_config()
        .params()
        .iter()
        .filter(|p| p.spec().codec == Codec::Vp8)
        .map(|p| p.pt())
        .collect();
    Ok(Viewer {
        index,
        rtc,
        socket: UdpSocket::from_std(std_socket),
        local,
        resource,
        posted_at,
        posted_stamp: media::stamp(posted_at),
        vp8_pts,
        phase: Phase::Connecting,
        connect: None,
        ttff: None,
        first_frame: FirstFrame::Waiting,
        streams: Vec::with_capacity(2),
        nack_window,
        packets: 0,
        last_media: None,
        bytes: 0,
        next_timeout: now,
        scheduled: None,
    })
}

impl Viewer {
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Connected)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed(_))
    }

    /// Whether churn may take this viewer away: connected, first frame seen.
    pub fn may_leave(&self) -> bool {
        self.phase == Phase::Connected && self.ttff.is_some()
    }

    /// Leaves on purpose: str0m says goodbye (the caller sends the DELETE).
    pub fn leave(&mut self) {
        if self.is_live() {
            self.phase = Phase::Left;
            self.rtc.disconnect();
        }
    }

    /// Reads every datagram waiting on the socket (mio is edge-triggered).
    pub fn read_all(&mut self, buf: &mut [u8], stats: &mut Histograms) {
        if !self.is_live() {
            // A failed viewer's session may still be served until the server
            // times it out; discard, so its full buffer is not counted as
            // the tool falling behind.
            while self.socket.recv_from(buf).is_ok() {}
            return;
        }
        while self.is_live() {
            match self.socket.recv_from(buf) {
                Ok((n, source)) => {
                    let now = Instant::now();
                    let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..n])
                    else {
                        continue;
                    };
                    let input = Input::Receive(now, receive);
                    if let Err(e) = self.rtc.handle_input(input) {
                        self.fail(format!("str0m input: {e}"));
                        return;
                    }
                    self.drain(now, stats);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // ICMP errors from loopback surface here; keep reading.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    self.fail(format!("viewer socket: {e}"));
                    return;
                }
            }
        }
    }

    /// Gives str0m the time if its timeout has come.
    pub fn on_timer(&mut self, now: Instant, stats: &mut Histograms) {
        if !self.is_live() || now < self.next_timeout {
            return;
        }
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            self.fail(format!("str0m timeout: {e}"));
            return;
        }
        self.drain(now, stats);
    }

    /// Polls str0m until `Timeout`, sending and handling what it gives.
    pub fn drain(&mut self, now: Instant, stats: &mut Histograms) {
        loop {
            let output = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    self.fail(format!("str0m: {e}"));
                    return;
                }
            };
            match output {
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    // A full loopback socket drops; str0m's RTCP recovers.
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => {
                    self.phase = Phase::Connected;
                    let connect = now.saturating_duration_since(self.posted_at);
                    self.connect = Some(connect);
                    stats
                        .connect_ms
                        .saturating_record(connect.as_millis() as u64);
                }
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => {
                    self.fail("ICE disconnected".into());
                    return;
                }
                Output::Event(Event::RtpPacket(packet)) => self.on_rtp(&packet, stats),
                Output::Event(_) => {}
            }
        }
    }

    fn on_rtp(&mut self, packet: &RtpPacket, stats: &mut Histograms) {
        let now = Instant::now();
        self.last_media = Some(now);
        self.packets += 1;
        self.bytes += packet.payload.len() as u64;
        let ssrc = packet.header.ssrc;
        let seq = *packet.seq_no;
        match self.streams.iter_mut().find(|(s, _)| *s == ssrc) {
            Some((_, tracker)) => tracker.arrive(seq, now),
            None => {
                let mut tracker = SeqTracker::new(self.nack_window);
                tracker.arrive(seq, now);
                self.streams.push((ssrc, tracker));
            }
        }
        if let Some(sent) = media::read_stamp(&packet.payload) {
            if sent >= self.posted_stamp {
                let latency_us = media::stamp(now).saturating_sub(sent) / 1000;
                stats.latency_all_us.saturating_record(latency_us);
                if stats.steady {
                    stats.latency_us.saturating_record(latency_us);
                }
            }
        }
        if matches!(self.first_frame, FirstFrame::Done)
            || !self.vp8_pts.contains(&packet.header.payload_type)
        {
            return;
        }
        if media::frame_start(&packet.payload).is_some_and(|f| f.keyframe) {
            self.first_frame = FirstFrame::Assembling {
                ssrc,
                start: seq,
                end: None,
                got: BTreeSet::new(),
            };
        }
        if let FirstFrame::Assembling {
            ssrc: frame_ssrc,
            start,
            end,
            got,
        } = &mut self.first_frame
        {
            if *frame_ssrc != ssrc || seq < *start {
                return;
            }
            got.insert(seq);
            if packet.header.marker && end.is_none() {
                *end = Some(seq);
            }
            if end.is_some_and(|e| got.range(*start..=e).count() as u64 == e - *start + 1) {
                let ttff = now.saturating_duration_since(self.posted_at);
                self.ttff = Some(ttff);
                stats.ttff_ms.saturating_record(ttff.as_millis() as u64);
                self.first_frame = FirstFrame::Done;
            }
        }
    }

    /// Periodic checks: loss windows and join deadlines.
    pub fn housekeeping(&mut self, now: Instant) {
        for (_, tracker) in &mut self.streams {
            tracker.expire(now);
        }
        if !self.is_live() {
            return;
        }
        let waited = now.saturating_duration_since(self.posted_at);
        if waited > JOIN_TIMEOUT {
            if self.phase == Phase::Connecting {
                self.fail(format!("not connected {JOIN_TIMEOUT:?} after POST"));
            } else if self.ttff.is_none() {
                self.fail(format!("no complete keyframe {JOIN_TIMEOUT:?} after POST"));
            }
        }
    }

    /// (received, recovered, lost) over every stream.
    pub fn loss(&self) -> (u64, u64, u64) {
        self.streams.iter().fold((0, 0, 0), |(r, c, l), (_, t)| {
            (r + t.received, c + t.recovered, l + t.lost)
        })
    }

    pub fn fail(&mut self, reason: String) {
        if self.is_live() {
            self.phase = Phase::Failed(reason);
            self.rtc.disconnect();
        }
    }
}
