//! What one HTML page of a company site tells us: addresses at the domain (from `mailto:`
//! links, plain and obfuscated text such as `jane [at] acme [dot] com`, and JSON-LD), with
//! the name, position and profiles of the person card they sit in; phone numbers (`tel:`
//! links, JSON-LD `telephone`, and on contact pages numbers in the text); the
//! organisation's name (og:site_name, JSON-LD Organization, then the title); social
//! profile links; and the links worth following (contact, about, team, imprint, legal).

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::phones::{self, ValidPhone};
use crate::domain::lead::is_valid_email;

/// Caps per page, so a hostile page cannot grow a cached crawl without bound.
pub const MAX_EMAILS_PER_PAGE: usize = 100;
pub const MAX_PHONES_PER_PAGE: usize = 20;
pub const MAX_LINKS_PER_PAGE: usize = 20;
const MAX_JSON_LD_SCRIPTS: usize = 20;
const MAX_JSON_DEPTH: usize = 12;
const MAX_FIELD_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebEmail {
    pub value: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub position: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    pub phone_number: Option<String>,
    /// The page it was found on.
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPhone {
    #[serde(flatten)]
    pub phone: ValidPhone,
    /// `tel`, `json_ld` or `text`.
    pub how: String,
    pub uri: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageFacts {
    pub emails: Vec<WebEmail>,
    pub phones: Vec<WebPhone>,
    pub organization: Option<String>,
    pub socials: Vec<String>,
    /// Same-site links worth following, with their priority (higher first).
    #[serde(skip)]
    pub links: Vec<(u8, Url)>,
}

/// Links whose path or text holds one of these are followed, highest priority first.
pub const FOLLOW_KEYWORDS: [(&str, u8); 14] = [
    ("team", 3),
    ("people", 3),
    ("staff", 3),
    ("contact", 3),
    ("kontakt", 3),
    ("leadership", 3),
    ("about", 2),
    ("management", 2),
    ("imprint", 2),
    ("impressum", 2),
    ("legal", 1),
    ("company", 1),
    ("mentions-legales", 1),
    ("ueber-uns", 2),
];

/// Pages whose free text is searched for phone numbers.
pub fn is_contact_page(url: &Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    ["contact", "kontakt", "imprint", "impressum", "legal", "about"].iter().any(|k| path.contains(k))
}

/// Whether `host` is the domain or one of its subdomains.
pub fn on_site(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("static selector")
}

macro_rules! static_selector {
    ($name:ident, $css:expr) => {
        static $name: LazyLock<Selector> = LazyLock::new(|| selector($css));
    };
}

static_selector!(MAILTO, r#"a[href^="mailto:" i]"#);
static_selector!(TEL, r#"a[href^="tel:" i]"#);
static_selector!(LINKS, "a[href]");
static_selector!(JSON_LD, r#"script[type="application/ld+json"]"#);
static_selector!(SITE_NAME, r#"meta[property="og:site_name"]"#);
static_selector!(TITLE, "title");
static_selector!(CARD_NAME, "h1, h2, h3, h4, h5, h6, [class*=name], [itemprop=name], strong");
static_selector!(CARD_POSITION, "[class*=title], [class*=position], [class*=role], [class*=job], [itemprop=jobTitle]");

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9-]+(?:\.[a-z0-9-]+)+\b").expect("static pattern")
});
/// `name [at] domain [dot] com`, `name (at) domain.com`, `name {at} domain`.
static OBFUSCATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b([a-z0-9][a-z0-9._%+-]{0,63})\s*[\[({]\s*at\s*[\])}]\s*([a-z0-9-]+(?:(?:\.|\s*[\[({]\s*dot\s*[\])}]\s*)[a-z0-9-]+)+)",
    )
    .expect("static pattern")
});
static DOT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\s*[\[({]\s*dot\s*[\])}]\s*").expect("static pattern"));

fn clean(text: &str) -> Option<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then(|| text.chars().take(MAX_FIELD_CHARS).collect())
}

fn element_text(element: ElementRef<'_>) -> String {
    element.text().collect::<Vec<_>>().join(" ")
}

/// A person's name: two to five capitalised words (name particles such as `van` aside),
/// letters (with hyphens, apostrophes and dots) only.
fn name_like(text: &str) -> Option<(String, String)> {
    let text = clean(text)?;
    let words: Vec<&str> = text.split(' ').collect();
    const PARTICLES: [&str; 15] =
        ["van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "dos", "das", "y"];
    let ok = (2..=5).contains(&words.len())
        && text.chars().all(|c| c.is_alphabetic() || " -'’.".contains(c))
        && words.iter().all(|w| w.chars().next().is_some_and(char::is_uppercase) || PARTICLES.contains(w));
    ok.then(|| (words[0].to_owned(), words[1..].join(" ")))
}

/// Profile links of a person or organisation: LinkedIn and Twitter/X.
fn profile(url: &str) -> Option<(&'static str, String)> {
    let parsed = Url::parse(url).ok()?;
    let host = parsed.host_str()?.trim_start_matches("www.").to_ascii_lowercase();
    let kind = match host.as_str() {
        h if h == "linkedin.com" || h.ends_with(".linkedin.com") => "linkedin",
        "twitter.com" | "x.com" => "twitter",
        "facebook.com" => "facebook",
        "instagram.com" => "instagram",
        "youtube.com" => "youtube",
        "github.com" => "github",
        _ => return None,
    };
    Some((kind, url.chars().take(MAX_FIELD_CHARS).collect()))
}

/// The Twitter handle of a profile URL (`https://twitter.com/jane` -> `jane`).
fn twitter_handle(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    parsed.path_segments()?.next().filter(|s| !s.is_empty()).map(|s| s.trim_start_matches('@').to_owned())
}

/// The person card around an element: the nearest ancestor (at most 4 up) holding a name,
/// and only one (an ancestor holding several people's names is a list, not a card).
fn card_of(element: ElementRef<'_>) -> Option<ElementRef<'_>> {
    let mut current = element;
    for _ in 0..4 {
        current = current.parent().and_then(ElementRef::wrap)?;
        match current.select(&CARD_NAME).take(2).count() {
            0 => continue,
            1 => return Some(current),
            _ => return None,
        }
    }
    None
}

/// Fills name, position and profiles from the card an address sits in.
fn describe_from_card(email: &mut WebEmail, anchor: ElementRef<'_>) {
    let Some(card) = card_of(anchor) else { return };
    if email.first_name.is_none()
        && let Some((first, last)) = card.select(&CARD_NAME).find_map(|e| name_like(&element_text(e)))
    {
        email.first_name = Some(first);
        email.last_name = Some(last);
    }
    if email.position.is_none() {
        email.position = card.select(&CARD_POSITION).find_map(|e| clean(&element_text(e)));
    }
    for link in card.select(&LINKS) {
        match link.attr("href").and_then(profile) {
            Some(("linkedin", url)) if email.linkedin.is_none() => email.linkedin = Some(url),
            Some(("twitter", url)) if email.twitter.is_none() => email.twitter = twitter_handle(&url),
            _ => {}
        }
    }
}

fn email_at(text: &str, domain: &str) -> Option<String> {
    let email = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let (_, host) = email.rsplit_once('@')?;
    (on_site(host, domain) && is_valid_email(&email)).then_some(email)
}

fn add_email(facts: &mut PageFacts, email: WebEmail) {
    if let Some(known) = facts.emails.iter_mut().find(|e| e.value == email.value) {
        known.first_name = known.first_name.take().or(email.first_name);
        known.last_name = known.last_name.take().or(email.last_name);
        known.position = known.position.take().or(email.position);
        known.linkedin = known.linkedin.take().or(email.linkedin);
        known.twitter = known.twitter.take().or(email.twitter);
        known.phone_number = known.phone_number.take().or(email.phone_number);
    } else if facts.emails.len() < MAX_EMAILS_PER_PAGE {
        facts.emails.push(email);
    }
}

fn add_phone(facts: &mut PageFacts, phone: ValidPhone, how: &str, uri: &str) {
    if facts.phones.len() < MAX_PHONES_PER_PAGE && !facts.phones.iter().any(|p| p.phone.number == phone.number) {
        facts.phones.push(WebPhone { phone, how: how.to_owned(), uri: uri.to_owned() });
    }
}

fn new_email(value: String, uri: &str) -> WebEmail {
    WebEmail {
        value,
        first_name: None,
        last_name: None,
        position: None,
        linkedin: None,
        twitter: None,
        phone_number: None,
        uri: uri.to_owned(),
    }
}

/// Percent-decodes a `mailto:` target and drops its `?subject=...`.
fn mailto_address(href: &str) -> String {
    let rest = &href[href.find(':').map_or(0, |i| i + 1)..];
    let address = rest.split('?').next().unwrap_or_default();
    url::form_urlencoded::parse(format!("a={address}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Everything one page tells about `domain`.
pub fn page_facts(html: &str, url: &Url, domain: &str) -> PageFacts {
    let document = Html::parse_document(html);
    let uri = url.as_str();
    let region = phones::region_of_domain(domain);
    let mut facts = PageFacts::default();

    for anchor in document.select(&MAILTO) {
        let Some(value) = anchor.attr("href").map(mailto_address).and_then(|a| email_at(&a, domain)) else {
            continue;
        };
        let mut email = new_email(value, uri);
        // The card's name first: link texts are often "Email Dana".
        describe_from_card(&mut email, anchor);
        if email.first_name.is_none()
            && let Some((first, last)) = name_like(&element_text(anchor))
        {
            (email.first_name, email.last_name) = (Some(first), Some(last));
        }
        add_email(&mut facts, email);
    }

    // Addresses written in the text, plain or obfuscated.
    for node in document.root_element().descendants() {
        let Some(text) = node.value().as_text() else { continue };
        let Some(parent) = node.parent().and_then(ElementRef::wrap) else { continue };
        if matches!(parent.value().name(), "script" | "style" | "noscript" | "template") {
            continue;
        }
        let mut found: Vec<String> = EMAIL.find_iter(text).filter_map(|m| email_at(m.as_str(), domain)).collect();
        for caps in OBFUSCATED.captures_iter(text) {
            let host = DOT.replace_all(&caps[2], ".");
            found.extend(email_at(&format!("{}@{host}", &caps[1]), domain));
        }
        for value in found {
            let mut email = new_email(value, uri);
            describe_from_card(&mut email, parent);
            add_email(&mut facts, email);
        }
    }

    for anchor in document.select(&TEL) {
        if let Some(phone) = anchor.attr("href").and_then(|h| phones::validate(h, region)) {
            add_phone(&mut facts, phone, "tel", uri);
        }
    }

    let mut json_ld = JsonLd::default();
    for script in document.select(&JSON_LD).take(MAX_JSON_LD_SCRIPTS) {
        if let Ok(value) = serde_json::from_str::<Value>(&element_text(script)) {
            json_ld.visit(&value, 0);
        }
    }
    for person in json_ld.people {
        if let Some(value) = person.email.as_deref().and_then(|e| email_at(e.trim_start_matches("mailto:"), domain)) {
            let mut email = new_email(value, uri);
            if let Some((first, last)) = person.name.as_deref().and_then(name_like) {
                (email.first_name, email.last_name) = (Some(first), Some(last));
            }
            email.position = person.job_title.as_deref().and_then(clean);
            email.phone_number =
                person.telephone.as_deref().and_then(|t| phones::validate(t, region)).map(|p| p.number);
            for url in &person.same_as {
                match profile(url) {
                    Some(("linkedin", url)) => email.linkedin = Some(url),
                    Some(("twitter", url)) => email.twitter = twitter_handle(&url),
                    _ => {}
                }
            }
            add_email(&mut facts, email);
        }
    }
    for telephone in &json_ld.telephones {
        if let Some(phone) = phones::validate(telephone, region) {
            add_phone(&mut facts, phone, "json_ld", uri);
        }
    }

    if is_contact_page(url) {
        let body_text: String = document
            .root_element()
            .descendants()
            .filter_map(|n| {
                let text = n.value().as_text()?;
                let parent = n.parent().and_then(ElementRef::wrap)?;
                (!matches!(parent.value().name(), "script" | "style" | "noscript")).then_some(&**text)
            })
            .collect::<Vec<_>>()
            .join("\n");
        for phone in phones::find_in_text(&body_text, region) {
            add_phone(&mut facts, phone, "text", uri);
        }
    }

    facts.organization = document
        .select(&SITE_NAME)
        .find_map(|m| m.attr("content").and_then(clean))
        .or(json_ld.organization)
        .or_else(|| document.select(&TITLE).next().and_then(|t| title_organization(&element_text(t))));

    let mut socials: Vec<String> = json_ld.same_as.iter().filter_map(|u| profile(u).map(|(_, u)| u)).collect();
    for anchor in document.select(&LINKS) {
        let Some(href) = anchor.attr("href") else { continue };
        let Ok(target) = url.join(href) else { continue };
        if let Some((kind, profile_url)) = profile(target.as_str()) {
            // Personal LinkedIn profiles belong to people, not the organisation.
            if !(kind == "linkedin" && target.path().starts_with("/in/")) {
                socials.push(profile_url);
            }
            continue;
        }
        if !matches!(target.scheme(), "http" | "https") || !target.host_str().is_some_and(|h| on_site(h, domain)) {
            continue;
        }
        let haystack = format!("{} {}", target.path(), element_text(anchor)).to_lowercase();
        let priority = FOLLOW_KEYWORDS.iter().filter(|(k, _)| haystack.contains(k)).map(|(_, p)| *p).max();
        if let Some(priority) = priority {
            let mut target = target;
            target.set_fragment(None);
            if !facts.links.iter().any(|(_, u)| *u == target) && facts.links.len() < MAX_LINKS_PER_PAGE {
                facts.links.push((priority, target));
            }
        }
    }
    socials.sort();
    socials.dedup();
    socials.truncate(20);
    facts.socials = socials;
    facts
}

/// The organisation from a title like `Acme Corp | Home` or `Team – Acme Corp`: the
/// longest segment that is not a generic page word.
fn title_organization(title: &str) -> Option<String> {
    let generic = ["home", "welcome", "homepage", "team", "about", "about us", "contact", "our team", "imprint"];
    title
        .split(['|', '–', '—', '·', ':'])
        .chain(title.split(" - "))
        .filter_map(clean)
        .filter(|s| !generic.contains(&s.to_lowercase().as_str()) && !s.contains(['|', '–', '—', '·', ':']))
        .filter(|s| !s.contains(" - "))
        .max_by_key(|s| std::cmp::Reverse(s.len()))
}

#[derive(Default)]
struct JsonLdPerson {
    name: Option<String>,
    email: Option<String>,
    job_title: Option<String>,
    telephone: Option<String>,
    same_as: Vec<String>,
}

/// What the JSON-LD blocks of a page say.
#[derive(Default)]
struct JsonLd {
    organization: Option<String>,
    telephones: Vec<String>,
    people: Vec<JsonLdPerson>,
    same_as: Vec<String>,
}

fn types(object: &serde_json::Map<String, Value>) -> Vec<&str> {
    match object.get("@type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

impl JsonLd {
    fn visit(&mut self, value: &Value, depth: usize) {
        if depth > MAX_JSON_DEPTH {
            return;
        }
        match value {
            Value::Array(items) => items.iter().take(200).for_each(|v| self.visit(v, depth + 1)),
            Value::Object(object) => {
                let kinds = types(object);
                let text = |field: &str| object.get(field).and_then(Value::as_str).and_then(clean);
                if kinds.iter().any(|t| t.ends_with("Organization") || *t == "Corporation" || *t == "LocalBusiness")
                    && self.organization.is_none()
                {
                    self.organization = text("name");
                    self.same_as.extend(strings(object.get("sameAs")));
                }
                if kinds.contains(&"Person") {
                    self.people.push(JsonLdPerson {
                        name: text("name"),
                        email: text("email"),
                        job_title: text("jobTitle"),
                        telephone: text("telephone"),
                        same_as: strings(object.get("sameAs")),
                    });
                } else {
                    self.telephones.extend(strings(object.get("telephone")));
                }
                for (key, child) in object {
                    if key != "sameAs" && matches!(child, Value::Object(_) | Value::Array(_)) {
                        self.visit(child, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM: &str = r#"<!doctype html><html><head><title>Our team | Acme Corp</title>
        <script type="application/ld+json">{"@context":"https://schema.org","@graph":[
          {"@type":"Organization","name":"Acme Corporation","telephone":"+1 415 555 2671",
           "sameAs":["https://www.linkedin.com/company/acme"]},
          {"@type":"Person","name":"Dana Scully","email":"mailto:dana.scully@acme.com","jobTitle":"Head of Legal",
           "telephone":"+1 415 555 0134","sameAs":["https://twitter.com/dscully"]}]}</script></head>
        <body>
          <div class="person"><h3>Jane Doe</h3><p class="job-title">Chief Technology Officer</p>
            <a href="mailto:Jane.Doe@acme.com?subject=Hi">Email Jane</a>
            <a href="https://www.linkedin.com/in/janedoe">LinkedIn</a></div>
          <div class="person"><h3>José Müller</h3><span class="role">Sales Manager</span>
            <p>jose.muller [at] acme [dot] com</p></div>
          <p>Press: press@acme.com, partner: bob@other.com, eu: ops@eu.acme.com</p>
          <a href="tel:+1-415-555-2671">Call</a> <a href="tel:123">bad</a>
          <a href="/about-us">About</a> <a href="https://blog.acme.com/team">Team</a>
          <a href="https://elsewhere.com/contact">Elsewhere</a> <a href="/pricing">Pricing</a>
          <a href="https://twitter.com/acme">Twitter</a>
        </body></html>"#;

    #[test]
    fn team_pages_yield_people_addresses_phones_and_links() {
        let url = Url::parse("https://acme.com/team").unwrap();
        let facts = page_facts(TEAM, &url, "acme.com");
        let values: Vec<&str> = facts.emails.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(
            values,
            ["jane.doe@acme.com", "jose.muller@acme.com", "press@acme.com", "ops@eu.acme.com", "dana.scully@acme.com"]
        );
        let jane = &facts.emails[0];
        assert_eq!((jane.first_name.as_deref(), jane.last_name.as_deref()), (Some("Jane"), Some("Doe")));
        assert_eq!(jane.position.as_deref(), Some("Chief Technology Officer"));
        assert_eq!(jane.linkedin.as_deref(), Some("https://www.linkedin.com/in/janedoe"));
        assert_eq!(jane.uri, "https://acme.com/team");
        let jose = &facts.emails[1];
        assert_eq!((jose.first_name.as_deref(), jose.position.as_deref()), (Some("José"), Some("Sales Manager")));
        let dana = &facts.emails[4];
        assert_eq!((dana.last_name.as_deref(), dana.twitter.as_deref()), (Some("Scully"), Some("dscully")));
        assert_eq!(dana.phone_number.as_deref(), Some("+14155550134"));
        let phones: Vec<(&str, &str)> =
            facts.phones.iter().map(|p| (p.phone.number.as_str(), p.how.as_str())).collect();
        assert_eq!(phones, [("+14155552671", "tel")], "the JSON-LD number repeats the tel: link");
        assert_eq!(facts.organization.as_deref(), Some("Acme Corporation"));
        assert_eq!(facts.socials, ["https://twitter.com/acme", "https://www.linkedin.com/company/acme"]);
        let links: Vec<(u8, &str)> = facts.links.iter().map(|(p, u)| (*p, u.as_str())).collect();
        assert_eq!(links, [(2, "https://acme.com/about-us"), (3, "https://blog.acme.com/team")]);
    }

    #[test]
    fn contact_pages_yield_numbers_in_text_and_titles_name_the_organisation() {
        let html = "<html><head><title>Contact - Globex GmbH</title></head><body>
            <p>Telefon: 030 901820 · Fax: +49 30 9018 2999 · Handelsregister HRB 12345 · 2026-05-02</p></body></html>";
        let facts = page_facts(html, &Url::parse("https://globex.de/kontakt").unwrap(), "globex.de");
        let numbers: Vec<&str> = facts.phones.iter().map(|p| p.phone.number.as_str()).collect();
        assert_eq!(numbers, ["+4930901820", "+493090182999"]);
        assert!(facts.phones.iter().all(|p| p.how == "text"));
        assert_eq!(facts.organization.as_deref(), Some("Globex GmbH"));
        // The same text on a page that is not a contact page is not searched.
        let home = page_facts(html, &Url::parse("https://globex.de/").unwrap(), "globex.de");
        assert!(home.phones.is_empty());
    }

    #[test]
    fn only_the_domain_and_its_subdomains_count() {
        assert!(on_site("acme.com", "acme.com"));
        assert!(on_site("WWW.Acme.com.", "acme.com"));
        assert!(!on_site("notacme.com", "acme.com"));
        assert!(!on_site("acme.com.evil.io", "acme.com"));
        assert_eq!(mailto_address("mailto:a%2Eb@acme.com?cc=x"), "a.b@acme.com");
    }
}
