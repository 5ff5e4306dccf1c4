//! The lists behind the offline checks: disposable domains (the `mailchecker` crate's
//! maintained list and the disposable-email-domains list vendored in `data/`), free-mail
//! domains and role mailboxes (shipped in `data/`, sources in
//! their headers), and the popular domains typo suggestions are made against. The two
//! long lists are embedded zlib-compressed by `build.rs` (1.06 MB of text, about 0.6 MB
//! of every bootstrap that verifies) and inflated once, at first use.

use std::collections::HashSet;
use std::sync::LazyLock;

static FREE_MAIL_Z: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/free_mail_domains.txt.z"));
static DISPOSABLE_Z: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/disposable_domains.txt.z"));
static ROLES: &str = include_str!("data/role_accounts.txt");

/// The text `build.rs` compressed. Both are this build's own bytes, checked by the tests
/// below, so a failure is a broken build, not bad input.
fn inflate(packed: &[u8]) -> String {
    let bytes = miniz_oxide::inflate::decompress_to_vec_zlib(packed).expect("an embedded list is valid zlib");
    String::from_utf8(bytes).expect("an embedded list is UTF-8")
}

static DISPOSABLE: LazyLock<String> = LazyLock::new(|| inflate(DISPOSABLE_Z));
static FREE_MAIL: LazyLock<String> = LazyLock::new(|| inflate(FREE_MAIL_Z));

fn lines(text: &'static str) -> HashSet<&'static str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

// mailchecker's own check scans its list linearly per call; a set answers in O(1).
static DISPOSABLE_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| lines(&DISPOSABLE));
static FREE_MAIL_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| lines(&FREE_MAIL));
static ROLE_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| lines(ROLES));

/// Every parent domain of `domain`, itself first: `a.b.example.com`, `b.example.com`, ...
fn suffixes(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest)).filter(|d| d.contains('.'))
}

/// A throwaway-mailbox provider (the domain or one of its parents is listed).
pub fn is_disposable(domain: &str) -> bool {
    suffixes(domain).any(|d| DISPOSABLE_SET.contains(d))
}

/// A free-mail provider (gmail.com, outlook.com, ...). The free-mail list also holds
/// thousands of throwaway domains: those are disposable, not webmail.
pub fn is_webmail(domain: &str) -> bool {
    FREE_MAIL_SET.contains(domain) && !is_disposable(domain)
}

/// A shared mailbox rather than a person (info@, sales@, ...). `+tags` are ignored.
pub fn is_role(local: &str) -> bool {
    let base = local.split('+').next().unwrap_or(local);
    ROLE_SET.contains(base)
}

/// Domains people mean when they mistype one, most used first.
const POPULAR: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "icloud.com",
    "aol.com",
    "live.com",
    "msn.com",
    "protonmail.com",
    "proton.me",
    "gmx.com",
    "gmx.de",
    "web.de",
    "yandex.ru",
    "mail.ru",
    "comcast.net",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "yahoo.fr",
    "hotmail.fr",
    "orange.fr",
    "free.fr",
    "libero.it",
    "qq.com",
    "163.com",
];

/// Top-level domains people mean when they type `.con` or `.cmo`.
const TLD_FIXES: &[(&str, &str)] = &[
    ("con", "com"),
    ("cmo", "com"),
    ("ocm", "com"),
    ("comm", "com"),
    ("cm", "com"),
    ("om", "com"),
    ("nte", "net"),
    ("ent", "net"),
    ("ogr", "org"),
];

/// Optimal string alignment distance (edits, with adjacent swaps), bounded for speed.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A likely intended domain for a mistyped one (`gmial.com` -> `gmail.com`), or none.
pub fn suggest_domain(domain: &str) -> Option<String> {
    if POPULAR.contains(&domain) || domain.len() > 64 {
        return None;
    }
    let best = POPULAR.iter().map(|p| (distance(domain, p), *p)).min_by_key(|(d, _)| *d);
    if let Some((d, popular)) = best
        && d > 0
        && d <= 2
        && domain.len() >= 5
    {
        return Some(popular.to_owned());
    }
    let (name, tld) = domain.rsplit_once('.')?;
    TLD_FIXES.iter().find(|(typo, _)| *typo == tld).map(|(_, fix)| format!("{name}.{fix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_lists_are_the_whole_lists() {
        let vendored = lines(include_str!("data/disposable_domains.txt"));
        let disposable: HashSet<&str> = mailchecker::blacklist().into_iter().chain(vendored).collect();
        assert_eq!(*DISPOSABLE_SET, disposable, "mailchecker's list and the vendored one, every domain");
        assert_eq!(*FREE_MAIL_SET, lines(include_str!("data/free_mail_domains.txt")));
        assert!(DISPOSABLE_SET.len() > 50_000 && FREE_MAIL_SET.len() > 10_000);
    }

    #[test]
    fn lists_know_common_providers_and_roles() {
        assert!(is_disposable("mailinator.com"));
        assert!(is_disposable("x.mailinator.com"), "subdomains of a disposable domain");
        assert!(!is_disposable("example.com"));
        assert!(is_webmail("gmail.com") && is_webmail("yahoo.com"));
        assert!(!is_webmail("stripe.com"));
        assert!(is_disposable("spamok.com") && !is_webmail("spamok.com"), "on the vendored list only");
        assert!(!is_webmail("0-mail.com"), "throwaway domains of the free-mail list are not webmail");
        assert!(is_role("info") && is_role("sales") && is_role("support+eu"));
        assert!(!is_role("alice"));
    }

    /// Companies and the large free-mail providers: none is a throwaway domain.
    const ORDINARY: &[&str] = &[
        "stripe.com",
        "google.com",
        "microsoft.com",
        "apple.com",
        "amazon.com",
        "salesforce.com",
        "hubspot.com",
        "shopify.com",
        "atlassian.com",
        "siemens.com",
        "sap.com",
        "bmw.de",
        "lemonde.fr",
        "bbc.co.uk",
        "gov.uk",
        "mit.edu",
        "acme.com",
        "example.com",
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "gmx.de",
        "gmx.com",
        "gmx.net",
        "web.de",
        "t-online.de",
        "yandex.ru",
        "yandex.com",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "naver.com",
        "orange.fr",
        "free.fr",
        "libero.it",
        "zoho.com",
        "fastmail.com",
        "tutanota.com",
        "hey.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "seznam.cz",
        "wp.pl",
        "rediffmail.com",
    ];

    #[test]
    fn no_company_or_large_free_mail_domain_is_disposable() {
        let flagged: Vec<&str> = ORDINARY.iter().copied().filter(|d| is_disposable(d)).collect();
        assert!(flagged.is_empty(), "called disposable: {flagged:?}");
        for webmail in ["gmail.com", "outlook.com", "yahoo.com", "gmx.de", "yandex.ru", "qq.com", "proton.me"] {
            assert!(is_webmail(webmail), "{webmail}");
        }
    }

    #[test]
    fn typos_of_popular_domains_get_a_suggestion() {
        assert_eq!(suggest_domain("gmial.com").as_deref(), Some("gmail.com"));
        assert_eq!(suggest_domain("hotmial.com").as_deref(), Some("hotmail.com"));
        assert_eq!(suggest_domain("acme.con").as_deref(), Some("acme.com"));
        assert_eq!(suggest_domain("gmail.com"), None);
        assert_eq!(suggest_domain("stripe.com"), None);
    }
}
