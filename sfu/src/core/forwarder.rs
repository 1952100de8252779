//! [`Forwarder`]: the per-DownTrack rewrite that makes every viewer see one
//! contiguous RTP stream, whatever layer or publisher session the packets
//! came from.
//!
//! Invariants:
//! - A video DownTrack's first packet, and the first packet after any switch
//!   of source, starts a keyframe (the keyframe gate).
//! - Within one source, outgoing = incoming + offset, for sequence numbers
//!   (extended, so wrap at 65535 is continuous), timestamps (mod 2^32) and
//!   VP8 PictureID/TL0PICIDX. Offsets change only at a switch, where they are
//!   chosen so the outgoing numbers continue from the last ones sent.
//! - Packets of the current source older than the switch point are dropped:
//!   re-sending them would rewind the viewer's sequence.
//!
//! - A NACKed outgoing sequence number maps back to the source packet it
//!   carried through the last [`SEGMENTS`] switches ([`Forwarder::resend`]):
//!   resends come from the layer's shared packet store, rewritten exactly as
//!   the original was.
//!
//! A "source" is one layer of one publisher session ([`SourceKey`]); a
//! publisher reconnect is a new epoch and so a new source.

use std::time::Instant;

use str0m::rtp::Vp8Patch;

use super::packet::SourcePacket;
use crate::metrics::DropReason;

/// One layer of one publisher session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// Incremented on every new publisher session of a broadcast.
    pub epoch: u32,
    /// Layer index within the track (0 for audio and single-layer video).
    pub layer: u8,
}

/// Where a DownTrack is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownTrackState {
    /// Has a target but has not yet seen a keyframe of it.
    WaitingKeyframe,
    /// Sending the current source.
    Forwarding,
    /// Deliberately not sending (no target).
    Paused,
}

/// What one forwarded packet becomes for one viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translated {
    pub seq: u64,
    pub ts: u32,
    pub vp8_patch: Option<Vp8Patch>,
    /// The packet switched this DownTrack to a new source.
    pub switched: bool,
}

#[derive(Clone, Copy, Debug)]
struct Last {
    seq: u64,
    ts: u32,
    at: Instant,
    picture_id: Option<u16>,
    tl0: Option<u8>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Offsets {
    seq: u64,
    ts: u32,
    picture_id: u16,
    tl0: u8,
}

/// How many switches back a NACK can still be mapped to its source.
pub const SEGMENTS: usize = 4;

/// Outgoing sequence numbers from `out_start` on came from `source`,
/// rewritten with `offsets`, since `started`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    source: SourceKey,
    out_start: u64,
    offsets: Offsets,
    started: Instant,
}

/// Where a NACKed packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResendRef {
    pub source: SourceKey,
    /// The source's extended sequence number of the packet.
    pub in_seq: u64,
    /// When the viewer started on that source: a replayed packet was sent
    /// then, however long ago it arrived.
    pub since: Instant,
}

/// The rewrite state of one (viewer, track).
#[derive(Debug)]
pub struct Forwarder {
    is_video: bool,
    clock_rate: u32,
    state: DownTrackState,
    current: Option<SourceKey>,
    target: Option<SourceKey>,
    /// Incoming extended seq of the first packet of the current source.
    switch_seq: u64,
    /// Highest incoming seq forwarded from the current source: a packet
    /// seen twice (GopCache replay, then live) is sent once.
    highest_in: u64,
    offsets: Offsets,
    last: Option<Last>,
    first_seq: u64,
    /// The latest switches, newest at `segment_head`.
    segments: [Option<Segment>; SEGMENTS],
    segment_head: usize,
}

impl Forwarder {
    /// `first_seq` is the first outgoing sequence number; keep it below
    /// 65536 so the SRTP rollover counter starts at 0 on both sides.
    pub fn new(is_video: bool, clock_rate: u32, first_seq: u16) -> Self {
        Forwarder {
            is_video,
            clock_rate,
            state: DownTrackState::Paused,
            current: None,
            target: None,
            switch_seq: 0,
            highest_in: 0,
            offsets: Offsets::default(),
            last: None,
            first_seq: u64::from(first_seq),
            segments: [None; SEGMENTS],
            segment_head: 0,
        }
    }

    pub fn state(&self) -> DownTrackState {
        self.state
    }

    pub fn current(&self) -> Option<SourceKey> {
        (self.state == DownTrackState::Forwarding)
            .then_some(self.current)
            .flatten()
    }

    pub fn target(&self) -> Option<SourceKey> {
        self.target
    }

    /// Chooses the source to receive. The switch happens at that source's
    /// next keyframe (video) or next packet (audio); until then the current
    /// source keeps flowing so the viewer never stalls.
    pub fn set_target(&mut self, target: Option<SourceKey>) {
        self.target = target;
        match target {
            None => {
                self.state = DownTrackState::Paused;
                self.current = None;
            }
            Some(t) if Some(t) == self.current && self.state == DownTrackState::Forwarding => {}
            Some(_) if self.state == DownTrackState::Paused => {
                self.state = DownTrackState::WaitingKeyframe;
            }
            Some(_) => {}
        }
    }

    /// Whether packets of `source` matter to this DownTrack at all.
    pub fn wants(&self, source: SourceKey) -> bool {
        self.target == Some(source)
            || (self.state == DownTrackState::Forwarding && self.current == Some(source))
    }

    /// Rewrites `pkt` from `source` for this viewer, or says why it is dropped.
    pub fn translate(
        &mut self,
        source: SourceKey,
        pkt: &SourcePacket,
        now: Instant,
    ) -> Result<Translated, DropReason> {
        let mut switched = false;
        if self.target == Some(source) && self.current != Some(source)
            || self.target == Some(source) && self.state != DownTrackState::Forwarding
        {
            if self.is_video && !pkt.keyframe_start {
                return if self.state == DownTrackState::Forwarding && self.current.is_some() {
                    Err(DropReason::SwitchPending)
                } else {
                    Err(DropReason::WaitingKeyframe)
                };
            }
            self.switch_to(source, pkt, now);
            switched = true;
        } else if self.state != DownTrackState::Forwarding || self.current != Some(source) {
            return Err(DropReason::NotSelected);
        }

        if pkt.seq < self.switch_seq {
            return Err(DropReason::BeforeSwitch);
        }
        if !switched && pkt.seq == self.highest_in {
            return Err(DropReason::Duplicate);
        }
        self.highest_in = self.highest_in.max(pkt.seq);
        let seq = pkt.seq.wrapping_add(self.offsets.seq);
        let ts = pkt.ts.wrapping_add(self.offsets.ts);
        let (vp8_patch, out_pid, out_tl0) = vp8_rewrite(pkt, &self.offsets);
        let newest = self.last.is_none_or(|l| seq > l.seq);
        if newest {
            self.last = Some(Last {
                seq,
                ts,
                at: pkt.arrival.max(now),
                picture_id: out_pid.or(self.last.and_then(|l| l.picture_id)),
                tl0: out_tl0.or(self.last.and_then(|l| l.tl0)),
            });
        }
        Ok(Translated {
            seq,
            ts,
            vp8_patch,
            switched,
        })
    }

    /// The source packet behind outgoing sequence number `out_seq`, if it
    /// was sent within the last [`SEGMENTS`] switches.
    pub fn resend(&self, out_seq: u64) -> Option<ResendRef> {
        let segment = self.segment_of(out_seq)?;
        Some(ResendRef {
            source: segment.source,
            in_seq: out_seq.wrapping_sub(segment.offsets.seq),
            since: segment.started,
        })
    }

    /// `pkt` (found through [`Forwarder::resend`]) rewritten as it was sent
    /// under `out_seq`.
    pub fn rewrite_resend(&self, out_seq: u64, pkt: &SourcePacket) -> Option<Translated> {
        let segment = self.segment_of(out_seq)?;
        let (vp8_patch, _, _) = vp8_rewrite(pkt, &segment.offsets);
        Some(Translated {
            seq: out_seq,
            ts: pkt.ts.wrapping_add(segment.offsets.ts),
            vp8_patch,
            switched: false,
        })
    }

    /// The newest segment that `out_seq` can belong to: sent already, and
    /// at or after the segment's start.
    fn segment_of(&self, out_seq: u64) -> Option<&Segment> {
        if self.last.is_none_or(|l| out_seq > l.seq) {
            return None;
        }
        (0..SEGMENTS)
            .map(|back| (self.segment_head + SEGMENTS - back) % SEGMENTS)
            .filter_map(|i| self.segments[i].as_ref())
            .find(|s| s.out_start <= out_seq)
    }

    fn switch_to(&mut self, source: SourceKey, pkt: &SourcePacket, now: Instant) {
        let vp8 = pkt.vp8.as_ref();
        match self.last {
            None => {
                self.offsets = Offsets {
                    seq: self.first_seq.wrapping_sub(pkt.seq),
                    ts: 0,
                    picture_id: 0,
                    tl0: 0,
                };
            }
            Some(last) => {
                // Advance the clock by the wall time since the last packet
                // sent, at least one tick, so the decoder sees a new frame.
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000)
                    .clamp(1, u64::from(u32::MAX / 2)) as u32;
                let next_pid = last.picture_id.map_or(0, |p| p.wrapping_add(1));
                let next_tl0 = last.tl0.map_or(0, |t| t.wrapping_add(1));
                self.offsets = Offsets {
                    seq: (last.seq + 1).wrapping_sub(pkt.seq),
                    ts: last.ts.wrapping_add(ticks).wrapping_sub(pkt.ts),
                    picture_id: vp8
                        .and_then(|v| v.picture_id)
                        .map_or(0, |(pid, _)| next_pid.wrapping_sub(pid)),
                    tl0: vp8
                        .and_then(|v| v.tl0_pic_idx)
                        .map_or(0, |t| next_tl0.wrapping_sub(t)),
                };
            }
        }
        self.current = Some(source);
        self.switch_seq = pkt.seq;
        self.highest_in = pkt.seq;
        self.state = DownTrackState::Forwarding;
        self.segment_head = (self.segment_head + 1) % SEGMENTS;
        self.segments[self.segment_head] = Some(Segment {
            source,
            out_start: pkt.seq.wrapping_add(self.offsets.seq),
            offsets: self.offsets,
            started: now,
        });
    }
}

/// The VP8 descriptor patch for `pkt` under `offsets`, and the PictureID
/// and TL0PICIDX it writes.
fn vp8_rewrite(
    pkt: &SourcePacket,
    offsets: &Offsets,
) -> (Option<Vp8Patch>, Option<u16>, Option<u8>) {
    let Some(vp8) = &pkt.vp8 else {
        return (None, None, None);
    };
    let (mut out_pid, mut out_tl0) = (None, None);
    let mut builder = vp8.descriptor.patch();
    if let Some((pid, mask)) = vp8.picture_id {
        let p = pid.wrapping_add(offsets.picture_id) & mask;
        builder = builder.picture_id(p);
        out_pid = Some(p);
    }
    if let Some(tl0) = vp8.tl0_pic_idx {
        let t = tl0.wrapping_add(offsets.tl0);
        builder = builder.tl0_pic_idx(t);
        out_tl0 = Some(t);
    }
    (builder.build().ok(), out_pid, out_tl0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::packet::Vp8Fields;
    use std::sync::Arc;
    use std::time::Duration;

    const L0: SourceKey = SourceKey { epoch: 0, layer: 0 };
    const L1: SourceKey = SourceKey { epoch: 0, layer: 1 };
    const E1L0: SourceKey = SourceKey { epoch: 1, layer: 0 };

    fn pkt(seq: u64, ts: u32, key: bool, at: Instant) -> SourcePacket {
        SourcePacket {
            seq,
            ts,
            marker: false,
            ext: Default::default(),
            payload: Arc::from(&[0u8; 4][..]),
            arrival: at,
            keyframe_start: key,
            vp8: None,
            dimensions: None,
        }
    }

    /// One step of a table: a packet from a source at a time, and what the
    /// viewer must see (`Some((seq, ts))`) or why it is dropped.
    struct Step {
        source: SourceKey,
        seq: u64,
        ts: u32,
        key: bool,
        at_ms: u64,
        want: Result<(u64, u32), DropReason>,
    }

    fn step(
        source: SourceKey,
        seq: u64,
        ts: u32,
        key: bool,
        at_ms: u64,
        want: Result<(u64, u32), DropReason>,
    ) -> Step {
        Step {
            source,
            seq,
            ts,
            key,
            at_ms,
            want,
        }
    }

    fn run(f: &mut Forwarder, t0: Instant, steps: &[Step]) {
        for (i, s) in steps.iter().enumerate() {
            let at = t0 + Duration::from_millis(s.at_ms);
            let got = f
                .translate(s.source, &pkt(s.seq, s.ts, s.key, at), at)
                .map(|t| (t.seq, t.ts));
            assert_eq!(got, s.want, "step {i}");
        }
    }

    #[test]
    fn keyframe_gate_and_contiguous_rewrite() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 100);
        f.set_target(Some(L0));
        run(
            &mut f,
            t0,
            &[
                step(L0, 5000, 9000, false, 0, Err(DropReason::WaitingKeyframe)),
                step(L0, 5001, 12000, true, 33, Ok((100, 12000))),
                step(L0, 5002, 12000, false, 33, Ok((101, 12000))),
                step(L0, 5004, 15000, false, 66, Ok((103, 15000))),
                step(L0, 5003, 15000, false, 66, Ok((102, 15000))),
                step(L0, 5000, 9000, false, 67, Err(DropReason::BeforeSwitch)),
                step(L0, 5004, 15000, false, 68, Err(DropReason::Duplicate)),
                step(L1, 7000, 1, true, 70, Err(DropReason::NotSelected)),
            ],
        );
    }

    #[test]
    fn sequence_wraps_at_65535_without_a_gap() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 65534);
        f.set_target(Some(L0));
        // Extended incoming seqs cross 65535 → 65536; outgoing continues too.
        run(
            &mut f,
            t0,
            &[
                step(L0, 65_534, 0, true, 0, Ok((65_534, 0))),
                step(L0, 65_535, 0, false, 0, Ok((65_535, 0))),
                step(L0, 65_536, 3000, false, 33, Ok((65_536, 3000))),
                step(L0, 65_537, 3000, false, 33, Ok((65_537, 3000))),
            ],
        );
        assert_eq!(65_536u64 as u16, 0, "the wire carries the low 16 bits");
    }

    #[test]
    fn timestamps_stay_continuous_across_a_layer_switch() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 0);
        f.set_target(Some(L0));
        run(
            &mut f,
            t0,
            &[
                step(L0, 10, 1_000, true, 0, Ok((0, 1_000))),
                step(L0, 11, 4_000, false, 33, Ok((1, 4_000))),
            ],
        );
        f.set_target(Some(L1));
        run(
            &mut f,
            t0,
            &[
                // Current layer keeps flowing until the target's keyframe.
                step(L1, 900, 777_000, false, 50, Err(DropReason::SwitchPending)),
                step(L0, 12, 7_000, false, 66, Ok((2, 7_000))),
                // Keyframe of L1 arrives 34 ms after the last sent packet:
                // 34 ms × 90 kHz = 3060 ticks later.
                step(L1, 901, 780_000, true, 100, Ok((3, 10_060))),
                step(L1, 902, 783_000, false, 133, Ok((4, 13_060))),
                step(L0, 13, 10_000, false, 134, Err(DropReason::NotSelected)),
            ],
        );
    }

    #[test]
    fn a_publisher_reconnect_continues_the_viewers_numbering() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 0);
        f.set_target(Some(L0));
        run(&mut f, t0, &[step(L0, 40_000, 50, true, 0, Ok((0, 50)))]);
        // The new session reuses SSRCs but restarts its numbering; 2 s of
        // silence in between.
        f.set_target(Some(E1L0));
        run(
            &mut f,
            t0,
            &[
                step(E1L0, 3, 100, false, 2_000, Err(DropReason::SwitchPending)),
                step(E1L0, 4, 3_100, true, 2_033, Ok((1, 50 + 182_970))),
                step(E1L0, 5, 3_100, false, 2_033, Ok((2, 50 + 182_970))),
            ],
        );
    }

    #[test]
    fn audio_switches_without_a_keyframe() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(false, 48_000, 7);
        f.set_target(Some(L0));
        run(&mut f, t0, &[step(L0, 1, 960, false, 0, Ok((7, 960)))]);
        f.set_target(Some(E1L0));
        run(
            &mut f,
            t0,
            &[step(E1L0, 500, 0, false, 20, Ok((8, 960 + 960)))],
        );
    }

    #[test]
    fn paused_downtracks_forward_nothing() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 0);
        f.set_target(Some(L0));
        run(&mut f, t0, &[step(L0, 1, 0, true, 0, Ok((0, 0)))]);
        f.set_target(None);
        assert_eq!(f.state(), DownTrackState::Paused);
        run(
            &mut f,
            t0,
            &[step(L0, 2, 0, false, 1, Err(DropReason::NotSelected))],
        );
    }

    #[test]
    fn a_nack_maps_back_to_the_source_packet_across_switches() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 100);
        f.set_target(Some(L0));
        run(
            &mut f,
            t0,
            &[
                step(L0, 5000, 9000, true, 0, Ok((100, 9000))),
                step(L0, 5001, 9000, false, 0, Ok((101, 9000))),
            ],
        );
        f.set_target(Some(L1));
        run(&mut f, t0, &[step(L1, 700, 1, true, 34, Ok((102, 12060)))]);
        let at = |ms| t0 + Duration::from_millis(ms);
        // (outgoing seq, what it maps to)
        let cases = [
            (100, Some((L0, 5000, at(0)))),
            (101, Some((L0, 5001, at(0)))),
            (102, Some((L1, 700, at(34)))),
            (103, None),
            (99, None),
        ];
        for (out, want) in cases {
            let got = f.resend(out).map(|r| (r.source, r.in_seq, r.since));
            assert_eq!(got, want, "out {out}");
        }
        let resent = f.rewrite_resend(102, &pkt(700, 1, true, t0)).unwrap();
        assert_eq!((resent.seq, resent.ts), (102, 12060), "rewritten as sent");
    }

    #[test]
    fn vp8_picture_id_continues_across_a_switch() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 0);
        let vp8_packet = |seq, pid: u16, key| {
            let mut p = pkt(seq, 0, key, t0);
            let bytes = [
                0x90,
                0xe0,
                0x80 | (pid >> 8) as u8,
                pid as u8,
                9,
                0x00,
                if key { 0x10 } else { 0x11 },
                0,
            ];
            p.vp8 = Vp8Fields::parse(&bytes);
            p.payload = Arc::from(&bytes[..]);
            p
        };
        f.set_target(Some(L0));
        let a = f.translate(L0, &vp8_packet(1, 0x7ffe, true), t0).unwrap();
        let b = f.translate(L0, &vp8_packet(2, 0x7fff, false), t0).unwrap();
        f.set_target(Some(L1));
        let c = f.translate(L1, &vp8_packet(50, 300, true), t0).unwrap();
        let expect = |in_pid, out_pid, out_tl0| {
            let p = vp8_packet(0, in_pid, false);
            let d = p.vp8.unwrap().descriptor;
            d.patch()
                .picture_id(out_pid)
                .tl0_pic_idx(out_tl0)
                .build()
                .ok()
        };
        // PictureID 0x7ffe, 0x7fff, then wraps to 0 on the new layer; TL0PICIDX
        // advances by one at the switch.
        assert_eq!(
            [a.vp8_patch, b.vp8_patch, c.vp8_patch],
            [
                expect(0x7ffe, 0x7ffe, 9),
                expect(0x7fff, 0x7fff, 9),
                expect(300, 0, 10)
            ]
        );
    }
}
