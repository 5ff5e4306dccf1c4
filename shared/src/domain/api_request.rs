//! API requests (the API Requests specification): reusable HTTP request configurations a
//! workflow's Fetch API Data node runs, and the workspace limits they live within. Types
//! and rules only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ValidationError, required_text};
use crate::support::time::Timestamp;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_URL_TEMPLATE_CHARS: usize = 4096;
pub const MAX_PAIRS: usize = 50;
pub const MAX_PAIR_NAME_CHARS: usize = 256;
pub const MAX_PAIR_VALUE_CHARS: usize = 4096;
pub const MAX_BODY_TEMPLATE_BYTES: usize = 64 * 1024;
pub const MIN_TIMEOUT_MS: u64 = 100;
pub const MAX_CACHE_TTL_S: u32 = 86_400;
pub const MAX_RETRY_ATTEMPTS: u32 = 10;
pub const MIN_BACKOFF_MS: u64 = 100;
pub const MAX_BACKOFF_MS: u64 = 600_000;

/// Workspace limit defaults and the hard ceilings no setting may pass. A response is
/// stored whole (as a workflow output, or cached), so the size ceiling keeps every stored
/// item far below DynamoDB's 400 KB.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 10_000;
/// API Gateway's HTTP API waits at most 30 s (it cannot be raised) and the functions behind
/// it time out at 29 s, so a test request (`POST /api/v1/api-requests/.../test`) must give
/// up before them to answer our typed `timeout` instead of the gateway's 503.
pub const CEILING_TIMEOUT_MS: u64 = 25_000;
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;
pub const CEILING_RESPONSE_BYTES: usize = 320 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// Retries of transient failures (timeout, connection failure, 429, 5xx): `attempts` in
/// all (1 = no retry), the n-th retry waiting `backoff_ms * 2^(n-1)` or the answer's
/// `Retry-After`, whichever is longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetryPolicy {
    /// 1 to 10 (default 3).
    #[schema(minimum = 1, maximum = 10)]
    pub attempts: u32,
    /// 100 to 600000 (default 1000).
    #[schema(minimum = 100, maximum = 600000)]
    pub backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 3, backoff_ms: 1000 }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=MAX_RETRY_ATTEMPTS).contains(&self.attempts) {
            return Err(ValidationError::new(
                "retry.attempts",
                format!("must be between 1 and {MAX_RETRY_ATTEMPTS}, got {}", self.attempts),
            ));
        }
        if !(MIN_BACKOFF_MS..=MAX_BACKOFF_MS).contains(&self.backoff_ms) {
            return Err(ValidationError::new(
                "retry.backoff_ms",
                format!("must be between {MIN_BACKOFF_MS} and {MAX_BACKOFF_MS}, got {}", self.backoff_ms),
            ));
        }
        Ok(())
    }

    /// The pause before attempt `next` (2, 3, ...), at least `retry_after`.
    pub fn delay_before(&self, next: u32, retry_after: Option<std::time::Duration>) -> std::time::Duration {
        let exponent = next.saturating_sub(2).min(16);
        let backoff = std::time::Duration::from_millis(self.backoff_ms.saturating_mul(1 << exponent));
        backoff.max(retry_after.unwrap_or_default())
    }
}

/// The workspace's limits for API requests (`GET/PATCH /api/v1/workspace/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceSettings {
    /// The longest `timeout_ms` an API request may have (default 10000, at most 25000).
    pub api_request_max_timeout_ms: u64,
    /// The largest response an API request may receive; larger ones are refused with
    /// `response_too_large`, never truncated (default 262144, at most 327680).
    pub api_request_max_response_bytes: usize,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            api_request_max_timeout_ms: DEFAULT_MAX_TIMEOUT_MS,
            api_request_max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl WorkspaceSettings {
    /// These settings with each limit at most its ceiling.
    pub fn within_ceilings(self) -> Self {
        Self {
            api_request_max_timeout_ms: self.api_request_max_timeout_ms.min(CEILING_TIMEOUT_MS),
            api_request_max_response_bytes: self.api_request_max_response_bytes.min(CEILING_RESPONSE_BYTES),
        }
    }

    /// How long one call of a request may take: its own timeout, within the workspace's
    /// limit and the ceiling (a request or setting saved under a higher ceiling).
    pub fn call_timeout(&self, request_timeout_ms: u64) -> std::time::Duration {
        let ms = request_timeout_ms.min(self.api_request_max_timeout_ms).min(CEILING_TIMEOUT_MS);
        std::time::Duration::from_millis(ms)
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(MIN_TIMEOUT_MS..=CEILING_TIMEOUT_MS).contains(&self.api_request_max_timeout_ms) {
            return Err(ValidationError::new(
                "api_request_max_timeout_ms",
                format!(
                    "must be between {MIN_TIMEOUT_MS} and the hard ceiling {CEILING_TIMEOUT_MS} ms (a test request \
                     must answer before API Gateway gives up at 30 s), got {}",
                    self.api_request_max_timeout_ms
                ),
            ));
        }
        if !(1024..=CEILING_RESPONSE_BYTES).contains(&self.api_request_max_response_bytes) {
            return Err(ValidationError::new(
                "api_request_max_response_bytes",
                format!(
                    "must be between 1024 and the hard ceiling {CEILING_RESPONSE_BYTES}, got {}",
                    self.api_request_max_response_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// What a client sends to create an API request (and, in full, to test an unsaved one).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ApiRequestInput {
    /// 1 to 200 characters, unique in the workspace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub name: String,
    /// `GET` takes no `body`; only `GET` takes `cache_ttl_s` (`oneOf` in the request bodies
    /// that create or test one).
    pub method: HttpMethod,
    /// A template of an http(s) URL, not blank (at most 4096 characters once trimmed);
    /// values inserted are percent-encoded. Whether it renders to a URL is checked when it
    /// runs. Templates (`{{ }}`, `{% %}`, `{# #}`) must parse: 400 `template error` naming
    /// the field otherwise.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub url: String,
    /// Header name -> value template: at most 50; names are HTTP tokens of at most 256
    /// characters, and two may not differ only in case; values at most 4096 characters.
    /// Workflow runs also send `Idempotency-Key: {run_id}:{node_id}` (the same when a run
    /// repeats a call), unless a header of that name is configured here; the test endpoint
    /// sends none.
    #[serde(default)]
    #[schema(schema_with = header_templates)]
    pub headers: BTreeMap<String, String>,
    /// Query parameter name -> value template (appended to the URL, encoded): at most 50;
    /// names not blank, at most 256 characters; values at most 4096 characters.
    #[serde(default)]
    #[schema(schema_with = query_templates)]
    pub query: BTreeMap<String, String>,
    /// A template of the body, at most 65,536 bytes (UTF-8). With a JSON Content-Type (the
    /// default when none is given) it must render to valid JSON; inserted strings are
    /// JSON-escaped. Not with `GET`.
    #[schema(max_length = 65536)]
    pub body: Option<String>,
    /// Per-call timeout, 100 ms up to the workspace limit `api_request_max_timeout_ms`
    /// (default: that limit; 10,000 until changed, at most 25,000).
    #[schema(minimum = 100, maximum = 25000)]
    pub timeout_ms: Option<u64>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// GET only: reuse an identical request's answer for this many seconds (1 to 86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub cache_ttl_s: Option<u32>,
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn yes() -> bool {
    true
}

/// A map of at most [`MAX_PAIRS`] templates of at most [`MAX_PAIR_VALUE_CHARS`] characters
/// whose names match `names` ([`check_pairs`]).
fn pair_templates(names: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let value = ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX_PAIR_VALUE_CHARS));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_PAIR_NAME_CHARS))
        .pattern(Some(names));
    let mut schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(value.build().into())))
        .max_properties(Some(MAX_PAIRS))
        .build();
    schema.property_names = Some(Box::new(name.build().into()));
    schema
}

/// `headers`: names are HTTP tokens (RFC 9110).
pub fn header_templates() -> utoipa::openapi::schema::Object {
    pair_templates(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
}

/// `query`: names hold a character that is not white space.
pub fn query_templates() -> utoipa::openapi::schema::Object {
    pair_templates(crate::support::text::NOT_WHITE_SPACE)
}

/// A stored API request. Header values that look like credentials are returned masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiRequest {
    /// `apr_...`
    pub id: String,
    pub name: String,
    pub method: HttpMethod,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub body: Option<String>,
    pub timeout_ms: u64,
    pub enabled: bool,
    pub cache_ttl_s: Option<u32>,
    pub retry: RetryPolicy,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Whether a header's value is a credential: write-only, masked on read.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("authorization")
        || name.ends_with("-key")
        || name.ends_with("_key")
        || name == "apikey"
        || name.contains("token")
        || name.contains("secret")
        || name.contains("password")
        || name == "cookie"
}

/// `****` and, for long values, the last four characters.
pub fn mask_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 16 {
        return "****".to_owned();
    }
    format!("****{}", chars[chars.len() - 4..].iter().collect::<String>())
}

/// The headers with credential-like values masked.
pub fn masked_headers(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if is_secret_header(name) { mask_value(value) } else { value.clone() };
            (name.clone(), shown)
        })
        .collect()
}

/// Whether the headers name a JSON Content-Type, or none at all (then JSON is sent).
pub fn body_is_json(headers: &BTreeMap<String, String>) -> bool {
    match headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        None => true,
        Some((_, value)) => {
            let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        }
    }
}

fn check_pairs(field: &str, pairs: &BTreeMap<String, String>, header_names: bool) -> Result<(), ValidationError> {
    if pairs.len() > MAX_PAIRS {
        return Err(ValidationError::new(field, format!("may hold at most {MAX_PAIRS} entries")));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in pairs {
        let at = format!("{field}.{name}");
        if name.trim().is_empty() || name.chars().count() > MAX_PAIR_NAME_CHARS {
            return Err(ValidationError::new(at, format!("names must be 1 to {MAX_PAIR_NAME_CHARS} characters")));
        }
        if header_names {
            let token = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(ValidationError::new(at, "is not a valid header name"));
            }
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(ValidationError::new(at, "is given twice (header names ignore case)"));
            }
        }
        if value.chars().count() > MAX_PAIR_VALUE_CHARS {
            return Err(ValidationError::new(at, format!("must be at most {MAX_PAIR_VALUE_CHARS} characters")));
        }
    }
    Ok(())
}

impl ApiRequest {
    /// Builds a request from input, within the workspace's limits.
    pub fn new(
        id: String,
        input: ApiRequestInput,
        settings: &WorkspaceSettings,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        let request = Self {
            id,
            name: required_text("name", &input.name, MAX_NAME_CHARS)?,
            method: input.method,
            url: input.url.trim().to_owned(),
            headers: input.headers,
            query: input.query,
            body: input.body,
            timeout_ms: input.timeout_ms.unwrap_or(settings.api_request_max_timeout_ms),
            enabled: input.enabled,
            cache_ttl_s: input.cache_ttl_s,
            retry: input.retry,
            created_at: now,
            updated_at: now,
        };
        request.validate(settings)?;
        Ok(request)
    }

    /// The rules every saved (and tested) request meets. Templates are checked by the
    /// workflow engine, which knows their syntax.
    pub fn validate(&self, settings: &WorkspaceSettings) -> Result<(), ValidationError> {
        if self.url.is_empty() {
            return Err(ValidationError::new("url", "must not be empty"));
        }
        if self.url.chars().count() > MAX_URL_TEMPLATE_CHARS {
            return Err(ValidationError::new("url", format!("must be at most {MAX_URL_TEMPLATE_CHARS} characters")));
        }
        check_pairs("headers", &self.headers, true)?;
        check_pairs("query", &self.query, false)?;
        if let Some(body) = &self.body {
            if body.len() > MAX_BODY_TEMPLATE_BYTES {
                return Err(ValidationError::new("body", format!("must be at most {MAX_BODY_TEMPLATE_BYTES} bytes")));
            }
            if self.method == HttpMethod::Get {
                return Err(ValidationError::new("body", "GET requests carry no body; use query instead"));
            }
        }
        let max = settings.api_request_max_timeout_ms;
        if self.timeout_ms < MIN_TIMEOUT_MS || self.timeout_ms > max {
            return Err(ValidationError::new(
                "timeout_ms",
                format!(
                    "must be between {MIN_TIMEOUT_MS} and the workspace limit api_request_max_timeout_ms = {max}, got {}",
                    self.timeout_ms
                ),
            ));
        }
        if let Some(ttl) = self.cache_ttl_s {
            if self.method != HttpMethod::Get {
                return Err(ValidationError::new("cache_ttl_s", "applies to GET requests only"));
            }
            if !(1..=MAX_CACHE_TTL_S).contains(&ttl) {
                return Err(ValidationError::new(
                    "cache_ttl_s",
                    format!("must be between 1 and {MAX_CACHE_TTL_S}, got {ttl}"),
                ));
            }
        }
        self.retry.validate()
    }

    /// The request as clients see it: credential-like header values masked.
    pub fn masked(&self) -> Self {
        Self { headers: masked_headers(&self.headers), ..self.clone() }
    }

    /// Replaces the headers from a PATCH: `null` removes one, a credential-like header the
    /// PATCH omits (or echoes back masked) keeps its stored value, other omitted headers go.
    pub fn patch_headers(&mut self, patch: BTreeMap<String, Option<String>>) {
        let old = std::mem::take(&mut self.headers);
        let mut next = BTreeMap::new();
        for (name, value) in &patch {
            let Some(value) = value else { continue };
            let stored = old.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
            match stored {
                Some(stored) if is_secret_header(name) && *value == mask_value(stored) => {
                    next.insert(name.clone(), stored.clone());
                }
                _ => {
                    next.insert(name.clone(), value.clone());
                }
            }
        }
        for (name, value) in old {
            let mentioned = patch.keys().any(|n| n.eq_ignore_ascii_case(&name));
            if !mentioned && is_secret_header(&name) {
                next.insert(name, value);
            }
        }
        self.headers = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit or request saved under the old 30000 ceiling reads, and calls, within 25000.
    #[test]
    fn limits_saved_over_the_ceiling_are_capped_at_it() {
        let old = WorkspaceSettings { api_request_max_timeout_ms: 30_000, api_request_max_response_bytes: 400_000 };
        let read = old.within_ceilings();
        assert_eq!((read.api_request_max_timeout_ms, read.api_request_max_response_bytes), (25_000, 327_680));
        assert_eq!(old.call_timeout(30_000), std::time::Duration::from_millis(25_000));
        assert_eq!(WorkspaceSettings::default().call_timeout(30_000), std::time::Duration::from_millis(10_000));
        assert_eq!(read.call_timeout(500), std::time::Duration::from_millis(500));
        let refused = old.validate().unwrap_err().to_string();
        assert!(refused.contains("hard ceiling 25000 ms"), "{refused}");
    }

    fn input(headers: &[(&str, &str)]) -> ApiRequestInput {
        ApiRequestInput {
            name: "Profile".into(),
            method: HttpMethod::Get,
            url: "https://api.example.com/u/{{ contact.email }}".into(),
            headers: headers.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            query: BTreeMap::new(),
            body: None,
            timeout_ms: None,
            enabled: true,
            cache_ttl_s: None,
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn credential_like_headers_are_masked_and_kept_when_a_patch_omits_them() {
        let secret = "Bearer sk_live_0123456789abcdef";
        let mut r = ApiRequest::new(
            "apr_1".into(),
            input(&[("Authorization", secret), ("X-Api-Key", "k"), ("Accept", "application/json")]),
            &WorkspaceSettings::default(),
            Timestamp::now(),
        )
        .unwrap();
        let shown = r.masked();
        assert_eq!(shown.headers["Authorization"], "****cdef");
        assert_eq!(shown.headers["X-Api-Key"], "****");
        assert_eq!(shown.headers["Accept"], "application/json");
        // Omitted secret kept, masked echo kept, null removes, plain omitted header goes.
        let patch = BTreeMap::from([
            ("authorization".to_owned(), Some("****cdef".to_owned())),
            ("X-Api-Key".to_owned(), None),
            ("X-Trace".to_owned(), Some("1".to_owned())),
        ]);
        r.patch_headers(patch);
        assert_eq!(r.headers.get("authorization").map(String::as_str), Some(secret));
        assert!(!r.headers.contains_key("X-Api-Key") && !r.headers.contains_key("Accept"));
        r.patch_headers(BTreeMap::new());
        assert_eq!(r.headers.get("authorization").map(String::as_str), Some(secret));
    }

    #[test]
    fn timeouts_above_the_workspace_limit_are_refused_naming_it() {
        let mut i = input(&[]);
        i.timeout_ms = Some(20_000);
        let err = ApiRequest::new("apr_1".into(), i, &WorkspaceSettings::default(), Timestamp::now()).unwrap_err();
        assert_eq!(err.field, "timeout_ms");
        assert!(err.message.contains("api_request_max_timeout_ms = 10000"), "{}", err.message);
    }

    #[test]
    fn retry_delays_grow_and_honour_retry_after() {
        let p = RetryPolicy { attempts: 4, backoff_ms: 100 };
        assert_eq!(p.delay_before(2, None).as_millis(), 100);
        assert_eq!(p.delay_before(3, None).as_millis(), 200);
        assert_eq!(p.delay_before(3, Some(std::time::Duration::from_secs(2))).as_millis(), 2000);
    }
}
