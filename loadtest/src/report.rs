//! [`Report`]: the result of one run, rendered for people ([`Report::human`],
//! [`Report::summary_line`]) and machines ([`Report::to_json`]), and the
//! pass/fail verdict.
//!
//! Invariants: a run passes only when every join succeeded, unrecovered
//! loss is at most [`MAX_LOSS`] and no watching viewer's media had stopped
//! at the end ([`MEDIA_STOPPED_AFTER`]: a stream gone dark shows no sequence
//! gap, so loss alone would call it a pass); the summary line is one line
//! and states the verdict first.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::stats::{percentiles, Histograms};
use crate::swarm::ViewerOutcome;

/// Unrecovered loss above this fails the run.
pub const MAX_LOSS: f64 = 0.01;
/// A viewer still watching whose latest packet is older than this at the
/// end of the run has lost its stream (audio alone sends 50 packets/s).
pub const MEDIA_STOPPED_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
/// Above this share of its cores, the tool is the bottleneck.
pub const TOOL_CPU_WARNING: f64 = 0.9;

/// Server-side figures over the measurement window.
#[derive(Debug, Default, Clone)]
pub struct ServerFigures {
    pub forwarded_per_s: Option<f64>,
    pub packets_in_per_s: Option<f64>,
    /// UDP datagrams the server actually sent (after SRTP and pacing).
    pub datagrams_out_per_s: Option<f64>,
    /// Media-worker CPU as a fraction of one core.
    pub worker_cpu: Option<f64>,
    pub us_per_packet: Option<f64>,
    pub gop_cache_packets: Option<f64>,
    pub keyframe_requests: Option<f64>,
    pub drops: BTreeMap<String, f64>,
    /// The whole server process's CPU (HTTP, control and media), in cores.
    pub process_cpu: Option<f64>,
    /// Server RSS before the first viewer and at the end of the window.
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
}

impl ServerFigures {
    /// RSS growth per joined viewer, in bytes.
    pub fn rss_per_viewer(&self, joined: usize) -> Option<f64> {
        let (before, after) = (self.rss_before?, self.rss_after?);
        (joined > 0).then(|| (after as f64 - before as f64) / joined as f64)
    }
}

/// What the tool's sockets held unread, sampled once a second.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    pub mean_bytes: f64,
    pub max_bytes: u64,
    /// Payload bytes the viewers received per second in the window.
    pub bytes_per_s: f64,
    /// Receive-buffer bytes per datagram byte ([`crate::probe::queued_bytes_per_byte`]
    /// at the run's mean datagram size; 1 when it could not be measured).
    pub queued_per_byte: f64,
}

/// The tool adds more delay than this to its own latency figures when it
/// falls behind reading: a fifth of the 50 ms latency budget.
pub const TOOL_DELAY_WARNING_MS: f64 = 10.0;

/// A single sample this late means the tool stalled for longer than the
/// latency budget: its p99 latency may be its own.
pub const TOOL_STALL_WARNING_MS: f64 = 50.0;

impl Backlog {
    /// The mean backlog in time: how late the tool reads, on average.
    pub fn delay_ms(&self) -> f64 {
        self.mean_bytes / self.queued_per_byte.max(1.0) / self.bytes_per_s.max(1.0) * 1000.0
    }

    /// The largest sampled backlog in time.
    pub fn max_delay_ms(&self) -> f64 {
        self.max_bytes as f64 / self.queued_per_byte.max(1.0) / self.bytes_per_s.max(1.0) * 1000.0
    }
}

pub struct Report {
    pub viewers: usize,
    pub layer: String,
    pub duration_s: f64,
    pub threads: usize,
    pub outcomes: Vec<ViewerOutcome>,
    pub histograms: Histograms,
    /// Measurement window, and whether it began after every join settled.
    pub window_s: f64,
    /// RTP packets the viewers received per second in the window; far below
    /// `forwarded_per_s`, the server queues (pacing) more than it sends.
    pub received_per_s: f64,
    pub steady: bool,
    pub server: ServerFigures,
    /// This process's CPU, in cores, and the cores it may use.
    pub tool_cpu: Option<f64>,
    pub tool_cores: usize,
    pub udp_rcvbuf_errors: Option<u64>,
    /// Of those, the drops on the tool's own sockets.
    pub tool_socket_drops: Option<u64>,
    /// Viewers that left and were replaced (`--churn`).
    pub churned: usize,
    /// Bytes waiting in the tool's own receive buffers over the window.
    pub tool_backlog: Option<Backlog>,
    pub publisher_keyframe_requests: Option<u64>,
}

impl Report {
    pub fn failed_joins(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_some()).count()
    }

    /// (received, recovered, lost) over every viewer.
    pub fn packets(&self) -> (u64, u64, u64) {
        self.outcomes.iter().fold((0, 0, 0), |(r, c, l), o| {
            (r + o.received, c + o.recovered, l + o.lost)
        })
    }

    pub fn loss(&self) -> f64 {
        let (received, _, lost) = self.packets();
        lost as f64 / (received + lost).max(1) as f64
    }

    /// The tool, not the server, limits the run: its CPU is near its
    /// cores, or the kernel dropped datagrams on its own sockets (more than
    /// a tenth of the loss budget: those losses are the tool's).
    pub fn tool_saturated(&self) -> bool {
        let cpu = self
            .tool_cpu
            .is_some_and(|c| c > TOOL_CPU_WARNING * self.tool_cores as f64);
        let (received, _, _) = self.packets();
        let drops = self
            .tool_socket_drops
            .is_some_and(|d| d as f64 > MAX_LOSS / 10.0 * received.max(1) as f64);
        let behind = self.tool_backlog.is_some_and(|b| {
            b.delay_ms() > TOOL_DELAY_WARNING_MS || b.max_delay_ms() > TOOL_STALL_WARNING_MS
        });
        cpu || drops || behind
    }

    /// Viewers that joined, did not leave, and whose media had stopped (or
    /// never came) by the end of the run.
    pub fn stopped_media(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.failure.is_none() && !o.left)
            .filter(|o| o.silent_for.is_none_or(|d| d > MEDIA_STOPPED_AFTER))
            .count()
    }

    pub fn passed(&self) -> bool {
        self.failed_joins() == 0 && self.loss() <= MAX_LOSS && self.stopped_media() == 0
    }

    /// Failure reasons with their counts, most frequent first.
    fn failure_reasons(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for reason in self.outcomes.iter().filter_map(|o| o.failure.as_ref()) {
            *counts.entry(reason.clone()).or_default() += 1;
        }
        let mut reasons: Vec<_> = counts.into_iter().collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        reasons.truncate(5);
        reasons
    }

    pub fn to_json(&self) -> Value {
        let (received, recovered, lost) = self.packets();
        json!({
            "pass": self.passed(),
            "viewers": self.viewers,
            "layer": self.layer,
            "duration_s": self.duration_s,
            "viewer_threads": self.threads,
            "joins": {
                "failed": self.failed_joins(),
                "total": self.outcomes.len(),
                "churned": self.churned,
                "media_stopped": self.stopped_media(),
                "failure_reasons": self.failure_reasons().into_iter()
                    .map(|(r, n)| json!({"reason": r, "count": n})).collect::<Vec<_>>(),
            },
            "packets": {
                "received": received,
                "recovered": recovered,
                "lost": lost,
                "loss": self.loss(),
            },
            "latency_us": percentiles(&self.histograms.latency_us),
            "latency_all_us": percentiles(&self.histograms.latency_all_us),
            "ttff_ms": percentiles(&self.histograms.ttff_ms),
            "connect_ms": percentiles(&self.histograms.connect_ms),
            "window": { "seconds": self.window_s, "steady": self.steady, "received_per_s": self.received_per_s },
            "server": {
                "forwarded_per_s": self.server.forwarded_per_s,
                "packets_in_per_s": self.server.packets_in_per_s,
                "datagrams_out_per_s": self.server.datagrams_out_per_s,
                "worker_cpu_cores": self.server.worker_cpu,
                "us_per_forwarded_packet": self.server.us_per_packet,
                "gop_cache_packets": self.server.gop_cache_packets,
                "keyframe_requests": self.server.keyframe_requests,
                "drops": self.server.drops,
                "process_cpu_cores": self.server.process_cpu,
                "rss_before_bytes": self.server.rss_before,
                "rss_after_bytes": self.server.rss_after,
                "rss_per_viewer_bytes": self.server.rss_per_viewer(self.viewers.saturating_sub(self.failed_joins())),
            },
            "tool": {
                "cpu_cores": self.tool_cpu,
                "cores": self.tool_cores,
                "saturated": self.tool_saturated(),
                "udp_rcvbuf_errors": self.udp_rcvbuf_errors,
                "socket_drops": self.tool_socket_drops,
                "socket_backlog": self.tool_backlog.map(|b| json!({
                    "mean_bytes": b.mean_bytes,
                    "max_bytes": b.max_bytes,
                    "delay_ms": b.delay_ms(),
                    "max_delay_ms": b.max_delay_ms(),
                    "queued_bytes_per_byte": b.queued_per_byte,
                })),
                "publisher_keyframe_requests": self.publisher_keyframe_requests,
            },
        })
    }

    pub fn human(&self) -> String {
        let (received, recovered, lost) = self.packets();
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "relaycast-loadtest: {} viewers ({}), {:.0} s, {} viewer thread(s)",
            self.viewers, self.layer, self.duration_s, self.threads
        ));
        line(format!(
            "  joins     {} ok, {} failed ({} left and were replaced)",
            self.outcomes.len().saturating_sub(self.failed_joins()),
            self.failed_joins(),
            self.churned
        ));
        for (reason, n) in self.failure_reasons() {
            line(format!("            {n} × {reason}"));
        }
        if self.stopped_media() > 0 {
            line(format!(
                "  MEDIA STOPPED for {} viewer(s): nothing received in the last {} s",
                self.stopped_media(),
                MEDIA_STOPPED_AFTER.as_secs()
            ));
        }
        line(format!(
            "  packets   {received} received, {recovered} repaired, {lost} lost ({:.3}% unrecovered)",
            self.loss() * 100.0
        ));
        line(format!(
            "  latency   {} (steady window)",
            quantiles(&self.histograms.latency_us, 1000.0, "ms")
        ));
        line(format!(
            "            {} (whole run, joins included)",
            quantiles(&self.histograms.latency_all_us, 1000.0, "ms")
        ));
        line(format!(
            "  ttff      {}",
            quantiles(&self.histograms.ttff_ms, 1.0, "ms")
        ));
        line(format!(
            "  connect   {}",
            quantiles(&self.histograms.connect_ms, 1.0, "ms")
        ));
        line(format!(
            "  window    {:.1} s{}",
            self.window_s,
            if self.steady {
                " (after every join settled)"
            } else {
                " (includes joins: run longer for steady state)"
            }
        ));
        let s = &self.server;
        line(format!(
            "  server    {} fwd/s, {} in/s, worker {} of a core, {} µs CPU per forwarded packet",
            opt(s.forwarded_per_s, 0),
            opt(s.packets_in_per_s, 0),
            opt(s.worker_cpu.map(|c| c * 100.0), 1) + "%",
            opt(s.us_per_packet, 2)
        ));
        line(format!(
            "            {} datagrams out/s; viewers received {:.0} pkt/s; {} GOP-cache packets, {} keyframe requests",
            opt(s.datagrams_out_per_s, 0),
            self.received_per_s,
            opt(s.gop_cache_packets, 0),
            opt(s.keyframe_requests, 0)
        ));
        if let Some(per_viewer) = s.rss_per_viewer(self.viewers.saturating_sub(self.failed_joins()))
        {
            line(format!(
                "            process {} of a core; RSS {:.1} → {:.1} MiB, {:.0} KB per viewer",
                opt(s.process_cpu.map(|c| c * 100.0), 1) + "%",
                s.rss_before.unwrap_or(0) as f64 / 1048576.0,
                s.rss_after.unwrap_or(0) as f64 / 1048576.0,
                per_viewer / 1000.0
            ));
        }
        if !s.drops.is_empty() {
            let drops: Vec<String> = s.drops.iter().map(|(r, n)| format!("{r} {n:.0}")).collect();
            line(format!("            drops: {}", drops.join(", ")));
        }
        line(format!(
            "  tool      {} of {} core(s), kernel UDP rcvbuf drops {} (system), {} on the tool's own sockets",
            opt(self.tool_cpu.map(|c| c * 100.0), 0) + "%",
            self.tool_cores,
            self.udp_rcvbuf_errors
                .map_or("n/a".into(), |n| n.to_string()),
            self.tool_socket_drops
                .map_or("n/a".into(), |n| n.to_string())
        ));
        if let Some(b) = self.tool_backlog {
            line(format!(
                "            own receive backlog mean {:.0} KB ≈ {:.1} ms behind, max {:.0} KB ≈ {:.0} ms",
                b.mean_bytes / 1000.0,
                b.delay_ms(),
                b.max_bytes as f64 / 1000.0,
                b.max_delay_ms()
            ));
        }
        if self.tool_saturated() {
            line("  WARNING   the load tool, not the server, is the bottleneck: it used > 90% of its cores, its own sockets dropped datagrams (loss is then partly the tool's), or it read > 10 ms behind on average or > 50 ms at some point (latency is then partly the tool's)".into());
        }
        out
    }

    pub fn summary_line(&self) -> String {
        let lat = &self.histograms.latency_us;
        let ttff = &self.histograms.ttff_ms;
        format!(
            "{} viewers={} failed={} stopped={} loss={:.3}% latency_p50={} latency_p99={} ttff_p50={} ttff_p99={} server_us_per_pkt={} fwd_per_s={} tool_cpu={}{}",
            if self.passed() { "PASS" } else { "FAIL" },
            self.viewers,
            self.failed_joins(),
            self.stopped_media(),
            self.loss() * 100.0,
            q(lat, 0.5, 1000.0, "ms"),
            q(lat, 0.99, 1000.0, "ms"),
            q(ttff, 0.5, 1.0, "ms"),
            q(ttff, 0.99, 1.0, "ms"),
            opt(self.server.us_per_packet, 2),
            opt(self.server.forwarded_per_s, 0),
            opt(self.tool_cpu.map(|c| c * 100.0), 0) + "%",
            if self.tool_saturated() { " TOOL-SATURATED" } else { "" }
        )
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

fn q(h: &hdrhistogram::Histogram<u64>, quantile: f64, per_unit: f64, unit: &str) -> String {
    if h.is_empty() {
        return "n/a".into();
    }
    format!(
        "{:.1}{unit}",
        h.value_at_quantile(quantile) as f64 / per_unit
    )
}

fn quantiles(h: &hdrhistogram::Histogram<u64>, per_unit: f64, unit: &str) -> String {
    if h.is_empty() {
        return "n/a".into();
    }
    format!(
        "p50 {} p99 {} p99.9 {} max {:.1}{unit} ({} samples)",
        q(h, 0.5, per_unit, unit),
        q(h, 0.99, per_unit, unit),
        q(h, 0.999, per_unit, unit),
        h.max() as f64 / per_unit,
        h.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn viewer(silent_for: Option<Duration>, left: bool) -> ViewerOutcome {
        ViewerOutcome {
            index: 0,
            resource: None,
            failure: None,
            received: 1000,
            recovered: 0,
            lost: 0,
            ttff: Some(Duration::from_millis(100)),
            left,
            silent_for,
        }
    }

    fn report(outcomes: Vec<ViewerOutcome>) -> Report {
        Report {
            viewers: outcomes.len(),
            layer: "high".into(),
            duration_s: 10.0,
            threads: 1,
            outcomes,
            histograms: Histograms::default(),
            window_s: 5.0,
            received_per_s: 0.0,
            steady: true,
            server: ServerFigures::default(),
            tool_cpu: None,
            tool_cores: 1,
            udp_rcvbuf_errors: None,
            tool_socket_drops: None,
            churned: 0,
            tool_backlog: None,
            publisher_keyframe_requests: None,
        }
    }

    #[test]
    fn a_stream_gone_dark_fails_the_run_though_no_gap_shows() {
        let ms = Duration::from_millis;
        let cases = [
            ("media to the end", vec![viewer(Some(ms(30)), false)], true),
            (
                "stopped 5 s before the end",
                vec![viewer(Some(ms(5000)), false)],
                false,
            ),
            ("never any media", vec![viewer(None, false)], false),
            (
                "a churned viewer is silent by design",
                vec![viewer(None, true)],
                true,
            ),
        ];
        for (name, outcomes, pass) in cases {
            let r = report(outcomes);
            assert_eq!(r.passed(), pass, "{name}");
            assert_eq!(r.summary_line().starts_with("PASS"), pass, "{name}");
        }
    }
}
