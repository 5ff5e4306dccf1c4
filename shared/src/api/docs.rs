//! OpenAPI scaffolding: document info, security schemes and the shared envelope schemas.
//! The operations themselves are declared beside their handlers.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Leadpush API",
        version = "1.0.0",
        description = "Push leads in through campaign webhooks, push them out to outreach tools, learn from outcomes."
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail, crate::repo::insights::Dimension)),
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

/// Starts with http(s)://. Whether the rest is a URL (WHATWG syntax: hosts, IDNA, ports)
/// is more than a pattern can state; the server answers 400 naming the field when not.
const URL_PATTERN: &str = r"^[\t-\r ]*[hH][tT][tT][pP][sS]?://[^\t-\r ]";

/// A URL the server fetches or posts to: http(s), at most 2048 characters
/// (`delivery::ssrf::check_url`; plain http only where private targets are allowed).
pub fn url() -> utoipa::openapi::schema::Object {
    let mut schema = string_schema(8, 2048, Some(URL_PATTERN), false);
    schema.format = Some(utoipa::openapi::schema::SchemaFormat::Custom("uri".into()));
    schema
}

/// `url`, optional (`null` or absent: none).
pub fn url_or_null() -> utoipa::openapi::schema::Object {
    let mut schema = url();
    schema.schema_type = utoipa::openapi::schema::SchemaType::from_iter([
        utoipa::openapi::schema::Type::String,
        utoipa::openapi::schema::Type::Null,
    ]);
    schema
}

/// A required query text: trimmed by the server, so it needs a character that is not a space.
pub fn required_query_text(max: usize) -> utoipa::openapi::schema::Object {
    string_schema(1, max, Some(NOT_ONLY_SPACES), false)
}

/// Holds a character that is not white space as Rust's `trim` counts it.
pub const NOT_ONLY_SPACES: &str = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// An optional URL parameter: empty means none (the server trims it), else as [`url`].
pub fn optional_url() -> utoipa::openapi::schema::Object {
    let pattern = format!("^$|{URL_PATTERN}");
    let mut schema = string_schema(0, 2048, Some(&pattern), true);
    schema.min_length = None;
    schema
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
