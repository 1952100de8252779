//! The `relaycast` binary: parse flags; run a subcommand (`token create`,
//! `capacity`) or start the server, print how to connect, run until Ctrl-C,
//! shut down gracefully.

use clap::Parser;
use relaycast::cli::{Cli, Command, TokenCommand};
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
        Some(Command::Serve) | None => {}
    }
    let config = cli.flags.into_config()?;
    let server = relaycast::start(config).await?;

    let base = format!("http://{}", server.http_addr);
    tracing::info!(http = %server.http_addr, udp = %server.udp_addr, "relaycast is running");
    println!(
        "relaycast is running on {base} (media on UDP {})",
        server.udp_addr
    );
    for (name, secret) in &server.stream_keys {
        println!();
        println!("OBS → Settings → Stream → Service: WHIP");
        println!("  Server:            {base}/whip/{name}");
        println!("  Bearer Token:      {secret}");
        println!("Watch at {base}/watch/{name} (WHEP: {base}/whep/{name})");
    }

    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
