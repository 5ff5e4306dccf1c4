//! Provider integrations: a workspace's HeyReach and Instantly keys and targets, needed to
//! push leads there. Keys go in once and come back only masked.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use crate::api::error::ApiError;
use crate::api::json::{Data, Json, List, Path};
use crate::context::AppContext;
use crate::domain::ValidationError;
use crate::domain::integration::{Integration, IntegrationInput, Provider};
use crate::domain::providers::{self, WebhookActivity};
use crate::repo::{integrations, provider_activity};
use crate::support::time::Timestamp;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(list_integrations)).routes(routes!(configure_integration, delete_integration))
}

/// A configured integration; the key only masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    provider: Provider,
    /// The key with all but its last four characters hidden.
    api_key_masked: String,
    /// HeyReach: the lead list pushed leads are added to.
    #[serde(skip_serializing_if = "Option::is_none")]
    list_id: Option<i64>,
    /// Instantly: the campaign pushed leads are added to.
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_id: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// What the provider's own webhooks (`/api/v1/feedback/providers/...`) brought to this
    /// workspace: deliveries by outcome, and the latest of each kind not recorded.
    webhook_activity: WebhookActivity,
}

impl IntegrationView {
    async fn load(ctx: &AppContext, workspace_id: &str, i: Integration) -> Result<Self, ApiError> {
        let source = match i.provider {
            Provider::Heyreach => providers::Provider::Heyreach,
            Provider::Instantly => providers::Provider::Instantly,
        };
        let webhook_activity = provider_activity::read(&*ctx.store, workspace_id, source).await?;
        Ok(IntegrationView {
            provider: i.provider,
            api_key_masked: i.api_key.masked(),
            list_id: i.list_id,
            campaign_id: i.campaign_id,
            created_at: i.created_at,
            updated_at: i.updated_at,
            webhook_activity,
        })
    }
}

/// `PUT` body. HeyReach: `api_key` and `list_id`; Instantly: `api_key` and `campaign_id`
/// (which one is required depends on the path: 400 naming it when it is missing). A field
/// the provider does not use is still checked when given.
#[derive(ToSchema)]
#[schema(as = IntegrationInput)]
#[allow(dead_code)]
pub struct IntegrationInputSchema {
    /// The provider's API key (HeyReach `X-API-KEY`, Instantly API v2 key), at most 500
    /// characters. Printable ASCII without spaces (it travels in a header); surrounding
    /// spaces are trimmed.
    #[schema(min_length = 1, max_length = 500, pattern = r"^[\t-\r ]*[\x21-\x7e]+[\t-\r ]*$")]
    api_key: String,
    /// HeyReach: the positive integer id of an existing lead list.
    #[schema(minimum = 1)]
    list_id: Option<i64>,
    /// Instantly: the campaign's UUID (`8-4-4-4-12` hexadecimal digits).
    #[schema(
        pattern = r"^[\t-\r ]*[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}[\t-\r ]*$"
    )]
    campaign_id: Option<String>,
}

fn provider(text: &str) -> Result<Provider, ApiError> {
    Provider::parse(text).ok_or_else(|| {
        let known: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
        ValidationError::new("provider", format!("`{text}` is not a provider; use one of {}", known.join(", "))).into()
    })
}

fn not_configured(provider: Provider) -> ApiError {
    ApiError::not_found("integration_not_found", format!("{} is not configured for this workspace.", provider.label()))
}

/// List the workspace's integrations, keys masked.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("api_key" = [])),
    responses((status = 200, body = ListOf<IntegrationView>), (status = 401, body = ErrorBody)))]
async fn list_integrations(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
) -> Result<List<IntegrationView>, ApiError> {
    let mut data = Vec::new();
    for integration in integrations::list(&*ctx.store, &caller.workspace_id).await? {
        data.push(IntegrationView::load(&ctx, &caller.workspace_id, integration).await?);
    }
    Ok(List { data, next_cursor: None })
}

/// Configure (or replace) a provider integration.
#[utoipa::path(put, path = "/api/v1/integrations/{provider}", tag = "integrations", security(("api_key" = [])),
    params(("provider" = Provider, Path, description = "`heyreach` or `instantly`")),
    request_body = IntegrationInputSchema,
    responses((status = 200, body = DataOf<IntegrationView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn configure_integration(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(name): Path<String>,
    Json(body): Json<IntegrationInput>,
) -> Result<Data<IntegrationView>, ApiError> {
    let provider = provider(&name)?;
    let existing = integrations::get(&*ctx.store, &caller.workspace_id, provider).await?;
    let integration = Integration::configure(provider, &body, existing.as_ref(), ctx.now())?;
    integrations::put(&*ctx.store, &caller.workspace_id, &integration).await?;
    tracing::info!(provider = provider.as_str(), replaced = existing.is_some(), "integration configured");
    Ok(Data(IntegrationView::load(&ctx, &caller.workspace_id, integration).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationDeleted {
    provider: Provider,
    deleted: bool,
}

/// Remove a provider integration (its key is deleted).
#[utoipa::path(delete, path = "/api/v1/integrations/{provider}", tag = "integrations", security(("api_key" = [])),
    params(("provider" = Provider, Path, description = "`heyreach` or `instantly`")),
    responses((status = 200, body = DataOf<IntegrationDeleted>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_integration(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(name): Path<String>,
) -> Result<Data<IntegrationDeleted>, ApiError> {
    let provider = provider(&name)?;
    if !integrations::delete(&*ctx.store, &caller.workspace_id, provider).await? {
        return Err(not_configured(provider));
    }
    tracing::info!(provider = provider.as_str(), "integration removed");
    Ok(Data(IntegrationDeleted { provider, deleted: true }))
}
