//! `relaycast capacity`: how much egress bandwidth, CPU and how many nodes
//! an audience needs, from the measured media-worker cost per forwarded
//! packet (docs/capacity.md explains the model; docs/benchmarks.md holds
//! the measurement and its command). Pure arithmetic: [`Plan::compute`] is
//! table-tested; [`run`] only prints.
//!
//! Model: each viewer the server serves receives the stream's bitrate in
//! RTP packets of about `--packet-bytes` of payload; each forwarded packet
//! costs `--us-per-packet` of one core (receive share, rewrite, SRTP,
//! pacing, send); a core is planned at `--core-utilization` at most, a NIC
//! at `--nic-utilization`. Viewers served peer to peer (`--p2p-share`)
//! cost the server nothing. Nodes are the larger of the CPU and the NIC
//! need.

use std::fmt::Write as _;

/// Server CPU per forwarded packet measured by `loadtest/bench.sh` (the
/// capacity point: median of 3 runs of 300 top-layer viewers, 1 worker on
/// 1 core, release build, the whole process's CPU, this project's 2-core
/// dev VM, 2026-12-05, media plane v2); see docs/benchmarks.md for the run
/// and its command.
pub const MEASURED_US_PER_PACKET: f64 = 5.65;

/// RTP header (12), SRTP tag (16 for AES-GCM), UDP (8), IPv4 (20) bytes on
/// the wire around each payload.
pub const PACKET_OVERHEAD_BYTES: f64 = 56.0;

/// Plans the resources for an audience.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct CapacityArgs {
    /// Concurrent viewers of the broadcast(s).
    #[arg(long)]
    pub viewers: u64,
    /// What each viewer receives (video + audio), in kbit/s.
    #[arg(long)]
    pub bitrate_kbps: f64,
    /// Share of viewers served peer to peer instead of by the server (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub p2p_share: f64,
    /// Server CPU µs per forwarded packet (default: the measured figure).
    #[arg(long, default_value_t = MEASURED_US_PER_PACKET)]
    pub us_per_packet: f64,
    /// Average RTP payload per packet, in bytes.
    #[arg(long, default_value_t = 1100.0)]
    pub packet_bytes: f64,
    /// Media-worker cores per node.
    #[arg(long, default_value_t = 16)]
    pub cores_per_node: u32,
    /// Plan each core at most this busy (headroom for joins and bursts).
    #[arg(long, default_value_t = 0.7)]
    pub core_utilization: f64,
    /// Egress bandwidth per node, in Gbit/s.
    #[arg(long, default_value_t = 10.0)]
    pub nic_gbps: f64,
    /// Plan each NIC at most this busy.
    #[arg(long, default_value_t = 0.8)]
    pub nic_utilization: f64,
}

/// The plan's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Viewers the servers send to.
    pub served_viewers: u64,
    pub packets_per_s: f64,
    /// On the wire, headers included.
    pub egress_gbps: f64,
    /// Fully busy cores the forwarding takes.
    pub busy_cores: f64,
    /// Cores to provision at the planned utilization.
    pub cores: u64,
    pub nodes_for_cpu: u64,
    pub nodes_for_bandwidth: u64,
    pub nodes: u64,
    /// Viewers one core carries at the planned utilization.
    pub viewers_per_core: f64,
}

/// Why the arguments cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadArgs(pub String);

impl std::fmt::Display for BadArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgs {}

impl Plan {
    pub fn compute(a: &CapacityArgs) -> Result<Plan, BadArgs> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(BadArgs(format!(
                    "--{name} must be a positive number, not {v}"
                )))
            }
        };
        positive("bitrate-kbps", a.bitrate_kbps)?;
        positive("us-per-packet", a.us_per_packet)?;
        positive("packet-bytes", a.packet_bytes)?;
        positive("nic-gbps", a.nic_gbps)?;
        for (name, v) in [
            ("core-utilization", a.core_utilization),
            ("nic-utilization", a.nic_utilization),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(BadArgs(format!("--{name} must be in (0, 1], not {v}")));
            }
        }
        if !(0.0..=1.0).contains(&a.p2p_share) {
            return Err(BadArgs(format!(
                "--p2p-share must be in [0, 1], not {}",
                a.p2p_share
            )));
        }
        if a.cores_per_node == 0 {
            return Err(BadArgs("--cores-per-node must be at least 1".into()));
        }
        let served_viewers = (a.viewers as f64 * (1.0 - a.p2p_share)).ceil() as u64;
        let bytes_per_viewer = a.bitrate_kbps * 1000.0 / 8.0;
        let packets_per_viewer = bytes_per_viewer / a.packet_bytes;
        let packets_per_s = served_viewers as f64 * packets_per_viewer;
        let egress_gbps = packets_per_s * (a.packet_bytes + PACKET_OVERHEAD_BYTES) * 8.0 / 1e9;
        let busy_cores = packets_per_s * a.us_per_packet / 1e6;
        let cores = ceil(busy_cores / a.core_utilization);
        let nodes_for_cpu = cores.div_ceil(u64::from(a.cores_per_node));
        let nodes_for_bandwidth = ceil(egress_gbps / (a.nic_gbps * a.nic_utilization));
        let nodes = nodes_for_cpu.max(nodes_for_bandwidth).max(1);
        let viewers_per_core = a.core_utilization * 1e6 / (a.us_per_packet * packets_per_viewer);
        Ok(Plan {
            served_viewers,
            packets_per_s,
            egress_gbps,
            busy_cores,
            cores,
            nodes_for_cpu,
            nodes_for_bandwidth,
            nodes,
            viewers_per_core,
        })
    }

    pub fn render(&self, a: &CapacityArgs) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} viewers at {} kbit/s, {:.0}% peer to peer: the servers send to {}",
            a.viewers,
            a.bitrate_kbps,
            a.p2p_share * 100.0,
            self.served_viewers
        );
        let _ = writeln!(
            out,
            "  egress     {:.2} Gbit/s on the wire, {:.0} packets/s",
            self.egress_gbps, self.packets_per_s
        );
        let _ = writeln!(
            out,
            "  cpu        {:.1} busy cores at {} µs/packet → {} cores at {:.0}% ({:.0} viewers per core)",
            self.busy_cores,
            a.us_per_packet,
            self.cores,
            a.core_utilization * 100.0,
            self.viewers_per_core
        );
        let _ = writeln!(
            out,
            "  nodes      {} ({} for CPU at {} cores each, {} for bandwidth at {} Gbit/s × {:.0}%)",
            self.nodes,
            self.nodes_for_cpu,
            a.cores_per_node,
            self.nodes_for_bandwidth,
            a.nic_gbps,
            a.nic_utilization * 100.0
        );
        let _ = writeln!(
            out,
            "  measured   cost per packet from loadtest/bench.sh (docs/benchmarks.md); model in docs/capacity.md"
        );
        out
    }
}

fn ceil(v: f64) -> u64 {
    // Planning figures: round up, but not 3.0000000001 up to 4.
    (v - 1e-9).ceil().max(0.0) as u64
}

/// Prints the plan for `args`.
pub fn run(args: &CapacityArgs) -> anyhow::Result<()> {
    let plan = Plan::compute(args)?;
    print!("{}", plan.render(args));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(viewers: u64, kbps: f64, p2p: f64, us: f64) -> CapacityArgs {
        CapacityArgs {
            viewers,
            bitrate_kbps: kbps,
            p2p_share: p2p,
            us_per_packet: us,
            packet_bytes: 1000.0,
            cores_per_node: 16,
            core_utilization: 0.5,
            nic_gbps: 10.0,
            nic_utilization: 0.8,
        }
    }

    #[test]
    fn table_of_plans() {
        // (viewers, kbit/s, p2p, µs) → (served, pkt/s, busy cores, cores, cpu nodes, nic nodes)
        let cases = [
            // 1,000 × 2,000 kbit/s = 250 B/ms = 250 pkt/s each → 250k pkt/s;
            // × 4 µs = 1 busy core → 2 at 50%.
            ((1_000, 2_000.0, 0.0, 4.0), (1_000, 250_000.0, 1.0, 2, 1, 1)),
            // Half peer to peer halves everything.
            ((1_000, 2_000.0, 0.5, 4.0), (500, 125_000.0, 0.5, 1, 1, 1)),
            // 100,000 × 2,500 kbit/s = 31.25M pkt/s; × 10 µs = 312.5 busy
            // cores → 625 cores → 40 nodes of 16; egress 31.25M × 1056 B ×
            // 8 = 264 Gbit/s → 33 NICs at 8 Gbit/s: CPU decides.
            (
                (100_000, 2_500.0, 0.0, 10.0),
                (100_000, 31_250_000.0, 312.5, 625, 40, 33),
            ),
            // Everyone peer to peer: nothing to serve, still one node.
            ((10, 1_000.0, 1.0, 4.0), (0, 0.0, 0.0, 0, 0, 0)),
        ];
        for ((viewers, kbps, p2p, us), (served, pps, busy, cores, cpu_nodes, nic_nodes)) in cases {
            let plan = Plan::compute(&args(viewers, kbps, p2p, us)).expect("valid arguments");
            let what = format!("{viewers} viewers {kbps} kbit/s p2p {p2p} {us} µs");
            assert_eq!(plan.served_viewers, served, "{what}");
            assert!(
                (plan.packets_per_s - pps).abs() < 1e-6,
                "{what}: {}",
                plan.packets_per_s
            );
            assert!(
                (plan.busy_cores - busy).abs() < 1e-9,
                "{what}: {}",
                plan.busy_cores
            );
            assert_eq!(plan.cores, cores, "{what}");
            assert_eq!(plan.nodes_for_cpu, cpu_nodes, "{what}");
            assert_eq!(plan.nodes_for_bandwidth, nic_nodes, "{what}");
            assert_eq!(plan.nodes, cpu_nodes.max(nic_nodes).max(1), "{what}");
        }
    }

    #[test]
    fn bandwidth_decides_when_packets_are_cheap() {
        // 100,000 × 2,500 kbit/s at 1 µs: 63 cores fit in 4 nodes; the
        // 264 Gbit/s need 33.
        let plan = Plan::compute(&args(100_000, 2_500.0, 0.0, 1.0)).expect("valid");
        assert!(
            (plan.egress_gbps - 264.0).abs() < 1e-6,
            "{}",
            plan.egress_gbps
        );
        assert_eq!((plan.nodes_for_cpu, plan.nodes), (4, 33));
    }

    #[test]
    fn viewers_per_core_inverts_the_cost() {
        // 250 pkt/s per viewer at 4 µs = 1 ms of CPU per second; a core at
        // 50% carries 500 of them.
        let plan = Plan::compute(&args(1, 2_000.0, 0.0, 4.0)).expect("valid");
        assert!((plan.viewers_per_core - 500.0).abs() < 1e-9);
    }

    #[test]
    fn table_of_refused_arguments() {
        type Tweak = fn(&mut CapacityArgs);
        let cases: [(&str, Tweak); 6] = [
            ("p2p-share", |a| a.p2p_share = 1.5),
            ("bitrate-kbps", |a| a.bitrate_kbps = 0.0),
            ("us-per-packet", |a| a.us_per_packet = f64::NAN),
            ("core-utilization", |a| a.core_utilization = 0.0),
            ("nic-utilization", |a| a.nic_utilization = 2.0),
            ("cores-per-node", |a| a.cores_per_node = 0),
        ];
        for (flag, spoil) in cases {
            let mut a = args(100, 1000.0, 0.0, 4.0);
            spoil(&mut a);
            let err = Plan::compute(&a).expect_err(flag);
            assert!(err.0.contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn the_flags_parse_with_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            capacity: CapacityArgs,
        }
        let cli = Cli::parse_from(["relaycast", "--viewers", "100000", "--bitrate-kbps", "2500"]);
        assert_eq!(cli.capacity.viewers, 100_000);
        assert_eq!(cli.capacity.p2p_share, 0.0);
        assert_eq!(cli.capacity.us_per_packet, MEASURED_US_PER_PACKET);
        let plan = Plan::compute(&cli.capacity).expect("defaults plan");
        assert!(plan.render(&cli.capacity).contains("Gbit/s"));
    }
}
