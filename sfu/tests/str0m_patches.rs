//! The str0m patches (vendor/str0m/PATCHES.md), between two real
//! `Rtc`s joined by an in-memory link on a virtual clock: packets sent with
//! `DirectApi::send_rtp_now` arrive in order and decrypt; with NACK
//! passthrough a receiver's NACK surfaces as `Event::Nack`, and the resend
//! arrives (on the RTX stream) with the original sequence number.
//! Patch 4: string ids deref as `str::trim` did.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};

struct Peer {
    rtc: Rtc,
    addr: SocketAddr,
    events: Vec<Event>,
    /// Datagrams it sent while handling an input, delivered at the next drain.
    outbox: Vec<Vec<u8>>,
}

impl Peer {
    fn new(addr: &str, ice_lite: bool, now: Instant) -> Peer {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(ice_lite)
            .set_stats_interval(None)
            .clear_codecs()
            .enable_vp8(true)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Peer {
            rtc,
            addr,
            events: Vec::new(),
            outbox: Vec::new(),
        }
    }
}

/// Runs both peers until `now + span`, delivering every datagram at once.
fn run(a: &mut Peer, b: &mut Peer, now: &mut Instant, span: Duration) {
    let end = *now + span;
    while *now < end {
        for _ in 0..2 {
            drain(a, b, *now);
            drain(b, a, *now);
        }
        *now += Duration::from_millis(5);
        for p in [&mut *a, &mut *b] {
            p.rtc.handle_input(Input::Timeout(*now)).unwrap();
        }
    }
}

/// Polls `from` until it has nothing but a timeout, handing datagrams to `to`.
fn drain(from: &mut Peer, to: &mut Peer, now: Instant) {
    for datagram in std::mem::take(&mut from.outbox) {
        deliver(&datagram, from.addr, to, now);
    }
    loop {
        match from.rtc.poll_output().unwrap() {
            Output::Timeout(_) => return,
            Output::Transmit(t) => deliver(&t.contents, from.addr, to, now),
            Output::Event(e) => from.events.push(e),
        }
    }
}

/// Hands a datagram to `to` and drains it, as str0m requires after every
/// input (an RTP-mode receiver holds one packet event at a time).
fn deliver(datagram: &[u8], source: SocketAddr, to: &mut Peer, now: Instant) {
    let receive = Receive::new(Protocol::Udp, source, to.addr, datagram).unwrap();
    to.rtc.handle_input(Input::Receive(now, receive)).unwrap();
    loop {
        match to.rtc.poll_output().unwrap() {
            Output::Timeout(_) => return,
            Output::Transmit(t) => to.outbox.push(t.contents.to_vec()),
            Output::Event(e) => to.events.push(e),
        }
    }
}

/// A connected sender (one VP8 video send stream with RTX) and receiver.
fn connected() -> (Peer, Peer, Mid, Instant) {
    let mut now = Instant::now();
    let mut sender = Peer::new("127.0.0.1:5000", false, now);
    let mut receiver = Peer::new("127.0.0.1:6000", true, now);
    let mut change = receiver.rtc.sdp_api();
    let mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap();
    let answer = sender.rtc.sdp_api().accept_offer(offer).unwrap();
    receiver
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    run(&mut sender, &mut receiver, &mut now, Duration::from_secs(2));
    assert!(sender.rtc.is_connected() && receiver.rtc.is_connected());
    (sender, receiver, mid, now)
}

fn vp8_pt(peer: &mut Peer, mid: Mid) -> str0m::media::Pt {
    let media = peer.rtc.media(mid).expect("the negotiated mid");
    let params = peer
        .rtc
        .codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == Codec::Vp8 && media.remote_pts().contains(&p.pt()))
        .expect("VP8 negotiated");
    params.pt()
}

/// Sends `seq` with `send_rtp_now` and delivers its datagram to `to`;
/// returns the SSRC on the wire (SRTP leaves the RTP header in clear).
fn send_now(from: &mut Peer, to: &mut Peer, mid: Mid, seq: u64, resend: bool, now: Instant) -> u32 {
    let pt = vp8_pt(from, mid);
    let payload: Vec<u8> = vec![0x10, 0, 0, 0, 0x9d, 0x01, 0x2a, seq as u8];
    let write = RtpWrite::new(pt, SeqNo::from(seq), 3000 * seq as u32, now, payload).marker(true);
    let mut out = Vec::new();
    let destination = from
        .rtc
        .direct_api()
        .send_rtp_now(mid, None, write, resend, now, &mut out)
        .expect("connected, with a send stream");
    assert_eq!(destination, to.addr, "sent to the nominated pair");
    assert!(
        out.len() > 8 + 12,
        "an SRTP packet: header, payload and tag"
    );
    deliver(&out, from.addr, to, now);
    u32::from_be_bytes([out[8], out[9], out[10], out[11]])
}

fn received(peer: &mut Peer) -> Vec<(u64, Vec<u8>)> {
    peer.events
        .drain(..)
        .filter_map(|e| match e {
            Event::RtpPacket(p) => Some((*p.seq_no, p.payload.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn direct_sends_arrive_in_order_and_decrypt() {
    let (mut sender, mut receiver, mid, mut now) = connected();
    for seq in 1..=20 {
        send_now(&mut sender, &mut receiver, mid, seq, false, now);
        now += Duration::from_millis(1);
    }
    run(
        &mut sender,
        &mut receiver,
        &mut now,
        Duration::from_millis(50),
    );
    let got = received(&mut receiver);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    assert!(got.iter().all(|(s, p)| p.last() == Some(&(*s as u8))));
}

#[test]
fn nacks_pass_through_and_resends_carry_the_original_number() {
    let (mut sender, mut receiver, mid, mut now) = connected();
    sender
        .rtc
        .direct_api()
        .stream_tx_by_mid(mid, None)
        .expect("a send stream")
        .set_nack_passthrough(true);
    let mut media_ssrc = 0;
    for seq in (1..=12).filter(|s| *s != 6) {
        media_ssrc = send_now(&mut sender, &mut receiver, mid, seq, false, now);
        now += Duration::from_millis(1);
    }
    run(
        &mut sender,
        &mut receiver,
        &mut now,
        Duration::from_millis(300),
    );
    let nacked: Vec<u64> = sender
        .events
        .drain(..)
        .filter_map(|e| match e {
            Event::Nack(n) => Some(n.seq_nos.iter().map(|s| **s).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        nacked.contains(&6),
        "the gap is NACKed to the application: {nacked:?}"
    );
    assert!(nacked.iter().all(|s| *s == 6), "only the gap: {nacked:?}");
    received(&mut receiver);

    let resend_ssrc = send_now(&mut sender, &mut receiver, mid, 6, true, now);
    assert_ne!(resend_ssrc, media_ssrc, "the resend goes on the RTX stream");
    run(
        &mut sender,
        &mut receiver,
        &mut now,
        Duration::from_millis(20),
    );
    let got = received(&mut receiver);
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [6],
        "the resend fills the gap with its original number"
    );
    assert_eq!(got[0].1.last(), Some(&6u8), "and its payload");
}

/// Patch 4: an ASCII id derefs exactly as `str::trim` of its bytes would.
#[test]
fn ascii_ids_deref_as_the_unicode_trim_does() {
    let cases: [&[u8; 16]; 5] = [
        b"0               ",
        b"  mid with gap  ",
        b"\x0b\tv\r\n\x0c          ",
        b"                ",
        b"abcdefghijklmnop",
    ];
    for raw in cases {
        let expected = std::str::from_utf8(raw).unwrap().trim();
        assert_eq!(&*Mid::from_array(*raw), expected, "{raw:?}");
    }
    // Not ASCII: the general path (U+00A0 is Unicode whitespace).
    let mut raw = [b' '; 16];
    raw[..3].copy_from_slice("a\u{a0}".as_bytes());
    assert_eq!(&*Mid::from_array(raw), "a");
    assert_eq!(&*str0m::media::Rid::from("q"), "q");
    assert_eq!(&*Mid::from("0"), "0");
}

/// Patch 5: a `ReportList` (now a bounded `Vec`) keeps order and the
/// 31-item cap: an SDES of 40 chunks parses to the first 31, one chunk of
/// 40 items to its first 31, each as sent.
#[test]
fn report_lists_keep_order_and_the_31_item_cap() {
    use str0m::rtp::rtcp::{Descriptions, Sdes, SdesType};
    // One chunk: SSRC, a CNAME item, END, padded to a word.
    let chunk = |ssrc: u32| {
        let mut c = ssrc.to_be_bytes().to_vec();
        c.extend_from_slice(&[SdesType::CNAME as u8, 2, b'c', b'n', 0, 0, 0, 0]);
        c
    };
    let many: Vec<u8> = (1..=40u32).flat_map(chunk).collect();
    let parsed = Descriptions::try_from(many.as_slice()).expect("valid SDES");
    let ssrcs: Vec<u32> = parsed.reports.iter().map(|s| *s.ssrc).collect();
    assert_eq!(ssrcs, (1..=31).collect::<Vec<_>>());
    assert_eq!(parsed.reports.len(), 31);
    assert!(parsed.reports.get(31).is_none());

    // One chunk with 40 NOTE items, then END.
    let mut one = 7u32.to_be_bytes().to_vec();
    for i in 0..40u8 {
        one.extend_from_slice(&[SdesType::NOTE as u8, 1, b'a' + (i % 26)]);
    }
    one.push(0);
    while one.len() % 4 != 0 {
        one.push(0);
    }
    let parsed = Sdes::try_from(one.as_slice()).expect("valid SDES chunk");
    let values: Vec<String> = parsed.values.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values.len(), 31);
    assert_eq!(values[0], "a");
    assert_eq!(values[30], "e");
}
