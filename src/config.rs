//! Server configuration: one struct, merged from defaults → `relaycast.toml` →
//! `RELAYCAST_*` environment → command-line flags (clap does the last two).
//!
//! Invariant: a `Config` that left [`Config::validate`] is usable as is; the
//! server never re-reads files or environment after start.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// More workers than this is a typo, not a machine.
pub const MAX_WORKERS: usize = 256;

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API (WHIP, WHEP, pages) listens.
    pub http_addr: SocketAddr,
    /// The first media worker's UDP port; worker `i` listens on
    /// `udp_port + i` (0 = any free ports).
    pub udp_port: u16,
    /// Media workers, one thread and one UDP port each; 0 = one per
    /// available core.
    pub workers: usize,
    /// Viewers this node admits at most (then 503 + `Retry-After`); 0 = only
    /// the workers' measured load limits admission.
    pub max_viewers: usize,
    /// The address put in our ICE candidates; `None` = detect.
    pub public_ip: Option<IpAddr>,
    /// Where the SQLite database and generated secrets live.
    pub data_dir: PathBuf,
    /// Stream name → bearer secret a broadcaster must present.
    pub stream_keys: BTreeMap<String, String>,
    /// STUN/TURN URLs announced to WHIP/WHEP clients in `Link` headers
    /// and to the pages at `/api/ice-servers`.
    pub ice_servers: Vec<String>,
    /// The TURN server's shared secret (coturn's `static-auth-secret`):
    /// `turn:`/`turns:` servers are offered with time-limited credentials.
    pub turn_secret: Option<String>,
    /// How long a TURN credential is good for, in seconds.
    pub turn_ttl_secs: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// names the client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// A viewer never receives a layer above this (kbit/s); 0 = no limit.
    pub viewer_max_kbps: u64,
    /// Below this estimate (kbit/s) a viewer's video pauses, audio goes on.
    pub viewer_min_kbps: u64,
    /// The secret identity tokens are signed with (HS256); `None` = one
    /// generated once and kept in the data dir.
    pub jwt_secret: Option<String>,
    /// `postgres://…` to keep control data in PostgreSQL; `None` = the
    /// SQLite file in the data dir.
    pub database_url: Option<String>,
    /// Abuse limits: credential throttles, password work, queues (the
    /// `[limits]` table; every key and default in `docs/security.md`).
    pub limits: relaycast_signaling::Limits,
    /// How often the SQLite write-ahead log is copied into the database
    /// and emptied, in seconds (it is at shutdown too); 0 = only at
    /// shutdown and by SQLite's own automatic checkpoints.
    pub wal_checkpoint_secs: u64,
    /// Recording every broadcast as an on-demand video (the `[recordings]`
    /// table; see `docs/operations.md`).
    pub recordings: RecordingsConfig,
    /// Ad breaks and the ad server (the `[ads]` table; see
    /// `docs/operations.md`, Ads).
    pub ads: relaycast_signaling::AdSettings,
}

/// `[recordings]`: where and how broadcasts are recorded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingsConfig {
    /// Record every broadcast (H264 + Opus) as HLS renditions, one per
    /// simulcast layer.
    pub enabled: bool,
    /// Where segments and playlists are written; `None` = `recordings` in
    /// the data dir.
    pub dir: Option<PathBuf>,
    /// `s3://bucket/prefix` to write them to S3-compatible storage instead
    /// (shared by every node); credentials, region and endpoint from the
    /// standard `AWS_*` environment (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP` for a
    /// local S3 such as MinIO or moto).
    pub url: Option<String>,
    /// Segments are cut at the first keyframe at least this many seconds
    /// after the previous cut (1–10).
    pub segment_secs: u64,
    /// A publisher back within this many seconds continues the same
    /// recording (0–600).
    pub reconnect_grace_secs: u64,
    /// Recordings are deleted this many days after they started; 0 = kept
    /// until deleted.
    pub retention_days: u64,
    /// A recording is finished after this many hours and the broadcast
    /// continues in a new one (1–48), so a 24/7 channel's playlists stay
    /// small.
    pub max_hours: u64,
    /// While recording, a live viewer may rewind this many seconds (the
    /// live playlists list that much; 10 s up to `max_hours`). The whole
    /// recording plays once it is done.
    pub dvr_window_secs: u64,
    /// A recorded layer whose last keyframe is this many seconds old is
    /// asked for one (a PLI), so segments stay short whoever publishes:
    /// browsers send keyframes only when asked; OBS ignores the request
    /// and keeps its own GOP. 0 = never ask (1–60 otherwise).
    pub keyframe_interval_secs: u64,
    /// Media messages waiting for the recorder at most; past it the
    /// recording misses packets (counted as `recorder_backpressure`), live
    /// viewers never do.
    pub queue: usize,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            enabled: true,
            dir: None,
            url: None,
            segment_secs: 2,
            reconnect_grace_secs: 30,
            retention_days: 0,
            max_hours: 12,
            dvr_window_secs: 1800,
            keyframe_interval_secs: 4,
            queue: 8192,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            udp_port: 8189,
            workers: 0,
            max_viewers: 0,
            public_ip: None,
            data_dir: PathBuf::from("data"),
            stream_keys: BTreeMap::new(),
            ice_servers: Vec::new(),
            turn_secret: None,
            turn_ttl_secs: 86_400,
            trusted_proxies: Vec::new(),
            viewer_max_kbps: 0,
            viewer_min_kbps: 0,
            jwt_secret: None,
            database_url: None,
            limits: relaycast_signaling::Limits::default(),
            wal_checkpoint_secs: 30,
            recordings: RecordingsConfig::default(),
            ads: relaycast_signaling::AdSettings::default(),
        }
    }
}

impl Config {
    /// Reads a TOML config file; unknown keys are an error so typos surface.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Fails fast with a message naming the bad setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, secret) in &self.stream_keys {
            if !is_valid_stream_name(name) {
                bail!("stream name {name:?} must be 1-64 characters of a-z, A-Z, 0-9, '-' or '_'");
            }
            if name.len() == 33
                && name.starts_with('v')
                && name[1..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                bail!("stream name {name:?} has the form of a recorded video's id (v and 32 hex digits): choose another");
            }
            if secret.len() < 8 {
                bail!("the stream key for {name:?} is too short: use at least 8 characters");
            }
        }
        if self.viewer_max_kbps != 0 && self.viewer_min_kbps > self.viewer_max_kbps {
            bail!(
                "viewer_min_kbps ({}) is above viewer_max_kbps ({})",
                self.viewer_min_kbps,
                self.viewer_max_kbps
            );
        }
        if self.workers > MAX_WORKERS {
            bail!("workers is {}: at most {MAX_WORKERS}", self.workers);
        }
        let workers = self.media_workers();
        if self.udp_port != 0 && usize::from(self.udp_port) + workers - 1 > usize::from(u16::MAX) {
            bail!(
                "udp_port {} + {workers} workers runs past port 65535",
                self.udp_port
            );
        }
        let r = &self.recordings;
        if r.url.as_ref().is_some_and(|u| !u.starts_with("s3://")) {
            bail!("recordings.url must be s3://bucket[/prefix]");
        }
        if !(1..=10).contains(&r.segment_secs) {
            bail!("recordings.segment_secs is {}: use 1 to 10", r.segment_secs);
        }
        if r.reconnect_grace_secs > 600 {
            bail!(
                "recordings.reconnect_grace_secs is {}: at most 600",
                r.reconnect_grace_secs
            );
        }
        if !(1..=48).contains(&r.max_hours) {
            bail!("recordings.max_hours is {}: use 1 to 48", r.max_hours);
        }
        if !(10..=r.max_hours * 3600).contains(&r.dvr_window_secs) {
            bail!(
                "the DVR window is {} s: use 10 s up to recordings.max_hours ({} h)",
                r.dvr_window_secs,
                r.max_hours
            );
        }
        if r.keyframe_interval_secs > 60 {
            bail!(
                "recordings.keyframe_interval_secs is {}: use 0 (never ask) to 60",
                r.keyframe_interval_secs
            );
        }
        if !(16..=1 << 20).contains(&r.queue) {
            bail!("recordings.queue is {}: use 16 to 1048576", r.queue);
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 16) {
            bail!("jwt_secret is too short: use at least 16 characters");
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("database_url must be a postgres:// URL (SQLite is the default, in the data dir)");
            }
        }
        self.trusted_proxy_nets()?;
        for url in &self.ice_servers {
            if !(url.starts_with("stun:") || url.starts_with("turn:") || url.starts_with("turns:"))
            {
                bail!("ice server {url:?} must start with stun:, turn: or turns:");
            }
        }
        if self.turn_secret.is_some()
            && !self
                .ice_servers
                .iter()
                .any(|u| u.starts_with("turn:") || u.starts_with("turns:"))
        {
            bail!("turn_secret is set but no ice server is a turn: or turns: URL to use it with");
        }
        if self.turn_secret.as_ref().is_some_and(|s| s.len() < 16) {
            bail!("turn_secret is too short: use at least 16 characters");
        }
        if !(60..=7 * 86_400).contains(&self.turn_ttl_secs) {
            bail!(
                "turn_ttl_secs is {}: use 60 to 604800 (a week)",
                self.turn_ttl_secs
            );
        }
        Ok(())
    }

    /// Media workers to start: configured, else one per available core.
    pub fn media_workers(&self) -> usize {
        if self.workers != 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// The per-viewer bounds the media plane applies.
    /// `trusted_proxies` parsed: a bare address is a /32 (or /128).
    pub fn trusted_proxy_nets(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("trusted proxy {p:?} is not an address or CIDR range")
                    })
            })
            .collect()
    }

    pub fn viewer_bounds(&self) -> relaycast_sfu::Bounds {
        relaycast_sfu::Bounds {
            min_bps: self.viewer_min_kbps * 1000,
            max_bps: (self.viewer_max_kbps != 0).then_some(self.viewer_max_kbps * 1000),
        }
    }

    /// The address written into ICE candidates: configured, else the first
    /// non-loopback interface address, else loopback.
    pub fn candidate_ip(&self) -> IpAddr {
        if let Some(ip) = self.public_ip {
            return ip;
        }
        if self.http_addr.ip().is_loopback() {
            // A server that only listens on loopback is a local setup: peers
            // on this machine reach loopback for certain.
            return IpAddr::V4(Ipv4Addr::LOCALHOST);
        }
        detect_interface_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// Stream names appear in URLs and logs: keep them to a safe alphabet.
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The local address the kernel would use to reach a public address; no
/// packet is sent (UDP connect only picks a route).
fn detect_interface_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_config_keys_are_rejected() {
        let err = toml::from_str::<Config>("http_adr = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    /// The `[limits]` table as `docs/security.md` shows it: keys given
    /// replace their defaults, the rest keep theirs, typos are errors.
    #[test]
    fn the_limits_table_overrides_only_what_it_names() {
        let config: Config = toml::from_str(
            "[limits]\nlogin_failures_per_client = { burst = 20, per_minute = 20 }\n\
             trust_hours = 168\n[limits.passwords]\nworkers = 2\nqueue = 32\n",
        )
        .unwrap();
        let defaults = relaycast_signaling::Limits::default();
        assert_eq!(config.limits.login_failures_per_client.burst, 20);
        assert_eq!(config.limits.trust_hours, 168);
        assert_eq!(config.limits.passwords.workers, 2);
        assert_eq!(config.limits.passwords.queue, 32);
        assert_eq!(
            config.limits.key_failures_per_stream,
            defaults.key_failures_per_stream
        );
        let err = toml::from_str::<Config>("[limits]\nlogin_failures = 3\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_ranges() {
        let mut config = Config {
            trusted_proxies: vec!["10.0.0.0/8".into(), "127.0.0.1".into(), "::1".into()],
            ..Config::default()
        };
        let nets = config.trusted_proxy_nets().unwrap();
        assert!(nets[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(nets[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(!nets[1].contains(&"127.0.0.2".parse::<std::net::IpAddr>().unwrap()));
        config.trusted_proxies.push("proxy.example".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("proxy.example"), "{err}");
    }

    #[test]
    fn short_stream_keys_fail_validation() {
        let mut config = Config::default();
        config.stream_keys.insert("live".into(), "short".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn stream_names_outside_the_safe_alphabet_fail_validation() {
        let mut config = Config::default();
        config
            .stream_keys
            .insert("a/b".into(), "longenoughsecret".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_turn_secret_needs_a_turn_server_a_length_and_a_sane_lifetime() {
        let stun = vec!["stun:stun.example.org:3478".to_owned()];
        let turn = vec!["turns:turn.example.org:443?transport=tcp".to_owned()];
        let secret = Some("a-long-enough-secret".to_owned());
        let cases = [
            (
                stun.clone(),
                secret.clone(),
                86_400,
                Some("no ice server is a turn:"),
            ),
            (
                turn.clone(),
                Some("short".to_owned()),
                86_400,
                Some("too short"),
            ),
            (
                turn.clone(),
                secret.clone(),
                10,
                Some("turn_ttl_secs is 10"),
            ),
            (turn.clone(), secret.clone(), 86_400, None),
            (stun, None, 86_400, None),
        ];
        for (ice_servers, turn_secret, turn_ttl_secs, want) in cases {
            let config = Config {
                ice_servers,
                turn_secret,
                turn_ttl_secs,
                ..Config::default()
            };
            match (config.validate(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(text)) => assert!(e.to_string().contains(text), "{e}"),
                (got, want) => panic!("got {got:?}, want an error with {want:?}"),
            }
        }
    }
}
