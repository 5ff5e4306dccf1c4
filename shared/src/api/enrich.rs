//! Hunter-compatible enrichment routes (`?webhook_url=` endpoints in the outbound-webhooks
//! specification): `GET /api/v1/email-verifier` (and the same under `/v2/...`),
//! `GET /api/v1/enrichments/{id}`, and bulk verification jobs (the phone validator is in
//! [`super::phone`], served with the finders). Answers are Hunter's
//! `{"data": {...}, "meta": {"params": {...}}}`; a check still running after
//! `max_duration` answers 202 `{"data": {"id", "status": "pending"}}`.
//!
//! The parts every Hunter route shares are in [`super::hunter`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::HunterCaller;
use super::callbacks::Callback;
use super::docs::{DataOf, ErrorBody};
use super::hunter_routes::{Delivery, Meta, PendingAnswer, Wait, required, respond, with_v2_alias};
use super::metering::Metered;
use crate::api::error::ApiError;
use crate::api::json::{Json, Params, Path};
use crate::context::AppContext;
use crate::enrich::jobs::{self, JobStatus, JobView};
use crate::enrich::results::{self, Kind, Params as EnrichParams, State as ResultState};
use crate::enrich::verify::Verification;
use crate::metering::Work;
use crate::support::time::Timestamp;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(with_v2_alias(routes!(email_verifier)))
        .routes(routes!(get_enrichment))
        .routes(routes!(bulk_create))
        .routes(routes!(bulk_get))
        .routes(with_v2_alias(routes!(account)))
}

/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// A bulk request: 10,000 addresses of up to 254 characters, in JSON.
pub const BULK_BODY_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifierQuery {
    /// The address to verify.
    #[param(inline, value_type = EmailParam)]
    email: String,
}

super::docs::schema_type!(EmailParam = super::docs::required_query_text(MAX_EMAIL_CHARS));

fn bulk_emails() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(super::docs::required_query_text(MAX_EMAIL_CHARS))
        .min_items(Some(1))
        .max_items(Some(jobs::MAX_ADDRESSES))
        .build()
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct VerifierAnswer {
    data: Verification,
    meta: Meta,
}

/// Verify an email address (Hunter's Email Verifier). 202 while the check runs longer than
/// `max_duration`: repeat the same call to get the result (the check is not run twice).
#[utoipa::path(get, path = "/api/v1/email-verifier", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(VerifierQuery, Wait, Delivery),
    responses(
        (status = 200, body = VerifierAnswer),
        (status = 202, body = PendingAnswer, description = "Still verifying: repeat the call"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn email_verifier(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Params(query): Params<VerifierQuery>,
    Params(wait): Params<Wait>,
) -> Result<Response, ApiError> {
    let email = required("email", Some(&query.email), MAX_EMAIL_CHARS)?;
    let wait = wait.duration()?;
    let params = EnrichParams::from([("email".to_owned(), email.to_lowercase())]);
    meter.admit(&ctx, &caller.workspace_id, Work::Verification, 1).await?;
    let answer =
        results::request(&ctx, &caller.workspace_id, Kind::EmailVerifier, params, wait, callback.url()).await?;
    Ok(respond(answer, json!({ "email": email })))
}

#[derive(Serialize, ToSchema)]
pub struct EnrichmentView {
    id: String,
    kind: Kind,
    /// `pending` or `completed`.
    status: ResultState,
    #[schema(value_type = Object)]
    params: EnrichParams,
    /// The same `data` the route answers with once completed; null while pending.
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    created_at: Timestamp,
    completed_at: Option<Timestamp>,
}

/// Read any enrichment result by id (`ver_...` from a 202).
#[utoipa::path(get, path = "/api/v1/enrichments/{id}", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(("id" = String, Path, description = "The id of a 202 answer")),
    responses((status = 200, body = DataOf<EnrichmentView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_enrichment(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = results::get(&ctx, &caller.workspace_id, &id).await?;
    let e =
        found.ok_or_else(|| ApiError::not_found("enrichment_not_found", "Enrichment not found in this workspace."))?;
    let view = EnrichmentView {
        id: e.id,
        kind: e.kind,
        status: e.state,
        params: e.params,
        result: e.data,
        created_at: e.created_at,
        completed_at: e.completed_at,
    };
    Ok(axum::Json(json!({ "data": view })).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkRequest {
    /// 1 to 10,000 addresses.
    #[schema(schema_with = bulk_emails)]
    emails: Vec<String>,
    /// https URL that receives the results when the job completes, one POST per 100.
    #[schema(schema_with = super::docs::optional_url)]
    webhook_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkAccepted {
    /// `vjob_...`: follow it at `GET /api/v1/email-verifier/bulk/{id}`.
    id: String,
    status: JobStatus,
    total: usize,
}

/// Start a bulk verification job (202). Results are paginated at `GET
/// /api/v1/email-verifier/bulk/{id}` and POSTed to `webhook_url` when done.
#[utoipa::path(post, path = "/api/v1/email-verifier/bulk", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    request_body = BulkRequest,
    responses((status = 202, body = DataOf<BulkAccepted>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
async fn bulk_create(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Json(body): Json<BulkRequest, BULK_BODY_LIMIT>,
) -> Result<Response, ApiError> {
    let webhook_url = match body.webhook_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => Some(
            ctx.outbound.check_url(url).map_err(|e| ApiError::validation("webhook_url", e.to_string()))?.to_string(),
        ),
        None => callback.url().map(str::to_owned),
    };
    jobs::validate_addresses(&body.emails)?;
    // Each address is a verification of the month's quota.
    let units = body.emails.len() as u64;
    meter.admit(&ctx, &caller.workspace_id, Work::Verification, units).await?;
    let job = match jobs::create(&ctx, &caller.workspace_id, body.emails, webhook_url).await {
        Ok(job) => job,
        Err(e) => {
            meter.refund(&ctx, &caller.workspace_id, Work::Verification, units).await;
            return Err(e.into());
        }
    };
    let accepted = BulkAccepted { id: job.id, status: JobStatus::Queued, total: job.total };
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "data": accepted }))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobPage {
    /// Results per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` from the previous page of this listing, as given; empty or absent
    /// starts at the first page. A cursor is opaque (base64url) and belongs to its listing
    /// and workspace: any other value is refused with 400 `validation_error` naming `cursor`.
    #[param(pattern = r"^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

/// A bulk job: status, progress counts by status, and a page of results in input order.
#[utoipa::path(get, path = "/api/v1/email-verifier/bulk/{id}", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(("id" = String, Path, description = "The job id (`vjob_...`)"), JobPage),
    responses((status = 200, body = DataOf<JobView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn bulk_get(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    Path(id): Path<String>,
    Params(page): Params<JobPage>,
) -> Result<Response, ApiError> {
    let limit = match page.limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => return Err(ApiError::validation("limit", format!("must be between 1 and 1000, got {n}"))),
    };
    let cursor = page
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(crate::store::Cursor::decode)
        .transpose()
        .map_err(ApiError::from)?;
    let job = jobs::get(&ctx, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("job_not_found", "Bulk verification job not found in this workspace."))?;
    let view = jobs::view(&ctx, &caller.workspace_id, job, limit, cursor).await?;
    Ok(axum::Json(json!({ "data": view })).into_response())
}

/// Used and available units of a monthly quota (Hunter's shape: `available` is the
/// month's allowance).
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    used: u64,
    available: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Requests {
    /// Finder and search calls (email, domain, author and phone finders, the phone validator).
    searches: Usage,
    /// Verified addresses (single calls and each address of a bulk job).
    verifications: Usage,
}

/// The workspace's plan: what Hunter's `account` route answers, with Leadpush's limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// The workspace (Hunter's `team_id`).
    team_id: String,
    /// `default`, or `custom` once an operator has set this workspace's limits.
    plan_name: String,
    /// When the monthly quotas start over (the 1st, 00:00 UTC).
    reset_date: String,
    requests: Requests,
    /// Rate limits and quotas by kind of work (`verification`, `search`,
    /// `api_request_test`, `push`), and the cap on addresses waiting in bulk jobs.
    limits: crate::metering::Policy,
}

/// The workspace's plan, its rate limits and this month's usage (Hunter's Account
/// Information). Calls over a rate limit answer 429 `rate_limited`, and over a monthly
/// quota 429 `quota_exceeded`, both with `Retry-After` (Hunter answers 403 for a rate
/// limit; Leadpush keeps the common 429 at `/v2` too).
#[utoipa::path(get, path = "/api/v1/account", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(super::hunter_routes::KeyParam),
    responses((status = 200, body = DataOf<AccountView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn account(State(ctx): State<AppContext>, caller: HunterCaller) -> Result<Response, ApiError> {
    use crate::metering::{Period, Work};
    use crate::repo::metering;
    let now = ctx.now().unix_seconds();
    let store = &*ctx.store;
    let ws = caller.workspace_id.as_str();
    let policy = crate::repo::metering::policy(store, ws).await?;
    let custom = policy != crate::metering::Policy::default();
    let (searches, verifications) = tokio::try_join!(
        metering::used(store, ws, Work::Search, Period::Month, now),
        metering::used(store, ws, Work::Verification, Period::Month, now),
    )?;
    let usage = |used: i64, work: Work| Usage {
        used: u64::try_from(used).unwrap_or(0),
        available: policy.limit(work).per_month.unwrap_or(u64::MAX),
    };
    let (_, reset) = Period::Month.window(now);
    let reset_date = Timestamp::from_unix_millis(reset * 1000)
        .map(|t| t.datetime().format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let view = AccountView {
        team_id: ws.to_owned(),
        plan_name: if custom { "custom" } else { "default" }.to_owned(),
        reset_date,
        requests: Requests {
            searches: usage(searches, Work::Search),
            verifications: usage(verifications, Work::Verification),
        },
        limits: policy,
    };
    Ok(super::hunter_routes::ready(view, json!({})))
}
