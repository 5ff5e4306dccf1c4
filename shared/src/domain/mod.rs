//! Types and rules, no I/O: what a campaign, lead, event or webhook is and may become.

pub mod api_request;
pub mod campaign;
pub mod contact;
pub mod delivery;
pub mod feedback;
pub mod integration;
pub mod lead;
pub mod metering;
pub mod providers;
pub mod push;
pub mod score;
pub mod stats;
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

/// How deep client JSON stored free-form (custom fields, feedback metadata) may nest, in
/// objects and arrays. DynamoDB refuses items nested deeper than 32 levels; our own
/// wrapping adds at most 6 (a delivery's `payload.data.leads[i].custom_fields.name`), so
/// 20 leaves margin.
pub const MAX_JSON_DEPTH: usize = 20;

/// Whether a decimal number fits DynamoDB's Number type: at most 38 significant digits
/// (leading and trailing zeros are trimmed), and zero or a magnitude in [1e-130, 1e126).
pub fn storable_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => match unsigned[at + 1..].trim_start_matches('+').parse::<i64>() {
            Ok(exp) => (&unsigned[..at], exp),
            Err(_) => return false,
        },
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) || int.is_empty() && frac.is_empty() {
        return false;
    }
    let digits: String = format!("{int}{frac}");
    let Some(first) = digits.find(|c| c != '0') else {
        return true; // zero
    };
    let last = digits.rfind(|c| c != '0').unwrap_or(first);
    if last - first + 1 > 38 {
        return false;
    }
    // The value is 0.d1d2... x 10^magnitude, with d1 the first non-zero digit.
    let magnitude = exponent + int.len() as i64 - first as i64;
    // [1e-130, 1e126): 1e-130 has magnitude -129, anything below 1e126 at most 126.
    (-129..=126).contains(&magnitude)
}

/// Checks client JSON that will be stored as is: nesting within [`MAX_JSON_DEPTH`] and
/// every number storable in DynamoDB. Errors name the offending path under `field`.
pub fn storable_json(field: &str, value: &serde_json::Value) -> Result<(), ValidationError> {
    fn walk(path: &mut String, value: &serde_json::Value, depth: usize) -> Result<(), ValidationError> {
        use serde_json::Value;
        let nested = matches!(value, Value::Array(_) | Value::Object(_));
        if nested && depth >= MAX_JSON_DEPTH {
            return Err(ValidationError::new(
                path.clone(),
                format!("is nested too deeply; values may nest at most {MAX_JSON_DEPTH} levels of objects and arrays"),
            ));
        }
        let len = path.len();
        match value {
            Value::Number(n) if !storable_number(&n.to_string()) => {
                return Err(ValidationError::new(
                    path.clone(),
                    format!(
                        "{n} cannot be stored: numbers must be 0 or between 1e-130 and 1e126 in magnitude, \
                         with at most 38 significant digits (send it as a string)"
                    ),
                ));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    walk(path, item, depth + 1)?;
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    path.push('.');
                    path.push_str(key);
                    walk(path, item, depth + 1)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(&mut field.to_owned(), value, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> serde_json::Value {
        (0..levels).fold(serde_json::json!(1), |inner, i| {
            if i % 2 == 0 { serde_json::json!({ "k": inner }) } else { serde_json::json!([inner]) }
        })
    }

    #[test]
    fn storable_json_allows_twenty_levels_and_names_the_path_beyond() {
        assert!(storable_json("custom_fields.x", &nested(MAX_JSON_DEPTH)).is_ok());
        let e = storable_json("custom_fields.x", &nested(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert!(e.field.starts_with("custom_fields.x.k[0].k"), "{}", e.field);
        assert_eq!(e.field.matches('k').count(), 10, "the path stops at the 21st level: {}", e.field);
        assert!(e.message.contains("at most 20 levels"), "{}", e.message);
    }

    #[test]
    fn storable_numbers_are_dynamodbs_range_and_precision() {
        for ok in [
            "0",
            "-0.0",
            "1e125",
            "9.9999999999999999999999999999999999999E+125",
            "1e-130",
            "-1E-130",
            "12345678901234567890123456789012345678",
            "1.5",
            "100000000000000000000000000000000000000000",
            "0.000001",
            "18446744073709551615",
            "-9223372036854775808",
        ] {
            assert!(storable_number(ok), "{ok}");
        }
        for bad in
            ["1e126", "-1e126", "1e-131", "1e300", "123456789012345678901234567890123456789", "1e-400", "x", "", "1e"]
        {
            assert!(!storable_number(bad), "{bad}");
        }
        let e = storable_json("metadata", &serde_json::json!({"a": [1, 1e300]})).unwrap_err();
        assert_eq!(e.field, "metadata.a[1]");
        assert!(e.message.contains("1e+300") && e.message.contains("string"), "{}", e.message);
        assert!(storable_json("metadata", &serde_json::json!({"a": [1.0e125, -1e-130, 2.5]})).is_ok());
    }

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
