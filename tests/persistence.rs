//! What the server acknowledged survives a restart: a like and a comment
//! answered 2xx are there when a new server opens the same data dir (SQLite
//! with synchronous = FULL), and so is the broadcast's edited metadata.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

const KEY: &str = "persist-key-123";

async fn start(dir: &std::path::Path) -> anyhow::Result<(relaycast::Server, String)> {
    let mut config = relaycast::Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        udp_port: 0,
        public_ip: Some("127.0.0.1".parse().unwrap()),
        data_dir: dir.to_owned(),
        ..Default::default()
    };
    config.stream_keys.insert("live".into(), KEY.into());
    let server = relaycast::start(config)
        .await
        .context("starting relaycast")?;
    let base = format!("http://{}", server.http_addr);
    Ok((server, base))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn send(req: reqwest::RequestBuilder, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => req,
    };
    let res = req.send().await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn likes_comments_and_metadata_survive_a_restart() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "relaycast-persist-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir)?;
    let http = client();

    let (server, base) = start(&dir).await?;
    let (status, guest) = send(
        http.post(format!("{base}/api/guest")),
        Some(json!({"name": "Ann"})),
    )
    .await?;
    assert_eq!(status, 201);
    let token = guest["token"].as_str().context("a token")?.to_owned();
    let (status, _) = send(
        http.put(format!("{base}/api/broadcasts/live/like"))
            .bearer_auth(&token),
        Some(json!({"liked": true})),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = send(
        http.post(format!("{base}/api/broadcasts/live/comments"))
            .bearer_auth(&token),
        Some(json!({"comment": "still here after a restart?"})),
    )
    .await?;
    assert_eq!(status, 201);
    let (status, _) = send(
        http.put(format!("{base}/api/broadcasts/live"))
            .bearer_auth(KEY),
        Some(json!({"title": "Morning show", "tags": ["talk"], "disclaimer": "Flashing lights"})),
    )
    .await?;
    assert_eq!(status, 200);
    server.shutdown().await;

    let (server, base) = start(&dir).await?;
    let (_, b) = send(http.get(format!("{base}/api/broadcasts/live")), None).await?;
    assert_eq!(b["likes"], 1, "{b}");
    assert_eq!(b["title"], "Morning show");
    assert_eq!(b["disclaimer"], "Flashing lights");
    let (_, page) = send(
        http.get(format!("{base}/api/broadcasts/live/comments")),
        None,
    )
    .await?;
    assert_eq!(
        page["comments"][0]["comment"], "still here after a restart?",
        "{page}"
    );
    assert_eq!(page["comments"][0]["user_name"], "Ann");
    // The guest's token was signed with the secret kept in the data dir, so
    // it is still valid after the restart.
    let (status, me) = send(http.get(format!("{base}/api/me")).bearer_auth(&token), None).await?;
    assert_eq!((status, me["name"].as_str()), (200, Some("Ann")));
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
