//! The media plane's metrics as a `prometheus-client` [`Collector`]: the
//! workers keep their own single-writer atomics (the hot path never takes a
//! shared cache line or a locked add), and a scrape reads and sums them into
//! typed counters, gauges and histograms of the one registry the HTTP side
//! owns. Names and help texts are the ones dashboards already use.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::metrics::{DropReason, Histogram, Metrics, SWITCH_BUCKETS};

/// Every worker's [`Metrics`], read at each scrape.
#[derive(Debug, Clone)]
pub struct MediaCollector {
    workers: Vec<Arc<Metrics>>,
}

type Field = fn(&Metrics) -> &AtomicU64;

/// Counters summed over workers (the encoder appends `_total`).
const COUNTERS: [(&str, &str, Field); 11] = [
    ("relaycast_datagrams_in", "UDP datagrams received", |m| {
        &m.datagrams_in
    }),
    ("relaycast_datagrams_out", "UDP datagrams sent", |m| {
        &m.datagrams_out
    }),
    (
        "relaycast_rtp_packets_in",
        "RTP packets received from publishers",
        |m| &m.packets_in,
    ),
    (
        "relaycast_rtp_packets_forwarded",
        "RTP packets forwarded to viewers",
        |m| &m.packets_forwarded,
    ),
    (
        "relaycast_gop_cache_packets",
        "packets served from GOP caches to joining viewers",
        |m| &m.gop_cache_packets,
    ),
    (
        "relaycast_keyframe_requests",
        "keyframe requests sent to publishers",
        |m| &m.keyframe_requests,
    ),
    (
        "relaycast_sessions_failed",
        "sessions ended by an error in their handling",
        |m| &m.sessions_failed,
    ),
    (
        "relaycast_worker_restarts",
        "media workers restarted after a panic outside any session",
        |m| &m.worker_restarts,
    ),
    (
        "relaycast_resends",
        "NACKed packets resent from a layer's packet store",
        |m| &m.resends,
    ),
    (
        "relaycast_bus_packets",
        "packets handed from a Source to another worker's Mirror",
        |m| &m.bus_packets,
    ),
    (
        "relaycast_shed_raises",
        "times a worker's load governor shed another layer",
        |m| &m.shed_raises,
    ),
];

/// Gauges summed over workers.
const GAUGES: [(&str, &str, Field); 2] = [
    ("relaycast_publishers", "live publisher sessions", |m| {
        &m.publishers
    }),
    ("relaycast_viewers", "live viewer sessions", |m| &m.viewers),
];

/// Gauges per worker, with the divisor that turns the stored integer into
/// the exported unit.
const PER_WORKER: [(&str, &str, Field, f64); 3] = [
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

type HistogramField = fn(&Metrics) -> &Histogram;

const HISTOGRAMS: [(&str, &str, HistogramField); 3] = [
    (
        "relaycast_layer_switch_seconds",
        "time from a viewer's layer-switch decision to the first packet of the new layer",
        |m| &m.layer_switch,
    ),
    (
        "relaycast_forward_delay_seconds",
        "time from a packet's arrival on the node to its fan-out to a worker's viewers",
        |m| &m.forward_delay,
    ),
    (
        "relaycast_viewer_join_seconds",
        "time from a viewer's session being created to its first video packet",
        |m| &m.join_time,
    ),
];

impl MediaCollector {
    pub fn new(workers: Vec<Arc<Metrics>>) -> Self {
        MediaCollector { workers }
    }

    fn sum(&self, field: Field) -> u64 {
        self.workers.iter().map(|m| field(m).load(Relaxed)).sum()
    }
}

impl Collector for MediaCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, field) in COUNTERS {
            let metric = ConstCounter::new(self.sum(field));
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        for (name, help, field) in GAUGES {
            let metric = ConstGauge::new(self.sum(field) as i64);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        for (name, help, field, scale) in PER_WORKER {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (i, m) in self.workers.iter().enumerate() {
                let labels = [("worker", i.to_string())];
                let raw = field(m).load(Relaxed);
                let metric = family.encode_family(&labels)?;
                if scale == 1.0 {
                    ConstGauge::new(raw as i64).encode(metric)?;
                } else {
                    ConstGauge::new(raw as f64 / scale).encode(metric)?;
                }
            }
        }
        for (name, help, field) in HISTOGRAMS {
            let (sum, count, counts) = Histogram::sum_of(self.workers.iter().map(|m| field(m)));
            let buckets: Vec<(f64, u64)> = SWITCH_BUCKETS.into_iter().zip(counts).collect();
            encoder
                .encode_descriptor(name, help, None, MetricType::Histogram)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        let mut drops = encoder.encode_descriptor(
            "relaycast_drops",
            "packets or datagrams not forwarded, by reason",
            None,
            MetricType::Counter,
        )?;
        for reason in DropReason::ALL {
            let total: u64 = self.workers.iter().map(|m| m.drops(reason)).sum();
            let labels = [("reason", reason.as_str())];
            ConstCounter::new(total).encode(drops.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The media plane's counters at one instant, for the operator page (which
/// turns successive snapshots into rates).
#[derive(Debug, Clone, Default)]
pub struct MediaSnapshot {
    pub workers: Vec<WorkerLoad>,
    /// Every counter of `/metrics`, named without the `relaycast_` prefix
    /// (`rtp_packets_forwarded`, …), summed over workers.
    pub counters: Vec<(&'static str, u64)>,
    /// Drops by reason, summed over workers.
    pub drops: Vec<(&'static str, u64)>,
    /// `relaycast_viewer_join_seconds`: (sum in seconds, count).
    pub join_time: (f64, u64),
}

/// One worker's load.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerLoad {
    pub viewers: u64,
    pub publishers: u64,
    pub shed_level: u64,
    /// Share of its last tick it spent working, 0–1.
    pub busy: f64,
}

impl MediaCollector {
    pub fn snapshot(&self) -> MediaSnapshot {
        let workers = self
            .workers
            .iter()
            .map(|m| WorkerLoad {
                viewers: m.viewers.load(Relaxed),
                publishers: m.publishers.load(Relaxed),
                shed_level: m.shed_level.load(Relaxed),
                busy: m.busy_permille.load(Relaxed) as f64 / 1000.0,
            })
            .collect();
        let counters = COUNTERS
            .iter()
            .map(|(name, _, field)| {
                let short = name.strip_prefix("relaycast_").unwrap_or(name);
                (short, self.sum(*field))
            })
            .collect();
        let drops = DropReason::ALL
            .iter()
            .map(|r| (r.as_str(), self.workers.iter().map(|m| m.drops(*r)).sum()))
            .collect();
        let (sum, count, _) = Histogram::sum_of(self.workers.iter().map(|m| &m.join_time));
        MediaSnapshot {
            workers,
            counters,
            drops,
            join_time: (sum, count),
        }
    }
}
