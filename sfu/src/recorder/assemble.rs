//! [`FrameAssembler`]: one video layer's RTP packets, as the Source saw
//! them (arrival order, possibly reordered or with holes), back into whole
//! frames for the recording.
//!
//! Invariants: a frame is emitted only when every packet from the one after
//! the previous frame's marker to its own marker is present, so a sample
//! is never written with a hole in it; after a loss the assembler waits for
//! the next keyframe start (the frames between would decode as garbage);
//! at most [`MAX_PENDING`] packets wait, and a hole older than
//! [`REORDER_WINDOW`] is declared lost.

use std::sync::Arc;
use std::time::Duration;

use str0m::format::CodecExtra;
use str0m::unversioned::Depacketizer;

use crate::core::SourcePacket;

/// Packets held while a hole may still be filled (a retransmission).
pub const MAX_PENDING: usize = 512;
/// How long a hole may wait for its packet.
pub const REORDER_WINDOW: Duration = Duration::from_millis(300);

/// One whole frame: its packets in sequence order.
#[derive(Debug)]
pub struct Frame {
    pub ts: u32,
    pub keyframe: bool,
    pub packets: Vec<Arc<SourcePacket>>,
}

impl Frame {
    /// A frame's payloads through `depacketizer` into one sample (`extra`
    /// bytes of room beyond the payloads); `None` when a payload is invalid or
    /// the frame comes out empty.
    pub fn depacketized(
        &self,
        depacketizer: &mut impl Depacketizer,
        extra: usize,
    ) -> Option<Vec<u8>> {
        let size: usize = self.packets.iter().map(|p| p.payload.len()).sum();
        let mut out = Vec::with_capacity(size + extra);
        let mut codec_extra = CodecExtra::None;
        for p in &self.packets {
            depacketizer
                .depacketize(&p.payload, &mut out, &mut codec_extra)
                .ok()?;
        }
        (!out.is_empty()).then_some(out)
    }
}

#[derive(Debug, Default)]
pub struct FrameAssembler {
    /// Sorted by sequence number, no duplicates.
    pending: Vec<Arc<SourcePacket>>,
    /// The sequence number the next frame starts at; `None`: wait for a
    /// keyframe start.
    next_seq: Option<u64>,
    /// Frames given up on (a hole never filled, or the wait for a keyframe
    /// after one).
    pub lost_frames: u64,
}

impl FrameAssembler {
    /// Takes one packet; returns the frames it completed, in order.
    pub fn push(&mut self, packet: &Arc<SourcePacket>, out: &mut Vec<Frame>) {
        if self.next_seq.is_some_and(|next| packet.seq < next) {
            return; // late duplicate of a frame already written or dropped
        }
        match self.pending.binary_search_by_key(&packet.seq, |p| p.seq) {
            Ok(_) => return,
            Err(at) => self.pending.insert(at, packet.clone()),
        }
        loop {
            if let Some(frame) = self.take_frame() {
                out.push(frame);
                continue;
            }
            if !self.hole_expired(packet) {
                break;
            }
            self.resync();
        }
    }

    /// The first pending frame, if it is whole and starts where it must.
    fn take_frame(&mut self) -> Option<Frame> {
        let first = self.pending.first()?;
        match self.next_seq {
            Some(next) if first.seq != next => return None,
            None if !first.keyframe_start => {
                // Waiting for a keyframe: nothing before one is usable (the
                // packets after it may still be its own, reordered).
                let start = self.pending.iter().position(|p| p.keyframe_start)?;
                self.pending.drain(..start);
                return self.take_frame_if_started();
            }
            _ => {}
        }
        self.take_whole_frame()
    }

    fn take_frame_if_started(&mut self) -> Option<Frame> {
        if self.pending.first().is_some_and(|p| p.keyframe_start) {
            self.take_whole_frame()
        } else {
            None
        }
    }

    fn take_whole_frame(&mut self) -> Option<Frame> {
        let first = self.pending.first()?;
        let (ts, start) = (first.ts, first.seq);
        let mut end = None;
        for (i, p) in self.pending.iter().enumerate() {
            if p.seq != start + i as u64 || p.ts != ts {
                return None;
            }
            if p.marker {
                end = Some(i);
                break;
            }
        }
        let end = end?;
        let packets: Vec<_> = self.pending.drain(..=end).collect();
        self.next_seq = Some(start + packets.len() as u64);
        // The keyframe may be marked on a later packet of its frame (after
        // an access unit delimiter or SEI).
        let keyframe = packets.iter().any(|p| p.keyframe_start);
        Some(Frame {
            ts,
            keyframe,
            packets,
        })
    }

    fn hole_expired(&self, newest: &SourcePacket) -> bool {
        let Some(oldest) = self.pending.first() else {
            return false;
        };
        self.pending.len() > MAX_PENDING
            || newest.arrival.saturating_duration_since(oldest.arrival) > REORDER_WINDOW
    }

    /// Gives up on the hole: drops what waits before the next keyframe
    /// start and waits for it.
    fn resync(&mut self) {
        self.lost_frames += 1;
        self.next_seq = None;
        let keep_from = self
            .pending
            .iter()
            .skip(1)
            .position(|p| p.keyframe_start)
            .map_or(self.pending.len(), |i| i + 1);
        self.pending.drain(..keep_from);
    }
}

/// A packet of a frame's payload for the depacketizers' tests (a
/// keyframe start when `seq` is 0).
#[cfg(test)]
pub(super) fn payload_packet(seq: u64, payload: &[u8], marker: bool) -> Arc<SourcePacket> {
    Arc::new(SourcePacket {
        seq,
        ts: 0,
        marker,
        ext: Default::default(),
        payload: Arc::from(payload),
        arrival: std::time::Instant::now(),
        keyframe_start: seq == 0,
        vp8: None,
        dimensions: None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn pkt(
        seq: u64,
        ts: u32,
        marker: bool,
        key: bool,
        at_ms: u64,
        t0: Instant,
    ) -> Arc<SourcePacket> {
        Arc::new(SourcePacket {
            seq,
            ts,
            marker,
            ext: Default::default(),
            payload: Arc::from(&[seq as u8][..]),
            arrival: t0 + Duration::from_millis(at_ms),
            keyframe_start: key,
            vp8: None,
            dimensions: None,
        })
    }

    /// (seq, ts, marker, keyframe start, arrival ms).
    type In = (u64, u32, bool, bool, u64);
    /// (name, packets in arrival order, (ts, packet count) of each frame
    /// emitted, frames lost).
    type Case<'a> = (&'a str, &'a [In], &'a [(u32, usize)], u64);

    fn run(input: &[In]) -> (Vec<(u32, usize)>, u64) {
        let t0 = Instant::now();
        let mut a = FrameAssembler::default();
        let mut out = Vec::new();
        for &(seq, ts, m, k, at) in input {
            a.push(&pkt(seq, ts, m, k, at, t0), &mut out);
        }
        let frames = out.iter().map(|f| (f.ts, f.packets.len())).collect();
        (frames, a.lost_frames)
    }

    #[test]
    fn frames_need_a_keyframe_first_then_come_whole_and_in_order() {
        let cases: &[Case] = &[
            (
                "in order",
                &[
                    (10, 0, false, true, 0),
                    (11, 0, true, false, 0),
                    (12, 3000, true, false, 33),
                ],
                &[(0, 2), (3000, 1)],
                0,
            ),
            (
                "a delta frame before the first keyframe is skipped",
                &[
                    (5, 0, true, false, 0),
                    (6, 3000, false, true, 33),
                    (7, 3000, true, false, 33),
                ],
                &[(3000, 2)],
                0,
            ),
            (
                "reordered inside a frame",
                &[
                    (11, 0, true, false, 0),
                    (10, 0, false, true, 1),
                    (12, 3000, true, false, 33),
                ],
                &[(0, 2), (3000, 1)],
                0,
            ),
            (
                "a retransmission fills the hole within the window",
                &[
                    (10, 0, true, true, 0),
                    (12, 3000, true, false, 33),
                    (11, 3000, false, false, 100),
                ],
                &[(0, 1), (3000, 2)],
                0,
            ),
            (
                "a hole never filled waits for the next keyframe",
                &[
                    (10, 0, true, true, 0),
                    (12, 3000, true, false, 33),
                    (13, 6000, true, false, 66),
                    (14, 9000, true, true, 400),
                    (15, 12000, true, false, 433),
                ],
                &[(0, 1), (9000, 1), (12000, 1)],
                1,
            ),
            (
                "duplicates change nothing",
                &[
                    (10, 0, true, true, 0),
                    (10, 0, true, true, 1),
                    (11, 3000, true, false, 33),
                    (10, 0, true, true, 40),
                ],
                &[(0, 1), (3000, 1)],
                0,
            ),
        ];
        for (name, input, want, lost) in cases {
            let (frames, lost_frames) = run(input);
            assert_eq!(&frames, want, "{name}");
            assert_eq!(lost_frames, *lost, "{name}: lost");
        }
    }

    #[test]
    fn pending_packets_stay_bounded() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::default();
        let mut out = Vec::new();
        a.push(&pkt(0, 0, true, true, 0, t0), &mut out);
        // seq 1 never arrives; a flood of packets with no marker follows.
        for seq in 2..5000 {
            a.push(&pkt(seq, 3000, false, false, 1, t0), &mut out);
            assert!(a.pending.len() <= MAX_PENDING + 1);
        }
        assert_eq!(out.len(), 1);
    }
}
