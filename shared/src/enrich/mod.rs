//! Enrichment: the Hunter-compatible checking and finding services (the `?webhook_url=`
//! endpoints of the outbound-webhooks specification) and the machinery they share.
//!
//! - [`verify`]: email verification (syntax, lists, MX, SMTP probe, score). The library call
//!   for other capabilities (workflows, finders) is [`verify::verify_email`].
//! - [`phone`]: phone number validation (pure, in-process).
//! - [`results`]: stored, asynchronous results. A call either answers with the finished
//!   result or, after `max_duration`, 202 with an id; repeating the same call (or
//!   `GET /api/v1/enrichments/{id}`) returns it once ready, and the work runs once, as a
//!   queued task ([`crate::queue::Task::Enrich`]) that survives the API's timeout.
//! - [`cache`]: MX answers and catch-all verdicts per domain, with TTLs, in the store.
//! - [`probe`]: the polite SMTP prober (per-MX-host concurrency bound, one session per
//!   domain batch); [`dns`]: the resolver.
//! - [`jobs`]: bulk verification jobs (up to 10,000 addresses, spread over the dispatcher).
//!
//! # Adding an enrichment kind (e.g. a finder)
//!
//! 1. Add a variant to [`results::Kind`] with its id prefix and callback event name.
//! 2. Write its work as `async fn(&AppContext, workspace_id, &Params) -> Result<Computed,
//!    EnrichError>` (a JSON `data` object plus how long it stays fresh) in its own module,
//!    and add it to the match in [`results::compute`].
//! 3. In its route (`api/enrich*.rs`): authenticate with `api::auth::HunterCaller`, parse
//!    and canonicalise the parameters into [`results::Params`], then call
//!    [`results::request`] with the caller's `max_duration` and `?webhook_url=`
//!    (`api::callbacks::Callback`), and answer with `api::enrich::respond`, which gives
//!    200 `{"data", "meta": {"params"}}` or 202 `{"data": {"id", "status": "pending"}}`.
//!    Add the `/v2/...` alias as a second handler calling the same function.
//!
//! The same parameters give the same result for its TTL: the store holds a lookup item per
//! (workspace, kind, parameters hash) pointing at the result's id, so concurrent and
//! repeated calls share one result and one task. Callbacks use the existing
//! `?webhook_url=` delivery mechanism and its log (`webhooks::queue_callback`).

pub mod cache;
pub mod find;
pub mod jobs;
pub mod phone;
#[cfg(test)]
mod reference_checks;
pub mod results;
pub mod verify;

use crate::queue::QueueError;
use crate::store::StoreError;

/// Why an enrichment could not be done (the checks' own verdicts are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// 400: the message names the parameter.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("result not found")]
    NotFound,
    /// 429: the workspace's bulk jobs already hold as many waiting addresses as it may.
    #[error(
        "{queued} addresses already wait in this workspace's bulk jobs and {adding} more would pass its limit of {cap}: \
         retry when some of them have been verified."
    )]
    BulkQueueFull { queued: u64, adding: u64, cap: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Other(String),
}

impl EnrichError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EnrichError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<crate::queue::TaskError> for EnrichError {
    fn from(e: crate::queue::TaskError) -> Self {
        EnrichError::Other(e.to_string())
    }
}

impl From<EnrichError> for crate::queue::TaskError {
    fn from(e: EnrichError) -> Self {
        crate::queue::TaskError::Failed(e.to_string())
    }
}
