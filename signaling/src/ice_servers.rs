//! The STUN and TURN servers offered to clients: in WHIP/WHEP `Link`
//! headers (as the WHIP spec reads them, OBS included) and at
//! `GET /api/ice-servers` (the pages' own `RTCPeerConnection`s).
//!
//! With a TURN secret, every `turn:`/`turns:` server gets time-limited
//! credentials by the TURN REST convention (draft-uberti-behave-turn-rest,
//! coturn's `use-auth-secret`): username `<expiry unix time>:relaycast`,
//! password base64(HMAC-SHA1(secret, username)). The TURN server checks
//! them with the same secret; nothing is stored, and a leaked credential
//! stops working at its expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

/// What the server knows to issue TURN credentials.
#[derive(Clone)]
pub struct TurnSecret {
    secret: Vec<u8>,
    /// How long a credential is good for: a viewer's whole session, since
    /// the TURN server checks it again on every allocation refresh.
    pub ttl: Duration,
}

impl TurnSecret {
    pub fn new(secret: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        TurnSecret {
            secret: secret.into(),
            ttl,
        }
    }

    /// A username and password valid until `now + ttl`.
    pub fn credentials(&self, now: SystemTime) -> (String, String) {
        let expiry = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(self.ttl)
            .as_secs();
        let username = format!("{expiry}:relaycast");
        let mut mac =
            Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(username.as_bytes());
        let password = Base64::encode_string(&mac.finalize().into_bytes());
        (username, password)
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnSecret")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// One server, as `RTCIceServer` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The servers to offer now: TURN ones with fresh credentials when there
/// is a secret.
pub fn offered(urls: &[String], turn: Option<&TurnSecret>, now: SystemTime) -> Vec<IceServer> {
    let credentials = turn.map(|t| t.credentials(now));
    urls.iter()
        .map(|url| {
            let is_turn = url.starts_with("turn:") || url.starts_with("turns:");
            let (username, credential) = match (&credentials, is_turn) {
                (Some((u, p)), true) => (Some(u.clone()), Some(p.clone())),
                _ => (None, None),
            };
            IceServer {
                urls: url.clone(),
                username,
                credential,
            }
        })
        .collect()
}

/// A `Link` header value for one server (WHIP, RFC 9725 §4.6).
pub fn link_value(server: &IceServer) -> String {
    let mut value = format!("<{}>; rel=\"ice-server\"", server.urls);
    if let (Some(u), Some(c)) = (&server.username, &server.credential) {
        value.push_str(&format!(
            "; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\""
        ));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_convention() {
        let turn = TurnSecret::new("north", Duration::from_secs(3600));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (user, pass) = turn.credentials(now);
        assert_eq!(user, "1700003600:relaycast");
        // base64(HMAC-SHA1("north", user)), as coturn computes it.
        let mut mac = Hmac::<Sha1>::new_from_slice(b"north").unwrap();
        mac.update(user.as_bytes());
        assert_eq!(pass, Base64::encode_string(&mac.finalize().into_bytes()));
        assert_eq!(pass.len(), 28, "20 bytes of HMAC-SHA1 in base64");
    }

    #[test]
    fn only_turn_servers_get_credentials_and_only_with_a_secret() {
        let urls = vec![
            "stun:stun.example.org:3478".to_owned(),
            "turn:turn.example.org:3478?transport=udp".to_owned(),
            "turns:turn.example.org:5349".to_owned(),
        ];
        let now = SystemTime::now();
        let plain = offered(&urls, None, now);
        assert!(plain.iter().all(|s| s.username.is_none()));
        let turn = TurnSecret::new("s3cret", Duration::from_secs(60));
        let with = offered(&urls, Some(&turn), now);
        assert!(with[0].username.is_none());
        assert!(with[1].username.is_some() && with[2].credential.is_some());
        assert_eq!(
            link_value(&with[0]),
            "<stun:stun.example.org:3478>; rel=\"ice-server\""
        );
        let link = link_value(&with[1]);
        assert!(
            link.contains("; username=\"") && link.ends_with("credential-type=\"password\""),
            "{link}"
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let turn = TurnSecret::new("do-not-print", Duration::from_secs(60));
        assert!(!format!("{turn:?}").contains("do-not-print"));
    }
}
