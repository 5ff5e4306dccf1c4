//! Campaigns: CRUD, `draft -> active <-> paused`, webhook setup instructions (the
//! webhook-campaign setup guide) and the lead preview that opens once a campaign has been
//! activated.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use crate::api::error::ApiError;
use crate::api::json::{Created, Data, Json, List, Pagination, Params, Path};
use crate::context::AppContext;
use crate::domain::campaign::{Campaign, CampaignType, LeadSource};
use crate::domain::lead::Lead;
use crate::domain::workflow::RunSummary;
use crate::domain::workspace::CredentialKind;
use crate::repo::leads::{self, LeadFilter};
use crate::repo::{self, UpdateError, campaigns, keys, workflows, workspaces};
use crate::store::Item;
use crate::support::ids;
use crate::support::time::Timestamp;

/// The webhook-campaign setup guide's words, shown until a CSM creates the organisation's
/// webhook token.
pub const WEBHOOK_TOKEN_MISSING: &str = "Your organization doesn't have a webhook API key — contact CSM.";

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(activate_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(webhook_setup))
        .routes(routes!(campaign_leads))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCampaign {
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
    )]
    name: String,
    /// Only `standard` for now (the default).
    #[serde(rename = "type", default = "standard")]
    campaign_type: CampaignType,
    lead_source: LeadSource,
    description: Option<String>,
}

fn standard() -> CampaignType {
    CampaignType::Standard
}

/// Every field optional; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateCampaign {
    #[schema(schema_with = super::docs::name_200_or_null)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// Only while the campaign is a draft.
    lead_source: Option<LeadSource>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    #[serde(flatten)]
    campaign: Campaign,
    /// Leads received so far.
    lead_count: i64,
}

fn not_found() -> ApiError {
    ApiError::not_found("campaign_not_found", "Campaign not found in this workspace.")
}

pub(crate) async fn load(ctx: &AppContext, workspace_id: &str, campaign_id: &str) -> Result<Campaign, ApiError> {
    if !ids::has_prefix(campaign_id, ids::CAMPAIGN) {
        return Err(not_found());
    }
    campaigns::get(&*ctx.store, workspace_id, campaign_id).await?.ok_or_else(not_found)
}

async fn view(ctx: &AppContext, workspace_id: &str, campaign: Campaign) -> Result<CampaignView, ApiError> {
    let counts = campaigns::lead_counts(&*ctx.store, workspace_id, &[campaign.id.as_str()]).await?;
    let lead_count = counts.get(&campaign.id).copied().unwrap_or(0);
    Ok(CampaignView { campaign, lead_count })
}

/// Applies a change to a stored campaign with optimistic concurrency.
async fn change(
    ctx: &AppContext,
    workspace_id: &str,
    campaign_id: &str,
    apply: impl FnMut(&mut Campaign) -> Result<(), ApiError>,
) -> Result<Campaign, ApiError> {
    if !ids::has_prefix(campaign_id, ids::CAMPAIGN) {
        return Err(not_found());
    }
    let key = campaigns::key(workspace_id, campaign_id);
    repo::update_versioned(&*ctx.store, &key, apply, |c| campaigns::item(workspace_id, c)).await.map_err(|e| match e {
        UpdateError::NotFound => not_found(),
        UpdateError::Rejected(e) => e,
        UpdateError::Store(e) => e.into(),
    })
}

/// Create a campaign (starts as `draft`).
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", security(("api_key" = [])),
    request_body = CreateCampaign,
    responses((status = 201, body = DataOf<CampaignView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_campaign(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Json(body): Json<CreateCampaign>,
) -> Result<Created<CampaignView>, ApiError> {
    let CampaignType::Standard = body.campaign_type;
    let campaign = Campaign::new(
        ids::new_id(ids::CAMPAIGN),
        &body.name,
        body.lead_source,
        body.description.as_deref(),
        ctx.now(),
    )?;
    campaigns::create(&*ctx.store, &caller.workspace_id, &campaign).await?;
    tracing::info!(campaign_id = campaign.id, "campaign created");
    Ok(Created(CampaignView { campaign, lead_count: 0 }))
}

/// List campaigns, newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", security(("api_key" = [])), params(Pagination),
    responses((status = 200, body = ListOf<CampaignView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_campaigns(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(page): Params<Pagination>,
) -> Result<List<CampaignView>, ApiError> {
    let result = campaigns::list(&*ctx.store, &caller.workspace_id, page.limit()?, page.cursor()?).await?;
    let list = List::from_page(result, |item| item.parse::<Campaign>())?;
    let ids: Vec<&str> = list.data.iter().map(|c| c.id.as_str()).collect();
    let counts = campaigns::lead_counts(&*ctx.store, &caller.workspace_id, &ids).await?;
    let data = list
        .data
        .into_iter()
        .map(|campaign| {
            let lead_count = counts.get(&campaign.id).copied().unwrap_or(0);
            CampaignView { campaign, lead_count }
        })
        .collect();
    Ok(List { data, next_cursor: list.next_cursor })
}

/// Get one campaign.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = DataOf<CampaignView>), (status = 404, body = ErrorBody)))]
async fn get_campaign(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<CampaignView>, ApiError> {
    let campaign = load(&ctx, &caller.workspace_id, &id).await?;
    Ok(Data(view(&ctx, &caller.workspace_id, campaign).await?))
}

/// Rename, describe, or (while a draft) change the lead source.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")), request_body = UpdateCampaign,
    responses((status = 200, body = DataOf<CampaignView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_campaign(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Json(body): Json<UpdateCampaign>,
) -> Result<Data<CampaignView>, ApiError> {
    let now = ctx.now();
    let updated = change(&ctx, &caller.workspace_id, &id, |c| {
        if let Some(name) = &body.name {
            c.rename(name, now)?;
        }
        if let Some(description) = &body.description {
            c.describe(description.as_deref(), now)?;
        }
        if let Some(source) = body.lead_source {
            c.change_source(source, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(Data(view(&ctx, &caller.workspace_id, updated).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    id: String,
    deleted: bool,
}

/// Delete a campaign. Its leads stay readable by id; it accepts no new leads.
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = DataOf<Deleted>), (status = 404, body = ErrorBody)))]
async fn delete_campaign(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<Deleted>, ApiError> {
    if !ids::has_prefix(&id, ids::CAMPAIGN) || !campaigns::delete(&*ctx.store, &caller.workspace_id, &id).await? {
        return Err(not_found());
    }
    tracing::info!(campaign_id = id, "campaign deleted");
    Ok(Data(Deleted { id, deleted: true }))
}

fn transition_error(e: crate::domain::campaign::TransitionError) -> ApiError {
    ApiError::conflict("invalid_status_transition", e.to_string())
}

/// Activate (`draft`/`paused` -> `active`). Leads can be previewed from then on.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/activate", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = DataOf<CampaignView>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn activate_campaign(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<CampaignView>, ApiError> {
    let now = ctx.now();
    let updated = change(&ctx, &caller.workspace_id, &id, |c| c.activate(now).map_err(transition_error)).await?;
    tracing::info!(campaign_id = id, "campaign activated");
    // Leads that arrived while the campaign was not active get their workflow runs now.
    // The campaign is active either way; a failure here is logged, and runs can be started
    // per lead with POST /api/v1/leads/{id}/workflow-runs.
    if let Err(e) = crate::workflow::trigger::on_activate(&ctx, &caller.workspace_id, &updated.id).await {
        tracing::error!(campaign_id = id, error = %e, "workflow backfill not queued");
    }
    Ok(Data(view(&ctx, &caller.workspace_id, updated).await?))
}

/// Pause (`active` -> `paused`).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = DataOf<CampaignView>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn pause_campaign(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<CampaignView>, ApiError> {
    let now = ctx.now();
    let updated = change(&ctx, &caller.workspace_id, &id, |c| c.pause(now).map_err(transition_error)).await?;
    tracing::info!(campaign_id = id, "campaign paused");
    Ok(Data(view(&ctx, &caller.workspace_id, updated).await?))
}

/// `reveal` is documented as it is served: only `false` is accepted.
fn only_false() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([false]))
        .build()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SetupParams {
    /// Not supported: tokens are shown once, when created. `true` answers 400.
    #[param(schema_with = only_false)]
    reveal: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSummary {
    id: String,
    /// The token with all but its prefix and last four characters hidden.
    masked: String,
    created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSetup {
    campaign_id: String,
    method: &'static str,
    ingest_url: String,
    token: TokenSummary,
    /// Where the token goes.
    auth_header: &'static str,
    #[schema(value_type = Object)]
    example_body: Value,
    example_curl: String,
}

/// `LEADPUSH_PUBLIC_URL` when set. Otherwise the address the caller used to reach us, but
/// only if it is a valid `host[:port]` (a hostile `Host` must not shape the instructions
/// or the cURL example); `X-Forwarded-*` only when `LEADPUSH_TRUST_FORWARDED_HEADERS=1`.
fn public_base_url(config: &crate::config::Config, headers: &HeaderMap) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let forwarded = |name: &str| if config.trust_forwarded_headers { text(name) } else { None };
    // A proxy may append hops ("a, b"): the first is the client's view.
    let first = |v: &str| v.split(',').next().unwrap_or_default().trim().to_owned();
    let valid = |h: &String| crate::api::json::is_host_and_port(h);
    let host = forwarded("x-forwarded-host")
        .map(first)
        .filter(valid)
        .or_else(|| text("host").map(str::to_owned).filter(valid))
        .unwrap_or_else(|| "localhost:3000".into());
    let local = host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    let proto = forwarded("x-forwarded-proto")
        .map(first)
        .map(|p| p.to_ascii_lowercase())
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| if local { "http".into() } else { "https".into() });
    format!("{proto}://{host}")
}

/// How to send leads to this campaign: the token (masked), URL, body and a cURL example.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/webhook-setup", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id"), SetupParams),
    responses(
        (status = 200, body = DataOf<WebhookSetup>),
        (status = 400, body = ErrorBody, description = "`reveal=true`: tokens are never shown again"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`webhook_token_missing`, or not a webhook campaign")))]
async fn webhook_setup(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Params(params): Params<SetupParams>,
    headers: HeaderMap,
) -> Result<Data<WebhookSetup>, ApiError> {
    let campaign = load(&ctx, &caller.workspace_id, &id).await?;
    if params.reveal == Some(true) {
        return Err(ApiError::bad_request(
            "secret_not_retrievable",
            "Webhook tokens are shown once, when they are created, and stored only as a hash. \
             If yours is lost, ask your CSM for a new one.",
        ));
    }
    if campaign.lead_source != LeadSource::Webhook {
        return Err(ApiError::conflict(
            "not_a_webhook_campaign",
            "This campaign's lead source is manual; webhook setup applies to webhook campaigns.",
        ));
    }
    let tokens =
        workspaces::active_credentials(&*ctx.store, &caller.workspace_id, CredentialKind::WebhookToken).await?;
    let token =
        tokens.into_iter().next().ok_or_else(|| ApiError::conflict("webhook_token_missing", WEBHOOK_TOKEN_MISSING))?;
    let ingest_url = format!("{}/api/v1/webhook/leads", public_base_url(&ctx.config, &headers));
    let example_body = json!({
        "idempotency_key": "lead-batch-001",
        "leads": [{"name": "Alice", "email": "alice@example.com", "campaign_id": campaign.id}]
    });
    // Values are single-quoted for the shell; only the token variable is left to expand.
    let example_curl = format!(
        "curl -i -X POST {} \\\n  -H \"Authorization: Bearer $LEADPUSH_WEBHOOK_TOKEN\" \\\n  -H 'Content-Type: application/json' \\\n  -d {}",
        crate::support::text::shell_quote(&ingest_url),
        crate::support::text::shell_quote(&example_body.to_string())
    );
    Ok(Data(WebhookSetup {
        campaign_id: campaign.id,
        method: "POST",
        ingest_url,
        token: TokenSummary { id: token.id, masked: token.hint, created_at: token.created_at },
        auth_header: "Authorization: Bearer <webhook token>",
        example_body,
        example_curl,
    }))
}

/// A lead in the preview, with its latest workflow run (status and rendered message).
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewLead {
    #[serde(flatten)]
    lead: Lead,
    /// `null` until the campaign's workflow has run for this lead.
    workflow_run: Option<RunSummary>,
}

/// The lead preview: the campaign's leads, newest first, once it has been activated, each
/// with its latest workflow run. A page ends early, with `next_cursor` set, once the leads
/// and their runs reach 4 MiB of JSON.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/leads", tag = "campaigns", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id"), Pagination),
    responses((status = 200, body = ListOf<PreviewLead>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`campaign_not_active`: leads appear after activation")))]
async fn campaign_leads(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Params(page): Params<Pagination>,
) -> Result<List<PreviewLead>, ApiError> {
    let campaign = load(&ctx, &caller.workspace_id, &id).await?;
    if !campaign.leads_visible() {
        return Err(ApiError::conflict(
            "campaign_not_active",
            "Leads appear in the preview once the campaign has been activated. \
             Activate it with POST /api/v1/campaigns/{id}/activate; leads already sent are kept.",
        ));
    }
    let filter = LeadFilter { campaign_id: Some(campaign.id), status: None };
    let page = leads::list(&*ctx.store, &caller.workspace_id, &filter, page.limit()?, page.cursor()?).await?;
    let listed: Vec<Lead> = page.items.iter().map(Item::parse).collect::<Result<_, _>>()?;
    let ids: Vec<String> = listed.iter().map(|l| l.id.clone()).collect();
    let mut runs = workflows::latest(&*ctx.store, &caller.workspace_id, &ids).await?;
    // The listing kept the leads within the page budget; their runs (messages of up to
    // 8 KB each) count against it too. Past it, the page ends early with a cursor to the
    // next lead, as any listing's does.
    let mut next_cursor = page.next;
    let mut used = 0usize;
    let mut keep = listed.len();
    for (n, (item, lead)) in page.items.iter().zip(&listed).enumerate() {
        let run = runs.get(&lead.id).map_or(4, |run| {
            serde_json::to_vec(run).map_or(usize::MAX, |json| crate::support::text::json_escaped_len(&json))
        });
        used = used.saturating_add(keys::response_bytes(item)).saturating_add(run);
        if used > keys::MAX_PAGE_BYTES && n > 0 {
            keep = n;
            next_cursor = Some(leads::cursor_after(&caller.workspace_id, &filter, &page.items[n - 1]));
            break;
        }
    }
    let data =
        listed.into_iter().take(keep).map(|lead| PreviewLead { workflow_run: runs.remove(&lead.id), lead }).collect();
    Ok(List { data, next_cursor: next_cursor.map(|c| c.encode()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn base(env: &[(&str, &str)], headers: &[(&'static str, &'static str)]) -> String {
        let env: std::collections::HashMap<&str, &str> = env.iter().copied().collect();
        let config = Config::from_lookup(|k| env.get(k).map(|v| (*v).to_owned())).unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, axum::http::HeaderValue::from_static(v));
        }
        public_base_url(&config, &map)
    }

    #[test]
    fn the_public_url_wins_and_hostile_hosts_are_ignored() {
        let public = [("LEADPUSH_PUBLIC_URL", "https://leads.example.com/")];
        assert_eq!(
            base(&public, &[("host", "evil.example"), ("x-forwarded-host", "evil.example")]),
            "https://leads.example.com"
        );
        assert_eq!(base(&[], &[("host", "api.example.com")]), "https://api.example.com");
        assert_eq!(base(&[], &[("host", "127.0.0.1:3000")]), "http://127.0.0.1:3000");
        assert_eq!(base(&[], &[("host", "evil.example\"; rm -rf /")]), "http://localhost:3000");
        // Forwarded headers only when configured, and only if valid.
        let forwarded =
            [("host", "10.0.0.5:3000"), ("x-forwarded-host", "api.example.com, proxy"), ("x-forwarded-proto", "https")];
        assert_eq!(base(&[], &forwarded), "https://10.0.0.5:3000");
        let trust = [("LEADPUSH_TRUST_FORWARDED_HEADERS", "1")];
        assert_eq!(base(&trust, &forwarded), "https://api.example.com");
        assert_eq!(
            base(&trust, &[("host", "a.example"), ("x-forwarded-host", "x y"), ("x-forwarded-proto", "javascript")]),
            "https://a.example"
        );
    }
}
