//! Metered routes: the extractor a handler admits its work through, and the middleware
//! that puts the caller's allowance in `X-RateLimit-Limit` (calls per minute),
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the minute resets).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::error::ApiError;
use crate::context::AppContext;
use crate::metering::{Allowance, Work};

/// The metered operations (`METHOD path`; each Hunter route also at `/v2/...`) and the
/// work each admits; the API document gives them their 429.
pub const METERED: &[(&str, Work)] = &[
    ("GET /api/v1/email-verifier", Work::Verification),
    ("POST /api/v1/email-verifier/bulk", Work::Verification),
    ("GET /api/v1/email-finder", Work::Search),
    ("GET /api/v1/domain-search", Work::Search),
    ("GET /api/v1/email-count", Work::Search),
    ("GET /api/v1/author-finder", Work::Search),
    ("GET /api/v1/phone-finder", Work::Search),
    ("GET /api/v1/phone-validator", Work::Search),
    ("POST /api/v1/api-requests/test", Work::ApiRequestTest),
    ("POST /api/v1/api-requests/{id}/test", Work::ApiRequestTest),
    ("POST /api/v1/leads/push", Work::Push),
];

/// The work `METHOD path` admits, if it is metered (`/v2/x` as `/api/v1/x`).
pub fn metered(method: &str, path: &str) -> Option<Work> {
    let path = path.strip_prefix("/v2/").map_or_else(|| path.to_owned(), |rest| format!("/api/v1/{rest}"));
    let operation = format!("{method} {path}");
    METERED.iter().find(|(op, _)| *op == operation).map(|(_, work)| *work)
}

/// The meter of one request: admits its work, and keeps the allowance for the headers.
#[derive(Clone, Default)]
pub struct Metered(Arc<Mutex<Option<Allowance>>>);

impl<S: Send + Sync> FromRequestParts<S> for Metered {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Metered>().cloned().unwrap_or_default())
    }
}

impl Metered {
    /// Admits one call of `work` for the workspace, using `quota_units` of its monthly
    /// quota; a refusal is the 429 to answer.
    pub async fn admit(
        &self,
        ctx: &AppContext,
        workspace_id: &str,
        work: Work,
        quota_units: u64,
    ) -> Result<(), ApiError> {
        let now = ctx.now().unix_seconds();
        let allowance = ctx.meter.admit(&*ctx.store, workspace_id, work, quota_units, now).await?;
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(allowance);
        Ok(())
    }
}

impl Metered {
    /// Gives back the quota of work admitted but then refused (e.g. a bulk job over the
    /// queue cap). A failure to give it back is logged: the refusal stands either way.
    pub async fn refund(&self, ctx: &AppContext, workspace_id: &str, work: Work, quota_units: u64) {
        let now = ctx.now().unix_seconds();
        if let Err(e) = ctx.meter.refund(&*ctx.store, workspace_id, work, quota_units, now).await {
            tracing::warn!(error = %e, "quota not given back after a refusal");
        }
    }
}

/// Adds the `X-RateLimit-*` headers to the answers of requests that admitted work.
pub async fn headers(mut req: Request, next: Next) -> Response {
    let meter = Metered::default();
    req.extensions_mut().insert(meter.clone());
    let mut response = next.run(req).await;
    let allowance = *meter.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(allowance) = allowance
        && !response.headers().contains_key("x-ratelimit-limit")
    {
        insert_headers(response.headers_mut(), &allowance);
    }
    response
}

pub fn insert_headers(headers: &mut HeaderMap, allowance: &Allowance) {
    for (name, value) in [
        ("x-ratelimit-limit", u64::from(allowance.limit)),
        ("x-ratelimit-remaining", allowance.remaining),
        ("x-ratelimit-reset", allowance.reset_secs),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}
