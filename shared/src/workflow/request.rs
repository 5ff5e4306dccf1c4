//! Running an API request: render its templates, send it through the guarded outbound
//! client (SSRF guard on the URL and at connection time; redirects are not followed), and
//! accept only a JSON object or array within the workspace's size limit. Failures are
//! typed (`CallError::code`) so runs and the test endpoint can say what went wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sha2::Digest;
use utoipa::ToSchema;

use super::template::{self, Mode, TemplateError};
use crate::context::AppContext;
use crate::domain::api_request::{ApiRequest, HttpMethod, WorkspaceSettings, body_is_json, masked_headers};
use crate::outbound::{OutboundError, OutboundRequest};
use crate::repo::api_requests;

/// A rendered header or query value may be at most this long.
const MAX_VALUE_BYTES: usize = 8 * 1024;
/// How much of a failed answer's body an error quotes.
const EXCERPT_CHARS: usize = 500;
/// The header that carries a workflow run's key for one node's call (see [`idempotency_key`]).
pub const IDEMPOTENCY_HEADER: &str = crate::outbound::providers::webhook::IDEMPOTENCY_HEADER;

/// The `Idempotency-Key` a workflow run sends with its calls for one node:
/// `{run_id}:{node_id}`, the same on every attempt and on every redelivery of the run
/// (a worker that died after the call and before recording it calls again), different
/// for another run (a rerun too) or another node. Run ids are unique across workspaces;
/// node ids are letters, digits, `_` and `-`, so the value is a valid header value.
pub fn idempotency_key(run_id: &str, node_id: &str) -> String {
    format!("{run_id}:{node_id}")
}

/// A request as it is (or would be) sent.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RenderedRequest {
    pub method: HttpMethod,
    pub url: String,
    /// As sent; `masked()` hides credential-like values for display.
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

impl RenderedRequest {
    pub fn masked(&self) -> Self {
        Self { headers: masked_headers(&self.headers), ..self.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Template(TemplateError),
    #[error("the rendered URL {0}")]
    UrlNotAllowed(String),
    #[error("the API request is disabled")]
    Disabled,
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("could not connect: {0}")]
    ConnectFailed(String),
    #[error("answered HTTP {status}: {excerpt}")]
    HttpStatus { status: u16, excerpt: String, retry_after: Option<Duration> },
    #[error("the answer is larger than the workspace limit of {limit} bytes (api_request_max_response_bytes)")]
    ResponseTooLarge { limit: usize },
    #[error("the answer is not a JSON object or array: {0}")]
    ResponseNotJson(String),
    #[error("request failed: {0}")]
    Failed(String),
}

impl CallError {
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Template(_) => "template_error",
            CallError::UrlNotAllowed(_) => "url_not_allowed",
            CallError::Disabled => "api_request_disabled",
            CallError::Timeout(_) => "timeout",
            CallError::ConnectFailed(_) => "connect_failed",
            CallError::HttpStatus { .. } => "http_status",
            CallError::ResponseTooLarge { .. } => "response_too_large",
            CallError::ResponseNotJson(_) => "response_not_json",
            CallError::Failed(_) => "request_failed",
        }
    }

    /// Worth another attempt: timeouts, failed connections, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Timeout(_) | CallError::ConnectFailed(_) => true,
            CallError::HttpStatus { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<TemplateError> for CallError {
    fn from(e: TemplateError) -> Self {
        CallError::Template(e)
    }
}

/// Renders every part of the request with `vars`.
pub fn render(ctx: &AppContext, request: &ApiRequest, vars: &serde_json::Value) -> Result<RenderedRequest, CallError> {
    let url = template::render("url", &request.url, Mode::Url, vars, 2048)?;
    let mut parsed = ctx.outbound.check_url(&url).map_err(|e| CallError::UrlNotAllowed(e.to_string()))?;
    if !request.query.is_empty() {
        let mut pairs = Vec::with_capacity(request.query.len());
        for (name, value) in &request.query {
            pairs.push((name, template::render(&format!("query.{name}"), value, Mode::Text, vars, MAX_VALUE_BYTES)?));
        }
        parsed.query_pairs_mut().extend_pairs(pairs);
    }
    let url = ctx.outbound.check_url(parsed.as_str()).map_err(|e| CallError::UrlNotAllowed(e.to_string()))?;
    let mut headers = BTreeMap::new();
    for (name, value) in &request.headers {
        let field = format!("headers.{name}");
        let text = template::render(&field, value, Mode::Text, vars, MAX_VALUE_BYTES)?;
        if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(CallError::Template(TemplateError {
                field,
                variable: None,
                message: "renders a line break or NUL, which a header may not contain".into(),
            }));
        }
        headers.insert(name.clone(), text);
    }
    let body = match &request.body {
        None => None,
        Some(source) => {
            let json = body_is_json(&request.headers);
            if !headers.keys().any(|n| n.eq_ignore_ascii_case("content-type")) {
                // The API Requests specification: a body without a Content-Type header is
                // sent as JSON.
                headers.insert("Content-Type".into(), "application/json".into());
            }
            let mode = if json { Mode::Json } else { Mode::Text };
            let text = template::render("body", source, mode, vars, 256 * 1024)?;
            if json && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
                return Err(CallError::Template(TemplateError {
                    field: "body".into(),
                    variable: None,
                    message: format!("does not render to valid JSON ({e}); insert non-string values with `| tojson`"),
                }));
            }
            Some(text)
        }
    };
    Ok(RenderedRequest { method: request.method, url: url.to_string(), headers, body })
}

/// A JSON answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    /// The body as received (what a cache or a run output stores).
    pub text: String,
    pub duration: Duration,
    pub cached: bool,
}

fn excerpt(body: &str) -> String {
    crate::support::text::truncate(body, EXCERPT_CHARS)
}

/// One attempt: sends the rendered request and checks the answer. `idempotency_key`
/// (workflow runs) is sent as `Idempotency-Key` unless the request configures a header of
/// that name itself, which is kept as it is.
pub async fn send(
    ctx: &AppContext,
    rendered: &RenderedRequest,
    timeout: Duration,
    max_bytes: usize,
    idempotency_key: Option<&str>,
) -> Result<Answer, CallError> {
    let method = reqwest::Method::from_bytes(rendered.method.as_str().as_bytes())
        .map_err(|e| CallError::Failed(e.to_string()))?;
    let mut headers: Vec<(String, String)> = rendered.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(key) = idempotency_key
        && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
    {
        headers.push((IDEMPOTENCY_HEADER.to_owned(), key.to_owned()));
    }
    let outbound = OutboundRequest {
        method,
        url: rendered.url.clone(),
        headers,
        body: rendered.body.clone().map(String::into_bytes),
        timeout: Some(timeout),
    };
    let response = ctx.outbound.send_capped(outbound, max_bytes).await.map_err(|e| match e {
        OutboundError::Url(e) => CallError::UrlNotAllowed(e.to_string()),
        OutboundError::Timeout(t) => CallError::Timeout(t.as_millis() as u64),
        OutboundError::Connect(text) => CallError::ConnectFailed(text),
        OutboundError::Header(name) => CallError::Failed(format!("header `{name}` is not a valid header value")),
        OutboundError::Other(text) => CallError::Failed(text),
    })?;
    if !response.is_success() {
        return Err(CallError::HttpStatus {
            status: response.status,
            excerpt: excerpt(&response.body),
            retry_after: response.retry_after,
        });
    }
    if response.truncated {
        return Err(CallError::ResponseTooLarge { limit: max_bytes });
    }
    let json: serde_json::Value = serde_json::from_str(&response.body)
        .map_err(|e| CallError::ResponseNotJson(format!("{e}; body starts: {}", excerpt(&response.body))))?;
    if !json.is_object() && !json.is_array() {
        return Err(CallError::ResponseNotJson(format!("got a JSON {}", kind_of(&json))));
    }
    Ok(Answer { status: response.status, json, text: response.body, duration: response.duration, cached: false })
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        _ => "value",
    }
}

/// Identifies an identical GET of the same saved request version, for the cache.
fn fingerprint(request: &ApiRequest, rendered: &RenderedRequest) -> String {
    let mut hash = sha2::Sha256::new();
    hash.update(request.id.as_bytes());
    hash.update(request.updated_at.to_string().as_bytes());
    hash.update(rendered.url.as_bytes());
    for (name, value) in &rendered.headers {
        hash.update([0]);
        hash.update(name.to_ascii_lowercase().as_bytes());
        hash.update([0]);
        hash.update(value.as_bytes());
    }
    crate::support::text::hex(&hash.finalize())
}

/// One attempt of a saved request, through its cache when it has one (GET with
/// `cache_ttl_s`): an identical request within the TTL is answered without a call. The
/// idempotency key is not part of the cache's fingerprint (it differs for every run).
pub async fn call(
    ctx: &AppContext,
    workspace_id: &str,
    request: &ApiRequest,
    rendered: &RenderedRequest,
    settings: &WorkspaceSettings,
    idempotency_key: Option<&str>,
) -> Result<Answer, CallError> {
    if !request.enabled {
        return Err(CallError::Disabled);
    }
    let timeout = settings.call_timeout(request.timeout_ms);
    let max_bytes = settings.api_request_max_response_bytes;
    let ttl = request.cache_ttl_s.filter(|_| request.method == HttpMethod::Get);
    let Some(ttl) = ttl else {
        return send(ctx, rendered, timeout, max_bytes, idempotency_key).await;
    };
    let key = fingerprint(request, rendered);
    let now = ctx.now().unix_seconds();
    match api_requests::cached(&*ctx.store, workspace_id, &key, now).await {
        Ok(Some(text)) => {
            if let Ok(json) = serde_json::from_str(&text) {
                return Ok(Answer { status: 200, json, text, duration: Duration::ZERO, cached: true });
            }
        }
        Ok(None) => {}
        // A cache that cannot be read is no reason to fail the call.
        Err(e) => tracing::warn!(error = %e, "api request cache read failed"),
    }
    let answer = send(ctx, rendered, timeout, max_bytes, idempotency_key).await?;
    if let Err(e) = api_requests::put_cached(&*ctx.store, workspace_id, &key, &answer.text, now + i64::from(ttl)).await
    {
        tracing::warn!(error = %e, "api request cache write failed");
    }
    Ok(answer)
}

/// What `POST /api/v1/api-requests/{id}/test` answers: the rendered request (secrets
/// masked), the status and duration, and the parsed JSON or the typed error.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ApiRequestTestResult)]
pub struct TestResult {
    /// Whether a JSON object or array came back.
    pub ok: bool,
    /// `null` when rendering failed.
    pub request: Option<RenderedRequest>,
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// The parsed JSON answer (an object or an array), or `null`.
    #[schema(value_type = Option<serde_json::Value>)]
    pub response: Option<serde_json::Value>,
    pub error: Option<TestError>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ApiRequestTestError)]
pub struct TestError {
    /// `template_error`, `url_not_allowed`, `timeout`, `connect_failed`, `http_status`,
    /// `response_too_large`, `response_not_json`, `api_request_disabled`, `request_failed`.
    pub code: String,
    pub message: String,
    /// `template_error`: the template field (`url`, `headers.Authorization`, `body`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `template_error`: the undefined variable, when that was the cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// `http_status`: the answer's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl From<&CallError> for TestError {
    fn from(e: &CallError) -> Self {
        let (field, variable) = match e {
            CallError::Template(t) => (Some(t.field.clone()), t.variable.clone()),
            _ => (None, None),
        };
        TestError { code: e.code().to_owned(), message: e.to_string(), field, variable, status: e.status() }
    }
}

/// Renders and sends one attempt (no cache, no retries) and reports what happened. No
/// `Idempotency-Key` is added: a test is one interactive call that nothing repeats, and
/// a receiver that deduplicates must not take a later run's call for it.
pub async fn test(
    ctx: &AppContext,
    workspace_id: &str,
    request: &ApiRequest,
    vars: &serde_json::Value,
    settings: &WorkspaceSettings,
) -> TestResult {
    let rendered = match render(ctx, request, vars) {
        Ok(rendered) => rendered,
        Err(e) => {
            return TestResult {
                ok: false,
                request: None,
                status: None,
                duration_ms: 0,
                response: None,
                error: Some(TestError::from(&e)),
            };
        }
    };
    let shown = Some(rendered.masked());
    let timeout = settings.call_timeout(request.timeout_ms);
    let started = std::time::Instant::now();
    let result = send(ctx, &rendered, timeout, settings.api_request_max_response_bytes, None).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(workspace_id, api_request_id = request.id, ok = result.is_ok(), duration_ms, "api request tested");
    match result {
        Ok(answer) => TestResult {
            ok: true,
            request: shown,
            status: Some(answer.status),
            duration_ms,
            response: Some(answer.json),
            error: None,
        },
        Err(e) => TestResult {
            ok: false,
            request: shown,
            status: e.status(),
            duration_ms,
            response: None,
            error: Some(TestError::from(&e)),
        },
    }
}
