//! `relaycast token create`: signs an identity token with the server's
//! secret (the same config file / data dir the server uses), so an operator
//! can hand a moderator or admin a token. Moderator and admin tokens are
//! made only here, never over HTTP.

use std::time::Duration;

use anyhow::{bail, Context};
use relaycast_signaling::{Identity, Role, Tokens};

use crate::config::{is_valid_stream_name, Config};

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// viewer, broadcaster, moderator or admin.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// The display name (and, for moderators/admins, the id).
    #[arg(long)]
    pub name: String,
    /// For a broadcaster: the stream it owns.
    #[arg(long)]
    pub stream: Option<String>,
    /// How long the token is valid: e.g. 3600s, 90m, 12h, 30d.
    #[arg(long, default_value = "30d", value_parser = parse_ttl)]
    pub ttl: Duration,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// "30d" → 30 days; units s, m, h, d.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = crate::cli::parse_duration(text)?;
    if ttl.is_zero() || ttl.as_secs() > 10 * 365 * 86_400 {
        return Err("a token lives between 1 s and 10 years".into());
    }
    Ok(ttl)
}

/// The identity a CLI-made token carries.
pub fn identity(args: &CreateArgs) -> anyhow::Result<Identity> {
    let name = args.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        bail!("--name must be 1-64 characters");
    }
    let (id, stream) = match args.role {
        Role::Broadcaster => {
            let Some(stream) = args.stream.as_deref() else {
                bail!("a broadcaster token needs --stream NAME");
            };
            if !is_valid_stream_name(stream) {
                bail!(
                    "stream name {stream:?} must be 1-64 characters of a-z, A-Z, 0-9, '-' or '_'"
                );
            }
            (format!("b-{stream}"), Some(stream.to_owned()))
        }
        Role::Moderator | Role::Admin => (format!("m-{name}"), None),
        Role::Viewer => (format!("v-{name}"), None),
    };
    Ok(Identity {
        id,
        name: name.to_owned(),
        role: args.role,
        stream,
    })
}

/// Prints a description, then the token as the last line.
pub fn create(config: &Config, args: &CreateArgs) -> anyhow::Result<()> {
    let who = identity(args)?;
    let secret = crate::jwt_secret(config).context("loading the token secret")?;
    let token = Tokens::new(secret.as_bytes()).issue(&who, args.ttl);
    println!(
        "{} token for {:?} ({}), valid {} s:",
        args.role.as_str(),
        who.name,
        who.id,
        args.ttl.as_secs()
    );
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_ttls() {
        let cases = [
            ("3600s", Some(3600)),
            ("90m", Some(5400)),
            ("12h", Some(43_200)),
            ("30d", Some(2_592_000)),
            ("45", Some(45)),
            ("0s", None),
            ("2w", None),
            ("h", None),
            ("-5m", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_ttl(text).ok().map(|d| d.as_secs()), want, "{text}");
        }
    }

    #[test]
    fn a_broadcaster_token_names_its_stream() {
        let mut args = CreateArgs {
            role: Role::Broadcaster,
            name: "news desk".into(),
            stream: None,
            ttl: Duration::from_secs(60),
        };
        assert!(identity(&args).is_err());
        args.stream = Some("news".into());
        let who = identity(&args).unwrap();
        assert_eq!(
            (who.id.as_str(), who.stream.as_deref()),
            ("b-news", Some("news"))
        );
    }
}
