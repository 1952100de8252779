//! The rows the store hands out: likes, alerts, broadcast metadata,
//! comments. Plain data, serialised as the REST API and the websocket
//! protocol show them (times in Unix milliseconds).

use serde::{Deserialize, Serialize};

use crate::identity::Identity;

/// Likes and dislikes of one broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeCounts {
    pub likes: i64,
    pub dislikes: i64,
}

/// How loud an alert is; an emergency overlay cannot be dismissed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Emergency,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Emergency => "emergency",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Severity, String> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "emergency" => Ok(Severity::Emergency),
            other => Err(format!(
                "unknown severity {other:?} (info, warning, emergency)"
            )),
        }
    }
}

/// Longest alert text, in characters.
pub const MAX_ALERT_TEXT: usize = 500;
/// Longest alert lifetime, in seconds.
pub const MAX_ALERT_TTL: u32 = 3600;

/// An alert a moderator asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub severity: Severity,
    pub text: String,
    /// `"all"` or a stream name.
    pub scope: String,
    pub ttl_secs: u32,
    pub sender: Identity,
}

impl NewAlert {
    /// Why the alert cannot be sent, in words for the moderator.
    pub fn validate(&self) -> Result<(), String> {
        let chars = self.text.trim().chars().count();
        if chars == 0 {
            return Err("alert text is empty".into());
        }
        if chars > MAX_ALERT_TEXT {
            return Err(format!(
                "alert text is {chars} characters; at most {MAX_ALERT_TEXT}"
            ));
        }
        crate::text::prose(&self.text).map_err(|why| format!("alert text {why}"))?;
        if !(1..=MAX_ALERT_TTL).contains(&self.ttl_secs) {
            return Err(format!(
                "ttl must be 1..={MAX_ALERT_TTL} seconds, not {}",
                self.ttl_secs
            ));
        }
        if self.scope.is_empty() || self.scope.len() > 64 {
            return Err("scope must be \"all\" or a stream name".into());
        }
        Ok(())
    }
}

/// A persisted alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub severity: Severity,
    pub text: String,
    pub scope: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub sender_name: String,
}

/// What a broadcast says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastMeta {
    pub id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// A content warning the viewer must accept before playback.
    pub disclaimer: Option<String>,
}

/// A persisted comment (the brief's `comments` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: i64,
    pub comment: String,
    pub user_id: String,
    pub user_name: String,
    pub video_id: String,
    pub created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;

    fn alert(text: &str, ttl: u32) -> NewAlert {
        NewAlert {
            severity: Severity::Emergency,
            text: text.into(),
            scope: "all".into(),
            ttl_secs: ttl,
            sender: Identity {
                id: "m-a".into(),
                name: "a".into(),
                role: Role::Moderator,
                stream: None,
            },
        }
    }

    #[test]
    fn table_of_alert_validation() {
        let long = "x".repeat(MAX_ALERT_TEXT + 1);
        let cases = [
            ("ok", alert("Storm warning", 60), true),
            ("empty", alert("  ", 60), false),
            ("too long", alert(&long, 60), false),
            ("zero ttl", alert("x", 0), false),
            ("ttl over an hour", alert("x", MAX_ALERT_TTL + 1), false),
        ];
        for (name, a, ok) in cases {
            assert_eq!(a.validate().is_ok(), ok, "{name}");
        }
    }
}
