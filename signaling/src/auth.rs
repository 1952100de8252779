//! Bearer-token checks for publishing. Comparison is constant-time so a
//! stream key cannot be guessed byte by byte from response timing.

use axum::http::{header, HeaderMap};

/// The bearer token of the request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn table_of_bearer_checks() {
        let cases = [
            ("Bearer secret123", true),
            ("bearer secret123", true),
            ("Bearer secret124", false),
            ("Bearer secret12", false),
            ("Basic secret123", false),
            ("secret123", false),
        ];
        for (auth, ok) in cases {
            let matches = bearer(&headers(auth))
                .is_some_and(|t| constant_time_eq(t.as_bytes(), b"secret123"));
            assert_eq!(matches, ok, "{auth}");
        }
        assert!(bearer(&HeaderMap::new()).is_none());
    }
}
