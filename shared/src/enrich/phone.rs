//! Phone number validation with libphonenumber ported whole (the `rlibphonenumber` crate:
//! its parser, metadata and rules, so validity, E.164, country and line type are the
//! reference's own answers; `enrich::reference_checks` compares them on a generated
//! corpus). Pure and in-process, so the route answers at once. Error names follow Twilio
//! Lookup v2.

use rlibphonenumber::{PHONE_NUMBER_UTIL, ParseError, PhoneNumberFormat, PhoneNumberType, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EnrichError;

/// An ISO 3166-1 alpha-2 region of the phone metadata.
pub type Region = rlibphonenumber::Region;

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
    /// The extension (`;ext=123`, ` ext. 123`, ...), digits only; not part of `e164`.
    pub extension: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `US`; null for non-geographic numbers (+800, +882, ...).
    pub country_code: Option<String>,
    /// e.g. `1`.
    pub country_calling_code: Option<String>,
    pub country_name: Option<String>,
    /// mobile, fixed_line, fixed_line_or_mobile, voip, toll_free, premium_rate, shared_cost,
    /// personal_number, pager, uan, voicemail, ... or unknown.
    pub line_type: String,
}

/// Reads `country` (ISO alpha-2, any case); `Err` names the parameter.
pub fn parse_country(text: &str) -> Result<Region, EnrichError> {
    let code = text.trim().to_ascii_uppercase();
    Region::from_code(&code)
        .ok()
        .filter(|region| PHONE_NUMBER_UTIL.get_country_code_for_region(*region).is_some())
        .ok_or_else(|| EnrichError::invalid("country", format!("`{text}` is not an ISO 3166-1 alpha-2 country code")))
}

fn error_name(e: &ParseError) -> &'static str {
    match e {
        ParseError::InvalidCountryCode => "INVALID_COUNTRY_CODE",
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => "TOO_SHORT",
        ParseError::TooLongNsn => "TOO_LONG",
        ParseError::NotANumber(_) => "NOT_A_NUMBER",
    }
}

/// The API's name of a line type (libphonenumber's, lower-cased).
pub fn line_type(kind: PhoneNumberType) -> &'static str {
    match kind {
        PhoneNumberType::FixedLine => "fixed_line",
        PhoneNumberType::Mobile => "mobile",
        PhoneNumberType::FixedLineOrMobile => "fixed_line_or_mobile",
        PhoneNumberType::TollFree => "toll_free",
        PhoneNumberType::PremiumRate => "premium_rate",
        PhoneNumberType::SharedCost => "shared_cost",
        PhoneNumberType::VoIP => "voip",
        PhoneNumberType::PersonalNumber => "personal_number",
        PhoneNumberType::Pager => "pager",
        PhoneNumberType::UAN => "uan",
        PhoneNumberType::VoiceMail => "voicemail",
        PhoneNumberType::Unknown => "unknown",
    }
}

/// Validates `number`: one starting with `+` carries its country; any other is read as
/// dialled from `country`, whose international prefix (`00` in most of Europe, `011` in
/// the US) is recognised there, as libphonenumber does. Without `country`, only `+`
/// numbers can be read.
pub fn validate(number: &str, country: Option<Region>) -> PhoneValidation {
    let mut out = PhoneValidation {
        number: number.to_owned(),
        valid: false,
        possible: false,
        validation_errors: Vec::new(),
        e164: None,
        international_format: None,
        national_format: None,
        extension: None,
        country_code: None,
        country_calling_code: None,
        country_name: None,
        line_type: "unknown".into(),
    };
    let util = &*PHONE_NUMBER_UTIL;
    let parsed = match util.parse(number, country) {
        Ok(parsed) => parsed,
        Err(e) => {
            out.validation_errors.push(error_name(&e).into());
            return out;
        }
    };
    out.valid = util.is_valid_number(&parsed);
    out.e164 = Some(util.format(&parsed, PhoneNumberFormat::E164).into_owned());
    out.international_format = Some(util.format(&parsed, PhoneNumberFormat::International).into_owned());
    out.national_format = Some(util.format(&parsed, PhoneNumberFormat::National).into_owned());
    out.extension = parsed.extension.clone().filter(|e| !e.is_empty());
    out.country_calling_code = Some(parsed.country_code.to_string());
    // Non-geographic numbers (+800, +882, ...) belong to the region `001`: no country.
    if let Some(region) = util.get_region_for_number(&parsed).filter(|r| r.as_region_str().as_str() != "001") {
        let iso = region.as_region_str().to_string();
        out.country_name = isocountry::CountryCode::for_alpha2(&iso).ok().map(|c| c.name().to_owned());
        out.country_code = Some(iso);
    }
    let possible = util.is_possible_number_with_reason(&parsed);
    out.possible = out.valid || possible.is_ok();
    if out.valid {
        out.line_type = line_type(util.get_number_type(&parsed)).to_owned();
    } else {
        let error = match possible {
            Ok(_) => "INVALID_BUT_POSSIBLE",
            Err(ValidationError::TooShort) => "TOO_SHORT",
            Err(ValidationError::TooLong) => "TOO_LONG",
            Err(ValidationError::InvalidLength) => "INVALID_LENGTH",
            Err(ValidationError::InvalidCountryCode) => "INVALID_COUNTRY_CODE",
        };
        out.validation_errors.push(error.into());
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
        assert!(parse_country("ZZ").is_err() && parse_country("001").is_err());
        assert_eq!(us.e164.as_deref(), Some("+14155552671"));
        assert_eq!(us.country_name.as_deref(), Some("United States of America"));
    }

    #[test]
    fn numbers_are_read_as_libphonenumber_reads_them() {
        let e164 = |text: &str, region: Option<&str>| {
            let v = validate(text, region.map(|r| parse_country(r).unwrap()));
            (v.valid, v.e164, v.country_code, v.line_type)
        };
        let ru = (true, Some("+78001234567".to_owned()), Some("RU".to_owned()), "toll_free".to_owned());
        assert_eq!(e164("+7 800 123 45 67", None), ru, "the 8 of 8-800 is part of the number after +7");
        assert_eq!(e164("8 800 123-45-67", Some("RU")), ru, "and the trunk prefix at home");
        let rome = e164("+39 06 4881 2345", None);
        assert_eq!((rome.0, rome.2.as_deref(), rome.3.as_str()), (true, Some("IT"), "fixed_line"));
        let vatican = e164("+39 06 6982 1234", None);
        assert_eq!((vatican.0, vatican.2.as_deref(), vatican.3.as_str()), (true, Some("VA"), "fixed_line"));
        assert!(!validate("+35322123455", None).valid, "too long for an Irish 022 number");
        let us = Some("+14155552671".to_owned());
        for text in ["+1 1 415 555 2671", "＋１ ４１５ ５５５ ２６７１", "+1 ٤١٥ ٥٥٥ ٢٦٧١", "+1 415 555 2671;ext=12"]
        {
            assert_eq!(e164(text, None).1, us, "{text}");
        }
        assert_eq!(validate("+1 415 555 2671 ext. 12", None).extension.as_deref(), Some("12"));
        assert_eq!(e164("0044 20 7183 8750", Some("DE")).1.as_deref(), Some("+442071838750"), "00 dialled from DE");
        assert_eq!(e164("011 44 20 7183 8750", Some("US")).1.as_deref(), Some("+442071838750"));
        assert_eq!(validate("0044 20 7183 8750", None).validation_errors, ["INVALID_COUNTRY_CODE"], "no country");
        assert_eq!(validate("+800 1234 5678", None).country_code, None, "non-geographic");
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
