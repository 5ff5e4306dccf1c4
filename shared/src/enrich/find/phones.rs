//! Phone numbers found in text: candidates by shape, then parsed and validated by the
//! phone validator (`enrich::phone`, libphonenumber), so that only numbers valid for their
//! country survive, in E.164.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::enrich::phone::{self, Region};

/// A valid number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidPhone {
    /// E.164, e.g. `+4930123456`.
    pub number: String,
    /// `mobile`, `fixed_line`, `fixed_line_or_mobile`, `toll_free`, `voip`, ... or `unknown`.
    pub line_type: String,
    /// ISO 3166 alpha-2 of the number's country, e.g. `DE`.
    pub country_code: Option<String>,
}

/// The region a domain's numbers are written for when they lack `+`: its country-code
/// TLD (`.de` -> DE, `.uk` -> GB); `None` for generic TLDs (then only `+` numbers count).
pub fn region_of_domain(domain: &str) -> Option<Region> {
    let tld = domain.rsplit('.').next()?.to_ascii_uppercase();
    let tld = if tld == "UK" { "GB".to_owned() } else { tld };
    if tld.len() != 2 {
        return None;
    }
    phone::parse_country(&tld).ok()
}

/// Parses and validates one number as written (`tel:` value, JSON-LD `telephone`, a lead's
/// phone field or text).
pub fn validate(text: &str, region: Option<Region>) -> Option<ValidPhone> {
    let text = text.trim().trim_start_matches("tel:").trim_start_matches("TEL:");
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let checked = phone::validate(text, region);
    if !checked.valid {
        return None;
    }
    Some(ValidPhone { number: checked.e164?, line_type: checked.line_type, country_code: checked.country_code })
}

/// Number-shaped runs of text: an optional `+`, then digits with spaces, dots, dashes,
/// slashes or parentheses, 7 to 20 digits in all.
static CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+|\b)\(?\d[\d\s().\-/]{5,24}\d").expect("static pattern"));

/// Valid numbers written in free text, each once, in order of appearance.
pub fn find_in_text(text: &str, region: Option<Region>) -> Vec<ValidPhone> {
    let mut found: Vec<ValidPhone> = Vec::new();
    for m in CANDIDATE.find_iter(text) {
        let digits = m.as_str().chars().filter(char::is_ascii_digit).count();
        if !(7..=20).contains(&digits) || looks_like_date(m.as_str()) {
            continue;
        }
        if let Some(phone) = validate(m.as_str(), region)
            && !found.iter().any(|p| p.number == phone.number)
        {
            found.push(phone);
        }
    }
    found
}

/// `2026-05-02`, `02.05.2026`, `2026/05/02`: dates are not phone numbers.
fn looks_like_date(text: &str) -> bool {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\(?(\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})\)?$").expect("static pattern")
    });
    DATE.is_match(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_validate_to_e164_with_line_type_and_country() {
        let de = validate("+49 30 901820", None).unwrap();
        assert_eq!((de.number.as_str(), de.country_code.as_deref()), ("+4930901820", Some("DE")));
        assert_eq!(de.line_type, "fixed_line");
        let mobile = validate("tel:+44 7911 123456", None).unwrap();
        assert_eq!((mobile.number.as_str(), mobile.line_type.as_str()), ("+447911123456", "mobile"));
        // A national number needs the domain's region.
        assert!(validate("030 901820", None).is_none());
        assert_eq!(validate("030 901820", region_of_domain("acme.de")).unwrap().number, "+4930901820");
        assert!(validate("+1 555 0100", None).is_none(), "too short for its country");
        assert!(validate("not a number", None).is_none());
    }

    #[test]
    fn text_yields_valid_numbers_only_and_skips_dates() {
        let text = "Call +1 (415) 555-2671 or +49 30 901820. Founded 2026-05-02, \
                    invoice 12345678901234567890123, fax +1 (415) 555-2671.";
        let found: Vec<String> = find_in_text(text, None).into_iter().map(|p| p.number).collect();
        assert_eq!(found, ["+14155552671", "+4930901820"]);
        assert_eq!(region_of_domain("shop.co.uk"), phone::parse_country("GB").ok());
        assert_eq!(region_of_domain("acme.com"), None);
    }
}
