//! [`Replay`]: serving a cached GOP to a joining viewer without a burst that
//! overflows its receive buffer. The first [`INITIAL_BURST`] bytes (the
//! keyframe, usually) go at once, so the first picture is not delayed; the
//! rest follows at [`Replay::rate`] bytes per second, a few times the
//! layer's own bitrate so the viewer catches up within a fraction of the GOP.
//!
//! Live packets of the same source are forwarded meanwhile: the Forwarder
//! maps sequence numbers one to one, so the receiver's jitter buffer puts
//! replayed and live packets back in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::session::SessionKey;
use crate::core::{SourceKey, SourcePacket};
use crate::ids::SessionId;

/// Sent at once: enough for a 720p keyframe.
pub const INITIAL_BURST: usize = 64 * 1024;
/// Replay runs at least this fast (bytes per second: 12 Mbit/s)…
pub const MIN_RATE: u64 = 12_000_000 / 8;
/// …and at this multiple of the layer's measured bitrate.
pub const RATE_MULTIPLE: u64 = 4;
/// How often paced replays are advanced.
pub const TICK: Duration = Duration::from_millis(5);

#[derive(Debug)]
pub struct Replay {
    pub viewer: SessionKey,
    /// The viewer's id: its key may be reused once it ends.
    pub id: SessionId,
    pub source: SourceKey,
    packets: Vec<Arc<SourcePacket>>,
    next: usize,
    /// Bytes per second.
    rate: u64,
    /// Bytes the replay may still send before the next refill.
    budget: f64,
    last_refill: Instant,
}

impl Replay {
    pub fn new(
        viewer: SessionKey,
        id: SessionId,
        source: SourceKey,
        packets: Vec<Arc<SourcePacket>>,
        layer_bps: u64,
        now: Instant,
    ) -> Self {
        Replay {
            viewer,
            id,
            source,
            packets,
            next: 0,
            rate: (layer_bps / 8 * RATE_MULTIPLE).max(MIN_RATE),
            budget: INITIAL_BURST as f64,
            last_refill: now,
        }
    }

    /// The packets that may go now; advances the cursor past them.
    pub fn due(&mut self, now: Instant) -> &[Arc<SourcePacket>] {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.budget = (self.budget + elapsed * self.rate as f64).min(INITIAL_BURST as f64);
        self.last_refill = now;
        let start = self.next;
        while let Some(pkt) = self.packets.get(self.next) {
            // The budget caps at INITIAL_BURST, far above any datagram, so
            // waiting for it to cover the next packet never stalls.
            if self.budget < pkt.payload.len() as f64 {
                break;
            }
            self.budget -= pkt.payload.len() as f64;
            self.next += 1;
        }
        &self.packets[start..self.next]
    }

    /// Queues a live packet behind the cached ones.
    pub fn push(&mut self, pkt: Arc<SourcePacket>) {
        self.packets.push(pkt);
    }

    pub fn done(&self) -> bool {
        self.next >= self.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gop(packets: usize, size: usize) -> Vec<Arc<SourcePacket>> {
        (0..packets)
            .map(|i| {
                Arc::new(SourcePacket {
                    seq: i as u64,
                    ts: 0,
                    marker: false,
                    ext: Default::default(),
                    payload: Arc::from(vec![0u8; size]),
                    arrival: Instant::now(),
                    keyframe_start: i == 0,
                    vp8: None,
                    dimensions: None,
                })
            })
            .collect()
    }

    #[test]
    fn the_first_burst_goes_at_once_and_the_rest_is_paced() {
        let t0 = Instant::now();
        // 400 packets of 1000 bytes: 65 go at once (64 KiB), the rest at 1.5 MB/s.
        let mut replay = Replay::new(
            SessionKey(1),
            SessionId(1),
            SourceKey { epoch: 1, layer: 0 },
            gop(400, 1000),
            0,
            t0,
        );
        assert_eq!(replay.due(t0).len(), 65);
        assert_eq!(replay.due(t0).len(), 0);
        // 10 ms at 1.5 MB/s = 15,000 bytes = 15 packets.
        assert_eq!(replay.due(t0 + Duration::from_millis(10)).len(), 15);
        let mut sent = 65 + 15;
        let mut t = t0 + Duration::from_millis(10);
        while !replay.done() {
            t += TICK;
            sent += replay.due(t).len();
        }
        assert_eq!(sent, 400);
        // The remaining 320 KB at 1.5 MB/s take about 215 ms.
        let took = t.duration_since(t0);
        assert!(
            took > Duration::from_millis(205) && took < Duration::from_millis(235),
            "{took:?}"
        );
    }
}
