//! Reading leads: one by id, or a filtered, paginated list.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use crate::api::error::ApiError;
use crate::api::json::{Data, List, Pagination, Params, Path};
use crate::context::AppContext;
use crate::domain::lead::{Lead, LeadStatus};
use crate::repo::leads::{self, LeadFilter};
use crate::repo::ranked::{self, RankError};

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(get_lead)).routes(routes!(list_leads_route))
}

pub fn lead_not_found() -> ApiError {
    ApiError::not_found("lead_not_found", "Lead not found for this Public API workspace.")
}

/// Loads a lead of this workspace; another workspace's lead is simply not found.
pub async fn load(ctx: &AppContext, workspace_id: &str, lead_id: &str) -> Result<Lead, ApiError> {
    if lead_id.is_empty() || lead_id.len() > 128 {
        return Err(lead_not_found());
    }
    leads::get(&*ctx.store, workspace_id, lead_id).await?.ok_or_else(lead_not_found)
}

/// Get a lead: all stored fields, status, feedback and timestamps.
#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "leads", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lead id")),
    responses((status = 200, body = DataOf<Lead>), (status = 404, body = ErrorBody)))]
async fn get_lead(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<Lead>, ApiError> {
    Ok(Data(load(&ctx, &caller.workspace_id, &id).await?))
}

super::docs::schema_type!(
    StatusFilter = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(std::iter::once("").chain(LeadStatus::ALL.iter().map(|s| s.as_str()))))
        .build()
);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadQuery {
    /// Only this campaign's leads.
    campaign_id: Option<String>,
    /// `new`, `pushed`, `replied`, `meeting_booked` or `skipped`; empty means any.
    #[param(inline, value_type = Option<StatusFilter>)]
    status: Option<String>,
    /// `newest` (the default) or `predicted_score`: highest learned score first, leads
    /// without one last. Sorting by score reads the whole listing, so it is refused with
    /// 400 above 5,000 leads: filter by `campaign_id` then.
    #[param(inline, value_type = Option<SortOrder>)]
    sort: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// `next_cursor` from the previous page of this listing, as given; empty or absent
    /// starts at the first page. A cursor is opaque (base64url) and belongs to its listing
    /// and workspace: any other value is refused with 400 `validation_error` naming `cursor`.
    #[param(pattern = r"^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

super::docs::schema_type!(
    SortOrder = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["", "newest", "predicted_score"]))
        .build()
);

pub struct LeadListParams {
    pub campaign_id: Option<String>,
    pub status: Option<LeadStatus>,
    /// Highest `predicted_score` first instead of newest first.
    pub by_score: bool,
    pub page: Pagination,
}

/// Shared by `/leads` and the campaign preview.
pub async fn list_leads(ctx: &AppContext, workspace_id: &str, params: LeadListParams) -> Result<List<Lead>, ApiError> {
    let filter = LeadFilter { campaign_id: params.campaign_id, status: params.status };
    let (limit, cursor) = (params.page.limit()?, params.page.cursor()?);
    let page = if params.by_score {
        ranked::list(&*ctx.store, workspace_id, &filter, limit, cursor).await.map_err(|e| match e {
            RankError::TooMany => ApiError::validation("sort", e.to_string()),
            RankError::Store(e) => e.into(),
        })?
    } else {
        leads::list(&*ctx.store, workspace_id, &filter, limit, cursor).await?
    };
    List::from_page(page, |item| item.parse())
}

/// List leads, newest first (or, with `sort=predicted_score`, highest learned score
/// first). With `status`, a page may hold fewer than `limit` leads while
/// `next_cursor` is still set: keep following it.
#[utoipa::path(get, path = "/api/v1/leads", tag = "leads", security(("api_key" = [])), params(LeadQuery),
    responses((status = 200, body = ListOf<Lead>), (status = 400, body = ErrorBody)))]
async fn list_leads_route(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(query): Params<LeadQuery>,
) -> Result<List<Lead>, ApiError> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(LeadStatus::parse(text).ok_or_else(|| {
            let valid: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation("status", format!("`{text}` is not a lead status; use one of {}", valid.join(", ")))
        })?),
    };
    let by_score = match query.sort.as_deref().unwrap_or_default() {
        "" | "newest" => false,
        "predicted_score" => true,
        other => {
            return Err(ApiError::validation(
                "sort",
                format!("`{other}` is not a sort order; use newest or predicted_score"),
            ));
        }
    };
    let params = LeadListParams {
        campaign_id: query.campaign_id.filter(|c| !c.is_empty()),
        status,
        by_score,
        page: Pagination { limit: query.limit, cursor: query.cursor },
    };
    list_leads(&ctx, &caller.workspace_id, params).await
}
