//! relaycast's load generator as a library: [`run`] starts a synthetic WHIP
//! publisher, ramps WHEP viewers, prints a progress line every second,
//! samples the server's `/metrics` and this process's CPU, and returns a
//! [`Report`]. `main.rs` parses the command line and prints; the smoke test
//! calls [`run`] against an in-process server.
//!
//! Design (sans-IO str0m on std threads, no async runtime):
//! - `publisher`: one thread, one socket, one client `Rtc` sending simulcast.
//! - `swarm`: joiner threads do the blocking WHEP POSTs on the ramp schedule;
//!   viewer threads each drive many viewers over one epoll.
//! - `probe`: `/metrics`, `/proc/self/stat` and `/proc/net/snmp` samples; the
//!   measurement window starts one second after every join settled, so the
//!   cost per packet is the steady fan-out, not the join work.
//!
//! Invariants: traffic goes to loopback only; the run ends within
//! `duration` plus bounded teardown (HTTP timeouts, one poll tick).

pub mod floor;
pub mod http;
pub mod loss;
pub mod media;
pub mod options;
pub mod probe;
pub mod publisher;
pub mod report;
pub mod stats;
pub mod swarm;
pub mod viewer;

use std::io::Write;
use std::time::{Duration, Instant};

pub use options::Options;
pub use report::Report;

use options::PublisherMode;
use probe::Window;
use publisher::Publisher;
use report::ServerFigures;
use swarm::{Plan, Swarm};

/// Time after the last join before the steady window starts (GOP replays).
const SETTLE: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// A received media datagram's bytes beyond its payload: RTP header with
/// extensions and the SRTP tag, roughly.
const DATAGRAM_OVERHEAD: usize = 40;

/// Runs one load test. `Err` only when the run could not start (bad
/// options, the server unreachable, the publisher refused).
pub fn run(options: &Options) -> Result<Report, String> {
    let server = options.validate()?;
    media::epoch();
    let publisher = match options.publisher {
        PublisherMode::Synthetic => {
            let token = options.token.as_deref().unwrap_or_default();
            let p = Publisher::start(&server, &options.stream, token)?;
            // A second of media, so the server has every layer and a GOP.
            p.wait_live(u64::from(media::FPS), Duration::from_secs(10))?;
            Some(p)
        }
        PublisherMode::None => None,
    };
    let threads = options.threads();
    // Before any viewer: the baseline of the server's memory per viewer.
    let rss_before = options.server_pid.and_then(probe::rss_bytes);
    let own_before = probe::own_sockets();
    // The tool's receive backlog, sampled every second of the steady window.
    let (mut backlog_sum, mut backlog_samples, mut backlog_max) = (0u64, 0u64, 0u64);
    let mut first_bytes = 0;
    let start = Instant::now();
    let end = start + options.duration;
    let swarm = Swarm::start(Plan {
        server: server.clone(),
        stream: options.stream.clone(),
        viewers: options.viewers,
        rate: options.ramp,
        mix: options.layer,
        threads,
        nack_window: options.nack_window,
    })?;

    let mut first = probe::sample(&server, options.server_pid);
    let mut first_received = 0;
    let mut steady = false;
    let mut settled_at: Option<Instant> = None;
    let mut previous = first.clone();
    let mut previous_packets = 0;
    let mut next_progress = start + PROGRESS_EVERY;
    let mut next_churn = options.churn.map(|c| start + c.every);
    let mut churned = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep(next_progress.min(end).saturating_duration_since(now));
        let now = Instant::now();
        if now < next_progress {
            continue;
        }
        next_progress += PROGRESS_EVERY;
        // Churn: viewers asked to leave last tick are DELETEd now and as
        // many new ones join; then the next round is asked for when due.
        let gone = swarm.take_left();
        if !gone.is_empty() {
            churned += gone.len();
            swarm.rejoin(gone.len());
            delete_all(&server, gone);
        }
        if let (Some(churn), Some(due)) = (options.churn, next_churn) {
            if now >= due {
                swarm.churn(churn.count(options.viewers));
                next_churn = Some(due + churn.every);
            }
        }
        let live = swarm.live();
        let current = probe::sample(&server, options.server_pid);
        if settled_at.is_none()
            && live.viewers as usize >= options.viewers
            && live.first_frames + live.failed >= live.viewers
        {
            settled_at = Some(now);
        }
        if !steady
            && settled_at.is_some_and(|t| now >= t + SETTLE)
            && end.saturating_duration_since(now) >= SETTLE
        {
            first = current.clone();
            first_received = live.packets;
            first_bytes = live.bytes;
            steady = true;
            swarm.mark_steady();
        }
        if !options.quiet {
            let w = Window {
                from: &previous,
                to: &current,
            };
            let seconds = w.seconds().max(1e-3);
            eprintln!(
                "[{:>4.0}s] viewers {}/{} connected {} first-frame {} failed {} | rx {:.0} pkt/s | lost {} | tool cpu {} | server {} fwd/s {} µs/pkt",
                now.duration_since(start).as_secs_f64(),
                live.viewers,
                options.viewers,
                live.connected,
                live.first_frames,
                live.failed,
                live.packets.saturating_sub(previous_packets) as f64 / seconds,
                live.lost,
                w.own_cpu_cores().map_or("n/a".into(), |c| format!("{:.0}%", c * 100.0)),
                w.server_delta(probe::FORWARDED).map_or("n/a".into(), |f| format!("{:.0}", f / seconds)),
                w.server_us_per_packet().map_or("n/a".into(), |c| format!("{c:.1}")),
            );
            let _ = std::io::stderr().flush();
        }
        if steady {
            if let Some(own) = probe::own_sockets() {
                backlog_sum += own.backlog_bytes;
                backlog_samples += 1;
                backlog_max = backlog_max.max(own.backlog_bytes);
            }
        }
        previous_packets = live.packets;
        previous = current;
    }
    let last = probe::sample(&server, options.server_pid);
    let rss_after = options.server_pid.and_then(probe::rss_bytes);
    // Over the whole run, like the loss it explains; before the swarm's
    // sockets close.
    let own_drops = probe::own_sockets()
        .zip(own_before)
        .map(|(after, before)| after.drops.saturating_sub(before.drops));
    let last_live = swarm.live();
    let last_received = last_live.packets;
    let result = swarm.finish();
    let publisher_keyframe_requests = publisher.as_ref().map(|p| {
        p.counters
            .keyframe_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    delete_all(
        &server,
        result
            .viewers
            .iter()
            .filter(|v| !v.left)
            .filter_map(|v| v.resource.clone())
            .collect(),
    );
    if let Some(p) = publisher {
        if let Err(e) = p.stop() {
            eprintln!("publisher: {e}");
        }
    }

    let w = Window {
        from: &first,
        to: &last,
    };
    let seconds = w.seconds().max(1e-3);
    let per_s = |series| w.server_delta(series).map(|d| d / seconds);
    Ok(Report {
        viewers: options.viewers,
        layer: format!("{:?}", options.layer).to_lowercase(),
        duration_s: options.duration.as_secs_f64(),
        threads,
        outcomes: result.viewers,
        histograms: result.histograms,
        window_s: w.seconds(),
        received_per_s: last_received.saturating_sub(first_received) as f64 / seconds,
        steady,
        server: ServerFigures {
            forwarded_per_s: per_s(probe::FORWARDED),
            packets_in_per_s: per_s(probe::PACKETS_IN),
            datagrams_out_per_s: per_s(probe::DATAGRAMS_OUT),
            worker_cpu: per_s(probe::WORKER_CPU),
            us_per_packet: w.server_us_per_packet(),
            gop_cache_packets: w.server_delta(probe::GOP_PACKETS),
            keyframe_requests: w.server_delta(probe::KEYFRAME_REQUESTS),
            drops: w.drops(),
            process_cpu: w.server_process_cores(),
            rss_before,
            rss_after,
        },
        tool_cpu: w.own_cpu_cores(),
        tool_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        udp_rcvbuf_errors: w.udp_rcvbuf_errors(),
        tool_socket_drops: own_drops,
        tool_backlog: (backlog_samples > 0).then(|| {
            let (bytes, packets) = (
                last_live.bytes.saturating_sub(first_bytes),
                last_received.saturating_sub(first_received),
            );
            // Payload plus RTP header, extensions and SRTP tag, roughly.
            let datagram = (bytes / packets.max(1)) as usize + DATAGRAM_OVERHEAD;
            report::Backlog {
                mean_bytes: backlog_sum as f64 / backlog_samples as f64,
                max_bytes: backlog_max,
                bytes_per_s: bytes as f64 / seconds,
                queued_per_byte: probe::queued_bytes_per_byte(datagram).unwrap_or(1.0),
            }
        }),
        churned,
        publisher_keyframe_requests,
    })
}

/// DELETEs viewer sessions from a few threads, so the server is clean for
/// the next run instead of timing sessions out.
fn delete_all(server: &http::ServerUrl, resources: Vec<String>) {
    let chunk = resources.len().div_ceil(4).max(1);
    std::thread::scope(|s| {
        for part in resources.chunks(chunk) {
            s.spawn(move || {
                for path in part {
                    let _ = http::request(server, "DELETE", path, &[], "");
                }
            });
        }
    });
}
