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

/// One WHIP or WHEP session (one `Rtc`), unique for the server's lifetime.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex keeps resource URLs short and not obviously sequential-looking.
        write!(f, "{:x}", self.0)
    }
}

impl SessionId {
    pub fn parse(s: &str) -> Option<SessionId> {
        u64::from_str_radix(s, 16).ok().map(SessionId)
    }
}
