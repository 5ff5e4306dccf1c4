//! OpenAPI scaffolding: document info, security schemes and the shared envelope schemas.
//! The operations themselves are declared beside their handlers.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::hunter_errors::{HunterError, HunterErrorBody};
use crate::repo::insights::Dimension;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Leadpush API",
        version = "1.0.0",
        description = "Push leads in through campaign webhooks, push them out to outreach tools, learn from outcomes."
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail, HunterErrorBody, HunterError, Dimension)),
    tags(
        (name = "platform", description = "Health, the API document and the calling workspace."),
        (name = "campaigns", description = "Campaigns and their webhook setup."),
        (name = "ingest", description = "The inbound campaign webhook."),
        (name = "leads", description = "Stored leads."),
        (name = "webhooks", description = "Outbound webhooks (save_lead), their deliveries, and `?webhook_url=` callbacks."),
        (name = "push", description = "Pushing leads to a webhook URL, HeyReach or Instantly, and following each push."),
        (name = "integrations", description = "HeyReach and Instantly keys and targets (keys shown masked)."),
        (name = "feedback", description = "Outcome events (opens, replies, bounces, meetings) and provider webhooks."),
        (name = "insights", description = "Which positions, companies, signal types, sources and campaigns produce outcomes."),
        (name = "enrichment", description = "Hunter-compatible email verifier and phone validator (also under /v2), async results, bulk jobs."),
        (name = "api-requests", description = "Reusable HTTP requests workflows run to fetch JSON, their test endpoint, and the workspace limits."),
        (name = "workflows", description = "Campaign workflows (fetch, condition, set fields, render, push) and their per-lead runs."),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Satellyte-API-Key"))),
        );
        components
            .add_security_scheme("hunter_key", SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))));
        components.add_security_scheme(
            "webhook_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// snake_case, stable: `validation_error`, `unauthorized`, `lead_not_found`, ...
    code: String,
    message: String,
    /// The offending field, on `validation_error`.
    field: Option<String>,
}

/// `{"data": T}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DataOf<T: ToSchema> {
    data: T,
}

/// `{"data": [T], "next_cursor": ...}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ListOf<T: ToSchema> {
    data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Adds the error answers the shared extractors give to every operation that uses them, so
/// the document lists them without hand-kept lists per route: 401 where there is a security
/// requirement, 400/413/415 where there is a JSON body, 400 where there are query or path
/// parameters (bad values, or a path that is not UTF-8 once decoded).
pub fn document_shared_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{Ref, ResponseBuilder};
    let error = |text: &str| {
        ResponseBuilder::new()
            .description(text)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let work = super::metering::metered(method, path);
            let responses = &mut operation.responses.responses;
            if let Some(work) = work {
                let text = format!(
                    "`rate_limited`: over the workspace's per-second or per-minute limit of `{}` calls; \
                     {}`Retry-After` gives the seconds to wait, `X-RateLimit-Limit`, `-Remaining` and `-Reset` \
                     the minute's allowance (sent on every answer of this route)",
                    work.name(),
                    if work.has_quota() {
                        "or `quota_exceeded`: the month's quota is used up (see `GET /api/v1/account`). "
                    } else {
                        ""
                    }
                );
                responses.entry("429".to_owned()).or_insert_with(|| error(&text).into());
            }
            let mut add = |status: &str, text: &str| {
                responses.entry(status.to_owned()).or_insert_with(|| error(text).into());
            };
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add("401", "`unauthorized`: missing or wrong credentials");
            }
            if operation.request_body.is_some() {
                add("400", "`validation_error`: the body is not valid; `field` names the offending field");
                add("413", "`payload_too_large`: the body exceeds this endpoint's limit");
                add("415", "`unsupported_media_type`: the body must be `application/json`");
            }
            if operation
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path))
            {
                add("400", "`validation_error`: a parameter is not valid; `field` names it");
            }
            if path.starts_with("/v2/") {
                super::hunter_errors::document_hunter_errors(&mut operation.responses);
            }
        }
    }
}

/// The document generated from every route group (`api::openapi`), committed as
/// `docs/openapi.json` and served from there: building it at run time would link every
/// handler into the platform function. `api::tests` fails when it is out of date.
pub const OPENAPI_DOCUMENT: &str = include_str!("../../../docs/openapi.json");

/// `text` (JSON as `serde_json` pretty-prints it) without the whitespace outside strings:
/// exactly what `serde_json::to_string` gives for the same value.
pub fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                in_string = c != '"';
            }
        } else if c.is_ascii_whitespace() {
            continue;
        } else {
            in_string = c == '"';
        }
        out.push(c);
    }
    out
}

/// A one-line name: no control characters or bidi overrides (`domain::check_line`), at
/// least one character that is not a space (names are trimmed, never empty). Lengths are
/// counted before trimming, as `domain::required_text` counts them.
pub const LINE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$";

/// Free text (notes, messages): any characters but controls other than tab and line breaks,
/// and bidi overrides (`domain::check_text`). `#[schema(pattern)]` takes only a literal,
/// so fields repeat it; a test holds every copy in the document to these constants.
pub const TEXT_PATTERN: &str = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$";
/// [`TEXT_PATTERN`] with at least one character that is not a space.
pub const NON_BLANK_TEXT_PATTERN: &str = r"^(?=[\s\S]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$";

fn string_schema(min: usize, max: usize, pattern: Option<&str>, nullable: bool) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let kind =
        if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { SchemaType::Type(Type::String) };
    ObjectBuilder::new()
        .schema_type(kind)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(pattern.map(str::to_owned))
        .build()
}

/// A required name of at most 200 characters (campaigns, webhooks, API requests).
pub fn name_200() -> utoipa::openapi::schema::Object {
    string_schema(1, 200, Some(LINE_PATTERN), false)
}

/// The same, optional in a PATCH (`null` leaves it unchanged).
pub fn name_200_or_null() -> utoipa::openapi::schema::Object {
    string_schema(1, 200, Some(LINE_PATTERN), true)
}

/// A host the URL parser (WHATWG) takes as it is: DNS-like labels of ASCII letters,
/// digits, `*` and single hyphens, the last one never a number as the parser reads one
/// (all digits, or `0x` and hex digits), or a dotted-quad IPv4 address without leading
/// zeros. `*` is there because the parser takes it in a host, and so does the server
/// (`https://a.example*` is a valid URL). IDNA names (`xn--`, non-ASCII), IPv6 literals,
/// other symbols and the parser's shorthand addresses (`127.1`) are left out: the server
/// takes some of them, the document promises none.
const HOST: &str = concat!(
    r"(([A-Za-z0-9*]+(-[A-Za-z0-9*]+)*\.)*",
    r"([A-Za-z*][A-Za-z0-9*]*|[1-9][0-9]*[A-Za-z*][A-Za-z0-9*]*|0+[A-WYZa-wyz*][A-Za-z0-9*]*",
    r"|0+[xX][0-9A-Fa-f]*[G-Zg-z*][A-Za-z0-9*]*)(-[A-Za-z0-9*]+)*\.?",
    r"|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})"
);

/// A port from 0 to 65535, without leading zeros.
const PORT: &str = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)";

/// What may follow the host and port: a path, query or fragment, which the parser
/// percent-encodes as needed (`\` is a path separator in http(s) URLs).
const REST: &str = r"([/?#\\][\s\S]*)?$";

/// Leading white space, which the server trims.
const LEAD: &str = r"^[\t-\r ]*";

/// An http(s) URL with any host and port, no user name or password: what the server takes
/// when private targets are allowed (`LEADPUSH_ALLOW_PRIVATE_TARGETS=1`), and what a
/// stored-only URL (`meeting_url`) may be.
pub fn any_url_pattern() -> String {
    format!("{LEAD}[hH][tT][tT][pP][sS]?://{HOST}(:{PORT})?{REST}")
}

/// An https URL on port 443 or 80, no user name or password: what the SSRF guard
/// (`delivery::ssrf::check_url`) takes in production.
pub fn guarded_url_pattern() -> String {
    format!("{LEAD}[hH][tT][tT][pP][sS]://{HOST}(:(443|80))?{REST}")
}

/// `text`, matching either case of each ASCII letter.
pub fn any_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The guarded URLs the SSRF guard refuses by their text: internal names (`localhost`,
/// `*.localhost`, `*.local`, `*.internal`) and IPv4 literals in the ranges it forbids
/// (`delivery::ssrf::is_forbidden`).
pub fn internal_url_pattern() -> String {
    let names = ["localhost", "local", "internal"].map(any_case).join("|");
    let v4 = [
        r"(0|10|127|22[4-9]|2[34][0-9]|25[0-5])\.",
        r"100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.",
        r"169\.254\.",
        r"172\.(1[6-9]|2[0-9]|3[01])\.",
        r"192\.0\.[02]\.",
        r"192\.88\.99\.",
        r"192\.168\.",
        r"198\.1[89]\.",
        r"198\.51\.100\.",
        r"203\.0\.113\.",
    ]
    .join("|");
    format!(r"{LEAD}[hH][tT][tT][pP][sS]://(([A-Za-z0-9*-]+\.)*({names})\.?|({v4})[0-9.]*)([:/?#\\]|$)")
}

/// Where a URL schema's rules come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRules {
    /// A URL the server calls: the SSRF guard's rules (production; the document served
    /// with private targets allowed states [`UrlRules::Any`] instead, see [`served_document`]).
    Guarded,
    /// Any http(s) URL (stored, never called).
    Any,
}

/// A URL of at most `max` characters (counted before the server trims it).
fn url_schema(rules: UrlRules, max: usize, nullable: bool) -> utoipa::openapi::schema::Object {
    let pattern = match rules {
        UrlRules::Guarded => guarded_url_pattern(),
        UrlRules::Any => any_url_pattern(),
    };
    let mut schema = string_schema(8, max, Some(&pattern), nullable);
    if rules == UrlRules::Guarded {
        let not = serde_json::json!({ "pattern": internal_url_pattern() });
        schema.extensions.get_or_insert_with(Default::default).insert("not".into(), not);
    }
    schema
}

/// A URL the server posts to or fetches: https on port 443 or 80, at most 2048 characters,
/// no credentials, not an internal name or address (`delivery::ssrf::check_url`). The
/// host must also resolve to public addresses when it is called (and, for a webhook
/// endpoint, when it is saved), which no pattern can state.
pub fn url() -> utoipa::openapi::schema::Object {
    url_schema(UrlRules::Guarded, 2048, false)
}

/// `url`, optional (`null` or absent: none).
pub fn url_or_null() -> utoipa::openapi::schema::Object {
    url_schema(UrlRules::Guarded, 2048, true)
}

/// An http(s) URL the server only stores (`meeting_url`), at most 2000 characters; blank
/// or `null` for none.
pub fn stored_url_or_null() -> utoipa::openapi::schema::Object {
    let mut schema = url_schema(UrlRules::Any, 2000, true);
    schema.pattern = schema.pattern.map(|p| format!("^{WS}*$|{p}"));
    schema.min_length = None;
    schema
}

/// The document as this server serves it: the committed one, or, when private targets
/// are allowed (local runs and tests: `LEADPUSH_ALLOW_PRIVATE_TARGETS=1`), the same with
/// every guarded URL stating what the server then takes (http too, any host and port).
pub fn served_document(allow_private_targets: bool) -> String {
    let compact = compact_json(OPENAPI_DOCUMENT);
    if !allow_private_targets {
        return compact;
    }
    let mut doc: serde_json::Value = match serde_json::from_str(&compact) {
        Ok(doc) => doc,
        Err(_) => return compact, // the committed document is JSON (a test reads it)
    };
    relax_guarded_urls(&mut doc, &guarded_url_pattern(), &any_url_pattern());
    doc.to_string()
}

fn relax_guarded_urls(value: &mut serde_json::Value, guarded: &str, any: &str) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get_mut("pattern")
                && let Some(rest) = pattern.strip_suffix(guarded)
            {
                *pattern = format!("{rest}{any}");
                map.remove("not");
            }
            map.values_mut().for_each(|v| relax_guarded_urls(v, guarded, any));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| relax_guarded_urls(v, guarded, any)),
        _ => {}
    }
}

/// A required query text: trimmed by the server, so it needs a character that is not a space.
pub fn required_query_text(max: usize) -> utoipa::openapi::schema::Object {
    string_schema(1, max, Some(NOT_ONLY_SPACES), false)
}

/// Holds a character that is not white space as Rust's `trim` counts it.
pub const NOT_ONLY_SPACES: &str = crate::support::text::NOT_WHITE_SPACE;

/// An optional URL parameter: empty means none, else as [`url`].
pub fn optional_url() -> utoipa::openapi::schema::Object {
    let mut schema = url_schema(UrlRules::Guarded, 2048, true);
    schema.pattern = schema.pattern.map(|p| format!("^$|{p}"));
    schema.min_length = None;
    schema
}

/// White space as Rust's `trim` and `char::is_whitespace` count it.
const WS: &str = crate::support::text::WHITE_SPACE;

/// A DNS label: 1 to 63 ASCII letters, digits and hyphens, neither first nor last a
/// hyphen, and not an IDNA (`xn--`) label, which the URL parser decodes.
const LABEL: &str = r"(?![xX][nN]--)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

/// An optional domain parameter (`enrich::find::finders::domain_name`): blank, or a
/// domain name of two labels or more whose last is 2 or more letters (and hyphens), not
/// only `www.` and one label (the server drops a leading `www.`). The server also takes a
/// URL and keeps its host.
pub fn optional_domain() -> utoipa::openapi::schema::Object {
    let tld = r"(?![xX][nN]--)[A-Za-z][A-Za-z-]{0,61}[A-Za-z]";
    let name = format!(r"(?!([wW][wW][wW]\.)+[^.]*$)({LABEL}\.)+{tld}");
    string_schema(0, 253, Some(&format!("^{WS}*$|^{WS}*{name}{WS}*$")), false)
}

/// An optional email address parameter (`domain::lead::is_valid_email`, a subset: the
/// server also takes quoted and non-ASCII local parts): blank, or `local@domain` with a
/// local part of at most 64 characters and a domain of two labels or more.
pub fn optional_email() -> utoipa::openapi::schema::Object {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let address = format!(r"(?=[^@]{{1,64}}@)[A-Za-z0-9]+([._+-][A-Za-z0-9]+)*@({label}\.)+{label}");
    string_schema(0, 254, Some(&format!("^{WS}*$|^{WS}*{address}{WS}*$")), false)
}

/// An optional LinkedIn handle (`jane-doe`) or profile URL: blank, or text whose last
/// `/`-separated part (trailing slashes dropped) is not empty and holds no white space.
pub fn optional_linkedin_handle() -> utoipa::openapi::schema::Object {
    let slug = r"[^/\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+";
    string_schema(0, 200, Some(&format!(r"^{WS}*$|^{WS}*([\s\S]*/)?{slug}/*{WS}*$")), false)
}

/// An optional email address in a lead (`domain::lead::is_valid_email`, the subset of
/// [`optional_email`]): blank or `null` means none.
pub fn lead_email_or_null() -> utoipa::openapi::schema::Object {
    let mut schema = optional_email();
    schema.schema_type = nullable_string();
    schema
}

/// A lead's `website` or `linkedin` (`domain::lead::web_url`): blank or `null` for none,
/// else an http(s) URL or a bare host (`acme.com`, given `https://`), at most 1000
/// characters, with no white space or control characters.
pub fn web_link_or_null() -> utoipa::openapi::schema::Object {
    let visible =
        r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    let link = format!(r"([hH][tT][tT][pP][sS]?://)?{HOST}(:{PORT})?([/?#\\]{visible}*)?");
    let mut schema = string_schema(0, 1000, Some(&format!("^{WS}*$|^{WS}*{link}{WS}*$")), true);
    schema.min_length = None;
    schema
}

fn nullable_string() -> utoipa::openapi::schema::SchemaType {
    use utoipa::openapi::schema::{SchemaType, Type};
    SchemaType::from_iter([Type::String, Type::Null])
}

/// A string property that is present and not blank: one branch of an "at least one of"
/// rule (`anyOf`).
pub fn present(field: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .property(field, ObjectBuilder::new().schema_type(Type::String).pattern(Some(NOT_ONLY_SPACES)))
        .required(field)
        .build()
}

/// An optional comma-separated list of `choices` (case-insensitive; empty items ignored).
pub fn comma_list(choices: &[&str]) -> utoipa::openapi::schema::Object {
    let one = format!("({})", choices.join("|"));
    let item = format!(r"(\s*{one}?\s*)");
    string_schema(0, 1000, Some(&format!("^{item}(,{item})*$")), true)
}

/// A type whose schema is the given expression, for `#[param(inline, value_type = T)]`: a
/// parameter declared so keeps its description and required-ness (`schema_with` drops both).
macro_rules! schema_type {
    ($(#[$meta:meta])* $vis:vis $name:ident = $schema:expr) => {
        $(#[$meta])*
        $vis struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                ($schema).into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use schema_type;

schema_type!(
    /// [`url`] as a type.
    pub UrlParam = url()
);
schema_type!(
    /// [`optional_url`] as a type.
    pub OptionalUrlParam = optional_url()
);
schema_type!(
    /// [`optional_domain`] as a type.
    pub OptionalDomain = optional_domain()
);
schema_type!(
    /// [`optional_email`] as a type.
    pub OptionalEmail = optional_email()
);
schema_type!(
    /// [`optional_linkedin_handle`] as a type.
    pub OptionalLinkedinHandle = optional_linkedin_handle()
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::ssrf::check_url;

    /// Every text rule in the document is one of the named patterns: the literal copies that
    /// `#[schema(pattern)]` needs cannot drift from them (or from each other) unnoticed.
    #[cfg(feature = "openapi")]
    #[test]
    fn every_copy_of_a_text_pattern_in_the_document_is_one_of_the_named_ones() {
        fn patterns(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, v) in map {
                        match (key.as_str(), v) {
                            ("pattern", serde_json::Value::String(p)) => out.push(p.clone()),
                            _ => patterns(v, out),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| patterns(v, out)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(crate::api::openapi()).unwrap();
        let mut found = Vec::new();
        patterns(&doc, &mut found);
        let named = [LINE_PATTERN, TEXT_PATTERN, NON_BLANK_TEXT_PATTERN, NOT_ONLY_SPACES];
        // Text rules name the bidi overrides; URL and domain patterns, built from parts here,
        // start by allowing surrounding spaces.
        let generated = |p: &str| p.starts_with(r"^[\t-\r");
        let text_rules: Vec<&String> =
            found.iter().filter(|p| (p.contains(r"\u202a") && !generated(p)) || p.starts_with(r"[^\t-\r")).collect();
        assert!(text_rules.len() >= 30, "{} text rules found", text_rules.len());
        for pattern in text_rules {
            assert!(named.contains(&pattern.as_str()), "a text rule that is none of the named ones: {pattern}");
        }
    }

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    /// URLs around the edges of the URL parser and the SSRF guard.
    const URLS: &[&str] = &[
        "https://example.com",
        "https://example.com/",
        "  https://Example.COM:443/a?b#c",
        "https://example.com:80/x",
        "https://example.com:8443/x",
        "http://example.com/",
        "HTTP://example.com:65535/",
        "http://example.com:65536/",
        "https://a/",
        "https://a.1/",
        "https://1.2.3.4/",
        "https://1.2.3.256/",
        "https://01.2.3.4/",
        "https://127.0.0.1:3000/cb",
        "https://127.1/",
        "https://2130706433/",
        "https://10.0.0.1/",
        "https://10.example/",
        "https://8.8.8.8/",
        "https://192.0.2.1/",
        "https://172.20.1.1/",
        "https://localhost/",
        "https://LOCALHOST./",
        "https://api.localhost/",
        "https://printer.local/",
        "https://metadata.google.internal/",
        "https://internal.example.com/",
        "https://xn--bcher-kva.de/",
        "https://xn--a.de/",
        "https://bücher.de/",
        "https://ab--cd.de/",
        "https://-a.de/",
        "https://a-.de/",
        "https://user:pw@example.com/",
        "https://@example.com/",
        "https://example.com\\path",
        "https://example.com/a b\u{7}c",
        "https://example.com/\u{202e}",
        "https://example.com.",
        "https://example..com/",
        "https://[::1]/",
        "https://0x7f.1/",
        "https://a.example*",
        "https://1.2.3.4*",
        "https://a.0x",
        "https://a.0x1f",
        "https://a.0xg",
        "https://a.00x1",
        "https://a.1a",
        "https://a.0b",
        "https://a.ab",
        "https://a.*",
        "https://a.b-*",
        "http://localhost*",
        "https://*.example.com/",
        "https://a.0x1/",
        "https://exa mple.com/",
        "https://",
        "https:///x",
        "ftp://example.com/",
        "https:example.com",
    ];

    #[test]
    fn a_url_the_document_takes_is_one_the_server_takes() {
        let (guarded, internal, any) = (guarded_url_pattern(), internal_url_pattern(), any_url_pattern());
        let mut guarded_seen = 0;
        for url in URLS {
            if matches(&guarded, url) && !matches(&internal, url) {
                guarded_seen += 1;
                assert!(check_url(url, false).is_ok(), "the document takes {url:?}, the guard refuses it");
            }
            if matches(&any, url) {
                assert!(check_url(url, true).is_ok(), "the local document takes {url:?}, the server refuses it");
            }
        }
        assert!(guarded_seen >= 6, "{guarded_seen}");
        for refused in ["https://localhost/", "https://10.0.0.1/", "https://192.0.2.1/", "https://printer.local/"] {
            assert!(matches(&guarded, refused) && matches(&internal, refused), "{refused}");
        }
        assert!(!matches(&internal, "https://10.example/") && !matches(&internal, "https://internal.example.com/"));
    }

    #[test]
    fn the_local_document_states_any_host_and_port_for_guarded_urls() {
        let served: serde_json::Value = serde_json::from_str(&served_document(true)).unwrap();
        let text = served.to_string();
        assert!(!text.contains(&serde_json::to_string(&guarded_url_pattern()).unwrap()));
        assert!(text.contains(&serde_json::to_string(&any_url_pattern()).unwrap()));
        let url = &served["components"]["schemas"]["CreateWebhook"]["properties"]["url"];
        assert_eq!(url["pattern"], any_url_pattern());
        assert!(url.get("not").is_none(), "{url}");
        let production: serde_json::Value = serde_json::from_str(&served_document(false)).unwrap();
        let url = &production["components"]["schemas"]["CreateWebhook"]["properties"]["url"];
        assert_eq!(
            (&url["pattern"], &url["not"]["pattern"]),
            (&guarded_url_pattern().into(), &internal_url_pattern().into())
        );
    }
}
