//! The realtime protocol over real websockets (tokio-tungstenite clients,
//! a relaycast server on loopback): chat ordering across 200 clients, rate
//! limits, slow mode, mutes and deletes, reaction aggregation, moderator
//! alerts with acknowledgements, role checks, validation, and a slow client
//! that is disconnected while the others keep receiving.

mod ws_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use futures_util::future::try_join_all;
use serde_json::json;
use tokio::time::Instant;
use ws_support::{run, Client, Ended, Server, STREAM};

const SECOND: Duration = Duration::from_secs(1);

/// `n` guests joined to `stream`, connected concurrently.
async fn guests(server: &Server, n: usize, stream: &str) -> anyhow::Result<Vec<Client>> {
    try_join_all(
        (0..n).map(|i| async move { server.joined_guest(&format!("viewer{i}"), stream).await }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_receive_chat_in_the_same_order() {
    run(Duration::from_secs(120), async {
        let server = Server::start().await?;
        let mut clients = guests(&server, 200, STREAM).await?;
        // Five senders, five messages each (their burst), all at once.
        let sends = clients
            .iter_mut()
            .take(5)
            .enumerate()
            .map(|(s, c)| async move {
                for m in 0..5 {
                    c.send(json!({"type": "chat.send", "text": format!("{s}:{m}")}))
                        .await?;
                }
                anyhow::Ok(())
            });
        try_join_all(sends).await?;
        let orders = try_join_all(clients.iter_mut().map(|c| async move {
            let mut order = Vec::new();
            while order.len() < 25 {
                let line = c.expect("chat", 10 * SECOND).await?;
                order.push((
                    line["id"].as_u64().unwrap(),
                    line["text"].as_str().unwrap().to_owned(),
                ));
            }
            anyhow::Ok(order)
        }))
        .await?;
        let first = &orders[0];
        ensure!(
            first.windows(2).all(|w| w[0].0 < w[1].0),
            "ids are not increasing: {first:?}"
        );
        for (i, order) in orders.iter().enumerate() {
            ensure!(
                order == first,
                "client {i} saw {order:?}, client 0 saw {first:?}"
            );
        }
        // Per sender, the messages keep their sending order.
        for s in 0..5 {
            let own: Vec<&str> = first
                .iter()
                .map(|(_, t)| t.as_str())
                .filter(|t| t.starts_with(&format!("{s}:")))
                .collect();
            let expected: Vec<String> = (0..5).map(|m| format!("{s}:{m}")).collect();
            ensure!(own == expected, "sender {s}: {own:?}");
        }
        // A late joiner gets the same lines as history.
        let token = server.guest("late").await?;
        let mut late = server.client(&token).await?;
        let joined = late.join(STREAM).await?;
        let history: Vec<u64> = joined["chat"]
            .as_array()
            .context("chat history")?
            .iter()
            .map(|l| l["id"].as_u64().unwrap())
            .collect();
        let ids: Vec<u64> = first.iter().map(|(id, _)| *id).collect();
        ensure!(history == ids, "history {history:?} != {ids:?}");
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_is_rate_limited_per_user_and_moderators_control_it() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let mut viewer = server.joined_guest("ada", STREAM).await?;
        let mut other = server.joined_guest("bob", STREAM).await?;
        let moderator_token = server.token("moderator", "mod")?;
        let mut moderator = server.client(&moderator_token).await?;
        moderator.join(STREAM).await?;

        // Burst of 5, then rate_limited; the connection keeps working.
        for i in 0..6 {
            viewer
                .send(
                    json!({"type": "chat.send", "text": format!("m{i}"), "nonce": format!("n{i}")}),
                )
                .await?;
        }
        for i in 0..5 {
            let line = viewer.expect("chat", 5 * SECOND).await?;
            ensure!(
                line["text"] == format!("m{i}") && line["nonce"] == format!("n{i}"),
                "{line}"
            );
        }
        let error = viewer.expect_error("rate_limited").await?;
        ensure!(error["ref"] == "chat.send", "{error}");

        // Validation: too long, empty.
        viewer
            .send(json!({"type": "chat.send", "text": "x".repeat(501)}))
            .await?;
        viewer.expect_error("invalid").await?;

        // A viewer cannot delete, mute or set slow mode.
        for message in [
            json!({"type": "chat.delete", "id": 1}),
            json!({"type": "chat.mute", "user_id": "x", "secs": 10}),
            json!({"type": "chat.slow", "secs": 10}),
        ] {
            other.send(message).await?;
            other.expect_error("forbidden").await?;
        }

        // Delete reaches everyone.
        moderator
            .send(json!({"type": "chat.delete", "id": 2}))
            .await?;
        for c in [&mut viewer, &mut other] {
            let deleted = c.expect("chat.deleted", 5 * SECOND).await?;
            ensure!(deleted["id"] == 2, "{deleted}");
        }
        // The chat log (replayed beside recordings) has what was sent,
        // less the deleted line; refused messages never reach it.
        let logged = server.chat_log(STREAM, 4).await?;
        ensure!(logged == ["m0", "m2", "m3", "m4"], "{logged:?}");
        moderator
            .send(json!({"type": "chat.delete", "id": 999}))
            .await?;
        moderator.expect_error("not_found").await?;

        // Slow mode: bob may send once, then must wait.
        moderator
            .send(json!({"type": "chat.slow", "secs": 30}))
            .await?;
        let slow = other.expect("chat.slow", 5 * SECOND).await?;
        ensure!(slow["secs"] == 30, "{slow}");
        other
            .send(json!({"type": "chat.send", "text": "first"}))
            .await?;
        other.expect("chat", 5 * SECOND).await?;
        other
            .send(json!({"type": "chat.send", "text": "second"}))
            .await?;
        other.expect_error("slow_mode").await?;
        // Moderators are exempt.
        moderator
            .send(json!({"type": "chat.send", "text": "mod speaks"}))
            .await?;
        moderator.expect("chat", 5 * SECOND).await?;

        // Mute: bob's id comes from his chat line.
        moderator
            .send(json!({"type": "chat.slow", "secs": 0}))
            .await?;
        let bob = server.guest("bob2").await?;
        let mut bob = server.client(&bob).await?;
        let bob_id = {
            bob.join(STREAM).await?;
            bob.send(json!({"type": "chat.send", "text": "hi"})).await?;
            let line = bob.expect("chat", 5 * SECOND).await?;
            line["user"]["id"].as_str().unwrap().to_owned()
        };
        moderator
            .send(json!({"type": "chat.mute", "user_id": bob_id, "secs": 60}))
            .await?;
        let muted = bob.expect("chat.muted", 5 * SECOND).await?;
        ensure!(muted["user_id"] == bob_id, "{muted}");
        bob.send(json!({"type": "chat.send", "text": "still here?"}))
            .await?;
        bob.expect_error("muted").await?;

        // History no longer has the deleted line.
        let joined = other.join(STREAM).await?;
        let ids: Vec<u64> = joined["chat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_u64().unwrap())
            .collect();
        ensure!(!ids.contains(&2) && ids.contains(&1), "history ids {ids:?}");
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_are_aggregated_into_few_messages() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let mut tappers = guests(&server, 40, STREAM).await?;
        let mut observer = server.joined_guest("observer", STREAM).await?;
        let started = Instant::now();
        // 40 users × 5 taps (their per-second allowance) = 200 taps.
        try_join_all(tappers.iter_mut().enumerate().map(|(i, c)| async move {
            let emoji = if i % 2 == 0 { "🔥" } else { "❤️" };
            for _ in 0..5 {
                c.send(json!({"type": "react", "emoji": emoji})).await?;
            }
            anyhow::Ok(())
        }))
        .await?;
        let mut totals = std::collections::BTreeMap::<String, u64>::new();
        let mut messages = 0;
        while totals.values().sum::<u64>() < 200 {
            let r = observer.expect("reactions", 5 * SECOND).await?;
            messages += 1;
            for (emoji, n) in r["counts"].as_object().unwrap() {
                *totals.entry(emoji.clone()).or_default() += n.as_u64().unwrap();
            }
        }
        let elapsed = started.elapsed();
        eprintln!("200 taps → {messages} reactions messages in {elapsed:?}: {totals:?}");
        ensure!(
            totals == [("❤️".to_owned(), 100), ("🔥".to_owned(), 100)].into(),
            "{totals:?}"
        );
        let bound = (elapsed.as_millis() / 250) as usize + 2;
        ensure!(
            messages <= bound,
            "{messages} messages in {elapsed:?} (at most {bound})"
        );
        // Eight taps at once: at most five pass (the bucket holds five), the
        // rest are refused; a wrong emoji too.
        for _ in 0..8 {
            tappers[0]
                .send(json!({"type": "react", "emoji": "🔥"}))
                .await?;
        }
        tappers[0].expect_error("rate_limited").await?;
        tappers[1]
            .send(json!({"type": "react", "emoji": "💩"}))
            .await?;
        tappers[1].expect_error("invalid").await?;
        // Without an identity, no reactions.
        let mut anonymous = Client::connect(&server.ws_url).await?;
        anonymous
            .send(json!({"type": "join", "stream": STREAM}))
            .await?;
        anonymous.expect("joined", 5 * SECOND).await?;
        anonymous
            .send(json!({"type": "react", "emoji": "🔥"}))
            .await?;
        anonymous.expect_error("unauthorized").await?;
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_alert_reaches_two_hundred_clients_within_a_second_with_acks() {
    run(Duration::from_secs(120), async {
        let server = Server::start().await?;
        // 150 watching the stream, 50 connected but not joined (scope "all"
        // reaches them too).
        let mut clients = guests(&server, 150, STREAM).await?;
        let shared = &server;
        let idle = try_join_all((0..50).map(|i| async move {
            let server = shared;
            let token = server.guest(&format!("idle{i}")).await?;
            server.client(&token).await
        }));
        clients.extend(idle.await?);
        let token = server.token("moderator", "alice")?;
        let mut moderator = server.client(&token).await?;

        let sent_at = Instant::now();
        moderator
            .send(json!({"type": "alert.send", "severity": "emergency", "text": "Evacuate hall B", "scope": "all", "ttl": 60}))
            .await?;
        let receipts = try_join_all(clients.iter_mut().map(|c| async move {
            let alert = c.expect("alert", 5 * SECOND).await?;
            let at = sent_at.elapsed();
            let id = alert["alert"]["id"].as_i64().context("alert id")?;
            c.send(json!({"type": "alert.ack", "id": id})).await?;
            anyhow::Ok((at, alert))
        }))
        .await?;
        let slowest = receipts.iter().map(|(at, _)| *at).max().unwrap();
        eprintln!("alert reached 200 clients; slowest after {slowest:?}");
        ensure!(slowest < SECOND, "the slowest client got the alert after {slowest:?}");
        let alert = &receipts[0].1["alert"];
        ensure!(alert["severity"] == "emergency" && alert["sender_name"] == "alice", "{alert}");
        let sent = moderator.expect("alert.sent", 5 * SECOND).await?;
        // The moderator's own connection is in scope too.
        ensure!(sent["delivered"] == 201, "{sent}");
        let deadline = Instant::now() + 5 * SECOND;
        loop {
            let status = moderator.expect("alert.status", deadline - Instant::now()).await?;
            if status["acked"] == 200 {
                ensure!(status["delivered"] == 201, "{status}");
                break;
            }
        }
        // A client joining while the alert is active gets it in `joined`.
        let late = server.guest("late").await?;
        let mut late = server.client(&late).await?;
        let joined = late.join(STREAM).await?;
        ensure!(joined["alerts"][0]["id"] == alert["id"], "{joined}");
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_send_an_alert_and_stays_connected() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let mut viewer = server.joined_guest("ada", STREAM).await?;
        viewer
            .send(json!({"type": "alert.send", "severity": "info", "text": "hi", "scope": "all", "ttl": 10}))
            .await?;
        let error = viewer.expect_error("forbidden").await?;
        ensure!(error["ref"] == "alert.send", "{error}");
        viewer.send(json!({"type": "chat.send", "text": "still connected"})).await?;
        let line = viewer.expect("chat", 5 * SECOND).await?;
        ensure!(line["text"] == "still connected", "{line}");
        // Unknown alert ids and bad moderator input are errors too.
        viewer.send(json!({"type": "alert.ack", "id": 12345})).await?;
        viewer.expect_error("not_found").await?;
        let token = server.token("moderator", "alice")?;
        let mut moderator = server.client(&token).await?;
        for bad in [
            json!({"type": "alert.send", "severity": "info", "text": "", "scope": "all", "ttl": 10}),
            json!({"type": "alert.send", "severity": "info", "text": "x", "scope": "nowhere", "ttl": 10}),
            json!({"type": "alert.send", "severity": "info", "text": "x", "scope": "all", "ttl": 0}),
        ] {
            moderator.send(bad).await?;
            moderator.expect_error("invalid").await?;
        }
        moderator.send(json!({"type": "alert.send", "severity": "loud", "text": "x", "scope": "all", "ttl": 5})).await?;
        moderator.expect_error("bad_message").await?;
        // A stream-scoped alert reaches only that stream's room.
        let mut elsewhere = server.joined_guest("bob", ws_support::OTHER_STREAM).await?;
        moderator.send(json!({"type": "alert.send", "severity": "warning", "text": "Stream only", "scope": STREAM, "ttl": 5})).await?;
        let alert = viewer.expect("alert", 5 * SECOND).await?;
        ensure!(alert["alert"]["scope"] == STREAM, "{alert}");
        let sent = moderator.expect("alert.sent", 5 * SECOND).await?;
        ensure!(sent["delivered"] == 1, "{sent}");
        elsewhere.send(json!({"type": "leave"})).await?;
        let left = elsewhere.expect("left", 5 * SECOND).await?;
        ensure!(left["stream"] == ws_support::OTHER_STREAM, "{left}");
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_and_three_malformed_close_the_connection() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let mut client = Client::connect(&server.ws_url).await?;
        client.send(json!({"type": "fly"})).await?;
        client.expect_error("unknown_type").await?;
        client
            .send_text(format!(
                r#"{{"type":"chat.send","text":"{}"}}"#,
                "a".repeat(20_000)
            ))
            .await?;
        client.expect_error("too_large").await?;
        client
            .send(json!({"type": "chat.send", "text": "hi"}))
            .await?;
        client.expect_error("unauthorized").await?;
        client
            .send(json!({"type": "auth", "token": "not-a-token"}))
            .await?;
        client.expect_error("unauthorized").await?;
        client
            .send(json!({"type": "join", "stream": "nope"}))
            .await?;
        client.expect_error("not_found").await?;
        client.send(json!({"type": "like", "liked": true})).await?;
        client.expect_error("unauthorized").await?;
        for _ in 0..2 {
            client.send_text("{not json".into()).await?;
            client.expect_error("bad_message").await?;
        }
        // A good message in between resets the count.
        client.send(json!({"type": "leave"})).await?;
        client.expect_error("not_joined").await?;
        for _ in 0..2 {
            client.send_text("{not json".into()).await?;
            client.expect_error("bad_message").await?;
        }
        client.send_text("{not json".into()).await?;
        let (ended, _) = client.until_end(5 * SECOND).await?;
        match ended {
            Ended::Closed(Some(frame)) => ensure!(u16::from(frame.code) == 1008, "{frame:?}"),
            other => anyhow::bail!("expected a 1008 close, got {other:?}"),
        }
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_are_stored_and_pushed() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let mut ada = server.joined_guest("ada", STREAM).await?;
        let mut bob = server.joined_guest("bob", STREAM).await?;
        ada.send(json!({"type": "like", "liked": true})).await?;
        let ok = ada.expect("like.ok", 5 * SECOND).await?;
        ensure!(ok["mine"] == true, "{ok}");
        let likes = bob.expect("likes", 5 * SECOND).await?;
        ensure!(likes["likes"] == 1 && likes["dislikes"] == 0, "{likes}");
        bob.send(json!({"type": "like", "liked": false})).await?;
        // Bob gets the new counts too, then his like.ok.
        let own = bob.expect("likes", 5 * SECOND).await?;
        ensure!(own["likes"] == 1 && own["dislikes"] == 1, "{own}");
        bob.expect("like.ok", 5 * SECOND).await?;
        let likes = ada.expect("likes", 5 * SECOND).await?;
        ensure!(likes["likes"] == 1 && likes["dislikes"] == 1, "{likes}");
        ada.send(json!({"type": "like", "liked": null})).await?;
        let likes = bob.expect("likes", 5 * SECOND).await?;
        ensure!(likes["likes"] == 0 && likes["dislikes"] == 1, "{likes}");
        let joined = bob.join(STREAM).await?;
        ensure!(
            joined["likes"] == json!({"likes": 0, "dislikes": 1, "mine": false}),
            "{joined}"
        );
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_while_others_keep_receiving() {
    run(Duration::from_secs(120), async {
        let server = Server::start().await?;
        let mut slow = server.joined_guest("slow", STREAM).await?;
        let mut fast = server.joined_guest("fast", STREAM).await?;
        let token = server.token("moderator", "flood")?;
        let mut moderator = server.client(&token).await?;
        moderator.join(STREAM).await?;
        // Moderators are exempt from the chat rate limit: ~495-character
        // lines until the slow client's socket buffers and queue are full.
        const LINES: usize = 20_000;
        // The fast client and the moderator read everything; the flood waits
        // whenever either is more than 100 lines behind, so only the client
        // that never reads falls behind.
        let fast_seen = Arc::new(AtomicUsize::new(0));
        let moderator_seen = Arc::new(AtomicUsize::new(0));
        let text = "x".repeat(490);
        let reader = {
            let seen = fast_seen.clone();
            tokio::spawn(async move {
                while seen.load(Ordering::Relaxed) < LINES {
                    fast.expect("chat", 20 * SECOND).await?;
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(seen.load(Ordering::Relaxed))
            })
        };
        let (mut sink, mut stream) = moderator.into_parts();
        let drain = {
            let seen = moderator_seen.clone();
            tokio::spawn(async move {
                use futures_util::StreamExt;
                while seen.load(Ordering::Relaxed) < LINES {
                    match tokio::time::timeout(20 * SECOND, stream.next()).await {
                        Ok(Some(Ok(m))) if m.to_text().is_ok_and(|t| t.contains(r#""type":"chat""#)) => {
                            seen.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Some(Ok(m))) if m.to_text().is_ok_and(|t| t.contains(r#""type":"error""#)) => {
                            anyhow::bail!("moderator got {m}")
                        }
                        Ok(Some(Ok(_))) => {}
                        other => anyhow::bail!("moderator connection: {other:?} after {seen:?} chats"),
                    }
                }
                anyhow::Ok(())
            })
        };
        let flood = async {
            use futures_util::SinkExt;
            for i in 0..LINES {
                let behind = Instant::now() + 20 * SECOND;
                while i > 100 + fast_seen.load(Ordering::Relaxed).min(moderator_seen.load(Ordering::Relaxed)) {
                    ensure!(
                        Instant::now() < behind,
                        "readers stalled at line {i}: fast {fast_seen:?}, moderator {moderator_seen:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let line = json!({"type": "chat.send", "text": format!("{i} {text}")}).to_string();
                sink.send(tokio_tungstenite::tungstenite::Message::Text(line.into())).await?;
            }
            anyhow::Ok(())
        };
        flood.await?;
        drain.await??;
        let received = reader.await??;
        ensure!(received == LINES, "the fast client got {received} of {LINES}");
        let (ended, count) = slow.until_end(30 * SECOND).await?;
        eprintln!("slow client: {count} messages, then {ended:?}");
        ensure!(count < LINES, "the slow client got everything ({count})");
        if let Ended::Closed(Some(frame)) = &ended {
            ensure!(u16::from(frame.code) == 1013, "{frame:?}");
        }
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_hard_limit_is_closed_with_1009_and_others_stay() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let mut other = server.joined_guest("other", STREAM).await?;
        let mut client = Client::connect(&server.ws_url).await?;
        client.send_text("a".repeat(70 * 1024)).await?;
        let (ended, _) = client.until_end(5 * SECOND).await?;
        match ended {
            Ended::Closed(Some(frame)) => ensure!(u16::from(frame.code) == 1009, "{frame:?}"),
            other => anyhow::bail!("expected a 1009 close, got {other:?}"),
        }
        other
            .send(json!({"type": "chat.send", "text": "still here"}))
            .await?;
        let line = other.expect("chat", 5 * SECOND).await?;
        ensure!(line["text"] == "still here", "{line}");
        server.stop().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_likes_are_rate_limited_per_connection() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        // A burst of 4 joins (the first one made the client), then refused.
        let mut client = server.joined_guest("ada", STREAM).await?;
        for _ in 0..3 {
            client.join(STREAM).await?;
        }
        client
            .send(json!({"type": "join", "stream": STREAM}))
            .await?;
        let error = client.expect_error("rate_limited").await?;
        ensure!(error["ref"] == "join", "{error}");
        // Still joined to the room: likes work, a burst of 5 of them.
        for i in 0..5 {
            client
                .send(json!({"type": "like", "liked": i % 2 == 0}))
                .await?;
            client.expect("like.ok", 5 * SECOND).await?;
        }
        client.send(json!({"type": "like", "liked": true})).await?;
        let error = client.expect_error("rate_limited").await?;
        ensure!(error["ref"] == "like", "{error}");
        // The refused like was not stored: the last accepted one stands.
        let mut bob = server.joined_guest("bob", STREAM).await?;
        let joined = bob.join(STREAM).await?;
        ensure!(joined["likes"]["likes"] == 1, "{joined}");
        bob.close().await;
        server.stop().await;
        Ok(())
    })
    .await;
}

/// A channel's owner moderates its chat (slow mode, deletes) with its
/// account token; another account may not, and the owner has no such power
/// in a broadcast it does not own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_owner_moderates_its_own_chat_only() {
    run(Duration::from_secs(60), async {
        let server = Server::start().await?;
        let http = ws_support::http();
        let mut tokens = Vec::new();
        for name in ["ada", "bob"] {
            let res = http
                .post(format!("{}/api/accounts", server.base))
                .header("Content-Type", "application/json")
                .body(json!({"username": name, "password": "correct horse battery"}).to_string())
                .send()
                .await?;
            ensure!(
                res.status().as_u16() == 201,
                "account {name}: {}",
                res.status()
            );
            let body: serde_json::Value = serde_json::from_str(&res.text().await?)?;
            tokens.push(body["token"].as_str().context("token")?.to_owned());
        }
        let res = http
            .post(format!("{}/api/channels", server.base))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Bearer {}", tokens[0]))
            .body(json!({"name": "ada-live"}).to_string())
            .send()
            .await?;
        ensure!(res.status().as_u16() == 201, "channel: {}", res.status());

        let mut ada = server.client(&tokens[0]).await?;
        ada.join("ada-live").await?;
        let mut bob = server.client(&tokens[1]).await?;
        bob.join("ada-live").await?;
        bob.send(json!({"type": "chat.slow", "secs": 10})).await?;
        bob.expect_error("forbidden").await?;
        ada.send(json!({"type": "chat.slow", "secs": 10})).await?;
        let slow = bob.expect("chat.slow", 5 * SECOND).await?;
        ensure!(slow["secs"] == 10, "{slow}");
        bob.send(json!({"type": "chat.send", "text": "hi ada"}))
            .await?;
        let line = ada.expect("chat", 5 * SECOND).await?;
        let id = line["id"].as_i64().context("chat id")?;
        ada.send(json!({"type": "chat.delete", "id": id})).await?;
        let deleted = bob.expect("chat.deleted", 5 * SECOND).await?;
        ensure!(deleted["id"] == id, "{deleted}");

        // In the operator's broadcast ada is only a viewer.
        ada.join(STREAM).await?;
        ada.send(json!({"type": "chat.slow", "secs": 10})).await?;
        ada.expect_error("forbidden").await?;
        ada.close().await;
        bob.close().await;
        server.stop().await;
        Ok(())
    })
    .await;
}
