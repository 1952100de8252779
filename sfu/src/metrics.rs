//! Counters the media workers bump on their hot path. Each worker has its own
//! [`Metrics`], written by that worker's thread alone (a plain load and
//! store, no locked read-modify-write, no cache line shared between
//! workers) and summed when `/metrics` is scraped. Drops are counted by
//! reason, never logged per packet.

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
    /// Another worker's inbox was full: that worker's viewers miss this
    /// packet (a worker that cannot keep up never blocks the publisher's).
    MirrorLagging,
    /// A NACKed packet is no longer in the layer's packet store, or too old
    /// to be worth resending.
    ResendUnavailable,
    /// A viewer's resend budget (a share of its layer's bitrate) was spent.
    ResendBudget,
}

impl DropReason {
    pub const ALL: [DropReason; 15] = [
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

    /// The sum of several workers' histograms.
    fn render_sum<'a>(
        all: impl Iterator<Item = &'a Histogram> + Clone,
        name: &str,
        help: &str,
        out: &mut String,
    ) {
        let total = Histogram::default();
        for h in all {
            for (t, b) in total.buckets.iter().zip(&h.buckets) {
                t.fetch_add(b.load(Relaxed), Relaxed);
            }
            total.count.fetch_add(h.count.load(Relaxed), Relaxed);
            total
                .sum_micros
                .fetch_add(h.sum_micros.load(Relaxed), Relaxed);
        }
        total.render(name, help, out);
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

    /// Prometheus text exposition of every counter, summed over `workers`
    /// (gauges of shed level and busy share per worker).
    pub fn render_prometheus(workers: &[&Metrics], out: &mut String) {
        let sum = |f: &dyn Fn(&Metrics) -> &AtomicU64| -> u64 {
            workers.iter().map(|m| f(m).load(Relaxed)).sum()
        };
        type Field = fn(&Metrics) -> &AtomicU64;
        let counters: [(&str, &str, Field); 11] = [
            (
                "relaycast_datagrams_in_total",
                "UDP datagrams received",
                |m| &m.datagrams_in,
            ),
            ("relaycast_datagrams_out_total", "UDP datagrams sent", |m| {
                &m.datagrams_out
            }),
            (
                "relaycast_rtp_packets_in_total",
                "RTP packets received from publishers",
                |m| &m.packets_in,
            ),
            (
                "relaycast_rtp_packets_forwarded_total",
                "RTP packets forwarded to viewers",
                |m| &m.packets_forwarded,
            ),
            (
                "relaycast_gop_cache_packets_total",
                "packets served from GOP caches to joining viewers",
                |m| &m.gop_cache_packets,
            ),
            (
                "relaycast_keyframe_requests_total",
                "keyframe requests sent to publishers",
                |m| &m.keyframe_requests,
            ),
            (
                "relaycast_sessions_failed_total",
                "sessions ended by an error in their handling",
                |m| &m.sessions_failed,
            ),
            (
                "relaycast_worker_restarts_total",
                "media workers restarted after a panic outside any session",
                |m| &m.worker_restarts,
            ),
            (
                "relaycast_resends_total",
                "NACKed packets resent from a layer's packet store",
                |m| &m.resends,
            ),
            (
                "relaycast_bus_packets_total",
                "packets handed from a Source to another worker's Mirror",
                |m| &m.bus_packets,
            ),
            (
                "relaycast_shed_raises_total",
                "times a worker's load governor shed another layer",
                |m| &m.shed_raises,
            ),
        ];
        for (name, help, field) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                sum(&field)
            );
        }
        let gauges: [(&str, &str, Field); 2] = [
            ("relaycast_publishers", "live publisher sessions", |m| {
                &m.publishers
            }),
            ("relaycast_viewers", "live viewer sessions", |m| &m.viewers),
        ];
        for (name, help, field) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                sum(&field)
            );
        }
        let per_worker: [(&str, &str, Field, f64); 3] = [
            (
                "relaycast_worker_viewers",
                "live viewer sessions on a worker",
                |m| &m.viewers,
                1.0,
            ),
            (
                "relaycast_worker_shed_level",
                "what a worker sheds: 0 nothing, 1 top layer, 2 all but the lowest, 3 video",
                |m| &m.shed_level,
                1.0,
            ),
            (
                "relaycast_worker_busy_ratio",
                "share of its last tick a worker spent working",
                |m| &m.busy_permille,
                1000.0,
            ),
        ];
        for (name, help, field, scale) in per_worker {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (i, m) in workers.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{worker=\"{i}\"}} {}",
                    field(m).load(Relaxed) as f64 / scale
                );
            }
        }
        Histogram::render_sum(
            workers.iter().map(|m| &m.layer_switch),
            "relaycast_layer_switch_seconds",
            "time from a viewer's layer-switch decision to the first packet of the new layer",
            out,
        );
        Histogram::render_sum(
            workers.iter().map(|m| &m.forward_delay),
            "relaycast_forward_delay_seconds",
            "time from a packet's arrival on the node to its fan-out to a worker's viewers",
            out,
        );
        let _ = writeln!(out, "# HELP relaycast_drops_total packets or datagrams not forwarded, by reason\n# TYPE relaycast_drops_total counter");
        for reason in DropReason::ALL {
            let total: u64 = workers.iter().map(|m| m.drops(reason)).sum();
            let _ = writeln!(
                out,
                "relaycast_drops_total{{reason=\"{}\"}} {total}",
                reason.as_str(),
            );
        }
    }
}
