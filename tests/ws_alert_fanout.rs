//! CI-sized alert fan-out: 1,000 websocket clients on loopback, one
//! moderator alert to scope `all`; every client must have it within 1 s and
//! the moderator must see every acknowledgement counted. The 10,000-client
//! benchmark (`scripts/ws-alert-bench`) runs the same measurement.

mod ws_support;

use std::time::Duration;

use anyhow::ensure;
use ws_support::{alert_bench, run, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_a_thousand_clients_within_a_second() {
    run(Duration::from_secs(180), async {
        let server = Server::start().await?;
        let token = server.token("moderator", "bench")?;
        let result = alert_bench::run(server.addr, &token, 1000).await?;
        eprintln!("{}", result.summary());
        ensure!(
            result.max() < Duration::from_secs(1),
            "{}",
            result.summary()
        );
        // Every client plus the moderator's own connection.
        ensure!(result.delivered == 1001, "{}", result.summary());
        server.stop().await;
        Ok(())
    })
    .await;
}
