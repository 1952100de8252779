//! Signed ad URLs: a VAST request and every tracking URL carry an HMAC of
//! what they name, so a client can neither make up a session, nor count an
//! event for an ad or break it was not served, nor alter one it was.
//!
//! The key is derived from the token secret under a label of its own (as
//! channel keys are), so a tracking signature is never a token signature.
//! Tags are HMAC-SHA256 cut to 128 bits, hex; parts are joined with a byte
//! no part may contain (`\n`), so two lists of parts never sign alike.

use aws_lc_rs::hmac;

const TAG_BYTES: usize = 16;

#[derive(Clone)]
pub struct UrlSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner")
    }
}

impl UrlSigner {
    pub fn new(secret: &[u8]) -> UrlSigner {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&derive, b"relaycast ad urls v1");
        UrlSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    fn tag(&self, parts: &[&str]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(p.as_bytes());
            ctx.update(b"\n");
        }
        ctx.sign().as_ref()[..TAG_BYTES].to_vec()
    }

    /// The hex tag of `parts`.
    pub fn sign(&self, parts: &[&str]) -> String {
        self.tag(parts).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `sig` is the tag of `parts` (constant time).
    pub fn verify(&self, parts: &[&str], sig: &str) -> bool {
        if parts.iter().any(|p| p.contains('\n')) || sig.len() != TAG_BYTES * 2 {
            return false;
        }
        let Some(given) = (0..TAG_BYTES)
            .map(|i| u8::from_str_radix(sig.get(i * 2..i * 2 + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        crate::auth::constant_time_eq(&given, &self.tag(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_signed_parts_verify() {
        let s = UrlSigner::new(b"secret");
        let sig = s.sign(&["track", "1", "2", "abc", "start"]);
        assert!(s.verify(&["track", "1", "2", "abc", "start"], &sig));
        let cases: &[(&[&str], &str)] = &[
            (&["track", "1", "2", "abc", "complete"], "another event"),
            (&["track", "1", "3", "abc", "start"], "another ad"),
            (&["track", "12", "", "abc", "start"], "parts shifted"),
            (&["track", "1", "2", "abc\n", "start"], "a separator inside"),
        ];
        for (parts, why) in cases {
            assert!(!s.verify(parts, &sig), "{why}");
        }
        assert!(!s.verify(&["track"], "zz"), "not hex");
        assert!(!s.verify(&["track", "1", "2", "abc", "start"], &sig[..30]));
        let other = UrlSigner::new(b"other secret");
        assert!(!other.verify(&["track", "1", "2", "abc", "start"], &sig));
    }
}
