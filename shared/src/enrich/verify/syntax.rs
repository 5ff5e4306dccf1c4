//! Address syntax: RFC 5321/5322 dot-atom local parts (RFC 6531 internationalised), and
//! domains of IDNA 2008 labels (UTS 46 mapping, then IDNA 2008's letters-and-digits rule)
//! that can take mail on the public internet. The rules and their order follow Python's
//! `email-validator` (its defaults, `strict` for the local-part length), the reference
//! `enrich::reference_checks` compares against; the intended differences are listed in
//! docs/enrichment.md ("Address syntax").

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory as Gc;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// RFC 5321 4.5.3.1.1: 64 for the local part; counted in characters, as email-validator's
/// strict mode does (an SMTPUTF8 server takes 64 accented letters).
const LOCAL_MAX_CHARS: usize = 64;
/// RFC 3696 errata 1690: the whole address, in UTF-8 bytes.
const ADDRESS_MAX_BYTES: usize = 254;
/// RFC 1035: the domain as sent, without the root dot.
const DOMAIN_MAX: usize = 253;

/// Top-level names that no public mail can use (RFC 6761, 6762, 7686, and `arpa`).
/// `test` is not among them: RFC 6761 6.2 asks applications to treat test names as any
/// other, and DNS then answers for them (in production: the domain does not exist).
const SPECIAL_USE: &[&str] = &["arpa", "invalid", "local", "localhost", "onion"];

/// A checked address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The local part as given.
    pub local: String,
    /// The domain as DNS asks for it: lower case, IDNA labels as `xn--` A-labels.
    pub ascii_domain: String,
}

/// Why an address is not one, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(String);

fn fail<T>(why: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError(why.into()))
}

/// RFC 5322 3.2.3 `atext`.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn category(c: char) -> Gc {
    CodePointMapData::<Gc>::new().get(c)
}

/// Letters, marks (not first), numbers, punctuation and symbols; no spaces, controls,
/// format characters (bidi overrides), private-use or unassigned code points.
fn unsafe_char(text: &str) -> Option<char> {
    text.chars().enumerate().find_map(|(i, c)| {
        let ok = match category(c) {
            Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark => i > 0,
            Gc::SpaceSeparator
            | Gc::LineSeparator
            | Gc::ParagraphSeparator
            | Gc::Control
            | Gc::Format
            | Gc::PrivateUse
            | Gc::Surrogate
            | Gc::Unassigned => false,
            _ => true,
        };
        (!ok).then_some(c)
    })
}

fn check_local(local: &str) -> Result<(), SyntaxError> {
    if local.is_empty() {
        return fail("There must be something before the @-sign.");
    }
    let chars = local.chars().count();
    if chars > LOCAL_MAX_CHARS {
        return fail(format!("The part before the @-sign is {chars} characters long; at most {LOCAL_MAX_CHARS}."));
    }
    if let Some(c) = local.chars().find(|&c| !(is_atext(c) || c == '.' || !c.is_ascii())) {
        return fail(format!("The part before the @-sign contains an invalid character ({c:?})."));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return fail("The part before the @-sign cannot start or end with a period or have two in a row.");
    }
    if let Some(c) = unsafe_char(local) {
        return fail(format!("The part before the @-sign contains an unsafe character (U+{:04X}).", c as u32));
    }
    Ok(())
}

/// Characters UTS 46 would map away or refuse, refused first as email-validator does
/// (C1 controls, unsafe spaces and format characters, anything decomposing to a dot).
fn uts46_refused(c: char) -> bool {
    let n = c as u32;
    if (0x80..=0x9f).contains(&n) {
        return true;
    }
    let allowed_punctuation =
        ((0x2010..=0x2060).contains(&n) && !(0x2024..=0x2026).contains(&n) && !(0x2028..=0x202e).contains(&n))
            || matches!(n, 0x00ad | 0x2064 | 0xff0e)
            || (0x200b..=0x200d).contains(&n)
            || (0x1bca0..=0x1bca3).contains(&n);
    if allowed_punctuation {
        return false;
    }
    matches!(
        category(c),
        Gc::Format
            | Gc::Unassigned
            | Gc::PrivateUse
            | Gc::Surrogate
            | Gc::SpaceSeparator
            | Gc::LineSeparator
            | Gc::ParagraphSeparator
    ) || decomposes_to_a_dot(n)
}

/// Dot leaders, `⒈`-style digits with a full stop and the small full stop: their
/// compatibility decompositions hold a `.`, which would split a label.
fn decomposes_to_a_dot(n: u32) -> bool {
    matches!(n, 0x2024..=0x2026 | 0x2488..=0x249b | 0xfe52 | 0x1f100)
}

/// RFC 5892: a U-label's code points are letters, marks and decimal digits (PVALID), the
/// exceptions it lists, or the contextual ones UTS 46 checks (joiners) or RFC 5892
/// Appendix A allows (middle dot, Greek keraia, Hebrew punctuation, katakana middle dot,
/// Arabic-Indic digits).
fn idna2008_char(c: char) -> bool {
    let n = c as u32;
    if c.is_ascii() {
        return c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    }
    match n {
        0x00df | 0x03c2 | 0x06fd | 0x06fe | 0x0f0b | 0x3007 => return true,
        0x0640 | 0x07fa | 0x302e | 0x302f | 0x3031..=0x3035 | 0x303b => return false,
        // Contextual: allowed here, their context checked by `contexto_ok`.
        0x00b7 | 0x0375 | 0x05f3 | 0x05f4 | 0x30fb | 0x200c | 0x200d => return true,
        _ => {}
    }
    matches!(
        category(c),
        Gc::LowercaseLetter
            | Gc::UppercaseLetter
            | Gc::OtherLetter
            | Gc::ModifierLetter
            | Gc::NonspacingMark
            | Gc::SpacingMark
            | Gc::DecimalNumber
    )
}

/// RFC 5892 Appendix A, the CONTEXTO rules: a middle dot only in `l·l` (Catalan), a Greek
/// keraia before Greek, Hebrew geresh and gershayim after Hebrew, a katakana middle dot in
/// a label with kana or Han, and Arabic-Indic digits of one kind per label.
fn contexto_ok(label: &str) -> bool {
    let chars: Vec<char> = label.chars().collect();
    let in_range = |c: Option<&char>, ranges: &[(u32, u32)]| {
        c.is_some_and(|&c| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&(c as u32))))
    };
    let has = |lo: u32, hi: u32| chars.iter().any(|&c| (lo..=hi).contains(&(c as u32)));
    if has(0x0660, 0x0669) && has(0x06f0, 0x06f9) {
        return false;
    }
    chars.iter().enumerate().all(|(i, &c)| {
        let (before, after) = (i.checked_sub(1).and_then(|j| chars.get(j)), chars.get(i + 1));
        match c as u32 {
            0x00b7 => before == Some(&'l') && after == Some(&'l'),
            0x0375 => in_range(after, &[(0x0370, 0x03ff), (0x1f00, 0x1fff)]),
            0x05f3 | 0x05f4 => in_range(before, &[(0x0590, 0x05ff)]),
            0x30fb => chars.iter().any(|&o| {
                o != '\u{30fb}' && in_range(Some(&o), &[(0x3040, 0x30ff), (0x3400, 0x4dbf), (0x4e00, 0x9fff)])
            }),
            _ => true,
        }
    })
}

fn check_domain(domain: &str) -> Result<String, SyntaxError> {
    if domain.is_empty() {
        return fail("There must be something after the @-sign.");
    }
    if domain.chars().count() > DOMAIN_MAX {
        return fail(format!("The part after the @-sign is longer than {DOMAIN_MAX} characters."));
    }
    let hostname_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || !c.is_ascii();
    if let Some(c) = domain.chars().find(|&c| !hostname_char(c)) {
        return fail(format!("The part after the @-sign contains an invalid character ({c:?})."));
    }
    if let Some(c) = unsafe_char(domain).or_else(|| domain.chars().find(|&c| uts46_refused(c))) {
        return fail(format!("The part after the @-sign contains an invalid character (U+{:04X}).", c as u32));
    }
    // UTS 46 (non-transitional): case folding, NFC, the full stops mapped to `.`, `xn--`
    // labels decoded and checked, hyphens and lengths checked; then A-labels.
    let ascii = Uts46::new()
        .to_ascii(domain.as_bytes(), AsciiDenyList::STD3, Hyphens::Check, DnsLength::Verify)
        .map_err(|_| SyntaxError("The part after the @-sign is not a valid domain name (IDNA).".into()))?
        .into_owned();
    let unicode = idna::domain_to_unicode(&ascii).0;
    if let Some(c) = unicode.chars().find(|&c| c != '.' && !idna2008_char(c)) {
        return fail(format!(
            "The part after the @-sign contains a character IDNA 2008 does not allow (U+{:04X}).",
            c as u32
        ));
    }
    if !unicode.split('.').all(contexto_ok) {
        return fail("The part after the @-sign uses a character outside the context IDNA 2008 allows it in.");
    }
    if ascii.len() > DOMAIN_MAX {
        return fail(format!("The part after the @-sign is longer than {DOMAIN_MAX} bytes in IDNA form."));
    }
    if !ascii.contains('.') {
        return fail("The part after the @-sign should have a period.");
    }
    // Every top-level domain ends with a letter: `1.2.3.4` and `acme.123` are not domains.
    if !ascii.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return fail("The part after the @-sign is not within a valid top-level domain.");
    }
    if let Some(tld) = SPECIAL_USE.iter().find(|tld| ascii == **tld || ascii.ends_with(&format!(".{tld}"))) {
        return fail(format!("The part after the @-sign is under `.{tld}`, a special-use name that takes no email."));
    }
    Ok(ascii)
}

/// Checks an address (no display name, no quoted local part, no IP literal).
pub fn check(address: &str) -> Result<Address, SyntaxError> {
    let Some((local, domain)) = address.split_once('@') else {
        return fail("An email address must have an @-sign.");
    };
    check_local(local)?;
    let ascii_domain = check_domain(domain)?;
    for (form, text) in [("as given", address.len()), ("in IDNA form", local.len() + 1 + ascii_domain.len())] {
        if text > ADDRESS_MAX_BYTES {
            return fail(format!("The address is {text} bytes long {form}; at most {ADDRESS_MAX_BYTES}."));
        }
    }
    Ok(Address { local: local.to_owned(), ascii_domain })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(address: &str) -> bool {
        check(address).is_ok()
    }

    #[test]
    fn domains_that_cannot_take_public_mail_are_refused() {
        for bad in [
            "a@acme_corp.com",
            "a@acme%corp.com",
            "a@acme.123",
            "a@1.2.3.4",
            "a@printer.local",
            "a@x.onion",
            "a@nothing.invalid",
            "a@localhost",
            "a@xn--zz.com",
            "a@xn--a-.com",
            "a@ab--cd.com",
            "a@-acme.com",
            "a@acme.com.",
            "a@☃.net",
            "a@[127.0.0.1]",
        ] {
            assert!(!valid(bad), "{bad}");
        }
        assert_eq!(check("a@München.DE").unwrap().ascii_domain, "xn--mnchen-3ya.de");
        assert_eq!(check("a@xn--mnchen-3ya.de").unwrap().ascii_domain, "xn--mnchen-3ya.de");
        assert!(valid("a@acme.test"), "RFC 6761 6.2: test names are ordinary names");
    }

    #[test]
    fn local_parts_are_dot_atoms_of_at_most_64_characters() {
        assert!(valid("first.last+tag@acme.com") && valid("o'brien@acme.com") && valid("用户@例子.中国"));
        for bad in [".a@acme.com", "a.@acme.com", "a..b@acme.com", "\"quoted\"@acme.com", "a b@acme.com", "@acme.com"] {
            assert!(!valid(bad), "{bad}");
        }
        assert!(valid(&format!("{}@acme.com", "a".repeat(64))) && !valid(&format!("{}@acme.com", "a".repeat(65))));
        // 64 two-byte letters are 64 characters (128 bytes): within the limit.
        assert!(valid(&format!("{}@acme.com", "é".repeat(64))));
        assert!(!valid("a\u{202e}b@acme.com"), "bidi overrides are unsafe");
    }
}
