//! [`Streams`]: which streams exist and whose key publishes them. Two
//! kinds, one namespace: the operator's streams from the config and flags
//! (key in memory, as before) and channels any account creates (in the
//! store, key kept only as a keyed hash, so a leaked database does not
//! leak keys and every node sharing the database and the secret accepts
//! every key).
//!
//! Keys are 160 random bits from the OS RNG, shown once at creation and at
//! rotation. The hash is HMAC-SHA256 (aws-lc-rs, the build str0m and
//! jsonwebtoken already use) under a key derived from the token signing
//! secret: a random key needs no slow hash, and changing the secret
//! invalidates channel keys as it invalidates tokens.
//!
//! Invariant: a WHIP resource (DELETE/PATCH) accepts the key its session
//! was created with even after a rotation, so a publisher that started on
//! the old key keeps control of its session until it ends; new sessions
//! need the current key. Those per-session hashes are bounded
//! ([`MAX_SESSION_KEYS`]); entries of ended sessions are pruned first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_lc_rs::hmac;

use crate::store::{Channel, Store, StoreError};

/// Per-session publish-key hashes kept at most (live publisher sessions).
pub const MAX_SESSION_KEYS: usize = 4096;

/// A stream and how its key is checked.
#[derive(Debug, Clone)]
pub enum Stream {
    /// From the config: compared as is.
    Operator { key: String },
    /// Created by an account.
    Channel(Channel),
}

/// What a presented key is for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Accepted,
    Wrong,
    /// The right key of a suspended channel: the reason.
    Suspended(String),
}

pub struct Streams {
    operator: BTreeMap<String, String>,
    store: Store,
    hmac: hmac::Key,
    /// Session id → the hash of the key it was created with.
    session_keys: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("operator", &self.operator.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Streams {
    pub fn new(operator: BTreeMap<String, String>, store: Store, secret: &[u8]) -> Self {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&derive, b"relaycast channel keys v1");
        Streams {
            operator,
            store,
            hmac: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            session_keys: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh stream key: `rck_` and 40 hex digits (160 bits).
    pub fn new_key() -> String {
        let bytes: [u8; 20] = rand::random();
        let mut key = String::from("rck_");
        for b in bytes {
            key.push_str(&format!("{b:02x}"));
        }
        key
    }

    /// The stored form of a key.
    pub fn hash(&self, key: &str) -> String {
        let tag = hmac::sign(&self.hmac, key.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn is_operator(&self, name: &str) -> bool {
        self.operator.contains_key(name)
    }

    /// The operator's streams (each has a metadata row from the start).
    pub fn operator_names(&self) -> impl Iterator<Item = &String> {
        self.operator.keys()
    }

    /// The stream called `name`, if there is one.
    pub async fn find(&self, name: &str) -> Result<Option<Stream>, StoreError> {
        if let Some(key) = self.operator.get(name) {
            return Ok(Some(Stream::Operator { key: key.clone() }));
        }
        Ok(self.store.channel(name).await?.map(Stream::Channel))
    }

    pub async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.is_operator(name) || self.store.channel(name).await?.is_some())
    }

    /// Checks `key` against the stream's current key (constant-time).
    pub fn check(&self, stream: &Stream, key: &str) -> KeyCheck {
        match stream {
            Stream::Operator { key: expected } => {
                if crate::auth::constant_time_eq(key.as_bytes(), expected.as_bytes()) {
                    KeyCheck::Accepted
                } else {
                    KeyCheck::Wrong
                }
            }
            Stream::Channel(c) => {
                let given = self.hash(key);
                if !crate::auth::constant_time_eq(given.as_bytes(), c.key_hash.as_bytes()) {
                    KeyCheck::Wrong
                } else if let Some(reason) = &c.suspended {
                    KeyCheck::Suspended(reason.clone())
                } else {
                    KeyCheck::Accepted
                }
            }
        }
    }

    /// Remembers which key created a publisher session (channels only).
    /// `live` says whether a remembered session still exists, for pruning.
    pub fn remember_session_key(&self, session: &str, key: &str, live: impl Fn(&str) -> bool) {
        let hash = self.hash(key);
        let mut keys = self
            .session_keys
            .lock()
            .expect("session key map: no panics while held");
        if keys.len() >= MAX_SESSION_KEYS {
            keys.retain(|s, _| live(s));
        }
        if keys.len() < MAX_SESSION_KEYS {
            keys.insert(session.to_owned(), hash);
        }
    }

    /// Whether `key` is the one `session` was created with.
    pub fn created_with(&self, session: &str, key: &str) -> bool {
        let hash = self.hash(key);
        self.session_keys
            .lock()
            .expect("session key map: no panics while held")
            .get(session)
            .is_some_and(|h| crate::auth::constant_time_eq(h.as_bytes(), hash.as_bytes()))
    }

    pub fn forget_session(&self, session: &str) {
        self.session_keys
            .lock()
            .expect("session key map: no panics while held")
            .remove(session);
    }

    /// The owner's id, when `name` is a channel.
    pub async fn owner(&self, name: &str) -> Result<Option<String>, StoreError> {
        if self.is_operator(name) {
            return Ok(None);
        }
        Ok(self.store.channel(name).await?.map(|c| c.owner_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_hash_under_the_secret_and_check_in_constant_time() {
        let store = crate::store::tests::sqlite_store().await;
        let streams = Streams::new(
            BTreeMap::from([("live".to_owned(), "operator-key-1".to_owned())]),
            store.clone(),
            b"secret-a",
        );
        let key = Streams::new_key();
        assert!(key.starts_with("rck_") && key.len() == 44, "{key}");
        assert_ne!(key, Streams::new_key());
        let other = Streams::new(BTreeMap::new(), store.clone(), b"secret-b");
        assert_ne!(streams.hash(&key), other.hash(&key), "the hash is keyed");
        assert_eq!(streams.hash(&key).len(), 64);

        store
            .create_channel("ada", "u-1", "ada", &streams.hash(&key))
            .await
            .unwrap();
        let channel = streams.find("ada").await.unwrap().unwrap();
        assert_eq!(streams.check(&channel, &key), KeyCheck::Accepted);
        assert_eq!(streams.check(&channel, "rck_wrong"), KeyCheck::Wrong);
        store
            .set_channel_suspended("ada", Some("terms of service"))
            .await
            .unwrap();
        let channel = streams.find("ada").await.unwrap().unwrap();
        assert_eq!(
            streams.check(&channel, &key),
            KeyCheck::Suspended("terms of service".into())
        );
        assert_eq!(
            streams.check(&channel, "rck_wrong"),
            KeyCheck::Wrong,
            "strangers learn nothing"
        );
        let operator = streams.find("live").await.unwrap().unwrap();
        assert_eq!(
            streams.check(&operator, "operator-key-1"),
            KeyCheck::Accepted
        );
        assert!(streams.find("nobody").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn session_keys_are_bounded_and_pruned_of_ended_sessions() {
        let store = crate::store::tests::sqlite_store().await;
        let streams = Streams::new(BTreeMap::new(), store, b"secret");
        for i in 0..MAX_SESSION_KEYS {
            streams.remember_session_key(&format!("s{i}"), "k", |_| true);
        }
        // Full of live sessions: a new one is not remembered (its DELETE
        // then needs the current key), nothing live is evicted.
        streams.remember_session_key("new", "k", |_| true);
        assert!(!streams.created_with("new", "k"));
        assert!(streams.created_with("s0", "k"));
        // Ended sessions make room.
        streams.remember_session_key("new", "k", |s| s != "s0");
        assert!(streams.created_with("new", "k"));
        assert!(!streams.created_with("s0", "k"));
        assert!(!streams.created_with("new", "other"));
    }
}
