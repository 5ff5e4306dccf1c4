//! The author of an article page, by the first of these rules that yields a name:
//!
//! 1. `json_ld`: JSON-LD `author.name` (an object, a list of them, or a string);
//! 2. `meta`: `<meta name="author">`, then `<meta property="article:author">` (when it is a
//!    name, not a profile URL);
//! 3. `itemprop`: an element with `itemprop="author"` (its `itemprop="name"` child, its
//!    `content`, or its text);
//! 4. `rel_author`: a link with `rel="author"`;
//! 5. `byline`: an element whose class contains `byline` or `author`, with a leading
//!    "By" removed and parts that are dates skipped;
//! 6. `twitter_creator`: `<meta name="twitter:creator">`, which gives a handle, not a name.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The rules, in the order they are tried.
pub const RULES: [&str; 6] = ["json_ld", "meta", "itemprop", "rel_author", "byline", "twitter_creator"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The author's name; `None` when only a Twitter handle was found.
    pub name: Option<String>,
    /// Which rule found the author (one of [`RULES`]).
    pub rule: String,
    /// The author's Twitter handle, when the page gives one.
    pub twitter: Option<String>,
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("static selector")
}

static JSON_LD: LazyLock<Selector> = LazyLock::new(|| selector(r#"script[type="application/ld+json"]"#));
static META_AUTHOR: LazyLock<Selector> = LazyLock::new(|| selector(r#"meta[name="author" i]"#));
static ARTICLE_AUTHOR: LazyLock<Selector> = LazyLock::new(|| selector(r#"meta[property="article:author"]"#));
static ITEMPROP: LazyLock<Selector> = LazyLock::new(|| selector(r#"[itemprop~="author"]"#));
static ITEMPROP_NAME: LazyLock<Selector> = LazyLock::new(|| selector(r#"[itemprop="name"]"#));
static REL_AUTHOR: LazyLock<Selector> = LazyLock::new(|| selector(r#"[rel~="author"]"#));
static BYLINE: LazyLock<Selector> = LazyLock::new(|| selector(r#"[class*="byline" i], [class*="author" i]"#));
static TWITTER: LazyLock<Selector> = LazyLock::new(|| selector(r#"meta[name="twitter:creator" i]"#));

static MONTHS: &str = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|\
                       august|september|october|november|december";
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)\d{{1,4}}[-./]\d{{1,2}}[-./]\d{{1,4}}|\b({MONTHS})\.?\s+\d{{1,2}}|\d{{1,2}}\.?\s+({MONTHS})\b|\b\d{{4}}\b|\b(ago|updated|published|min read)\b"))
        .expect("static pattern")
});

/// A plausible person's name: one to five words with letters, no digits, no `@`, no URL.
fn person_name(text: &str) -> Option<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.trim_matches(|c: char| c.is_whitespace() || ",;|·•-–—:".contains(c));
    let lower = text.to_lowercase();
    let text = if lower.starts_with("by ") { text[3..].trim() } else { text };
    let words = text.split(' ').count();
    let plausible = !text.is_empty()
        && text.chars().count() <= 80
        && words <= 5
        && text.chars().any(char::is_alphabetic)
        && !text.chars().any(|c| c.is_ascii_digit() || c == '@' || c == '/');
    plausible.then(|| text.to_owned())
}

fn json_ld_author(value: &Value, depth: usize) -> Option<String> {
    if depth > 8 {
        return None;
    }
    match value {
        Value::Array(items) => items.iter().take(100).find_map(|v| json_ld_author(v, depth + 1)),
        Value::Object(object) => {
            let from_author = |author: &Value| match author {
                Value::String(name) => person_name(name),
                Value::Object(person) => person.get("name").and_then(Value::as_str).and_then(person_name),
                Value::Array(people) => people.iter().find_map(|p| match p {
                    Value::String(name) => person_name(name),
                    Value::Object(person) => person.get("name").and_then(Value::as_str).and_then(person_name),
                    _ => None,
                }),
                _ => None,
            };
            object.get("author").and_then(from_author).or_else(|| {
                object.iter().filter(|(k, _)| *k != "author").find_map(|(_, v)| json_ld_author(v, depth + 1))
            })
        }
        _ => None,
    }
}

fn text_of(element: ElementRef<'_>) -> String {
    element.text().collect::<Vec<_>>().join(" ")
}

/// The byline's name: the parts of its text split at separators, skipping dates.
fn byline_name(text: &str) -> Option<String> {
    text.split(['|', '·', '•', ',', '\n', '—', '–'])
        .map(str::trim)
        .filter(|part| !DATE.is_match(part))
        .find_map(person_name)
}

/// The author by the first rule that yields one.
pub fn find_author(html: &str) -> Option<Author> {
    let document = Html::parse_document(html);
    let found = |name: Option<String>, rule: &str| name.map(|n| (n, rule.to_owned()));
    let twitter = document
        .select(&TWITTER)
        .find_map(|m| m.attr("content"))
        .map(|h| h.trim().trim_start_matches('@').to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));

    let by_rule = document
        .select(&JSON_LD)
        .filter_map(|s| serde_json::from_str::<Value>(&text_of(s)).ok())
        .find_map(|v| json_ld_author(&v, 0))
        .map(|n| (n, "json_ld".to_owned()))
        .or_else(|| {
            let meta = document.select(&META_AUTHOR).find_map(|m| m.attr("content").and_then(person_name));
            let article = || document.select(&ARTICLE_AUTHOR).find_map(|m| m.attr("content").and_then(person_name));
            found(meta.or_else(article), "meta")
        })
        .or_else(|| {
            let name = document.select(&ITEMPROP).find_map(|e| {
                e.select(&ITEMPROP_NAME)
                    .next()
                    .map(|n| n.attr("content").map(str::to_owned).unwrap_or_else(|| text_of(n)))
                    .or_else(|| e.attr("content").map(str::to_owned))
                    .or_else(|| Some(text_of(e)))
                    .and_then(|t| person_name(&t))
            });
            found(name, "itemprop")
        })
        .or_else(|| found(document.select(&REL_AUTHOR).find_map(|e| person_name(&text_of(e))), "rel_author"))
        .or_else(|| found(document.select(&BYLINE).find_map(|e| byline_name(&text_of(e))), "byline"));

    match by_rule {
        Some((name, rule)) => Some(Author { name: Some(name), rule, twitter }),
        None => twitter.map(|handle| Author { name: None, rule: "twitter_creator".into(), twitter: Some(handle) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(head: &str, body: &str) -> String {
        format!("<html><head>{head}</head><body>{body}</body></html>")
    }

    fn rule_and_name(html: &str) -> Option<(String, Option<String>)> {
        find_author(html).map(|a| (a.rule, a.name))
    }

    #[test]
    fn each_rule_finds_the_author_in_the_documented_order() {
        let json_ld = r#"<script type="application/ld+json">{"@type":"NewsArticle","author":[{"@type":"Person","name":"Ada Lovelace"}]}</script>"#;
        let meta = r#"<meta name="author" content="Grace Hopper">"#;
        let article = r#"<meta property="article:author" content="https://facebook.com/x"><meta property="article:author" content="Alan Turing">"#;
        let itemprop = r#"<span itemprop="author" itemscope><span itemprop="name">Katherine Johnson</span></span>"#;
        let rel = r#"<a rel="author" href="/authors/mh">Margaret Hamilton</a>"#;
        let byline = r#"<p class="post-byline">May 2, 2026 · By Linus Torvalds · 5 min read</p>"#;
        let twitter = r#"<meta name="twitter:creator" content="@dmr">"#;
        let name = |s: &str| Some(s.to_owned());
        assert_eq!(
            rule_and_name(&page(&format!("{json_ld}{meta}{twitter}"), rel)),
            Some(("json_ld".into(), name("Ada Lovelace")))
        );
        assert_eq!(rule_and_name(&page(meta, itemprop)), Some(("meta".into(), name("Grace Hopper"))));
        assert_eq!(rule_and_name(&page(article, "")), Some(("meta".into(), name("Alan Turing"))));
        assert_eq!(
            rule_and_name(&page("", &format!("{byline}{rel}{itemprop}"))),
            Some(("itemprop".into(), name("Katherine Johnson")))
        );
        assert_eq!(
            rule_and_name(&page("", &format!("{byline}{rel}"))),
            Some(("rel_author".into(), name("Margaret Hamilton")))
        );
        assert_eq!(rule_and_name(&page("", byline)), Some(("byline".into(), name("Linus Torvalds"))));
        let handle_only = find_author(&page(twitter, "<p>no author here</p>")).unwrap();
        assert_eq!(
            (handle_only.rule.as_str(), handle_only.name, handle_only.twitter.as_deref()),
            ("twitter_creator", None, Some("dmr"))
        );
        assert_eq!(find_author(&page("", "<p class=\"author\">2026-05-02</p>")), None);
        assert_eq!(find_author("<p>plain</p>"), None);
    }
}
