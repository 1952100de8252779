//! CI smoke run: an in-process relaycast on loopback (ephemeral ports, a
//! throwaway data dir, a fixed stream key), the synthetic publisher and 50
//! viewers for 10 s through the library entry point. Asserts zero failed
//! joins and < 1% unrecovered loss; the figures are printed, not asserted
//! (a debug build on a shared CI core says little about cost).

use std::path::PathBuf;
use std::time::Duration;

use relaycast_loadtest::{run, Options};

const STREAM_KEY: &str = "smoke-secret-123";

#[test]
fn fifty_viewers_for_ten_seconds_all_join_with_under_one_percent_loss() {
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
    let outcome = run(&options);

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
}

fn config(data_dir: PathBuf) -> relaycast::Config {
    let mut config = relaycast::Config {
        http_addr: "127.0.0.1:0".parse().expect("a socket address"),
        udp_port: 0,
        public_ip: Some("127.0.0.1".parse().expect("an IP")),
        data_dir,
        ..Default::default()
    };
    config.stream_keys.insert("live".into(), STREAM_KEY.into());
    config
}
