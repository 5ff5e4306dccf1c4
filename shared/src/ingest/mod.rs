//! Taking in leads from the campaign webhook (seed 002).
//!
//! All or nothing: every lead is validated and every campaign checked before anything is
//! written. The idempotency key is claimed with a short lease, together with the first 25
//! leads, the other leads are written in batches of 25, `save_lead` is queued, then the key
//! is marked completed for the idempotency window (with the campaigns' lead counters):
//! ceil(N/25) + 3 DynamoDB calls in all, with the token and campaign reads. A failure after the claim undoes what was written and releases
//! the key, so the sender can simply retry. A request that dies mid-way (a Lambda killed
//! between batch writes) leaves its claim in progress: once its lease ends, a retry with the
//! same body resumes it under the same request id and lead ids instead of duplicating.

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
    let payload_hash = secrets::hash_json(&batch.leads);
    let record = RecordKey { workspace_id, scope: SCOPE, key: batch.idempotency_key };
    let lease = ctx.config.idempotency_lease;
    let mut leads: Vec<Lead> = incoming
        .into_iter()
        .enumerate()
        .map(|(i, lead)| {
            Lead::new(ids::lead_id(request_id, i + 1), lead.campaign_id, Some(request_id.to_owned()), lead.fields, now)
        })
        .collect();
    // In-progress claims are kept for the window (not just the lease), so that a retry of
    // a request that died half-way (a Lambda killed mid-write) finds it and resumes it.
    let claim = ClaimRequest {
        at: record,
        request_id,
        payload_hash: payload_hash.clone(),
        now,
        lease,
        keep_for: Some(ctx.config.idempotency_ttl),
        replace: None,
    };
    let mut effective = request_id.to_owned();
    let held = match idempotency::claim_writing(&*ctx.store, claim, first_writes(workspace_id, &leads)?).await? {
        Ok(held) => held,
        Err(dead) if dead.is_dead(now, lease) => {
            // The same body resumes the dead request under its request id: its lead ids are
            // written again (overwriting what it wrote) instead of duplicated. Another body
            // takes the key over, as any key whose lease ended.
            let resumed = dead.payload_hash == payload_hash;
            let owner = if resumed { dead.request_id.clone() } else { request_id.to_owned() };
            for (i, lead) in leads.iter_mut().enumerate() {
                lead.id = ids::lead_id(&owner, i + 1);
                lead.request_id = Some(owner.clone());
            }
            let claim = ClaimRequest {
                at: record,
                request_id: &owner,
                payload_hash: payload_hash.clone(),
                now,
                lease,
                keep_for: Some(ctx.config.idempotency_ttl),
                replace: Some(dead.version),
            };
            match idempotency::claim_writing(&*ctx.store, claim, first_writes(workspace_id, &leads)?).await? {
                Ok(held) => {
                    tracing::warn!(original_request_id = dead.request_id, resumed, "took over a dead ingest claim");
                    effective = owner;
                    held
                }
                Err(record) => {
                    tracing::info!(original_request_id = record.request_id, "duplicate idempotency key refused");
                    let window = ctx.config.idempotency_ttl;
                    return Err(IngestError::DuplicateKey { record: Box::new(record), window });
                }
            }
        }
        Err(record) => {
            tracing::info!(original_request_id = record.request_id, "duplicate idempotency key refused");
            return Err(IngestError::DuplicateKey { record: Box::new(record), window: ctx.config.idempotency_ttl });
        }
    };
    let request_id = effective.as_str();
    let lead_ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
    let rest = &leads[leads.len().min(MAX_BATCH_WRITE_ITEMS)..];
    if let Err(e) = store_and_announce(ctx, workspace_id, rest, &leads, &lead_ids, &found).await {
        undo(ctx, record, &lead_ids).await;
        return Err(e);
    }

    let mut per_campaign: BTreeMap<&str, usize> = BTreeMap::new();
    for lead in &leads {
        *per_campaign.entry(lead.campaign_id.as_str()).or_default() += 1;
    }
    // The key's completion and the campaigns' lead counters, in one transaction (more
    // campaigns than fit go in further ones). The leads are already safe: after a failure
    // here a retry of the same body resumes this request (rewriting the same leads) once
    // the lease ends, and another body takes the key; only a count may be off.
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

/// The first batch of leads, written with the claim in one transaction: one call fewer,
/// and a refused key writes nothing.
fn first_writes(workspace_id: &str, leads: &[Lead]) -> Result<Vec<WriteOp>, StoreError> {
    leads[..leads.len().min(MAX_BATCH_WRITE_ITEMS)]
        .iter()
        .map(|lead| Ok(WriteOp::Put { item: leads::item(workspace_id, lead)?, condition: Condition::Always }))
        .collect()
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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::domain::campaign::Campaign;
    use crate::repo::workspaces;
    use crate::time::Timestamp;

    async fn an_ingest_that_died_half_way_is_resumed_under_its_request_id(ctx: AppContext) {
        let store = &*ctx.store;
        let now = ctx.now();
        let ws = workspaces::create_workspace(store, "Resume", now).await.unwrap().id;
        let campaign = Campaign::new(ids::new_id("cmp"), "Resume", LeadSource::Webhook, None, now).unwrap();
        campaigns::create(store, &ws, &campaign).await.unwrap();
        let body: Vec<Value> =
            (0..30).map(|i| serde_json::json!({"name": format!("Lead {i}"), "campaign_id": campaign.id})).collect();
        let batch = || Batch { idempotency_key: "k", leads: &body };

        // The first request claimed the key and wrote its first 25 leads, then died; its lease is over.
        let lease = ctx.config.idempotency_lease;
        let then = Timestamp::from_unix_millis(now.unix_millis() - 2 * lease.as_millis() as i64).unwrap();
        let written: Vec<Lead> = body[..25]
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Lead::new(ids::lead_id("req_DIED", i + 1), campaign.id.clone(), None, Default::default(), then)
            })
            .collect();
        let at = RecordKey { workspace_id: &ws, scope: SCOPE, key: "k" };
        let payload_hash = secrets::hash(&serde_json::to_string(&body).unwrap());
        let claim = ClaimRequest {
            at,
            request_id: "req_DIED",
            payload_hash,
            now: then,
            lease,
            keep_for: Some(ctx.config.idempotency_ttl),
            replace: None,
        };
        idempotency::claim_writing(store, claim, first_writes(&ws, &written).unwrap()).await.unwrap().unwrap();

        // The sender retries the same body: the same request id and lead ids, nothing twice.
        let accepted = ingest(&ctx, &ws, "req_RETRY", batch()).await.unwrap();
        assert_eq!((accepted.request_id.as_str(), accepted.accepted), ("req_DIED", 30));
        assert_eq!(accepted.lead_ids, (1..=30).map(|n| ids::lead_id("req_DIED", n)).collect::<Vec<_>>());
        let listed = leads::list(store, &ws, &leads::LeadFilter::default(), 100, None).await.unwrap();
        assert_eq!(listed.items.len(), 30, "no lead written twice");
        let stored = leads::get(store, &ws, &ids::lead_id("req_DIED", 1)).await.unwrap().unwrap();
        assert_eq!(stored.name.as_deref(), Some("Lead 0"), "rewritten in full");
        // Completed: the key is now refused, naming the original request.
        match ingest(&ctx, &ws, "req_THIRD", batch()).await {
            Err(IngestError::DuplicateKey { record, .. }) => assert_eq!(record.request_id, "req_DIED"),
            other => panic!("{other:?}"),
        }

        // A dead claim under another body is simply taken over, with the new request's id.
        let other = RecordKey { workspace_id: &ws, scope: SCOPE, key: "k2" };
        let claim = ClaimRequest {
            at: other,
            request_id: "req_GONE",
            payload_hash: "another body".into(),
            now: then,
            lease,
            keep_for: Some(ctx.config.idempotency_ttl),
            replace: None,
        };
        idempotency::claim_writing(store, claim, Vec::new()).await.unwrap().unwrap();
        let fresh = ingest(&ctx, &ws, "req_FRESH", Batch { idempotency_key: "k2", leads: &body[..1] }).await.unwrap();
        assert_eq!(fresh.request_id, "req_FRESH");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ingest_that_died_half_way_is_resumed_embedded() {
        let (ctx, _dir) = crate::testing::embedded_context();
        an_ingest_that_died_half_way_is_resumed_under_its_request_id(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ingest_that_died_half_way_is_resumed_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        an_ingest_that_died_half_way_is_resumed_under_its_request_id(ctx).await;
    }
}
