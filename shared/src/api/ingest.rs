//! The inbound campaign webhook (seed 002): `POST /api/v1/webhook/leads`.
//!
//! All or nothing: every lead is validated and every campaign checked before anything is
//! written. The idempotency key is claimed with a short lease, leads are written in
//! batches (about N/25 writes), `save_lead` is queued, then the key is marked completed for
//! the idempotency window. A failure after the claim undoes what was written and releases
//! the key, so the sender can simply retry.

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::RequestId;
use super::auth::WebhookCaller;
use super::docs::{DataOf, ErrorBody};
use crate::context::AppContext;
use crate::dispatch;
use crate::domain::ValidationError;
use crate::domain::campaign::{Campaign, LeadSource};
use crate::domain::lead::{IncomingLead, Lead};
use crate::error::ApiError;
use crate::http::{Accepted, Json};
use crate::ids;
use crate::repo::idempotency::{self, Claim, ClaimRequest, IdempotencyState, RecordKey};
use crate::repo::{campaigns, leads};
use crate::secrets;

pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_LEADS: usize = 1000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
const SCOPE: &str = "ingest";

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(ingest_leads))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// Unique per batch (1 to 255 characters); reuse within the idempotency window (one
    /// week) is refused with 409.
    idempotency_key: String,
    /// 1 to 1000 leads; each needs a `campaign_id` of a webhook campaign.
    #[schema(value_type = Vec<IncomingLeadSchema>)]
    leads: Vec<Value>,
}

/// One lead. Fields not listed here are kept in `custom_fields`.
#[derive(ToSchema)]
#[schema(as = IncomingLead)]
#[allow(dead_code)]
pub struct IncomingLeadSchema {
    campaign_id: String,
    name: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    website: Option<String>,
    phone: Option<String>,
    /// Job title (`title` is accepted too).
    position: Option<String>,
    twitter: Option<String>,
    linkedin: Option<String>,
    notes: Option<String>,
    score: Option<i64>,
    signal_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignCount {
    campaign_id: String,
    accepted: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestAccepted {
    /// Every lead id starts with this.
    request_id: String,
    idempotency_key: String,
    accepted: usize,
    lead_ids: Vec<String>,
    campaigns: Vec<CampaignCount>,
}

fn validate_key(key: &str) -> Result<(), ValidationError> {
    let chars = key.chars().count();
    if key.trim().is_empty() {
        return Err(ValidationError::new("idempotency_key", "must not be empty; use a unique string per batch"));
    }
    if chars > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(ValidationError::new(
            "idempotency_key",
            format!("must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters, got {chars}"),
        ));
    }
    crate::domain::check_line("idempotency_key", key)
}

/// Every referenced campaign must be a webhook campaign of this organisation; the error
/// names the first lead that points elsewhere.
fn check_campaigns(incoming: &[IncomingLead], found: &HashMap<String, Campaign>) -> Result<(), ValidationError> {
    for (index, lead) in incoming.iter().enumerate() {
        let field = format!("leads[{index}].campaign_id");
        match found.get(&lead.campaign_id) {
            None => {
                return Err(ValidationError::new(
                    field,
                    format!("campaign `{}` does not exist in this organisation", lead.campaign_id),
                ));
            }
            Some(c) if c.lead_source != LeadSource::Webhook => {
                return Err(ValidationError::new(
                    field,
                    format!("campaign `{}` takes manual leads; only webhook campaigns accept leads here", c.id),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn duplicate(record: &idempotency::IdempotencyRecord, window: std::time::Duration) -> ApiError {
    let message = match record.state {
        IdempotencyState::InProgress => format!(
            "A request with idempotency key \"{}\" is still being processed (request {}). \
             Retry with the same key only if that request fails.",
            record.key, record.request_id
        ),
        IdempotencyState::Completed => format!(
            "Idempotency key \"{}\" was already used within the last {} (request {}); those leads were accepted then. \
             Use a unique key for each batch.",
            record.key,
            crate::time::human_duration(window),
            record.request_id
        ),
    };
    let mut extra = Map::new();
    extra.insert("request_id".into(), json!(record.request_id));
    extra.insert("idempotency_key".into(), json!(record.key));
    extra.insert("first_seen_at".into(), json!(record.created_at));
    ApiError::Conflict { code: "duplicate_idempotency_key", message, extra }
}

/// Send leads to one or more webhook campaigns.
#[utoipa::path(post, path = "/api/v1/webhook/leads", tag = "ingest", security(("webhook_token" = [])),
    request_body = IngestRequest,
    responses(
        (status = 202, body = DataOf<IngestAccepted>, description = "Leads stored; lead ids start with `request_id`"),
        (status = 400, body = ErrorBody, description = "`validation_error` naming the field and lead index; nothing stored"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_idempotency_key`, with the original `request_id`"),
        (status = 413, body = ErrorBody, description = "Body over 5 MB or more than 1000 leads"),
        (status = 415, body = ErrorBody)))]
async fn ingest_leads(
    State(ctx): State<AppContext>,
    caller: WebhookCaller,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Json(body): Json<IngestRequest, MAX_BODY_BYTES>,
) -> Result<Accepted<IngestAccepted>, ApiError> {
    validate_key(&body.idempotency_key)?;
    if body.leads.is_empty() {
        return Err(ApiError::validation("leads", "must contain at least one lead"));
    }
    if body.leads.len() > MAX_LEADS {
        return Err(ApiError::PayloadTooLarge(format!(
            "leads: at most {MAX_LEADS} leads per request, got {}; split the batch",
            body.leads.len()
        )));
    }
    let incoming =
        body.leads.iter().enumerate().map(|(i, v)| IncomingLead::parse(i, v)).collect::<Result<Vec<_>, _>>()?;
    let workspace_id = caller.workspace_id.as_str();
    let mut campaign_ids: Vec<&str> = incoming.iter().map(|l| l.campaign_id.as_str()).collect();
    campaign_ids.sort_unstable();
    campaign_ids.dedup();
    let found: HashMap<String, Campaign> = campaigns::get_many(&*ctx.store, workspace_id, &campaign_ids)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    check_campaigns(&incoming, &found)?;

    let now = ctx.now();
    let payload_hash = secrets::hash(&serde_json::to_string(&body.leads).unwrap_or_default());
    let record = RecordKey { workspace_id, scope: SCOPE, key: &body.idempotency_key };
    let claim = idempotency::claim(
        &*ctx.store,
        ClaimRequest { at: record, request_id: &request_id, payload_hash, now, lease: ctx.config.idempotency_lease },
    )
    .await?;
    if let Claim::Taken(record) = claim {
        tracing::info!(original_request_id = record.request_id, "duplicate idempotency key refused");
        return Err(duplicate(&record, ctx.config.idempotency_ttl));
    }

    let leads: Vec<Lead> = incoming
        .into_iter()
        .enumerate()
        .map(|(i, lead)| {
            Lead::new(ids::lead_id(&request_id, i + 1), lead.campaign_id, Some(request_id.clone()), lead.fields, now)
        })
        .collect();
    let lead_ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
    if let Err(e) = store_and_announce(&ctx, workspace_id, &leads, &lead_ids).await {
        undo(&ctx, record, &lead_ids).await;
        return Err(e);
    }

    let mut per_campaign: BTreeMap<&str, usize> = BTreeMap::new();
    for lead in &leads {
        *per_campaign.entry(lead.campaign_id.as_str()).or_default() += 1;
    }
    for (campaign_id, count) in &per_campaign {
        // A counter for display; the leads themselves are already safe.
        if let Err(e) = campaigns::add_leads(&*ctx.store, workspace_id, campaign_id, *count as i64).await {
            tracing::warn!(campaign_id, error = %e, "campaign lead counter not updated");
        }
    }
    let accepted = IngestAccepted {
        request_id: request_id.clone(),
        idempotency_key: body.idempotency_key.clone(),
        accepted: leads.len(),
        lead_ids,
        campaigns: per_campaign
            .into_iter()
            .map(|(campaign_id, accepted)| CampaignCount { campaign_id: campaign_id.to_owned(), accepted })
            .collect(),
    };
    let completed =
        idempotency::complete(&*ctx.store, record, &request_id, None, ctx.now(), ctx.config.idempotency_ttl).await;
    if let Err(e) = completed {
        // The leads are stored and announced; only duplicate protection is weakened.
        tracing::error!(error = %e, "idempotency key not marked completed; it frees up when its lease ends");
    }
    tracing::info!(accepted = accepted.accepted, campaigns = accepted.campaigns.len(), "leads ingested");
    Ok(Accepted(accepted))
}

async fn store_and_announce(
    ctx: &AppContext,
    workspace_id: &str,
    leads: &[Lead],
    ids: &[String],
) -> Result<(), ApiError> {
    leads::put_many(&*ctx.store, workspace_id, leads).await?;
    dispatch::emit_leads_saved(&*ctx.queue, workspace_id, ids).await?;
    Ok(())
}

/// Best effort: remove what was written and free the key so a retry starts clean.
async fn undo(ctx: &AppContext, record: RecordKey<'_>, lead_ids: &[String]) {
    let keys: Vec<_> = lead_ids.iter().map(|id| leads::key(record.workspace_id, id)).collect();
    if let Err(e) = ctx.store.batch_delete(&keys).await {
        tracing::error!(error = %e, leads = lead_ids.len(), "could not remove leads of a failed ingest");
    }
    if let Err(e) = idempotency::release(&*ctx.store, record).await {
        tracing::error!(error = %e, "could not release the idempotency key of a failed ingest");
    }
}
