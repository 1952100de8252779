//! Counters the media worker bumps on its hot path (relaxed atomics written by
//! one thread, read by `/metrics`). Drops are counted by reason, never logged
//! per packet.

use std::fmt::Write as _;
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
}

impl DropReason {
    pub const ALL: [DropReason; 12] = [
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
    /// Live publisher sessions.
    pub publishers: AtomicU64,
    /// Live viewer sessions.
    pub viewers: AtomicU64,
    /// Time from a viewer's layer-switch decision to the first packet of
    /// the new layer (its keyframe) sent to it.
    pub layer_switch: Histogram,
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
    pub fn record(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(SWITCH_BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(SWITCH_BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {:.6}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

impl Metrics {
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Relaxed)
    }

    /// Prometheus text exposition of every counter.
    pub fn render_prometheus(&self, out: &mut String) {
        let counters = [
            (
                "relaycast_datagrams_in_total",
                "UDP datagrams received",
                &self.datagrams_in,
            ),
            (
                "relaycast_datagrams_out_total",
                "UDP datagrams sent",
                &self.datagrams_out,
            ),
            (
                "relaycast_rtp_packets_in_total",
                "RTP packets received from publishers",
                &self.packets_in,
            ),
            (
                "relaycast_rtp_packets_forwarded_total",
                "RTP packets forwarded to viewers",
                &self.packets_forwarded,
            ),
            (
                "relaycast_gop_cache_packets_total",
                "packets served from GOP caches to joining viewers",
                &self.gop_cache_packets,
            ),
            (
                "relaycast_keyframe_requests_total",
                "keyframe requests sent to publishers",
                &self.keyframe_requests,
            ),
            (
                "relaycast_sessions_failed_total",
                "sessions ended by an error in their handling",
                &self.sessions_failed,
            ),
            (
                "relaycast_worker_restarts_total",
                "media workers restarted after a panic outside any session",
                &self.worker_restarts,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        for (name, help, value) in [
            (
                "relaycast_publishers",
                "live publisher sessions",
                &self.publishers,
            ),
            ("relaycast_viewers", "live viewer sessions", &self.viewers),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                value.load(Relaxed)
            );
        }
        self.layer_switch.render(
            "relaycast_layer_switch_seconds",
            "time from a viewer's layer-switch decision to the first packet of the new layer",
            out,
        );
        let _ = writeln!(out, "# HELP relaycast_drops_total packets or datagrams not forwarded, by reason\n# TYPE relaycast_drops_total counter");
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "relaycast_drops_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.drops(reason)
            );
        }
    }
}
