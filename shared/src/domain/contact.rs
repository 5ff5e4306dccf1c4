//! How a lead is recognised in another tool's payload: its email address or its LinkedIn
//! profile URL, normalised so that the forms tools send compare equal.

/// Longest normalised value we index (DynamoDB keys hold 1 KB; real values are far shorter).
pub const MAX_KEY_CHARS: usize = 320;

/// Trimmed and lower-cased: mailbox providers treat addresses case-insensitively in practice.
pub fn normalize_email(text: &str) -> Option<String> {
    let email = text.trim().to_lowercase();
    (email.contains('@') && !email.contains(char::is_whitespace) && email.chars().count() <= MAX_KEY_CHARS)
        .then_some(email)
}

/// `linkedin.com/in/<slug>` for any form of a public profile URL: with or without scheme,
/// `www.` or a country subdomain, trailing slash, query or fragment, any case, and with the
/// slug percent-encoded or not. `None` for anything that is not a `/in/` profile URL.
pub fn normalize_linkedin(text: &str) -> Option<String> {
    let lower = text.trim().to_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).unwrap_or(&lower);
    let (host, path) = rest.split_once('/')?;
    if host != "linkedin.com" && !host.ends_with(".linkedin.com") {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let slug = path.strip_prefix("in/")?.split('/').next().unwrap_or_default();
    let slug = percent_decode(slug);
    if slug.is_empty() || slug.contains(char::is_whitespace) || slug.chars().count() > MAX_KEY_CHARS {
        return None;
    }
    Some(format!("linkedin.com/in/{slug}"))
}

/// Decodes `%XX` escapes (invalid UTF-8 is replaced); other characters pass through.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_compare_case_insensitively() {
        assert_eq!(normalize_email("  Jane.Doe@Acme.COM ").as_deref(), Some("jane.doe@acme.com"));
        assert_eq!(normalize_email("not an email"), None);
        assert_eq!(normalize_email(""), None);
    }

    #[test]
    fn linkedin_urls_normalise_to_one_form() {
        let want = Some("linkedin.com/in/jane-doe".to_owned());
        for form in [
            "https://www.linkedin.com/in/jane-doe",
            "https://www.linkedin.com/in/jane-doe/",
            "http://linkedin.com/in/Jane-Doe?utm_source=x",
            "www.linkedin.com/in/jane-doe/#about",
            "https://de.linkedin.com/in/jane-doe/details/experience/",
            " HTTPS://WWW.LINKEDIN.COM/IN/JANE-DOE ",
        ] {
            assert_eq!(normalize_linkedin(form), want, "{form}");
        }
        assert_eq!(
            normalize_linkedin("https://www.linkedin.com/in/j%C3%B6rg-m"),
            normalize_linkedin("https://www.linkedin.com/in/jörg-m")
        );
        assert_eq!(normalize_linkedin("https://www.linkedin.com/company/acme"), None);
        assert_eq!(normalize_linkedin("https://evil.com/in/jane-doe"), None);
        assert_eq!(normalize_linkedin("https://notlinkedin.com/in/jane-doe"), None);
        assert_eq!(normalize_linkedin("jane-doe"), None);
        assert_eq!(normalize_linkedin("https://www.linkedin.com/in/"), None);
        assert_eq!(normalize_linkedin("https://www.linkedin.com/in/%"), Some("linkedin.com/in/%".to_owned()));
    }
}
