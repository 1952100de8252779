//! The bodies of the signaling fuzz targets in `fuzz/`, here so that the
//! normal test suite runs every committed reproducer
//! (`fuzz/reproducers/<target>/`) through exactly the same code. Each
//! function takes arbitrary bytes and must return without panicking.

use crate::identity::Tokens;
use crate::realtime::validate::{parse, MalformedStreak};

/// A websocket text frame, three times (so the malformed streak runs).
pub fn ws_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut streak = MalformedStreak::default();
    for _ in 0..3 {
        let _ = parse(text, &mut streak);
    }
}

/// An identity token. Raw input stops at the HMAC check, so the input is
/// also split (at the first 0xFF byte) into header and claims bytes signed
/// with the verifier's key: everything after the signature — base64, the
/// header's JSON and `alg`, the claims' JSON and expiry — runs.
pub fn token(data: &[u8]) {
    let tokens = Tokens::new(b"fuzz-secret");
    if let Ok(raw) = std::str::from_utf8(data) {
        let _ = tokens.verify(raw);
    }
    let (header, claims) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], data),
    };
    let _ = tokens.verify(&tokens.sign_segments(header, claims));
}

#[cfg(test)]
mod tests {
    /// A fuzz target's body.
    type Target = fn(&[u8]);

    use std::path::PathBuf;

    #[test]
    fn the_committed_reproducers_run_clean() {
        let dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let targets: [(&str, Target); 2] =
            [("ws_message", super::ws_message), ("token", super::token)];
        // The seeds as well: the inputs every fuzzing run starts from.
        for (target, run) in targets {
            for kind in ["reproducers", "seeds"] {
                let dir = PathBuf::from(&dir).join("../fuzz").join(kind).join(target);
                let entries = std::fs::read_dir(&dir)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
                for entry in entries {
                    let path = entry.expect("a directory entry").path();
                    let bytes = std::fs::read(&path).expect("a committed fuzz input");
                    let outcome = std::panic::catch_unwind(|| run(&bytes));
                    assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
                }
            }
        }
    }
}
