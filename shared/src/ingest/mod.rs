//! Taking in leads from the campaign webhook (seed 002).
//!
//! All or nothing: every lead is validated and every campaign checked before anything is
//! written. The idempotency key is claimed with a short lease, together with the first 25
//! leads, the other leads are written in batches of 25, `save_lead` is queued, then the key
//! is marked completed for the idempotency window (with the campaigns' lead counters):
//! ceil(N/25) + 3 DynamoDB calls in all, with the token and campaign reads. A failure after the claim undoes what was written and releases
//! the key, so the sender can simply retry.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::dispatch;
use crate::domain::ValidationError;
use crate::domain::campaign::{Campaign, LeadSource};
use crate::domain::lead::{IncomingLead, Lead};
use crate::ids;
use crate::queue::QueueError;
use crate::repo::idempotency::{self, ClaimRequest, IdempotencyRecord, RecordKey};
use crate::repo::{campaigns, leads};
use crate::secrets;
use crate::store::{Condition, MAX_BATCH_WRITE_ITEMS, StoreError, WriteOp};

pub const MAX_LEADS: usize = 1000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
const SCOPE: &str = "ingest";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("leads: at most {MAX_LEADS} leads per request, got {0}; split the batch")]
    TooManyLeads(usize),
    /// The key was used within `window`; the record names the request that used it.
    #[error("idempotency key already used")]
    DuplicateKey { record: Box<IdempotencyRecord>, window: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// One webhook request: the sender's idempotency key and its raw leads.
#[derive(Debug)]
pub struct Batch<'a> {
    pub idempotency_key: &'a str,
    pub leads: &'a [Value],
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

/// Validates and stores one batch for `workspace_id`; lead ids start with `request_id`.
pub async fn ingest(
    ctx: &AppContext,
    workspace_id: &str,
    request_id: &str,
    batch: Batch<'_>,
) -> Result<IngestAccepted, IngestError> {
    validate_key(batch.idempotency_key)?;
    if batch.leads.is_empty() {
        return Err(ValidationError::new("leads", "must contain at least one lead").into());
    }
    if batch.leads.len() > MAX_LEADS {
        return Err(IngestError::TooManyLeads(batch.leads.len()));
    }
    let incoming =
        batch.leads.iter().enumerate().map(|(i, v)| IncomingLead::parse(i, v)).collect::<Result<Vec<_>, _>>()?;
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
    let payload_hash = secrets::hash(&serde_json::to_string(batch.leads).unwrap_or_default());
    let record = RecordKey { workspace_id, scope: SCOPE, key: batch.idempotency_key };
    let leads: Vec<Lead> = incoming
        .into_iter()
        .enumerate()
        .map(|(i, lead)| {
            Lead::new(ids::lead_id(request_id, i + 1), lead.campaign_id, Some(request_id.to_owned()), lead.fields, now)
        })
        .collect();
    let lead_ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
    // The first batch of leads is written with the claim, in one transaction: one call
    // fewer, and a refused key writes nothing.
    let (first, rest) = leads.split_at(leads.len().min(MAX_BATCH_WRITE_ITEMS));
    let with = first
        .iter()
        .map(|lead| Ok(WriteOp::Put { item: leads::item(workspace_id, lead)?, condition: Condition::Always }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let request = ClaimRequest { at: record, request_id, payload_hash, now, lease: ctx.config.idempotency_lease };
    let held = match idempotency::claim_writing(&*ctx.store, request, with).await? {
        Ok(held) => held,
        Err(record) => {
            tracing::info!(original_request_id = record.request_id, "duplicate idempotency key refused");
            return Err(IngestError::DuplicateKey { record: Box::new(record), window: ctx.config.idempotency_ttl });
        }
    };
    if let Err(e) = store_and_announce(ctx, workspace_id, rest, &leads, &lead_ids, &found).await {
        undo(ctx, record, &lead_ids).await;
        return Err(e);
    }

    let mut per_campaign: BTreeMap<&str, usize> = BTreeMap::new();
    for lead in &leads {
        *per_campaign.entry(lead.campaign_id.as_str()).or_default() += 1;
    }
    // The key's completion and the campaigns' lead counters, in one transaction (more
    // campaigns than fit go in further ones). The leads are already safe: a failure here
    // only weakens duplicate protection (the key frees up when its lease ends) or a count.
    let mut ops = vec![idempotency::completion(record, held, ctx.now(), ctx.config.idempotency_ttl)?];
    ops.extend(
        per_campaign.iter().map(|(campaign, n)| campaigns::add_leads_op(workspace_id, campaign, *n as i64, request_id)),
    );
    for chunk in crate::store::transaction_chunks(ops) {
        if let Err(e) = ctx.store.transact_write(chunk).await {
            tracing::error!(error = %e, "idempotency key not marked completed or campaign lead counters not updated");
        }
    }
    let accepted = IngestAccepted {
        request_id: request_id.to_owned(),
        idempotency_key: batch.idempotency_key.to_owned(),
        accepted: leads.len(),
        lead_ids,
        campaigns: per_campaign
            .into_iter()
            .map(|(campaign_id, accepted)| CampaignCount { campaign_id: campaign_id.to_owned(), accepted })
            .collect(),
    };
    tracing::info!(accepted = accepted.accepted, campaigns = accepted.campaigns.len(), "leads ingested");
    Ok(accepted)
}

/// Writes the leads not written with the claim, then announces all of them.
async fn store_and_announce(
    ctx: &AppContext,
    workspace_id: &str,
    rest: &[Lead],
    leads: &[Lead],
    ids: &[String],
    campaigns: &HashMap<String, Campaign>,
) -> Result<(), IngestError> {
    leads::put_many(&*ctx.store, workspace_id, rest).await?;
    dispatch::emit_leads_saved(&*ctx.queue, workspace_id, ids).await?;
    // Leads of active campaigns with a workflow get their runs queued.
    crate::workflow::trigger::on_ingest(ctx, workspace_id, leads, campaigns).await.map_err(|e| match e {
        crate::workflow::trigger::TriggerError::Store(e) => IngestError::Store(e),
        crate::workflow::trigger::TriggerError::Queue(e) => IngestError::Queue(e),
    })?;
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
