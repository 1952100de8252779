//! Page sizes of the list endpoints. `limit` is 1–100 as `docs/protocol.md`
//! says; a value outside that is a 400 naming the range, never silently
//! clamped (a client asking for 0 or 500 has a bug it should hear about).

use crate::error::ApiError;

/// The largest page any list endpoint returns.
pub const MAX_PAGE: i64 = 100;

/// The page size asked for, or `default` when none was.
pub fn page_limit(asked: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match asked {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}, not {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        for (asked, expected) in [
            (None, Some(50)),
            (Some(1), Some(1)),
            (Some(100), Some(100)),
            (Some(0), None),
            (Some(101), None),
            (Some(-1), None),
        ] {
            assert_eq!(page_limit(asked, 50).ok(), expected, "{asked:?}");
        }
    }
}
