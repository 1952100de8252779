//! Criterion micro-benchmarks of the pure parts of the hot path: the
//! Forwarder's rewrite of one packet for one viewer, the GopCache (push of
//! a packet; the copy a joining viewer is served from), and the demux
//! lookup of a datagram's session by source address.
//!
//! `cargo bench -p relaycast-sfu --bench core` (add `-- --quick` for a
//! short run). Each figure is per call; the end-to-end cost per forwarded
//! packet (str0m, SRTP, sendto) is measured by `loadtest/bench.sh`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use relaycast_sfu::core::packet::Vp8Fields;
use relaycast_sfu::core::{Forwarder, GopCache, SourceKey, SourcePacket};
use relaycast_sfu::{Demux, SessionId};

const SOURCE: SourceKey = SourceKey { epoch: 1, layer: 2 };
/// A 2 s GOP of the top layer at 30 fps: ~9 packets a frame.
const GOP_PACKETS: u64 = 540;

/// A VP8 packet with a real descriptor (X=1, I=1, 15-bit PictureID).
fn vp8_packet(seq: u64, keyframe_start: bool, t0: Instant) -> SourcePacket {
    let picture_id = (seq / 9) as u16 & 0x7fff;
    let mut payload = vec![0u8; 1100];
    payload[0] = 0x80 | if seq % 9 == 0 { 0x10 } else { 0 };
    payload[1] = 0x80;
    payload[2] = 0x80 | (picture_id >> 8) as u8;
    payload[3] = picture_id as u8;
    SourcePacket {
        seq,
        ts: (seq / 9) as u32 * 3000,
        marker: seq % 9 == 8,
        ext: Default::default(),
        vp8: Vp8Fields::parse(&payload),
        dimensions: None,
        payload: Arc::from(payload),
        arrival: t0 + Duration::from_micros(seq * 100),
        keyframe_start,
    }
}

fn forwarder_translate(c: &mut Criterion) {
    let t0 = Instant::now();
    let packets: Vec<SourcePacket> = (0..GOP_PACKETS)
        .map(|seq| vp8_packet(seq, seq == 0, t0))
        .collect();
    let mut group = c.benchmark_group("forwarder");
    group.throughput(Throughput::Elements(1));
    group.bench_function("translate_vp8", |b| {
        let mut forwarder = Forwarder::new(true, 90_000, 1000);
        forwarder.set_target(Some(SOURCE));
        forwarder
            .translate(SOURCE, &packets[0], t0)
            .expect("the keyframe starts the DownTrack");
        // Live packets with ever-increasing sequence numbers.
        let mut next = 1u64;
        let mut template = packets[1].clone();
        b.iter(|| {
            template.seq = next;
            template.ts = (next / 9) as u32 * 3000;
            next += 1;
            black_box(forwarder.translate(SOURCE, black_box(&template), t0))
        })
    });
    group.finish();
}

fn gop_cache(c: &mut Criterion) {
    let t0 = Instant::now();
    let packets: Vec<Arc<SourcePacket>> = (0..GOP_PACKETS)
        .map(|seq| Arc::new(vp8_packet(seq, seq == 0, t0)))
        .collect();
    let mut group = c.benchmark_group("gop_cache");
    // Per GOP of 540 packets; criterion's throughput gives the per-packet rate.
    group.throughput(Throughput::Elements(GOP_PACKETS));
    group.bench_function("push_gop_540", |b| {
        b.iter_batched_ref(
            GopCache::default,
            |cache| {
                for pkt in &packets {
                    cache.push(black_box(pkt));
                }
            },
            BatchSize::SmallInput,
        )
    });
    let mut cache = GopCache::default();
    for pkt in &packets {
        cache.push(pkt);
    }
    // What a joining viewer costs: the GOP's `Arc`s cloned out for its paced
    // replay (no payload is copied).
    group.bench_function("replay_copy_540", |b| {
        b.iter(|| black_box(cache.packets().to_vec()))
    });
    group.finish();
}

fn demux_lookup(c: &mut Criterion) {
    let mut demux = Demux::default();
    let viewers = 1000u16;
    let addrs: Vec<SocketAddr> = (0..viewers)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 20_000 + i)))
        .collect();
    for (i, addr) in addrs.iter().enumerate() {
        let ufrag = format!("ufrag{i}");
        demux.add_session(&ufrag, SessionId(i as u128));
        demux
            .route(*addr, &binding_request(&format!("{ufrag}:peer")))
            .expect("a STUN check with our ufrag teaches the address");
    }
    let rtcp = [0x80u8, 0xc9, 0, 1, 0, 0, 0, 1];
    let mut group = c.benchmark_group("demux");
    group.throughput(Throughput::Elements(1));
    group.bench_function("route_known_address_of_1000", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 7) % addrs.len();
            black_box(demux.route(black_box(addrs[i]), &rtcp))
        })
    });
    group.finish();
}

/// A STUN binding request (RFC 8489) carrying only USERNAME.
fn binding_request(username: &str) -> Vec<u8> {
    let mut attr = vec![0x00, 0x06];
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    let mut d = vec![0x00, 0x01];
    d.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    d.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    d.extend_from_slice(&[7; 12]);
    d.extend_from_slice(&attr);
    d
}

criterion_group!(benches, forwarder_translate, gop_cache, demux_lookup);
criterion_main!(benches);
