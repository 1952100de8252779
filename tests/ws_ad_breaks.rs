//! Ad breaks over real websockets against a relaycast server on loopback:
//! only members without the ad-free plan get `ad_break`; one who joins
//! mid-break gets the rest of it; `ad.done` is refused until the ad
//! server's tracking records show the pod over, then the break ends for
//! that connection; a second break while one runs is refused.

mod ws_support;

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use ws_support::{http, run, Client, Server, STREAM};

const SECOND: Duration = Duration::from_secs(1);

async fn post(
    server: &Server,
    path: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let res = http()
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// No `ad_break` arrives within `limit`.
async fn no_break(client: &mut Client, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        match client.recv(left).await {
            Ok(m) => ensure!(m["type"] != "ad_break", "an ad-free member got {m}"),
            Err(_) => break,
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaks_reach_only_members_without_the_ad_free_plan_and_end_when_the_pod_is_over() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let admin = server.token("admin", "ops")?;
        let moderator = server.token("moderator", "mod")?;
        let (status, ad) = post(
            &server,
            "/api/ads",
            &admin,
            json!({"title": "Partner", "vast_tag_url": "https://ads.example/vast?slot=1", "duration_s": 5}),
        )
        .await?;
        ensure!(status == 201, "{status} {ad}");
        let (status, account) = post(
            &server,
            "/api/accounts",
            "",
            json!({"username": "payer", "password": "correct horse battery"}),
        )
        .await?;
        ensure!(status == 201, "{status} {account}");
        let (status, granted) = post(
            &server,
            "/api/entitlements",
            &admin,
            json!({"user": "payer", "plan": "ad-free", "days": 30}),
        )
        .await?;
        ensure!(status == 200, "{status} {granted}");

        let mut free = server.joined_guest("free", STREAM).await?;
        let mut paid = server
            .client(account["token"].as_str().context("an account token")?)
            .await?;
        paid.join(STREAM).await?;

        let path = format!("/api/broadcasts/{STREAM}/ad-breaks");
        let (status, brk) = post(&server, &path, &moderator, json!({"duration_s": 8})).await?;
        ensure!(status == 201, "{status} {brk}");
        let id = brk["id"].as_i64().context("a break id")?;
        let got = free.expect("ad_break", 5 * SECOND).await?;
        ensure!(got["break_id"] == id && got["duration_s"] == 8, "{got}");
        let vast_url = got["vast_url"].as_str().context("a VAST URL")?.to_owned();
        ensure!(vast_url.starts_with("/ads/vast?break="), "{vast_url}");
        no_break(&mut paid, SECOND).await?;

        let (status, again) = post(&server, &path, &moderator, json!({"duration_s": 8})).await?;
        ensure!(status == 409 && again["error"] == "conflict", "{status} {again}");

        // Nothing is over yet: the stream stays held.
        free.send(json!({"type": "ad.done", "break_id": id})).await?;
        free.expect_error("invalid").await?;
        free.send(json!({"type": "ad.done", "break_id": id + 1})).await?;
        free.expect_error("not_found").await?;

        // A member who joins now gets what is left of the break.
        let mut late = server.joined_guest("late", STREAM).await?;
        let rest = late.expect("ad_break", 5 * SECOND).await?;
        ensure!(rest["break_id"] == id, "{rest}");
        let left = rest["remaining_ms"].as_u64().context("remaining_ms")?;
        ensure!(left < 8_000 && left > 4_000, "{left} ms left");
        ensure!(rest["vast_url"] != vast_url, "each connection has its own ad session");

        // The player reports the wrapped tag failed (its error pixel):
        // the pod is over and the break ends for this connection only.
        let doc = http()
            .get(format!("{}{vast_url}", server.base))
            .send()
            .await?
            .text()
            .await?;
        let error_url = doc
            .split("<![CDATA[")
            .filter_map(|s| s.split("]]>").next())
            .find(|u| u.contains("e=error"))
            .context("an error tracking URL")?
            .replace("[ERRORCODE]", "303");
        ensure!(http().get(&error_url).send().await?.status() == 200);
        free.send(json!({"type": "ad.done", "break_id": id})).await?;
        let ended = free.expect("ad_break.ended", 5 * SECOND).await?;
        ensure!(ended["break_id"] == id, "{ended}");
        late.send(json!({"type": "ad.done", "break_id": id})).await?;
        late.expect_error("invalid").await?;
        server.stop().await;
        Ok(())
    })
    .await;
}
