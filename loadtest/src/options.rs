//! The command line: [`Options`] (clap), parsed once in `main` or built with
//! `Options::parse_from` by tests, and the small value types it holds.
//!
//! Invariant: an `Options` that parsed is runnable; [`Options::validate`]
//! rejects what clap cannot (zero viewers, a zero ramp rate, a non-loopback
//! server).

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::http::ServerUrl;

/// Loads a relaycast server with a synthetic WHIP publisher and many WHEP
/// viewers, and reports loss, latency, time to first frame and the server's
/// CPU cost per forwarded packet.
#[derive(Parser, Debug, Clone)]
#[command(name = "relaycast-loadtest", version)]
pub struct Options {
    /// The server's HTTP base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The stream (broadcast) name.
    #[arg(long, default_value = "live")]
    pub stream: String,
    /// The stream key, sent as `Authorization: Bearer` on WHIP.
    #[arg(long, env = "RELAYCAST_LOADTEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Number of viewers.
    #[arg(long, default_value_t = 100)]
    pub viewers: usize,
    /// Total run time from the first join, e.g. `60s`, `2m`, `500ms`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Join rate, e.g. `100/s`.
    #[arg(long, default_value = "100/s", value_parser = parse_rate)]
    pub ramp: f64,
    /// Which layer viewers ask for (`mixed`: 60% high, 30% medium, 10% low).
    #[arg(long, value_enum, default_value_t = LayerMix::High)]
    pub layer: LayerMix,
    /// `synthetic`: publish a synthetic 3-layer simulcast stream over WHIP;
    /// `none`: someone else publishes (no send-time latency then).
    #[arg(long, value_enum, default_value_t = PublisherMode::Synthetic)]
    pub publisher: PublisherMode,
    /// Print the report as JSON on stdout (progress and the summary line go
    /// to stderr).
    #[arg(long)]
    pub json: bool,
    /// Viewer threads (default: the cores this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How long a missing packet may take to be repaired (NACK/RTX) before
    /// it counts as lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub nack_window: Duration,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// Churn: every period, this share of the viewers leaves (DELETE) and
    /// as many new ones join, e.g. `5%/10s`.
    #[arg(long, value_parser = parse_churn)]
    pub churn: Option<Churn>,
    /// The server's process id, to read its memory (RSS) and whole-process
    /// CPU from /proc: RSS growth per viewer is reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerMix {
    High,
    Medium,
    Low,
    Auto,
    Mixed,
}

/// The `?layer=` of one viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerChoice {
    High,
    Medium,
    Low,
    Auto,
}

impl LayerChoice {
    pub fn query(self) -> &'static str {
        match self {
            LayerChoice::High => "high",
            LayerChoice::Medium => "medium",
            LayerChoice::Low => "low",
            LayerChoice::Auto => "auto",
        }
    }
}

impl LayerMix {
    /// The choice of the `index`-th viewer: a fixed pattern, so runs with
    /// the same options load the server the same way.
    pub fn choice(self, index: usize) -> LayerChoice {
        match self {
            LayerMix::High => LayerChoice::High,
            LayerMix::Medium => LayerChoice::Medium,
            LayerMix::Low => LayerChoice::Low,
            LayerMix::Auto => LayerChoice::Auto,
            LayerMix::Mixed => match index % 10 {
                0..=5 => LayerChoice::High,
                6..=8 => LayerChoice::Medium,
                _ => LayerChoice::Low,
            },
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublisherMode {
    Synthetic,
    None,
}

impl Options {
    /// Parses flags as the command line would (without the program name);
    /// panics with clap's message on bad flags (for tests and embedders).
    pub fn parse_from_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Options {
        Options::parse_from(std::iter::once("relaycast-loadtest").chain(args))
    }

    pub fn validate(&self) -> Result<ServerUrl, String> {
        if self.viewers == 0 {
            return Err("--viewers must be at least 1".into());
        }
        if !(self.ramp.is_finite() && self.ramp > 0.0) {
            return Err("--ramp must be a positive rate".into());
        }
        if self.publisher == PublisherMode::Synthetic && self.token.is_none() {
            return Err("the synthetic publisher needs --token (the stream key)".into());
        }
        if self.stream.is_empty()
            || !self
                .stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "--stream {:?}: use letters, digits, - _ .",
                self.stream
            ));
        }
        ServerUrl::parse(&self.server)
    }

    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 64)
    }
}

/// `--churn`: a share of the audience replaced every period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    /// 0 < share ≤ 1.
    pub share: f64,
    pub every: Duration,
}

impl Churn {
    /// How many of `viewers` leave each period (at least one).
    pub fn count(&self, viewers: usize) -> usize {
        ((viewers as f64 * self.share).round() as usize).max(1)
    }
}

/// `5%/10s`: a percentage, a slash, a duration.
pub fn parse_churn(text: &str) -> Result<Churn, String> {
    let (share, every) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: use PERCENT%/DURATION, e.g. 5%/10s"))?;
    let percent: f64 = share
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("{text:?}: the share needs a %"))?
        .parse()
        .map_err(|_| format!("{text:?}: not a percentage"))?;
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(format!("{text:?}: the share must be in (0, 100]%"));
    }
    let every = parse_duration(every)?;
    if every < Duration::from_secs(1) {
        return Err(format!("{text:?}: the period must be at least 1s"));
    }
    Ok(Churn {
        share: percent / 100.0,
        every,
    })
}

/// `250ms`, `10s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a duration"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// `100/s`, `100` (per second) or `6000/m`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, per) = text.split_once('/').unwrap_or((text, "s"));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a rate"))?;
    match per.trim() {
        "s" => Ok(value),
        "m" => Ok(value / 60.0),
        _ => Err(format!("{text:?}: use N/s or N/m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_common_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn rates_read_per_second_or_minute() {
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert!(parse_rate("x/s").is_err());
    }

    #[test]
    fn churn_reads_a_share_per_period() {
        let churn = parse_churn("5%/10s").expect("valid");
        assert_eq!(churn.every, Duration::from_secs(10));
        assert_eq!(churn.count(300), 15);
        assert_eq!(churn.count(10), 1, "at least one viewer leaves");
        for bad in ["5/10s", "0%/10s", "150%/10s", "5%/100ms", "5%", "x%/1s"] {
            assert!(parse_churn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mixed_audience_is_sixty_thirty_ten() {
        let choices: Vec<_> = (0..100).map(|i| LayerMix::Mixed.choice(i)).collect();
        let count = |c| choices.iter().filter(|x| **x == c).count();
        assert_eq!(
            (
                count(LayerChoice::High),
                count(LayerChoice::Medium),
                count(LayerChoice::Low)
            ),
            (60, 30, 10)
        );
    }
}
