//! Identifier newtypes, so a stream name is never confused with a session id.

use std::fmt;
use std::sync::Arc;

/// A broadcast's public name (`live` in `/whip/live`). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BroadcastName(Arc<str>);

impl BroadcastName {
    pub fn new(name: &str) -> Self {
        BroadcastName(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BroadcastName {
    fn default() -> Self {
        BroadcastName::new("")
    }
}

impl fmt::Display for BroadcastName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BroadcastName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// One WHIP or WHEP session (one `Rtc`). 128 bits from the OS's random
/// number generator: the id is the capability in the session's resource URL
/// (`/whep/{stream}/{id}`), so it must not be guessable from other ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SessionId(pub u128);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl SessionId {
    /// A fresh id from the OS's random number generator.
    pub fn random() -> SessionId {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        SessionId(u128::from_le_bytes(bytes))
    }

    /// Exactly 32 lowercase or uppercase hex digits, as [`Display`] writes.
    ///
    /// [`Display`]: fmt::Display
    pub fn parse(s: &str) -> Option<SessionId> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(SessionId)
    }

    /// Bits of the id for per-session values that need not be secret
    /// (a DownTrack's first sequence number).
    pub fn low_u64(self) -> u64 {
        self.0 as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_128_bit_and_round_trip() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(&a.to_string()), Some(a));
        assert_eq!(a.to_string().len(), 32);
        for bad in ["", "abc", "zz", &"f".repeat(33), &"g".repeat(32)] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }
}
