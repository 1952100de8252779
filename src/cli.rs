//! Command-line flags and their `RELAYCAST_*` environment twins, and the
//! subcommands: `serve` (the default), `token create`, `capacity`. Each
//! server flag is optional so that an unset flag leaves the config file's
//! value in place; `--config` and `--data-dir` also apply to `token create`
//! (it signs with the same secret the server uses).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand};

use crate::config::Config;

/// relaycast: WHIP in, simulcast SFU, WHEP out.
#[derive(Debug, Parser)]
#[command(name = "relaycast", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub flags: ServerFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what `relaycast` with no subcommand does).
    Serve,
    /// Identity tokens for moderators, admins, broadcasters and viewers.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Egress bandwidth, cores and nodes an audience needs.
    Capacity(crate::capacity::CapacityArgs),
    /// Plans accounts hold (the ad-free tier).
    #[command(subcommand)]
    Entitlement(EntitlementCommand),
}

#[derive(Debug, Subcommand)]
pub enum EntitlementCommand {
    /// Make an account ad-free for some days.
    Grant(crate::entitlement::GrantArgs),
    /// End an account's plan now.
    Revoke(crate::entitlement::RevokeArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign a token; it is printed as the last line of output.
    Create(crate::token::CreateArgs),
}

/// The server's settings as flags.
#[derive(Debug, clap::Args)]
pub struct ServerFlags {
    /// TOML config file (keys as in `Config`, e.g. `http_addr = "0.0.0.0:8080"`).
    #[arg(long, env = "RELAYCAST_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "RELAYCAST_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// First UDP media port; worker i uses port + i, so open P..P+N-1 [default: 8189].
    #[arg(long, env = "RELAYCAST_UDP_PORT")]
    pub udp_port: Option<u16>,
    /// Media worker threads, one UDP port each [default: available cores].
    #[arg(long, env = "RELAYCAST_WORKERS")]
    pub workers: Option<usize>,
    /// Viewers this node admits at most, then 503 + Retry-After [default: measured load only].
    #[arg(long, env = "RELAYCAST_MAX_VIEWERS")]
    pub max_viewers: Option<usize>,
    /// Channels one account may create [default: 3; `[limits]
    /// max_channels_per_account`].
    #[arg(long, env = "RELAYCAST_MAX_CHANNELS_PER_ACCOUNT")]
    pub max_channels_per_account: Option<usize>,
    /// Address put in ICE candidates [default: detected].
    #[arg(long, env = "RELAYCAST_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,
    /// Directory for the database and generated secrets [default: ./data].
    #[arg(long, env = "RELAYCAST_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// NAME=SECRET: a stream and the bearer token its broadcaster uses (repeatable).
    #[arg(
        long = "stream-key",
        env = "RELAYCAST_STREAM_KEY",
        value_delimiter = ','
    )]
    pub stream_keys: Vec<String>,
    /// A viewer never receives more than this (kbit/s) [default: no limit].
    #[arg(long, env = "RELAYCAST_VIEWER_MAX_KBPS")]
    pub viewer_max_kbps: Option<u64>,
    /// Below this estimate (kbit/s) video pauses and audio continues [default: 0].
    #[arg(long, env = "RELAYCAST_VIEWER_MIN_KBPS")]
    pub viewer_min_kbps: Option<u64>,
    /// STUN/TURN URL announced in WHIP/WHEP `Link` headers (repeatable).
    #[arg(
        long = "ice-server",
        env = "RELAYCAST_ICE_SERVER",
        value_delimiter = ','
    )]
    pub ice_servers: Vec<String>,
    /// TURN shared secret (coturn's static-auth-secret): TURN servers are
    /// offered with time-limited credentials (TURN REST convention).
    #[arg(long, env = "RELAYCAST_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// How long a TURN credential is good for, in seconds [default: 86400].
    #[arg(long, env = "RELAYCAST_TURN_TTL_SECS")]
    pub turn_ttl_secs: Option<u64>,
    /// A reverse proxy (address or CIDR) whose X-Forwarded-For names the
    /// client; repeatable or comma-separated.
    #[arg(
        long = "trusted-proxy",
        env = "RELAYCAST_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Secret identity tokens are signed with [default: generated in the data dir].
    #[arg(long, env = "RELAYCAST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// postgres://… to keep control data in PostgreSQL [default: SQLite in the data dir].
    #[arg(long, env = "RELAYCAST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Do not record broadcasts [default: every broadcast is recorded;
    /// `[recordings] enabled`].
    #[arg(long, env = "RELAYCAST_NO_RECORDINGS")]
    pub no_recordings: bool,
    /// Directory recordings are written to [default: recordings in the data dir].
    #[arg(long, env = "RELAYCAST_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,
    /// s3://bucket/prefix: recordings in S3-compatible storage (credentials
    /// and endpoint from the AWS_* environment) [default: the directory].
    #[arg(long, env = "RELAYCAST_RECORDINGS_URL")]
    pub recordings_url: Option<String>,
    /// Delete recordings this many days after they started [default: 0, kept].
    #[arg(long, env = "RELAYCAST_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// How far back a live viewer may rewind (3600s, 90m, 2h; plain numbers
    /// are seconds) [default: 30m; `[recordings] dvr_window_secs`].
    #[arg(long, env = "RELAYCAST_DVR_WINDOW", value_parser = parse_duration)]
    pub dvr_window: Option<std::time::Duration>,
    /// Seconds a publisher may be gone and still continue its recording
    /// [default: 30; `[recordings] reconnect_grace_secs`].
    #[arg(long, env = "RELAYCAST_RECORDING_GRACE_SECS")]
    pub recording_grace_secs: Option<u64>,
}

impl Cli {
    /// The server config from defaults → file → env/flags, validated.
    pub fn into_config(self) -> anyhow::Result<Config> {
        self.flags.into_config()
    }
}

impl ServerFlags {
    /// Applies defaults → file → env/flags, then validates.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = self.http_addr {
            config.http_addr = v;
        }
        if let Some(v) = self.udp_port {
            config.udp_port = v;
        }
        if let Some(v) = self.workers {
            config.workers = v;
        }
        if let Some(v) = self.max_viewers {
            config.max_viewers = v;
        }
        if self.no_recordings {
            config.recordings.enabled = false;
        }
        if let Some(v) = self.recordings_dir {
            config.recordings.dir = Some(v);
        }
        if let Some(v) = self.recordings_url {
            config.recordings.url = Some(v);
        }
        if let Some(v) = self.recording_grace_secs {
            config.recordings.reconnect_grace_secs = v;
        }
        if let Some(v) = self.dvr_window {
            config.recordings.dvr_window_secs = v.as_secs();
        }
        if let Some(v) = self.retention_days {
            config.recordings.retention_days = v;
        }
        if let Some(v) = self.max_channels_per_account {
            config.limits.max_channels_per_account = v;
        }
        if let Some(v) = self.public_ip {
            config.public_ip = Some(v);
        }
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.viewer_max_kbps {
            config.viewer_max_kbps = v;
        }
        if let Some(v) = self.viewer_min_kbps {
            config.viewer_min_kbps = v;
        }
        for pair in self.stream_keys {
            let Some((name, secret)) = pair.split_once('=') else {
                bail!("--stream-key expects NAME=SECRET, got {:?}", redact(&pair));
            };
            config
                .stream_keys
                .insert(name.to_owned(), secret.to_owned());
        }
        config.ice_servers.extend(self.ice_servers);
        if let Some(v) = self.turn_secret {
            config.turn_secret = Some(v);
        }
        if let Some(v) = self.turn_ttl_secs {
            config.turn_ttl_secs = v;
        }
        config.trusted_proxies.extend(self.trusted_proxies);
        if let Some(v) = self.jwt_secret {
            config.jwt_secret = Some(v);
        }
        if let Some(v) = self.database_url {
            config.database_url = Some(v);
        }
        config.validate()?;
        Ok(config)
    }
}

/// Secrets never reach logs or error messages whole.
fn redact(s: &str) -> String {
    let prefix: String = s.chars().take(3).collect();
    format!("{prefix}…")
}

/// A duration as `3600s`, `90m`, `12h`, `30d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 3600s, 90m, 12h or 30d"))?;
    let scale = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} (s, m, h, d)")),
    };
    n.checked_mul(scale)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "relaycast",
            "--udp-port",
            "9000",
            "--stream-key",
            "news=supersecret1",
        ]);
        let config = cli.into_config().unwrap();
        assert_eq!(config.udp_port, 9000);
        assert_eq!(config.stream_keys["news"], "supersecret1");
    }

    #[test]
    fn the_dvr_window_is_a_duration_within_a_recordings_length() {
        let window = |text: &str| {
            Cli::try_parse_from(["relaycast", "--dvr-window", text])
                .map_err(|e| e.to_string())
                .and_then(|cli| cli.into_config().map_err(|e| e.to_string()))
                .map(|c| c.recordings.dvr_window_secs)
        };
        assert_eq!(
            Cli::parse_from(["relaycast"])
                .into_config()
                .unwrap()
                .recordings
                .dvr_window_secs,
            1800
        );
        assert_eq!(window("90m"), Ok(5400));
        assert_eq!(window("45"), Ok(45));
        assert_eq!(window("12h"), Ok(43_200));
        for bad in ["5s", "13h", "soon", "99999999999999999d"] {
            assert!(window(bad).is_err(), "{bad}");
        }
        assert!(window("13h").unwrap_err().contains("DVR window"));
    }

    #[test]
    fn stream_key_without_equals_is_an_error_that_hides_the_secret() {
        let cli = Cli::parse_from(["relaycast", "--stream-key", "verysecretvalue"]);
        let err = cli.into_config().unwrap_err().to_string();
        assert!(!err.contains("verysecretvalue"), "{err}");
    }

    #[test]
    fn subcommands_take_the_shared_flags_after_them() {
        let cli = Cli::parse_from([
            "relaycast",
            "token",
            "create",
            "--role",
            "moderator",
            "--name",
            "alice",
            "--data-dir",
            "/tmp/x",
        ]);
        assert!(matches!(
            cli.command,
            Some(Command::Token(TokenCommand::Create(_)))
        ));
        assert_eq!(cli.flags.data_dir, Some(PathBuf::from("/tmp/x")));
        let serve = Cli::parse_from(["relaycast", "--udp-port", "9000"]);
        assert!(serve.command.is_none());
    }
}
