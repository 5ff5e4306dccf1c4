//! Text helpers shared by the domain and delivery code.

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

#[cfg(test)]
mod tests {
    use super::*;

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
