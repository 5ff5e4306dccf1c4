//! Documented keyword rules: seniority and department from a job title, and whether an
//! address is generic (a role mailbox) or personal. Matching is on whole words of the
//! title, lower-cased and transliterated, so `CTO` matches but `director` does not match
//! inside `directory`.

use deunicode::deunicode;

/// Seniority, Hunter's values.
pub const SENIORITIES: [&str; 3] = ["junior", "senior", "executive"];

/// Departments, Hunter's values.
pub const DEPARTMENTS: [&str; 14] = [
    "executive",
    "it",
    "finance",
    "management",
    "sales",
    "legal",
    "support",
    "hr",
    "marketing",
    "communication",
    "education",
    "design",
    "health",
    "operations",
];

/// Seniority rules, first match wins.
pub const SENIORITY_RULES: [(&str, &[&str]); 3] = [
    (
        "executive",
        &[
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cmo",
            "cio",
            "cso",
            "cpo",
            "chief",
            "founder",
            "cofounder",
            "co-founder",
            "owner",
            "president",
            "vp",
            "vice",
            "partner",
            "principal",
            "director",
            "head",
            "chairman",
            "chairwoman",
            "managing",
            "gm",
            "evp",
            "svp",
        ],
    ),
    ("senior", &["senior", "sr", "lead", "manager", "staff", "architect", "expert", "specialist"]),
    ("junior", &["junior", "jr", "intern", "trainee", "assistant", "associate", "apprentice", "graduate", "entry"]),
];

/// Department rules, first match wins (so `CTO` is executive before it is IT).
pub const DEPARTMENT_RULES: [(&str, &[&str]); 14] = [
    (
        "executive",
        &[
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cmo",
            "cio",
            "founder",
            "cofounder",
            "co-founder",
            "owner",
            "president",
            "chairman",
        ],
    ),
    (
        "it",
        &[
            "engineer",
            "engineering",
            "developer",
            "software",
            "it",
            "devops",
            "technology",
            "technical",
            "data",
            "security",
            "sysadmin",
            "infrastructure",
            "programmer",
            "architect",
            "qa",
        ],
    ),
    ("finance", &["finance", "financial", "accountant", "accounting", "controller", "treasurer", "payroll", "billing"]),
    ("legal", &["legal", "counsel", "lawyer", "attorney", "compliance", "paralegal"]),
    ("hr", &["hr", "recruiter", "recruiting", "talent", "people", "human", "hiring"]),
    ("marketing", &["marketing", "growth", "seo", "content", "brand", "demand", "product marketing"]),
    ("sales", &["sales", "account", "business development", "bdr", "sdr", "revenue", "partnerships"]),
    ("support", &["support", "customer", "success", "helpdesk", "service"]),
    ("communication", &["communication", "communications", "pr", "press", "public relations", "editor", "journalist"]),
    ("design", &["design", "designer", "ux", "ui", "creative", "art"]),
    ("education", &["teacher", "professor", "lecturer", "education", "tutor", "trainer"]),
    ("health", &["doctor", "nurse", "physician", "health", "medical", "clinical", "therapist"]),
    ("operations", &["operations", "ops", "logistics", "supply", "procurement", "office", "facilities"]),
    ("management", &["manager", "management", "director", "head", "vp", "general"]),
];

/// Local parts of role mailboxes (`info@`, `sales@`, ...).
pub const GENERIC_LOCAL_PARTS: [&str; 40] = [
    "info",
    "contact",
    "hello",
    "hi",
    "sales",
    "support",
    "help",
    "admin",
    "office",
    "team",
    "jobs",
    "careers",
    "press",
    "media",
    "marketing",
    "billing",
    "accounts",
    "accounting",
    "hr",
    "enquiries",
    "inquiries",
    "noreply",
    "no-reply",
    "webmaster",
    "privacy",
    "legal",
    "security",
    "abuse",
    "postmaster",
    "feedback",
    "partners",
    "service",
    "mail",
    "general",
    "invoices",
    "orders",
    "booking",
    "reception",
    "news",
    "events",
];

fn title_words(title: &str) -> (String, Vec<String>) {
    let text = deunicode(title).to_lowercase();
    let words = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    (format!(" {} ", text.split(|c: char| !c.is_ascii_alphanumeric()).collect::<Vec<_>>().join(" ")), words)
}

fn first_match(title: &str, rules: &[(&'static str, &[&str])]) -> Option<&'static str> {
    let (spaced, words) = title_words(title);
    rules.iter().find_map(|(value, keywords)| {
        keywords
            .iter()
            .any(|k| if k.contains(' ') { spaced.contains(&format!(" {k} ")) } else { words.iter().any(|w| w == k) })
            .then_some(*value)
    })
}

/// `junior`, `senior` or `executive` from a job title, by [`SENIORITY_RULES`].
pub fn seniority(title: &str) -> Option<&'static str> {
    first_match(title, &SENIORITY_RULES)
}

/// One of [`DEPARTMENTS`] from a job title, by [`DEPARTMENT_RULES`].
pub fn department(title: &str) -> Option<&'static str> {
    first_match(title, &DEPARTMENT_RULES)
}

/// Whether an address is a role mailbox: its local part (before any `+tag`) is a known role
/// name, or such a name followed by a digit or separator (`sales2`, `info-de`).
pub fn is_generic(local: &str) -> bool {
    let local = local.split('+').next().unwrap_or_default().to_ascii_lowercase();
    GENERIC_LOCAL_PARTS.iter().any(|g| {
        local == *g
            || local
                .strip_prefix(g)
                .is_some_and(|rest| rest.starts_with(['.', '-', '_']) || rest.chars().all(|c| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seniority_follows_the_documented_keywords() {
        assert_eq!(seniority("CTO"), Some("executive"));
        assert_eq!(seniority("Co-Founder & CEO"), Some("executive"));
        assert_eq!(seniority("VP of Sales"), Some("executive"));
        assert_eq!(seniority("Senior Software Engineer"), Some("senior"));
        assert_eq!(seniority("Marketing Manager"), Some("senior"));
        assert_eq!(seniority("Sales Intern"), Some("junior"));
        assert_eq!(seniority("Software Engineer"), None);
        assert_eq!(seniority("Directory maintainer"), None, "whole words only");
    }

    #[test]
    fn departments_follow_the_documented_keywords() {
        assert_eq!(department("CTO"), Some("executive"));
        assert_eq!(department("Senior Software Engineer"), Some("it"));
        assert_eq!(department("Head of Business Development"), Some("sales"));
        assert_eq!(department("Directrice Marketing"), Some("marketing"));
        assert_eq!(department("General Counsel"), Some("legal"));
        assert_eq!(department("Customer Success Lead"), Some("support"));
        assert_eq!(department("Office Manager"), Some("operations"));
        assert_eq!(department("Managing Director"), Some("management"));
        assert_eq!(department("Astronaut"), None);
        for (value, _) in DEPARTMENT_RULES {
            assert!(DEPARTMENTS.contains(&value));
        }
    }

    #[test]
    fn role_mailboxes_are_generic() {
        for local in ["info", "Sales", "support+x", "info-de", "jobs2", "no-reply"] {
            assert!(is_generic(local), "{local}");
        }
        for local in ["jane.doe", "jdoe", "information.officer", "salesforce", "helpful"] {
            assert!(!is_generic(local), "{local}");
        }
    }
}
