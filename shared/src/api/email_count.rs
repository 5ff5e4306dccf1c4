//! Hunter's Email Count: `GET /api/v1/email-count` (and `/v2/email-count`), how many
//! addresses this workspace's leads hold at a domain. Store reads only, answered at once;
//! rate-limited as a search, but it uses none of the month's quota (Hunter's is free too).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::HunterCaller;
use super::docs::ErrorBody;
use super::finders::{domain_or_company, one_type};
use super::hunter_routes::{KeyParam, Meta, ready, with_v2_alias};
use super::metering::Metered;
use crate::api::error::ApiError;
use crate::api::json::Params;
use crate::context::AppContext;
use crate::enrich::find::finders::{self, EmailCount};
use crate::metering::Work;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(with_v2_alias(routes!(email_count)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailCountQuery {
    /// The domain (`acme.com`; a URL is cut to its host). Give `domain` or `company`:
    /// without either the answer is 400 naming `domain`.
    #[param(inline, value_type = Option<super::docs::OptionalDomain>)]
    domain: Option<String>,
    /// The company's name, resolved to a domain through this workspace's leads; 400
    /// naming `company` when none gives one.
    #[param(max_length = 200)]
    company: Option<String>,
    /// `personal` or `generic`: count only those.
    #[serde(rename = "type")]
    #[param(rename = "type", inline, value_type = Option<super::finders::SearchType>)]
    kind: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct EmailCountAnswer {
    data: EmailCount,
    meta: Meta,
}

/// How many addresses this workspace's leads hold at a domain, personal and generic, by
/// department and by seniority (Hunter's Email Count). Uses no quota.
#[utoipa::path(get, path = "/api/v1/email-count", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(EmailCountQuery, KeyParam),
    responses((status = 200, body = EmailCountAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn email_count(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    Params(q): Params<EmailCountQuery>,
) -> Result<Response, ApiError> {
    let kind = one_type(q.kind.as_deref())?;
    let (domain, company) =
        domain_or_company(&ctx, &caller.workspace_id, q.domain.as_deref(), q.company.as_deref(), None).await?;
    meter.admit(&ctx, &caller.workspace_id, Work::Search, 0).await?;
    let data = finders::email_count(&ctx, &caller.workspace_id, &domain, kind.as_deref()).await?;
    Ok(ready(data, json!({ "params": { "domain": domain, "company": company, "type": kind } })))
}
