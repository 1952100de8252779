//! Who is asking: an [`Identity`] (id, display name, [`Role`]) carried in a
//! signed token the client keeps. Tokens are JWTs (RFC 7519) signed with
//! HMAC-SHA256 under one server secret, so any node holding the secret can
//! check them without a database round trip.
//!
//! Invariants: only tokens whose header says `HS256`, whose signature checks
//! (constant-time) and whose `exp` is in the future are accepted; a token is
//! never logged. Encoding and signature checks are `jsonwebtoken`'s (HS256
//! only); expiry is checked here against a clock the caller passes, so the
//! tests step time by hand. Moderator and admin tokens are only made by the CLI
//! (`relaycast token create`), never over HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What an identity may do. Ordered: each role may do what the ones before
/// it may, except that a broadcaster's rights are limited to its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Broadcaster,
    Moderator,
    Admin,
}

impl Role {
    /// Moderators and admins may send alerts, delete messages, mute users.
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Moderator | Role::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Broadcaster => "broadcaster",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "broadcaster" => Ok(Role::Broadcaster),
            "moderator" => Ok(Role::Moderator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (viewer, broadcaster, moderator, admin)"
            )),
        }
    }
}

/// A verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Stable id: `g-<hex>` guests, `u-<n>` accounts, `m-<name>` CLI-made
    /// tokens, `b-<stream>` broadcasters presenting their stream key.
    pub id: String,
    /// Display name.
    pub name: String,
    pub role: Role,
    /// The stream a broadcaster owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

impl Identity {
    /// May change `stream`'s title, description, tags and disclaimer.
    pub fn owns(&self, stream: &str) -> bool {
        self.role == Role::Admin
            || (self.role == Role::Broadcaster && self.stream.as_deref() == Some(stream))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// The JWT claims we issue: the identity plus issue and expiry times.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
    iat: u64,
    exp: u64,
}

/// Signs and verifies identity tokens with one HS256 secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("Tokens(..)")
    }
}

/// Whether the token's header is JSON naming an algorithm other than
/// HS256 (`jsonwebtoken` reports an unknown one, such as `none`, as a JSON
/// error); only asked about a token already refused.
fn names_another_alg(token: &str) -> bool {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(header) = Base64UrlUnpadded::decode_vec(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&header)
        .ok()
        .and_then(|h| h.get("alg")?.as_str().map(|alg| alg != "HS256"))
        .unwrap_or(false)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Tokens {
    /// Panics on an empty secret, which would let anyone sign tokens: the
    /// binary refuses short configured secrets and generates one otherwise.
    pub fn new(secret: &[u8]) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked in `verify_at`, against the caller's clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        Tokens {
            encoding: EncodingKey::from_secret(secret)
                .expect("the token secret is never empty (see Settings::jwt_secret)"),
            decoding: DecodingKey::from_secret(secret)
                .expect("the token secret is never empty (see Settings::jwt_secret)"),
            validation,
        }
    }

    /// A token for `who`, valid for `ttl` from now.
    pub fn issue(&self, who: &Identity, ttl: Duration) -> String {
        self.issue_at(who, unix_now(), ttl)
    }

    fn issue_at(&self, who: &Identity, now: u64, ttl: Duration) -> String {
        let claims = Claims {
            sub: who.id.clone(),
            name: who.name.clone(),
            role: who.role,
            stream: who.stream.clone(),
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 claims of plain strings and numbers always encode")
    }

    /// A token signed with this key around any `header` and `claims`
    /// bytes (base64url-encoded here): what an attacker holding the key
    /// could send, for the fuzz target of the parsing after the signature.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn sign_segments(&self, header: &[u8], claims: &[u8]) -> String {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let signing_input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header),
            Base64UrlUnpadded::encode_string(claims)
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.encoding, Algorithm::HS256)
                .expect("HS256 signs any bytes");
        format!("{signing_input}.{signature}")
    }

    /// The identity in `token`, if it is ours, intact and unexpired.
    pub fn verify(&self, token: &str) -> Result<Identity, IdentityError> {
        self.verify_at(token, unix_now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Identity, IdentityError> {
        let claims = jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                // A token not signed with HS256 (`alg: none` included) is
                // one whose signature we cannot accept.
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName => IdentityError::BadSignature,
                _ if names_another_alg(token.trim()) => IdentityError::BadSignature,
                _ => IdentityError::Malformed,
            })?
            .claims;
        if claims.exp <= now {
            return Err(IdentityError::Expired);
        }
        Ok(Identity {
            id: claims.sub,
            name: claims.name,
            role: claims.role,
            stream: claims.stream,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64UrlUnpadded, Encoding};

    fn alice() -> Identity {
        Identity {
            id: "m-alice".into(),
            name: "Alice".into(),
            role: Role::Moderator,
            stream: None,
        }
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_identity() {
        let tokens = Tokens::new(b"secret");
        let token = tokens.issue(&alice(), Duration::from_secs(60));
        assert_eq!(tokens.verify(&token), Ok(alice()));
    }

    #[test]
    fn table_of_rejected_tokens() {
        let tokens = Tokens::new(b"secret");
        let good = tokens.issue_at(&alice(), 1_000, Duration::from_secs(60));
        let other_key = Tokens::new(b"other").issue_at(&alice(), 1_000, Duration::from_secs(60));
        let (head, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        // Same signature over claims that make Alice an admin.
        let forged_claims = Base64UrlUnpadded::encode_string(
            br#"{"sub":"m-alice","name":"Alice","role":"admin","iat":1000,"exp":9999999999}"#,
        );
        let forged = format!("{head}.{forged_claims}.{sig}");
        let none_alg = format!(
            "{}.{}.",
            Base64UrlUnpadded::encode_string(br#"{"alg":"none"}"#),
            forged_claims
        );
        let cases: Vec<(&str, String, u64, IdentityError)> = vec![
            ("expired", good.clone(), 1_060, IdentityError::Expired),
            ("other key", other_key, 1_010, IdentityError::BadSignature),
            ("forged claims", forged, 1_010, IdentityError::BadSignature),
            ("alg none", none_alg, 1_010, IdentityError::BadSignature),
            ("two parts", "a.b".into(), 1_010, IdentityError::Malformed),
            (
                "four parts",
                format!("{good}.x"),
                1_010,
                IdentityError::Malformed,
            ),
            (
                "garbage",
                "!!!.???.***".into(),
                1_010,
                IdentityError::Malformed,
            ),
            ("empty", String::new(), 1_010, IdentityError::Malformed),
        ];
        for (name, token, now, want) in cases {
            assert_eq!(tokens.verify_at(&token, now), Err(want), "{name}");
        }
        assert_eq!(tokens.verify_at(&good, 1_059), Ok(alice()));
    }

    #[test]
    fn roles_parse_and_only_moderators_and_admins_moderate() {
        for (text, role, moderates) in [
            ("viewer", Role::Viewer, false),
            ("broadcaster", Role::Broadcaster, false),
            ("moderator", Role::Moderator, true),
            ("admin", Role::Admin, true),
        ] {
            assert_eq!(text.parse::<Role>(), Ok(role));
            assert_eq!(role.can_moderate(), moderates, "{text}");
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_broadcaster_owns_only_its_stream() {
        let b = Identity {
            id: "b-live".into(),
            name: "live".into(),
            role: Role::Broadcaster,
            stream: Some("live".into()),
        };
        assert!(b.owns("live"));
        assert!(!b.owns("other"));
        assert!(!alice().owns("live"));
    }
}
