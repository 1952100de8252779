//! Validation of what clients send, before any handler sees it: the frame
//! size limit, JSON shape with a distinct `unknown_type`, the malformed-JSON
//! streak that ends a connection, and field rules (chat text, nonce).
//!
//! Only text that is not JSON at all counts toward the streak; a well-formed
//! message of the wrong shape is answered with `bad_message` and resets it
//! (the client speaks JSON, it just made a mistake).

use super::protocol::{ClientMessage, ErrorCode, CLIENT_TYPES};

/// Largest client message handled; larger ones get `too_large`.
pub const MAX_FRAME: usize = 16 * 1024;
/// Malformed JSON this many times in a row closes the connection (1008).
pub const MALFORMED_LIMIT: u32 = 3;
pub const MAX_CHAT_CHARS: usize = 500;
pub const MAX_NONCE_CHARS: usize = 64;
pub const MAX_ALERT_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    /// The message type, when it could be read.
    pub reference: Option<String>,
}

/// Consecutive malformed messages on one connection.
#[derive(Debug, Default)]
pub struct MalformedStreak(u32);

impl MalformedStreak {
    /// Whether the connection must now be closed.
    fn malformed(&mut self) -> bool {
        self.0 += 1;
        self.0 >= MALFORMED_LIMIT
    }
}

/// The outcome of reading one text frame.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Message(ClientMessage),
    Rejected(Rejection),
    /// Too many malformed messages in a row: close with 1008.
    Close(Rejection),
}

pub fn parse(text: &str, streak: &mut MalformedStreak) -> Parsed {
    if text.len() > MAX_FRAME {
        return Parsed::Rejected(Rejection {
            code: ErrorCode::TooLarge,
            message: format!("messages are limited to {MAX_FRAME} bytes"),
            reference: None,
        });
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let rejection = Rejection {
                code: ErrorCode::BadMessage,
                message: format!("not JSON: {e}"),
                reference: None,
            };
            return if streak.malformed() {
                Parsed::Close(rejection)
            } else {
                Parsed::Rejected(rejection)
            };
        }
    };
    streak.0 = 0;
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Parsed::Rejected(Rejection {
            code: ErrorCode::BadMessage,
            message: "a message is a JSON object with a string \"type\"".into(),
            reference: None,
        });
    };
    let reference = Some(kind.to_owned());
    if !CLIENT_TYPES.contains(&kind) {
        return Parsed::Rejected(Rejection {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {kind:?}"),
            reference,
        });
    }
    match serde_json::from_value::<ClientMessage>(value) {
        Ok(message) => Parsed::Message(message),
        Err(e) => Parsed::Rejected(Rejection {
            code: ErrorCode::BadMessage,
            message: e.to_string(),
            reference,
        }),
    }
}

/// A chat line as it will be shown: trimmed, 1..=500 characters, no
/// control characters except newlines.
pub fn chat_text(text: &str) -> Result<&str, String> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 {
        return Err("the message is empty".into());
    }
    if chars > MAX_CHAT_CHARS {
        return Err(format!(
            "messages are limited to {MAX_CHAT_CHARS} characters ({chars} given)"
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("the message contains control characters".into());
    }
    Ok(text)
}

pub fn nonce(nonce: &Option<String>) -> Result<(), String> {
    match nonce {
        Some(n) if n.chars().count() > MAX_NONCE_CHARS => {
            Err(format!("a nonce is at most {MAX_NONCE_CHARS} characters"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(parsed: &Parsed) -> Option<ErrorCode> {
        match parsed {
            Parsed::Message(_) => None,
            Parsed::Rejected(r) | Parsed::Close(r) => Some(r.code),
        }
    }

    #[test]
    fn each_kind_of_bad_input_gets_its_code() {
        let big = format!(
            r#"{{"type":"chat.send","text":"{}"}}"#,
            "a".repeat(MAX_FRAME)
        );
        // (input, expected code; None = accepted)
        let table: &[(&str, Option<ErrorCode>)] = &[
            (r#"{"type":"chat.send","text":"hi"}"#, None),
            (r#"{"type":"leave"}"#, None),
            (r#"{"type":"nope"}"#, Some(ErrorCode::UnknownType)),
            (r#"{"type":7}"#, Some(ErrorCode::BadMessage)),
            (r#"[1,2]"#, Some(ErrorCode::BadMessage)),
            (r#"{"type":"chat.send"}"#, Some(ErrorCode::BadMessage)),
            (
                r#"{"type":"chat.send","text":"a","x":1}"#,
                Some(ErrorCode::BadMessage),
            ),
            (
                r#"{"type":"chat.mute","user_id":"u","secs":-1}"#,
                Some(ErrorCode::BadMessage),
            ),
            ("{nope", Some(ErrorCode::BadMessage)),
            (&big, Some(ErrorCode::TooLarge)),
        ];
        for (input, expected) in table {
            let mut streak = MalformedStreak::default();
            assert_eq!(code(&parse(input, &mut streak)), *expected, "{input:.60}");
        }
    }

    #[test]
    fn the_error_names_the_message_type_when_known() {
        let mut streak = MalformedStreak::default();
        let Parsed::Rejected(r) = parse(r#"{"type":"react"}"#, &mut streak) else {
            panic!("accepted a react without emoji");
        };
        assert_eq!(r.reference.as_deref(), Some("react"));
    }

    #[test]
    fn three_malformed_in_a_row_close_but_a_good_one_resets() {
        let mut streak = MalformedStreak::default();
        let good = r#"{"type":"leave"}"#;
        // (input, closes?)
        let table = [
            ("x", false),
            ("y", false),
            (good, false),
            ("x", false),
            (r#"{"type":"nope"}"#, false), // well-formed JSON resets too
            ("x", false),
            ("y", false),
            ("z", true),
        ];
        for (i, (input, closes)) in table.into_iter().enumerate() {
            let parsed = parse(input, &mut streak);
            assert_eq!(matches!(parsed, Parsed::Close(_)), closes, "row {i}");
        }
    }

    #[test]
    fn chat_text_rules() {
        let long = "é".repeat(MAX_CHAT_CHARS); // 500 characters, 1000 bytes
        let too_long = "é".repeat(MAX_CHAT_CHARS + 1);
        // (input, accepted as)
        let table: &[(&str, Option<&str>)] = &[
            ("hello", Some("hello")),
            ("  padded \n", Some("padded")),
            ("two\nlines", Some("two\nlines")),
            (&long, Some(&long)),
            (&too_long, None),
            ("", None),
            ("   ", None),
            ("bell\u{7}", None),
        ];
        for (input, expected) in table {
            assert_eq!(chat_text(input).ok(), *expected, "{input:.20?}");
        }
        assert!(nonce(&Some("n".repeat(64))).is_ok());
        assert!(nonce(&Some("n".repeat(65))).is_err());
        assert!(nonce(&None).is_ok());
    }
}
