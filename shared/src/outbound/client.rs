//! The one outbound HTTP client of a process: rustls, no redirects, no proxies, per-request
//! timeouts, response bodies read with a cap, and the SSRF guard in its resolver.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::ssrf::{self, GuardedResolver, UrlError};

/// How much of a response body we read; the rest is discarded unread.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

impl OutboundRequest {
    pub fn post_json(url: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            method: reqwest::Method::POST,
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body),
            timeout: None,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    /// At most [`MAX_RESPONSE_BYTES`] (or the cap given to `send_capped`), lossily decoded as UTF-8.
    pub body: String,
    pub truncated: bool,
    pub duration: Duration,
    /// `Retry-After` in seconds, when the receiver sent one.
    pub retry_after: Option<Duration>,
    /// `Location` of a redirect (the client never follows one itself).
    pub location: Option<String>,
}

impl OutboundResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    #[error("URL {0}")]
    Url(#[from] UrlError),
    #[error("invalid header `{0}`")]
    Header(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Other(String),
}

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Outbound {
    /// The longest one call takes (connect, headers and body).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a call, which may take the whole timeout, still ends before the invocation's
    /// deadline (`support::deadline`; always true outside one): a call that might not is
    /// not started, and its work is left for the next attempt.
    pub fn fits_deadline(&self) -> bool {
        crate::support::deadline::allows(self.timeout)
    }

    pub fn new(allow_private: bool, timeout: Duration) -> Result<Self, OutboundError> {
        let resolver: Option<Arc<dyn reqwest::dns::Resolve>> =
            if allow_private { None } else { Some(Arc::new(GuardedResolver)) };
        Self::with_resolver(allow_private, timeout, resolver)
    }

    /// A client whose names are resolved by `resolver` (which must apply the SSRF guard
    /// unless `allow_private`); `None` uses the system resolver unguarded.
    pub fn with_resolver(
        allow_private: bool,
        timeout: Duration,
        resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    ) -> Result<Self, OutboundError> {
        crate::support::tls::install();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .pool_max_idle_per_host(32)
            .user_agent(concat!("Leadpush/", env!("CARGO_PKG_VERSION")));
        if let Some(resolver) = resolver {
            builder = builder.dns_resolver(resolver);
        }
        let client = builder.build().map_err(|e| OutboundError::Other(e.to_string()))?;
        Ok(Self { client, allow_private, timeout })
    }

    /// Whether http:// and internal targets are allowed (local runs and tests).
    pub fn allows_private_targets(&self) -> bool {
        self.allow_private
    }

    pub fn check_url(&self, url: &str) -> Result<url::Url, UrlError> {
        ssrf::check_url(url, self.allow_private)
    }

    /// `check_url`, and the host resolved now: for URLs a customer configures, so a name
    /// that points inside our network is refused at once, not at the first delivery.
    /// Deliveries still check every connection (the name may re-resolve later).
    pub async fn check_url_resolved(&self, url: &str) -> Result<url::Url, UrlError> {
        let url = self.check_url(url)?;
        if !self.allow_private {
            ssrf::check_resolves_public(&url).await?;
        }
        Ok(url)
    }

    pub async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        self.send_capped(request, MAX_RESPONSE_BYTES).await
    }

    /// `send`, reading at most `max_body` bytes of the answer (provider answers that list
    /// every created lead can exceed the default cap).
    pub async fn send_capped(
        &self,
        request: OutboundRequest,
        max_body: usize,
    ) -> Result<OutboundResponse, OutboundError> {
        let url = self.check_url(&request.url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| OutboundError::Header(name.clone()))?;
            let value = HeaderValue::from_str(value).map_err(|_| OutboundError::Header(name.to_string()))?;
            headers.append(name, value);
        }
        let timeout = request.timeout.unwrap_or(self.timeout);
        let mut builder = self.client.request(request.method, url).headers(headers).timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let started = Instant::now();
        let mut response = builder.send().await.map_err(|e| classify(e, timeout))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let location =
            response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = max_body - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                // The status arrived; a broken body is still an answer.
                Err(e) if e.is_timeout() => return Err(OutboundError::Timeout(timeout)),
                Err(_) => break,
            }
        }
        Ok(OutboundResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            truncated,
            duration: started.elapsed(),
            retry_after,
            location,
        })
    }
}

fn classify(e: reqwest::Error, timeout: Duration) -> OutboundError {
    if e.is_timeout() {
        return OutboundError::Timeout(timeout);
    }
    // The chain says why (refused, DNS, guard); the top-level text alone does not.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if e.is_connect() { OutboundError::Connect(text) } else { OutboundError::Other(text) }
}
