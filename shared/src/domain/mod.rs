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

/// Trims a user-supplied name and checks its length in characters.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, ValidationError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(field, format!("must be at most {max_chars} characters, got {chars}")));
    }
    Ok(value.to_owned())
}
