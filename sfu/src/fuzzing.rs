//! The bodies of the fuzz targets in `fuzz/` (cargo fuzz, nightly), here so
//! that the normal test suite runs every committed reproducer
//! (`fuzz/reproducers/<target>/`) through exactly the same code. Each
//! function takes arbitrary bytes and must return without panicking.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};

use crate::core::h264_sps;
use crate::core::keyframe::{inspect, VideoCodec};
use crate::core::packet::Vp8Fields;
use crate::worker::Demux;

/// The offer the `datagram` target negotiates its session from.
const OFFER: &str = include_str!("../fixtures/whip-offers/obs-emulated-3layer-offer.sdp");

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal address")
}

/// A WHIP/WHEP offer: our validation, then str0m's negotiation as a
/// publisher and as a viewer, without the server's panic guard.
pub fn offer(data: &[u8]) {
    let Ok(offer) = std::str::from_utf8(data) else {
        return;
    };
    for viewer in [false, true] {
        let _ =
            crate::sdp::negotiate_unguarded(offer, addr("127.0.0.1:5000"), Instant::now(), viewer);
    }
}

/// Datagrams on the media port (each prefixed by a two-byte big-endian
/// length, at most 16): the demux, then str0m's input path (STUN, DTLS,
/// RTP/RTCP) on a freshly negotiated publisher session, its outputs and
/// timers drained, bounded.
pub fn datagram(data: &[u8]) {
    let (local, remote) = (addr("127.0.0.1:5000"), addr("127.0.0.1:6000"));
    let start = Instant::now();
    let mut peer =
        crate::sdp::answer_publisher(OFFER, local, start).expect("the fixture offer negotiates");
    let mut demux = Demux::default();
    demux.add_session(&peer.local_ufrag, 1u8);
    let mut rest = data;
    let mut now = start;
    for _ in 0..16 {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        let _ = demux.route(remote, datagram);
        if let Ok(receive) = Receive::new(Protocol::Udp, remote, local, datagram) {
            if peer.rtc.handle_input(Input::Receive(now, receive)).is_err() {
                return;
            }
        }
        for _ in 0..64 {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    now = at.clamp(now, now + Duration::from_millis(50));
                    break;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
            return;
        }
    }
}

/// An RTP payload as the Source sees it after SRTP: keyframe detection for
/// every codec, VP8 descriptor fields, H.264 SPS dimensions; then as the
/// recorder takes it (a frame of one packet: depacketized as H.264 and as
/// VP8, muxed into fMP4 and WebM, a VP8 keyframe decoded for a poster).
pub fn rtp_payload(data: &[u8]) {
    for codec in VideoCodec::ALL {
        let _ = inspect(codec, data);
    }
    let _ = Vp8Fields::parse(data);
    let _ = h264_sps::dimensions(data);
    crate::recorder::fuzz_frame(data);
}

#[cfg(test)]
mod tests {
    /// A fuzz target's body.
    type Target = fn(&[u8]);

    use std::path::PathBuf;

    /// Every file in `fuzz/<kind>/<target>/` (run-time path: a test binary
    /// reused from another checkout still finds them).
    fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let dir = PathBuf::from(dir).join("../fuzz").join(kind).join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).expect("a committed fuzz input");
                (path, bytes)
            })
            .collect()
    }

    #[test]
    fn the_committed_reproducers_run_clean() {
        let targets: [(&str, Target); 3] = [
            ("offer", super::offer),
            ("datagram", super::datagram),
            ("rtp_payload", super::rtp_payload),
        ];
        // The seeds as well: the inputs every fuzzing run starts from.
        for (target, run) in targets {
            for kind in ["reproducers", "seeds"] {
                for (path, bytes) in inputs(kind, target) {
                    let outcome = std::panic::catch_unwind(|| run(&bytes));
                    assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
                }
            }
        }
    }
}
