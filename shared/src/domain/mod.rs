//! Types and rules, no I/O: what a campaign, lead, event or webhook is and may become.

pub mod api_request;
pub mod campaign;
pub mod contact;
pub mod delivery;
pub mod feedback;
pub mod integration;
pub mod lead;
pub mod providers;
pub mod push;
pub mod webhook;
pub mod workflow;
pub mod workspace;

/// A rule broken by client input; the API turns it into `400 validation_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl From<ValidationError> for crate::error::ApiError {
    fn from(e: ValidationError) -> Self {
        crate::error::ApiError::Validation { field: e.field, message: e.message }
    }
}

/// Characters no stored text may hold, as screens would show them: control characters
/// (NUL, escape, ...) and the bidirectional overrides that make text read backwards.
fn unsafe_char(c: char, allow_tab_newline: bool) -> bool {
    (c.is_control() && !(allow_tab_newline && (c == '\t' || c == '\n')))
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn refuse_unsafe(field: &str, value: &str, allow_tab_newline: bool) -> Result<(), ValidationError> {
    match value.chars().find(|c| unsafe_char(*c, allow_tab_newline)) {
        None => Ok(()),
        Some(c) => {
            let allowed = if allow_tab_newline { " other than tab and newline" } else { "" };
            Err(ValidationError::new(
                field,
                format!("must not contain control characters{allowed} (found U+{:04X})", c as u32),
            ))
        }
    }
}

/// Free text (notes, custom values): tabs and newlines are fine (`\r\n` becomes `\n`),
/// other control characters are refused.
pub fn check_free_text(field: &str, value: &str) -> Result<String, ValidationError> {
    let value = if value.contains('\r') { value.replace("\r\n", "\n") } else { value.to_owned() };
    refuse_unsafe(field, &value, true)?;
    Ok(value)
}

/// One-line text (names, keys, ids): no control characters at all.
pub fn check_line(field: &str, value: &str) -> Result<(), ValidationError> {
    refuse_unsafe(field, value, false)
}

/// Trims a user-supplied name and checks its length in characters and that it is one line.
/// The length is counted before trimming, as the API document's `maxLength` counts it.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, ValidationError> {
    let chars = value.chars().count();
    let value = value.trim();
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    check_line(field, value)?;
    if chars > max_chars {
        return Err(ValidationError::new(field, format!("must be at most {max_chars} characters, got {chars}")));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_except_tab_and_newline_in_free_text() {
        assert_eq!(check_free_text("notes", "a\tb\r\nc").unwrap(), "a\tb\nc");
        for bad in ["a\0b", "a\u{1b}[31m", "a\rb", "x\u{7f}", "\u{202e}gnp.exe"] {
            let e = check_free_text("notes", bad).unwrap_err();
            assert_eq!(e.field, "notes");
            assert!(e.message.contains("control characters other than tab and newline"), "{}", e.message);
        }
        assert!(check_line("name", "Ada Lovelace é 名").is_ok());
        assert!(check_line("name", "a\nb").is_err());
        assert!(required_text("name", "bad\u{0}name", 100).is_err());
    }
}
