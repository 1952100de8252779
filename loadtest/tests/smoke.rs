//! CI smoke run: an in-process relaycast with two media workers on loopback
//! (ephemeral ports, a throwaway data dir, a fixed stream key), the
//! synthetic publisher and 50 viewers for 10 s through the library entry
//! point. Asserts zero failed joins, < 1% unrecovered loss and viewers on
//! both workers (one publisher's packets cross the bus); the figures are
//! printed, not asserted (a debug build on a shared CI core says little
//! about cost).

use std::path::PathBuf;
use std::time::Duration;

use relaycast_loadtest::http::{request, ServerUrl};
use relaycast_loadtest::{run, Options};

const STREAM_KEY: &str = "smoke-secret-123";

#[test]
fn fifty_viewers_on_two_workers_for_ten_seconds_all_join_with_under_one_percent_loss() {
    let dir = std::env::temp_dir().join(format!("relaycast-loadtest-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the data dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = runtime
        .block_on(relaycast::start(config(dir.clone())))
        .expect("starting relaycast");
    let base = format!("http://{}", server.http_addr);

    // The low layer: a debug-built server worker saturates near 50 viewers
    // of the top layer, and this run checks correctness, not capacity.
    let args = format!(
        "--server {base} --stream live --token {STREAM_KEY} --viewers 50 \
         --duration 10s --ramp 100/s --layer low --threads 1"
    );
    let options = Options::parse_from_args(args.split_whitespace());
    // Mid-run, how many viewers each worker holds.
    let url = ServerUrl::parse(&base).expect("a loopback URL");
    let placement = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(7));
        let metrics = request(&url, "GET", "/metrics", &[], "").expect("GET /metrics");
        worker_viewers(&metrics.body)
    });
    let outcome = run(&options);
    let placed = placement.join().expect("the metrics reader");

    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), server.shutdown())
            .await
            .expect("server shutdown within 10 s");
    });
    let _ = std::fs::remove_dir_all(&dir);

    let report = outcome.expect("the load test starts");
    eprint!("{}", report.human());
    eprintln!("{}", report.summary_line());
    assert_eq!(report.failed_joins(), 0, "failed joins");
    assert!(
        report.loss() < 0.01,
        "unrecovered loss {:.3}%",
        report.loss() * 100.0
    );
    assert!(report.packets().0 > 0, "no packets received");
    eprintln!("viewers per worker mid-run: {placed:?}");
    assert_eq!(placed.len(), 2, "two workers");
    assert!(
        placed.iter().all(|&n| n > 0),
        "viewers on both workers: {placed:?}"
    );
}

/// `relaycast_worker_viewers{worker="i"} n`, in worker order.
fn worker_viewers(metrics: &str) -> Vec<u64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("relaycast_worker_viewers{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .collect()
}

fn config(data_dir: PathBuf) -> relaycast::Config {
    let mut config = relaycast::Config {
        http_addr: "127.0.0.1:0".parse().expect("a socket address"),
        udp_port: 0,
        public_ip: Some("127.0.0.1".parse().expect("an IP")),
        data_dir,
        workers: 2,
        ..Default::default()
    };
    config.stream_keys.insert("live".into(), STREAM_KEY.into());
    config
}
