//! The Source/Mirror seam: the only messages between a broadcast's
//! [`Source`](super::source::Source) (on the worker that owns its
//! publisher) and its [`Mirror`](super::mirror::Mirror)s (one per worker
//! with viewers of it).
//!
//! Downstream: [`Downstream::Packet`] (an `Arc`, never a copy),
//! [`Downstream::Epoch`] (the publisher session and what is known of its
//! tracks), [`Downstream::Ended`]. Upstream: [`Upstream::KeyframeRequest`]
//! for a layer, [`Upstream::Wanted`] layers.
//!
//! The same messages travel three ways: to a Mirror on the same worker
//! through the worker's local queue (handled after the current session's
//! events, so nothing re-enters a session mid-drain), to another worker
//! through its bounded inbox ([`Peers`]: full means drop and count, never
//! block the publisher), and, later, to another node or a relaying viewer.

use std::sync::Arc;
use str0m::format::CodecSpec;
use tokio::sync::mpsc;

use crate::core::keyframe::VideoCodec;
use crate::core::SourcePacket;
use crate::ids::BroadcastName;
use crate::metrics::{DropReason, Metrics};

/// Messages a worker's inbox holds, at most this many.
pub const INBOX: usize = 8192;

/// Which incoming track a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackRef {
    Audio,
    Video { layer: u8 },
}

/// A publisher session of a broadcast, as Mirrors need to know it.
#[derive(Debug, Clone)]
pub struct EpochInfo {
    /// Unique on this node for every publisher session (a reconnect is a
    /// new epoch; viewers continue on it with rewritten numbering).
    pub epoch: u32,
    /// A publisher is attached (false once it left; viewers wait).
    pub live: bool,
    /// Layers the publisher's offer announced (1 without simulcast).
    pub expected_layers: usize,
    pub video: Option<(VideoCodec, CodecSpec)>,
    pub audio: Option<CodecSpec>,
    /// The publisher obeys layer pause requests: its paused layers stay
    /// selectable and selecting one resumes it.
    pub controllable: bool,
    /// Layers currently paused at the publisher (bit per layer index).
    pub paused: u8,
}

#[derive(Debug, Clone)]
pub enum Downstream {
    Packet(TrackRef, Arc<SourcePacket>),
    Epoch(Arc<EpochInfo>),
    /// The publisher session ended: viewers keep their sessions and wait
    /// for the next epoch, and no stale GOP may be served meanwhile.
    Ended,
}

#[derive(Debug, Clone, Copy)]
pub enum Upstream {
    /// A viewer needs a keyframe of this layer.
    KeyframeRequest(u8),
    /// Layers some viewer of the sending worker receives or targets now
    /// (bit per layer index).
    Wanted(u8),
}

/// A message between the workers of one node.
#[derive(Debug, Clone)]
pub enum Bus {
    /// To the Mirror of a broadcast, from the worker of its Source.
    Down(BroadcastName, usize, Downstream),
    /// To the Source of a broadcast, from one of its Mirrors.
    Up {
        broadcast: BroadcastName,
        msg: Upstream,
    },
}

/// The inboxes of every worker of the node (this worker's own included,
/// unused).
#[derive(Clone)]
pub struct Peers {
    inboxes: Vec<mpsc::Sender<Bus>>,
}

impl Peers {
    pub fn new(inboxes: Vec<mpsc::Sender<Bus>>) -> Self {
        Peers { inboxes }
    }

    /// Hands `msg` to worker `to`; a full inbox drops a packet (counted) but
    /// never blocks. Control messages (epochs, upstream) are small and rare;
    /// they are dropped only when the inbox is full too, and counted the
    /// same way (the next epoch or wanted report repairs them).
    pub fn send(&self, to: usize, msg: Bus, metrics: &Metrics) {
        let Some(inbox) = self.inboxes.get(to) else {
            return;
        };
        let is_packet = matches!(msg, Bus::Down(_, _, Downstream::Packet(..)));
        match inbox.try_send(msg) {
            Ok(()) => {
                if is_packet {
                    metrics.inc(&metrics.bus_packets);
                }
            }
            Err(_) => metrics.count_drop(DropReason::MirrorLagging),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    fn packet() -> Arc<SourcePacket> {
        Arc::new(SourcePacket {
            seq: 1,
            ts: 0,
            marker: true,
            ext: Default::default(),
            payload: Arc::from(vec![1u8; 100]),
            arrival: Instant::now(),
            keyframe_start: false,
            vp8: None,
            dimensions: None,
        })
    }

    #[test]
    fn a_full_inbox_drops_and_counts_and_never_blocks() {
        let (tx, mut rx) = mpsc::channel(2);
        let peers = Peers::new(vec![tx]);
        let metrics = Metrics::default();
        let pkt = packet();
        let name = BroadcastName::new("live");
        for _ in 0..5 {
            peers.send(
                0,
                Bus::Down(
                    name.clone(),
                    1,
                    Downstream::Packet(TrackRef::Audio, pkt.clone()),
                ),
                &metrics,
            );
        }
        assert_eq!(metrics.bus_packets.load(Ordering::Relaxed), 2);
        assert_eq!(metrics.drops(DropReason::MirrorLagging), 3);
        match rx.try_recv() {
            Ok(Bus::Down(n, 1, Downstream::Packet(TrackRef::Audio, p))) => {
                assert_eq!(n, name);
                assert!(Arc::ptr_eq(&p, &pkt), "an Arc crosses, not a copy");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Messages to a worker that does not exist vanish.
        peers.send(
            9,
            Bus::Up {
                broadcast: name,
                msg: Upstream::Wanted(1),
            },
            &metrics,
        );
        assert_eq!(metrics.drops(DropReason::MirrorLagging), 3);
    }
}
