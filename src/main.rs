//! The `relaycast` binary: parse flags; run a subcommand (`token create`,
//! `entitlement grant|revoke`, `capacity`) or start the server, print how to connect, run until Ctrl-C
//! or SIGTERM, shut down gracefully.

use clap::Parser;
use relaycast::cli::{Cli, Command, EntitlementCommand, TokenCommand};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,str0m=warn")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(TokenCommand::Create(args))) => {
            return relaycast::token::create(&cli.flags.into_config()?, &args);
        }
        Some(Command::Capacity(args)) => return relaycast::capacity::run(&args),
        Some(Command::Entitlement(EntitlementCommand::Grant(args))) => {
            return relaycast::entitlement::grant(&cli.flags.into_config()?, &args).await;
        }
        Some(Command::Entitlement(EntitlementCommand::Revoke(args))) => {
            return relaycast::entitlement::revoke(&cli.flags.into_config()?, &args).await;
        }
        Some(Command::Serve) | None => {}
    }
    let config = cli.flags.into_config()?;
    let server = relaycast::start(config).await?;

    let base = format!("http://{}", server.http_addr);
    let ports = media_ports(&server.udp_addrs);
    tracing::info!(http = %server.http_addr, udp = %ports, "relaycast is running");
    println!(
        "relaycast is running on {base} (media on UDP {ports}, {} workers)",
        server.udp_addrs.len()
    );
    for (name, secret) in &server.stream_keys {
        println!();
        println!("OBS → Settings → Stream → Service: WHIP");
        println!("  Server:            {base}/whip/{name}");
        println!("  Bearer Token:      {secret}");
        println!("Watch at {base}/watch/{name} (WHEP: {base}/whep/{name})");
    }

    stop_requested().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Ctrl-C (SIGINT) or SIGTERM, as sent by systemd, Docker and Kubernetes.
async fn stop_requested() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        ctrl_c = tokio::signal::ctrl_c() => ctrl_c?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// "ip:P" for one worker, "ip:P-Q" for consecutive ports, else a list.
fn media_ports(addrs: &[std::net::SocketAddr]) -> String {
    let (Some(first), Some(last)) = (addrs.first(), addrs.last()) else {
        return String::from("none");
    };
    let consecutive = addrs
        .windows(2)
        .all(|w| w[0].ip() == w[1].ip() && w[1].port() == w[0].port().wrapping_add(1));
    if addrs.len() == 1 {
        first.to_string()
    } else if consecutive {
        format!("{first}-{}", last.port())
    } else {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
