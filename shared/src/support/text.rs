//! Text helpers shared by the domain and delivery code.

/// The characters `char::is_whitespace` (and so `str::trim`) counts as white space, as a
/// class for the API document's patterns (ECMA-262 syntax, which the regex crate reads too).
pub const WHITE_SPACE: &str = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// Any character but those of [`WHITE_SPACE`]: a pattern that text is not blank.
pub const NOT_WHITE_SPACE: &str = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// Cuts text to at most `max` bytes on a character boundary, marking a cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The length of `text` once escaped as a JSON string: what a body or response takes inside
/// the JSON envelope of a Lambda event or result. Quotes, backslashes and the short escapes
/// count twice, other control characters six times (`\u001f`).
pub fn json_escaped_len(text: &[u8]) -> usize {
    text.iter()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// Quotes text as one POSIX shell word: inside single quotes nothing expands, and a
/// single quote is written as `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Lowercase hex of some bytes (hashes, ETags): a table, not a `format!` per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    text
}

/// Writes a value's JSON text into `sink` piece by piece, never building it whole: to
/// measure or hash up to a megabyte of it.
pub fn stream_json(value: &impl serde::Serialize, sink: impl FnMut(&[u8])) -> Result<(), serde_json::Error> {
    struct Sink<F>(F);
    impl<F: FnMut(&[u8])> std::io::Write for Sink<F> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            (self.0)(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Sink(sink), value)
}

/// The length in bytes of a value's JSON text (`usize::MAX` if it cannot be serialised).
pub fn json_size(value: &impl serde::Serialize) -> usize {
    let mut size = 0;
    match stream_json(value, |bytes| size += bytes.len()) {
        Ok(()) => size,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_white_space_classes_are_what_trim_removes() {
        let white = regex::Regex::new(&format!("^{WHITE_SPACE}$")).unwrap();
        let other = regex::Regex::new(&format!("^{NOT_WHITE_SPACE}$")).unwrap();
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(white.is_match(&text), c.is_whitespace(), "{c:?}");
            assert_eq!(other.is_match(&text), !c.is_whitespace(), "{c:?}");
        }
    }

    use super::*;

    #[test]
    fn a_value_is_measured_as_its_json_text() {
        let value = serde_json::json!({"name": "Zoë \"Z\"", "custom_fields": {"n": 1.5, "list": ["é", null]}});
        assert_eq!(json_size(&value), serde_json::to_string(&value).unwrap().len());
    }

    #[test]
    fn shell_quoting_keeps_every_character_literal() {
        assert_eq!(shell_quote("https://a.example/x"), "'https://a.example/x'");
        assert_eq!(shell_quote(r#"evil"; rm -rf / 'x' $(id)"#), r#"'evil"; rm -rf / '\''x'\'' $(id)'"#);
    }

    #[test]
    fn escaped_length_is_what_serde_json_writes() {
        for text in ["plain", "\"quoted\" \\ back", "line\nbreak\r\ttab", "\u{1}\u{8}\u{c}\u{1f}", "é名\u{7f}", ""] {
            let escaped = serde_json::to_string(text).unwrap();
            assert_eq!(json_escaped_len(text.as_bytes()), escaped.len() - 2, "{escaped}");
        }
    }

    #[test]
    fn cuts_on_a_character_boundary_and_marks_the_cut() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("short", 10), "short");
    }
}
