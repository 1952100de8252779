//! Alert fan-out benchmark client: connects N websocket clients to a running
//! relaycast server, has a moderator send one scope-`all` alert, and prints
//! the delivery latency per client (p50/p99/max) and when every
//! acknowledgement was counted, as text and as one JSON line.
//!
//! Run it through `scripts/ws-alert-bench` (which starts a release server in
//! another process, mints the moderator token and raises the file
//! descriptor limit):
//!
//! ```text
//! scripts/ws-alert-bench --clients 10000
//! ```
//!
//! Direct use: `ws_alert_bench --server 127.0.0.1:8080 --token <moderator> --clients 10000`.

#[path = "../tests/ws_support/alert_bench.rs"]
mod alert_bench;

use anyhow::Context;

#[path = "support/args.rs"]
mod args;
use args::arg;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let server = arg(&args, "--server")
        .context("--server host:port is required")?
        .parse()
        .context("--server must be host:port")?;
    let token = arg(&args, "--token").context("--token <moderator token> is required")?;
    let clients: usize = arg(&args, "--clients")
        .unwrap_or_else(|| "10000".into())
        .parse()
        .context("--clients must be a number")?;
    anyhow::ensure!(
        (1..=20_000).contains(&clients),
        "--clients must be 1..=20000"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(alert_bench::run(server, &token, clients))?;
    println!("{}", result.summary());
    println!(
        "{}",
        serde_json::json!({
            "clients": result.clients,
            "connect_ms": result.connect_time.as_millis() as u64,
            "p50_ms": result.percentile(0.50).as_secs_f64() * 1e3,
            "p99_ms": result.percentile(0.99).as_secs_f64() * 1e3,
            "max_ms": result.max().as_secs_f64() * 1e3,
            "delivered": result.delivered,
            "all_acked_ms": result.all_acked_after.as_secs_f64() * 1e3,
        })
    );
    Ok(())
}
