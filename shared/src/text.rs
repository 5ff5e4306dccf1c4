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
    fn cuts_on_a_character_boundary_and_marks_the_cut() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("short", 10), "short");
    }
}
