//! Counters the media workers bump on their hot path. Each worker has its own
//! [`Metrics`], written by that worker's thread alone (a plain load and
//! store, no locked read-modify-write, no cache line shared between
//! workers) and summed when `/metrics` is scraped (see [`crate::exposition`]). Drops are counted by
//! reason, never logged per packet.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a packet, or a datagram, was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The viewer waits for a keyframe of its target layer.
    WaitingKeyframe,
    /// The packet belongs to a layer the viewer does not receive.
    NotSelected,
    /// The viewer is switching to this layer and waits for its keyframe
    /// (the previous layer keeps flowing meanwhile).
    SwitchPending,
    /// Older than the viewer's switch point; sending it would rewind.
    BeforeSwitch,
    /// Already forwarded (served from the GopCache, then arrived live).
    Duplicate,
    /// Queued behind a GOP replay (not a loss; sent when the replay gets there).
    Deferred,
    /// A datagram from an address and ufrag no session knows.
    UnknownPeer,
    /// A datagram that is not STUN, DTLS, RTP or RTCP, or that str0m refused.
    Malformed,
    /// RTP on an SSRC/mid that is not a track of the broadcast.
    UnknownTrack,
    /// The viewer did not negotiate the publisher's codec.
    CodecMismatch,
    /// The worker's send queue was full (a socket that stopped draining).
    SendQueueFull,
    /// The kernel refused the datagram (e.g. an unreachable peer).
    SendFailed,
    /// Another worker's inbox was full: that worker's viewers miss this
    /// packet (a worker that cannot keep up never blocks the publisher's).
    MirrorLagging,
    /// A NACKed packet is no longer in the layer's packet store, or too old
    /// to be worth resending.
    ResendUnavailable,
    /// A viewer's resend budget (a share of its layer's bitrate) was spent.
    ResendBudget,
    /// The recorder's queue was full (storage slower than the broadcast):
    /// the recording misses this packet, the viewers do not.
    RecorderBackpressure,
    /// An ICE-TCP viewer's send queue was full (its TCP connection drains
    /// slower than its stream): lost for it, as on a congested UDP link.
    TcpSendQueueFull,
}

impl DropReason {
    pub const ALL: [DropReason; 17] = [
        DropReason::WaitingKeyframe,
        DropReason::NotSelected,
        DropReason::SwitchPending,
        DropReason::BeforeSwitch,
        DropReason::Duplicate,
        DropReason::Deferred,
        DropReason::UnknownPeer,
        DropReason::Malformed,
        DropReason::UnknownTrack,
        DropReason::CodecMismatch,
        DropReason::SendQueueFull,
        DropReason::SendFailed,
        DropReason::MirrorLagging,
        DropReason::ResendUnavailable,
        DropReason::ResendBudget,
        DropReason::RecorderBackpressure,
        DropReason::TcpSendQueueFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::WaitingKeyframe => "waiting_keyframe",
            DropReason::NotSelected => "not_selected",
            DropReason::SwitchPending => "switch_pending",
            DropReason::BeforeSwitch => "before_switch",
            DropReason::Duplicate => "duplicate",
            DropReason::Deferred => "deferred",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::Malformed => "malformed",
            DropReason::UnknownTrack => "unknown_track",
            DropReason::CodecMismatch => "codec_mismatch",
            DropReason::SendQueueFull => "send_queue_full",
            DropReason::SendFailed => "send_failed",
            DropReason::MirrorLagging => "mirror_lagging",
            DropReason::ResendUnavailable => "resend_unavailable",
            DropReason::ResendBudget => "resend_budget",
            DropReason::RecorderBackpressure => "recorder_backpressure",
            DropReason::TcpSendQueueFull => "tcp_send_queue_full",
        }
    }
}

/// Every counter the media plane exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Datagrams read from the UDP socket.
    pub datagrams_in: AtomicU64,
    /// Datagrams written to the UDP socket.
    pub datagrams_out: AtomicU64,
    /// RTP packets received from publishers.
    pub packets_in: AtomicU64,
    /// RTP packets handed to viewers (before SRTP and pacing).
    pub packets_forwarded: AtomicU64,
    /// Packets served to joining viewers from a GopCache.
    pub gop_cache_packets: AtomicU64,
    /// Keyframe requests (PLI/FIR) sent to publishers.
    pub keyframe_requests: AtomicU64,
    /// Sessions ended because handling their input panicked or errored.
    pub sessions_failed: AtomicU64,
    /// Times a media worker panicked outside any session and was restarted.
    pub worker_restarts: AtomicU64,
    /// NACKed packets resent from a layer's packet store.
    pub resends: AtomicU64,
    /// Packets handed to another worker's Mirror.
    pub bus_packets: AtomicU64,
    /// Times the worker's load governor raised its shed level.
    pub shed_raises: AtomicU64,
    /// The worker's current shed level (0 none … 3 audio only).
    pub shed_level: AtomicU64,
    /// The worker's busy share over its last tick, in thousandths.
    pub busy_permille: AtomicU64,
    /// Live publisher sessions.
    pub publishers: AtomicU64,
    /// Live viewer sessions.
    pub viewers: AtomicU64,
    /// Time from a viewer's layer-switch decision to the first packet of
    /// the new layer (its keyframe) sent to it.
    pub layer_switch: Histogram,
    /// Time from a packet's arrival on the node to its fan-out to this
    /// worker's viewers (the bus and every queue before the send).
    pub forward_delay: Histogram,
    /// Time from a viewer's session being created to the first video
    /// packet sent to it (its first frame, from the GopCache or live).
    pub join_time: Histogram,
    drops: [AtomicU64; DropReason::ALL.len()],
}

/// Upper bounds (seconds) of the switch-latency buckets.
pub const SWITCH_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// A Prometheus histogram of durations, written by the media worker alone.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; SWITCH_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts `d` in the first bucket that holds it (buckets are kept
    /// apart; the encoder makes them cumulative).
    pub fn record(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = SWITCH_BUCKETS.iter().position(|&bound| secs <= bound) {
            let bucket = &self.buckets[i];
            bucket.store(bucket.load(Relaxed) + 1, Relaxed);
        }
        self.count.store(self.count.load(Relaxed) + 1, Relaxed);
        let micros = self.sum_micros.load(Relaxed);
        self.sum_micros
            .store(micros.wrapping_add(d.as_micros() as u64), Relaxed);
    }

    /// `(sum in seconds, count, per-bucket counts)` summed over several
    /// workers' histograms.
    pub fn sum_of<'a>(
        all: impl Iterator<Item = &'a Histogram>,
    ) -> (f64, u64, [u64; SWITCH_BUCKETS.len()]) {
        let (mut micros, mut count, mut buckets) = (0u64, 0u64, [0u64; SWITCH_BUCKETS.len()]);
        for h in all {
            for (t, b) in buckets.iter_mut().zip(&h.buckets) {
                *t += b.load(Relaxed);
            }
            count += h.count.load(Relaxed);
            micros += h.sum_micros.load(Relaxed);
        }
        (micros as f64 / 1e6, count, buckets)
    }
}

impl Metrics {
    /// Adds to a counter of this worker's (single writer: a plain load and
    /// store, not a locked add).
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn inc(&self, counter: &AtomicU64) {
        self.add(counter, 1);
    }

    pub fn count_drop(&self, reason: DropReason) {
        self.inc(&self.drops[reason as usize]);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Relaxed)
    }
}
