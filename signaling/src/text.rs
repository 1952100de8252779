//! What user-written text may contain. Two kinds: a [`label`] (display
//! names, titles, tags: one line that identifies someone or something) and
//! [`prose`] (comments, alerts, descriptions, disclaimers: lines of text).
//!
//! Invariants: neither ever holds U+0000 or another control character
//! (prose keeps `\n` and `\t`); a label also holds no invisible formatting
//! character — bidi overrides, embeddings and isolates (U+202A–U+202E,
//! U+2066–U+2069), direction marks, the zero-width space, the BOM (the
//! zero-width joiners stay: emoji sequences and several scripts need them) — since those let
//! one name pose as another ("Trojan Source"-style reordering). Both are
//! checked after trimming, by the caller.

/// Whether `c` is an invisible formatting character a label may not hold.
fn invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{061C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{200B}' // zero-width space (joiners stay: emoji and scripts need them)
        | '\u{200E}' | '\u{200F}' // LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{FEFF}' // BOM / zero-width no-break space
    )
}

/// Why `text` cannot be a label, if it cannot.
pub fn label(text: &str) -> Result<(), &'static str> {
    if text.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    if text.chars().any(invisible_format) {
        return Err("contains invisible formatting characters (bidi overrides, zero-width)");
    }
    Ok(())
}

/// Why `text` cannot be prose, if it cannot.
pub fn prose(text: &str) -> Result<(), &'static str> {
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("contains control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_prose_refuse_what_they_should() {
        let cases: &[(&str, bool, bool)] = &[
            // text, label ok, prose ok
            ("Ada", true, true),
            ("Zoë 李 مرحبا", true, true),
            ("two\nlines", false, true),
            ("tab\there", false, true),
            ("nul\0byte", false, false),
            ("bell\u{7}", false, false),
            ("c1\u{85}", false, false),
            ("evil\u{202E}txt.exe", false, true),
            ("iso\u{2067}late", false, true),
            ("zero\u{200B}width", false, true),
            ("\u{FEFF}bom", false, true),
            ("emoji 👍🏽 family 👨‍👩‍👧", true, true),
        ];
        for &(text, label_ok, prose_ok) in cases {
            assert_eq!(label(text).is_ok(), label_ok, "label {text:?}");
            assert_eq!(prose(text).is_ok(), prose_ok, "prose {text:?}");
        }
    }
}
