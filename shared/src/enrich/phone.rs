//! Phone number validation on libphonenumber's metadata (the `phonenumber` crate): pure and
//! in-process, so the route answers at once. Error names follow Twilio Lookup v2.

use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, ParseError, PhoneNumber};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EnrichError;

/// Longest `phone` parameter taken (the longest real number has 15 digits plus decoration).
pub const MAX_INPUT_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhoneValidation {
    /// The number as given.
    pub number: String,
    /// A number that can be assigned in its region (length and pattern both match).
    pub valid: bool,
    /// Its length is one numbers of its region can have.
    pub possible: bool,
    /// Empty when valid: TOO_SHORT, TOO_LONG, INVALID_LENGTH, INVALID_BUT_POSSIBLE,
    /// INVALID_COUNTRY_CODE, NOT_A_NUMBER.
    pub validation_errors: Vec<String>,
    /// `+14155552671`
    pub e164: Option<String>,
    /// `+1 415-555-2671`
    pub international_format: Option<String>,
    /// `(415) 555-2671`
    pub national_format: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `US`.
    pub country_code: Option<String>,
    /// e.g. `1`.
    pub country_calling_code: Option<String>,
    pub country_name: Option<String>,
    /// mobile, fixed_line, fixed_line_or_mobile, voip, toll_free, premium_rate, shared_cost,
    /// personal_number, pager, uan, voicemail, ... or unknown.
    pub line_type: String,
}

/// Reads `country` (ISO alpha-2, any case); `Err` names the parameter.
pub fn parse_country(text: &str) -> Result<phonenumber::country::Id, EnrichError> {
    text.trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| EnrichError::invalid("country", format!("`{text}` is not an ISO 3166-1 alpha-2 country code")))
}

fn error_name(e: &ParseError) -> &'static str {
    match e {
        ParseError::InvalidCountryCode => "INVALID_COUNTRY_CODE",
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => "TOO_SHORT",
        ParseError::TooLong => "TOO_LONG",
        ParseError::NoNumber | ParseError::MalformedInteger(_) => "NOT_A_NUMBER",
    }
}

/// Validates `number`, read as a number of `country` unless it starts with `+`/`00`.
pub fn validate(number: &str, country: Option<phonenumber::country::Id>) -> PhoneValidation {
    let mut out = PhoneValidation {
        number: number.to_owned(),
        valid: false,
        possible: false,
        validation_errors: Vec::new(),
        e164: None,
        international_format: None,
        national_format: None,
        country_code: None,
        country_calling_code: None,
        country_name: None,
        line_type: "unknown".into(),
    };
    let parsed: PhoneNumber = match phonenumber::parse(country, number) {
        Ok(parsed) => parsed,
        Err(e) => {
            out.validation_errors.push(error_name(&e).into());
            return out;
        }
    };
    out.valid = phonenumber::is_valid(&parsed);
    out.e164 = Some(parsed.format().mode(Mode::E164).to_string());
    out.international_format = Some(parsed.format().mode(Mode::International).to_string());
    out.national_format = Some(parsed.format().mode(Mode::National).to_string());
    out.country_calling_code = Some(parsed.code().value().to_string());
    if let Some(id) = parsed.country().id() {
        let iso: &str = id.as_ref();
        out.country_code = Some(iso.to_owned());
        out.country_name = isocountry::CountryCode::for_alpha2(iso).ok().map(|c| c.name().to_owned());
    }
    let national_len = parsed.national().to_string().len() as u16;
    // Lengths of every region sharing the calling code (+44: GB, GG, IM, JE).
    let regions = DATABASE.by_code(&parsed.code().value()).unwrap_or_default();
    // The metadata keeps lengths per line type; the general descriptor's list may be empty.
    let mut lengths: Vec<u16> = regions
        .iter()
        .flat_map(|m| {
            let d = m.descriptors();
            [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.voip(),
                d.personal_number(),
                d.uan(),
            ]
            .into_iter()
            .flatten()
            .flat_map(|desc| desc.possible_length().iter().copied())
        })
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    match regions.first() {
        Some(_) => {
            out.possible = out.valid || lengths.contains(&national_len);
            if out.valid {
                out.line_type = serde_json::to_value(parsed.number_type(&DATABASE))
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".into());
            } else {
                let (min, max) = (lengths.iter().min().copied(), lengths.iter().max().copied());
                let error = match (min, max) {
                    (Some(min), _) if national_len < min => "TOO_SHORT",
                    (_, Some(max)) if national_len > max => "TOO_LONG",
                    _ if !out.possible => "INVALID_LENGTH",
                    _ => "INVALID_BUT_POSSIBLE",
                };
                out.validation_errors.push(error.into());
            }
        }
        None => out.validation_errors.push("INVALID_COUNTRY_CODE".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_get_formats_country_and_line_type() {
        let v = validate("+44 7400 123456", None);
        assert!(v.valid && v.possible, "{v:?}");
        assert_eq!(v.e164.as_deref(), Some("+447400123456"));
        assert_eq!(v.country_code.as_deref(), Some("GB"));
        assert_eq!(validate("+44 7911 123456", None).country_code.as_deref(), Some("GG"), "Guernsey's mobile range");
        assert_eq!(v.country_calling_code.as_deref(), Some("44"));
        assert_eq!(v.line_type, "mobile");
        assert!(v.validation_errors.is_empty());
        let us = validate("(415) 555-2671", Some(parse_country("us").unwrap()));
        assert_eq!(us.e164.as_deref(), Some("+14155552671"));
        assert_eq!(us.country_name.as_deref(), Some("United States of America"));
    }

    #[test]
    fn bad_numbers_say_why() {
        assert_eq!(validate("hello", None).validation_errors, ["NOT_A_NUMBER"]);
        let short = validate("+44 79", None);
        assert!(!short.valid);
        assert_eq!(short.validation_errors, ["TOO_SHORT"], "{short:?}");
        let long = validate("+44 7911 1234567890", None);
        assert!(!long.valid && !long.validation_errors.is_empty(), "{long:?}");
        assert!(parse_country("ZZZ").is_err());
    }
}
