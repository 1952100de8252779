//! Samples taken outside the media path: the server's Prometheus `/metrics`,
//! this process's CPU time (`/proc/self/stat`) and the kernel's UDP receive
//! buffer drops (`/proc/net/snmp`).
//!
//! Invariants: a [`Sample`] is a plain value taken at one instant; figures
//! over a window are differences of two samples ([`Window`]). Missing
//! procfs or metrics degrade to `None`, never to an error of the run.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use crate::http::{self, ServerUrl};

/// Linux reports process times in USER_HZ ticks, 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;

pub const FORWARDED: &str = "relaycast_rtp_packets_forwarded_total";
pub const PACKETS_IN: &str = "relaycast_rtp_packets_in_total";
pub const DATAGRAMS_OUT: &str = "relaycast_datagrams_out_total";
pub const WORKER_CPU: &str = "relaycast_media_worker_cpu_seconds_total";
pub const GOP_PACKETS: &str = "relaycast_gop_cache_packets_total";
pub const KEYFRAME_REQUESTS: &str = "relaycast_keyframe_requests_total";
const DROPS: &str = "relaycast_drops_total{reason=\"";

#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    /// Every unlabelled or labelled series of `/metrics` (name with labels).
    pub server: Option<BTreeMap<String, f64>>,
    /// CPU seconds (user + system) of this process.
    pub own_cpu: Option<f64>,
    /// `Udp: RcvbufErrors`, system-wide.
    pub udp_rcvbuf_errors: Option<u64>,
    /// The server process's CPU seconds, when its pid is known.
    pub server_process_cpu: Option<f64>,
}

pub fn sample(server: &ServerUrl, server_pid: Option<u32>) -> Sample {
    Sample {
        at: Instant::now(),
        server: scrape(server).ok(),
        own_cpu: own_cpu_seconds(),
        udp_rcvbuf_errors: udp_rcvbuf_errors(),
        server_process_cpu: server_pid.and_then(process_cpu_seconds),
    }
}

/// `GET /metrics`, parsed into series → value.
pub fn scrape(server: &ServerUrl) -> Result<BTreeMap<String, f64>, String> {
    let response = http::request(server, "GET", "/metrics", &[], "")?;
    if response.status != 200 {
        return Err(format!("GET /metrics: {}", response.status));
    }
    Ok(parse_metrics(&response.body))
}

fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

pub fn own_cpu_seconds() -> Option<f64> {
    cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn cpu_seconds(stat: &str) -> Option<f64> {
    // After the parenthesised command: state is field 0, utime 11, stime 12.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// A process's resident set size in bytes (`VmRSS` of /proc/<pid>/status).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A process's CPU seconds (user + system, every thread).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The kernel's view of this process's own UDP sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnSockets {
    /// Datagrams dropped because a receive buffer was full: losses of the
    /// tool, not of the server.
    pub drops: u64,
    /// Bytes waiting in receive buffers: delay the tool adds to its own
    /// latency figures when it falls behind.
    pub backlog_bytes: u64,
}

/// [`OwnSockets`] now, matched by socket inode between /proc/self/fd and
/// /proc/net/udp.
pub fn own_sockets() -> Option<OwnSockets> {
    let inodes: HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .filter_map(|entry| socket_inode(&entry.path()))
        .collect();
    Some(own_sockets_of(
        &std::fs::read_to_string("/proc/net/udp").ok()?,
        &inodes,
    ))
}

fn socket_inode(fd_path: &std::path::Path) -> Option<u64> {
    let link = std::fs::read_link(fd_path).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// How many bytes of receive buffer (`rx_queue`) one queued datagram of
/// `len` bytes takes, per byte: the kernel charges each datagram's whole
/// buffer (its skb "truesize": 2,304 bytes for 1,200 on loopback here), so
/// the backlog in bytes overstates the data waiting about twofold. Measured
/// on a pair of loopback sockets of this process.
pub fn queued_bytes_per_byte(len: usize) -> Option<f64> {
    use std::os::fd::AsRawFd;
    const DATAGRAMS: usize = 8;
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    let to = receiver.local_addr().ok()?;
    let payload = vec![0u8; len.max(1)];
    for _ in 0..DATAGRAMS {
        sender.send_to(&payload, to).ok()?;
    }
    let inode = socket_inode(std::path::Path::new(&format!(
        "/proc/self/fd/{}",
        receiver.as_raw_fd()
    )))?;
    let sent = DATAGRAMS * payload.len();
    // Loopback delivers within the send; a few retries cover a slow softirq.
    for _ in 0..20 {
        let queued = own_sockets_of(
            &std::fs::read_to_string("/proc/net/udp").ok()?,
            &HashSet::from([inode]),
        )
        .backlog_bytes as usize;
        if queued >= sent {
            return Some(queued as f64 / sent as f64);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    None
}

/// Sums the `drops` and `rx_queue` columns of a /proc/net/udp table over
/// `inodes`.
fn own_sockets_of(table: &str, inodes: &HashSet<u64>) -> OwnSockets {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = fields.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            let rx_queue = u64::from_str_radix(fields.get(4)?.split_once(':')?.1, 16).ok()?;
            let drops: u64 = fields.get(12)?.parse().ok()?;
            Some(OwnSockets {
                drops,
                backlog_bytes: rx_queue,
            })
        })
        .fold(OwnSockets::default(), |a, b| OwnSockets {
            drops: a.drops + b.drops,
            backlog_bytes: a.backlog_bytes + b.backlog_bytes,
        })
}

fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// Differences between two samples.
pub struct Window<'a> {
    pub from: &'a Sample,
    pub to: &'a Sample,
}

impl Window<'_> {
    pub fn seconds(&self) -> f64 {
        self.to
            .at
            .saturating_duration_since(self.from.at)
            .as_secs_f64()
    }

    pub fn server_delta(&self, series: &str) -> Option<f64> {
        let (a, b) = (self.from.server.as_ref()?, self.to.server.as_ref()?);
        Some(b.get(series)? - a.get(series)?)
    }

    /// Drops by reason over the window, only the non-zero ones.
    pub fn drops(&self) -> BTreeMap<String, f64> {
        let (Some(a), Some(b)) = (self.from.server.as_ref(), self.to.server.as_ref()) else {
            return BTreeMap::new();
        };
        b.iter()
            .filter_map(|(series, v)| {
                let reason = series.strip_prefix(DROPS)?.strip_suffix("\"}")?;
                let delta = v - a.get(series).copied().unwrap_or(0.0);
                (delta > 0.0).then(|| (reason.to_owned(), delta))
            })
            .collect()
    }

    /// Server media-worker CPU µs per forwarded packet.
    pub fn server_us_per_packet(&self) -> Option<f64> {
        let forwarded = self.server_delta(FORWARDED)?;
        let cpu = self.server_delta(WORKER_CPU)?;
        (forwarded > 0.0).then(|| cpu * 1e6 / forwarded)
    }

    /// This process's CPU use as a fraction of one core.
    pub fn own_cpu_cores(&self) -> Option<f64> {
        let s = self.seconds();
        (s > 0.0).then_some((self.to.own_cpu? - self.from.own_cpu?) / s)
    }

    /// The server process's CPU use (every thread) as a fraction of a core.
    pub fn server_process_cores(&self) -> Option<f64> {
        let s = self.seconds();
        (s > 0.0).then_some((self.to.server_process_cpu? - self.from.server_process_cpu?) / s)
    }

    pub fn udp_rcvbuf_errors(&self) -> Option<u64> {
        Some(
            self.to
                .udp_rcvbuf_errors?
                .saturating_sub(self.from.udp_rcvbuf_errors?),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_datagram_takes_more_receive_buffer_than_its_bytes() {
        let full = queued_bytes_per_byte(1_200).expect("procfs and loopback");
        assert!((1.0..4.0).contains(&full), "{full}");
        // Small datagrams pay the fixed part of the buffer more dearly.
        let small = queued_bytes_per_byte(100).expect("procfs and loopback");
        assert!(small > full, "{small} vs {full}");
    }

    fn sample_of(text: &str, at: Instant) -> Sample {
        Sample {
            at,
            server: Some(parse_metrics(text)),
            own_cpu: Some(0.0),
            udp_rcvbuf_errors: Some(0),
            server_process_cpu: None,
        }
    }

    #[test]
    fn cost_per_packet_is_worker_cpu_over_forwarded_packets() {
        let t = Instant::now();
        let a = sample_of("# HELP x\nrelaycast_rtp_packets_forwarded_total 1000\nrelaycast_media_worker_cpu_seconds_total 1.000\n", t);
        let b = sample_of("relaycast_rtp_packets_forwarded_total 501000\nrelaycast_media_worker_cpu_seconds_total 3.000\n", t);
        let w = Window { from: &a, to: &b };
        assert_eq!(w.server_us_per_packet(), Some(4.0));
    }

    #[test]
    fn drops_are_read_by_reason_and_only_when_they_grew() {
        let t = Instant::now();
        let a = sample_of("relaycast_drops_total{reason=\"duplicate\"} 5\nrelaycast_drops_total{reason=\"deferred\"} 1\n", t);
        let b = sample_of("relaycast_drops_total{reason=\"duplicate\"} 5\nrelaycast_drops_total{reason=\"deferred\"} 4\n", t);
        let drops = Window { from: &a, to: &b }.drops();
        assert_eq!(
            drops.into_iter().collect::<Vec<_>>(),
            vec![("deferred".to_owned(), 3.0)]
        );
    }

    #[test]
    fn socket_drops_and_backlog_are_summed_over_our_inodes_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  621: 0100007F:AEB3 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 552975 2 0000000097e01b58 7\n\
  622: 0100007F:AEB4 00000000:0000 07 00000000:00000001 00:00000000 00000000     0        0 552976 2 0000000097e01b59 40\n\
 1471: 020200C0:B205 00000000:0000 07 00000000:0000ffff 00:00000000 00000000     0        0 554895 2 00000000821ff40f 1000\n";
        let ours: HashSet<u64> = [552975, 552976].into_iter().collect();
        assert_eq!(
            own_sockets_of(table, &ours),
            OwnSockets {
                drops: 47,
                backlog_bytes: 257
            }
        );
        assert_eq!(
            own_sockets_of(table, &HashSet::new()),
            OwnSockets::default()
        );
    }

    #[test]
    fn own_sockets_are_readable() {
        // Other tests in this process may hold sockets with data: only
        // that the table is readable and our inodes are found is checked.
        let _socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
        assert!(own_sockets().is_some());
    }

    #[test]
    fn this_process_has_a_cpu_time_and_a_resident_size() {
        assert!(own_cpu_seconds().is_some_and(|s| s >= 0.0));
        let pid = std::process::id();
        assert!(process_cpu_seconds(pid).is_some_and(|s| s >= 0.0));
        assert!(
            rss_bytes(pid).is_some_and(|b| b > 1024 * 1024),
            "a Rust test binary holds over 1 MiB"
        );
    }
}
