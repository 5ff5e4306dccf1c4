//! Taking in leads from the campaign webhook (the webhook-campaign setup guide).
//!
//! All or nothing: every lead is validated and every campaign checked before anything is
//! written. The idempotency key is claimed with a short lease, together with the first 25
//! leads, the other leads are written in batches of 25, `save_lead` is queued, then the key
//! is marked completed for the idempotency window (with the campaigns' lead counters):
//! ceil(N/25) + 3 DynamoDB calls in all, with the token and campaign reads. A failure after the claim undoes what was written and releases
//! the key, so the sender can simply retry. A request that dies mid-way (a Lambda killed
//! between batch writes) leaves its claim in progress: a retry with the same body inside the
//! lease is told to retry when it ends (`InProgress`); after it, the retry resumes the dead
//! request under the same request id and lead ids instead of duplicating. Another body
//! takes the key over and first removes the dead request's leads (`remove_abandoned`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::domain::ValidationError;
use crate::domain::campaign::{Campaign, LeadSource};
use crate::domain::lead::{IncomingLead, Lead};
use crate::queue;
use crate::queue::QueueError;
use crate::repo::idempotency::{self, Abandoned, ClaimRequest, IdempotencyRecord, IdempotencyState, RecordKey};
use crate::repo::{campaigns, leads};
use crate::store::StoreError;
use crate::support::ids;
use crate::support::secrets;

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
    /// A retry (same key, same body) while the first request still holds the key's lease:
    /// not final; retry after `retry_after_secs`, when the lease ends.
    #[error("the request with this idempotency key is still in progress")]
    InProgress { record: Box<IdempotencyRecord>, retry_after_secs: u64 },
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
        count: Some(leads.len()),
        abandoned: Vec::new(),
    };
    let mut effective = request_id.to_owned();
    let held = match idempotency::claim_writing(&*ctx.store, claim, Vec::new()).await? {
        Ok(held) => held,
        Err(dead) if dead.is_dead(now, lease) => {
            // The same body resumes the dead request under its request id: its lead ids are
            // written again (overwriting what it wrote) instead of duplicated. Another body
            // takes the key over, as any key whose lease ended, and removes what the dead
            // request wrote: it was never accepted (no 202), its body is gone, so it can be
            // neither finished nor left behind unseen (see docs/api-guide.md, "Inbound
            // leads in detail").
            let resumed = dead.payload_hash == payload_hash;
            let owner = if resumed { dead.request_id.clone() } else { request_id.to_owned() };
            let mut abandoned = dead.abandoned.clone();
            if !resumed {
                // A record written before counts were kept: any of the ids a request may use.
                let count = dead.count.unwrap_or(MAX_LEADS);
                abandoned.push(Abandoned { request_id: dead.request_id.clone(), count });
            }
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
                count: Some(leads.len()),
                abandoned: abandoned.clone(),
            };
            match idempotency::claim_writing(&*ctx.store, claim, Vec::new()).await? {
                Ok(held) => {
                    tracing::warn!(original_request_id = dead.request_id, resumed, "took over a dead ingest claim");
                    // Before anything else is written. If this fails, the claim stays in
                    // progress naming them, and whoever holds the key next removes them.
                    remove_abandoned(ctx, workspace_id, &abandoned).await?;
                    effective = owner;
                    held
                }
                Err(record) => return Err(refused(ctx, record, &payload_hash)),
            }
        }
        Err(record) => return Err(refused(ctx, record, &payload_hash)),
    };
    let request_id = effective.as_str();
    let lead_ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
    if let Err(e) = store_and_announce(ctx, workspace_id, &leads, &lead_ids, &found).await {
        undo(ctx, record, &lead_ids).await;
        return Err(e);
    }

    let mut per_campaign: BTreeMap<&str, usize> = BTreeMap::new();
    for lead in &leads {
        *per_campaign.entry(lead.campaign_id.as_str()).or_default() += 1;
    }
    // The key's completion, then the campaigns' lead counters, each a plain write (a
    // transaction would cost each item twice). The leads are already safe: after a failure
    // here a retry of the same body resumes this request (rewriting the same leads) once
    // the lease ends, and another body takes the key; only a count may be off. Counters are
    // added only once the key is ours and completed, so a replayed answer never adds again.
    let completion = idempotency::completion(record, held, ctx.now(), ctx.config.idempotency_ttl)?;
    match crate::store::write_one(&*ctx.store, completion).await {
        Ok(()) => {
            for (campaign, n) in &per_campaign {
                if let Err(e) = campaigns::add_leads(&*ctx.store, workspace_id, campaign, *n as i64, request_id).await {
                    tracing::error!(error = %e, campaign, "campaign lead counter not updated");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "idempotency key not marked completed"),
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

/// Why a claim was refused. A retry of the same body while the first request still holds
/// the lease is told to retry when the lease ends (409 `request_in_progress`); it then
/// gets the first request's result, or resumes it if it died. Anything else is final.
fn refused(ctx: &AppContext, record: IdempotencyRecord, payload_hash: &str) -> IngestError {
    if record.state == IdempotencyState::InProgress && record.payload_hash == payload_hash {
        let ends = record.created_at.plus(ctx.config.idempotency_lease).unix_millis();
        let left_ms = u64::try_from(ends - ctx.now().unix_millis()).unwrap_or(0);
        let retry_after_secs = left_ms.div_ceil(1000).max(1);
        tracing::info!(original_request_id = record.request_id, retry_after_secs, "retry of an ingest in progress");
        return IngestError::InProgress { record: Box::new(record), retry_after_secs };
    }
    tracing::info!(original_request_id = record.request_id, "duplicate idempotency key refused");
    IngestError::DuplicateKey { record: Box::new(record), window: ctx.config.idempotency_ttl }
}

/// Removes the leads dead requests may have written (all their possible ids: deleting an
/// absent item is a no-op on both stores).
async fn remove_abandoned(ctx: &AppContext, workspace_id: &str, abandoned: &[Abandoned]) -> Result<(), StoreError> {
    if abandoned.is_empty() {
        return Ok(());
    }
    let keys: Vec<_> = abandoned
        .iter()
        .flat_map(|a| (1..=a.count).map(move |n| leads::key(workspace_id, &ids::lead_id(&a.request_id, n))))
        .collect();
    ctx.store.batch_delete(&keys).await?;
    let requests: Vec<&str> = abandoned.iter().map(|a| a.request_id.as_str()).collect();
    tracing::warn!(?requests, "removed what dead ingest requests had written under this idempotency key");
    Ok(())
}

/// Writes the leads (after the claim, not in a transaction with it: a transaction costs
/// each item twice, and a request that dies in between is resumed from its claim), then
/// announces them.
async fn store_and_announce(
    ctx: &AppContext,
    workspace_id: &str,
    leads: &[Lead],
    ids: &[String],
    campaigns: &HashMap<String, Campaign>,
) -> Result<(), IngestError> {
    leads::put_many(&*ctx.store, workspace_id, leads).await?;
    queue::emit_leads_saved(&*ctx.queue, workspace_id, ids).await?;
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
    use crate::store::{Condition, MAX_BATCH_WRITE_ITEMS, WriteOp};

    /// Leads written with a claim, as a request that died after them left them.
    fn first_writes(workspace_id: &str, leads: &[Lead]) -> Result<Vec<WriteOp>, StoreError> {
        leads[..leads.len().min(MAX_BATCH_WRITE_ITEMS)]
            .iter()
            .map(|lead| Ok(WriteOp::Put { item: leads::item(workspace_id, lead)?, condition: Condition::Always }))
            .collect()
    }
    use crate::domain::campaign::Campaign;
    use crate::repo::workspaces;
    use crate::support::time::Timestamp;

    /// What an ingest costs on DynamoDB (write units by DynamoDB's rules, from the items
    /// written): the claim, the lead and its four index entries, the completion and the
    /// campaign counter, with no transaction (which would cost each item twice): 8 units for
    /// one lead; 5 a lead in a 1000-lead request (the lead and its index entries).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ingest_costs_the_lead_its_index_entries_and_three_small_writes() {
        let (mut ctx, _dir) = crate::testing::embedded_context();
        let meter = std::sync::Arc::new(crate::store::capacity::CapacityMeter::new(ctx.store.clone()));
        ctx.store = meter.clone();
        let now = ctx.now();
        let ws = workspaces::create_workspace(&*ctx.store, "Cost", now).await.unwrap().id;
        let campaign = Campaign::new(ids::new_id("cmp"), "Cost", LeadSource::Webhook, None, now).unwrap();
        campaigns::create(&*ctx.store, &ws, &campaign).await.unwrap();
        let lead = |i: usize| {
            serde_json::json!({"campaign_id": campaign.id, "name": format!("Lead {i}"), "email": format!("lead{i}@example.com"),
                "company": "Example Corp", "position": "Head of Growth", "linkedin": format!("https://www.linkedin.com/in/lead-{i}")})
        };
        let one = vec![lead(0)];
        meter.take();
        ingest(&ctx, &ws, "req_COST1", Batch { idempotency_key: "one", leads: &one }).await.unwrap();
        let units = meter.take();
        assert_eq!(units.write, 8.0, "{}", units.breakdown());
        let many: Vec<Value> = (0..1000).map(lead).collect();
        ingest(&ctx, &ws, "req_COST2", Batch { idempotency_key: "many", leads: &many }).await.unwrap();
        let units = meter.take();
        assert_eq!(units.write, 5003.0, "{}", units.breakdown());
    }

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
            count: Some(body.len()),
            abandoned: Vec::new(),
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

        // A dead claim under another body is taken over, with the new request's id, and what
        // the dead request wrote is removed: it was never accepted, and nothing else would
        // ever find it. A record from before counts were kept (`count: None`) likewise.
        for (key, dead_request, fresh_request, count) in
            [("k2", "req_GONE", "req_FRESH", Some(3)), ("k3", "req_OLDER", "req_NEWER", None)]
        {
            let written: Vec<Lead> = (1..=3)
                .map(|n| Lead::new(ids::lead_id(dead_request, n), campaign.id.clone(), None, Default::default(), then))
                .collect();
            let claim = ClaimRequest {
                at: RecordKey { workspace_id: &ws, scope: SCOPE, key },
                request_id: dead_request,
                payload_hash: "another body".into(),
                now: then,
                lease,
                keep_for: Some(ctx.config.idempotency_ttl),
                replace: None,
                count,
                abandoned: Vec::new(),
            };
            idempotency::claim_writing(store, claim, first_writes(&ws, &written).unwrap()).await.unwrap().unwrap();
            assert!(leads::get(store, &ws, &ids::lead_id(dead_request, 3)).await.unwrap().is_some());
            let fresh =
                ingest(&ctx, &ws, fresh_request, Batch { idempotency_key: key, leads: &body[..1] }).await.unwrap();
            assert_eq!(fresh.request_id, fresh_request);
            for n in 1..=3 {
                let left = leads::get(store, &ws, &ids::lead_id(dead_request, n)).await.unwrap();
                assert!(left.is_none(), "{key}: the dead request's lead {n} was left behind");
            }
            assert!(leads::get(store, &ws, &ids::lead_id(fresh_request, 1)).await.unwrap().is_some());
        }
        let listed = leads::list(store, &ws, &leads::LeadFilter::default(), 100, None).await.unwrap();
        assert_eq!(listed.items.len(), 30 + 2, "the resumed request's and the two new ones' leads only");
    }

    /// A retry of the same body while the first request holds the lease is told to come
    /// back when the lease ends (`request_in_progress`, not final); another body under the
    /// key is refused as a duplicate.
    async fn a_retry_inside_the_lease_is_told_to_retry_when_it_ends(ctx: AppContext) {
        use axum::response::IntoResponse;
        let store = &*ctx.store;
        let now = ctx.now();
        let ws = workspaces::create_workspace(store, "Lease", now).await.unwrap().id;
        let campaign = Campaign::new(ids::new_id("cmp"), "Lease", LeadSource::Webhook, None, now).unwrap();
        campaigns::create(store, &ws, &campaign).await.unwrap();
        let body = vec![serde_json::json!({"name": "Ada", "campaign_id": campaign.id})];
        let lease = ctx.config.idempotency_lease;
        // The first request claimed the key 20 s ago and is still writing.
        let then = Timestamp::from_unix_millis(now.unix_millis() - 20_000).unwrap();
        let claim = ClaimRequest {
            at: RecordKey { workspace_id: &ws, scope: SCOPE, key: "busy" },
            request_id: "req_FIRST",
            payload_hash: secrets::hash_json(&body),
            now: then,
            lease,
            keep_for: Some(ctx.config.idempotency_ttl),
            replace: None,
            count: Some(1),
            abandoned: Vec::new(),
        };
        idempotency::claim_writing(store, claim, Vec::new()).await.unwrap().unwrap();
        let error = ingest(&ctx, &ws, "req_RETRY", Batch { idempotency_key: "busy", leads: &body }).await.unwrap_err();
        let expected = lease.as_secs() - 20;
        match &error {
            IngestError::InProgress { record, retry_after_secs } => {
                assert_eq!(record.request_id, "req_FIRST");
                assert!((expected - 1..=expected).contains(retry_after_secs), "{retry_after_secs} vs {expected}");
            }
            other => panic!("{other:?}"),
        }
        let response = crate::api::error::ApiError::from(error).into_response();
        assert_eq!(response.status(), 409);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((expected - 1..=expected).contains(&retry_after), "{retry_after}");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["error"]["code"], "request_in_progress", "{json}");
        assert_eq!(json["error"]["request_id"], "req_FIRST", "{json}");
        assert!(json["error"]["message"].as_str().unwrap().contains("retry the same request after"), "{json}");
        // Another body under the key in use: final.
        let other = vec![serde_json::json!({"name": "Bob", "campaign_id": campaign.id})];
        match ingest(&ctx, &ws, "req_OTHER", Batch { idempotency_key: "busy", leads: &other }).await {
            Err(IngestError::DuplicateKey { record, .. }) => assert_eq!(record.request_id, "req_FIRST"),
            other => panic!("{other:?}"),
        }
    }

    crate::testing::on_both_stores!(a_retry_inside_the_lease_is_told_to_retry_when_it_ends => a_retry_inside_the_lease_is_told_to_retry_when_it_ends_embedded, a_retry_inside_the_lease_is_told_to_retry_when_it_ends_dynamodb);

    crate::testing::on_both_stores!(an_ingest_that_died_half_way_is_resumed_under_its_request_id => an_ingest_that_died_half_way_is_resumed_embedded, an_ingest_that_died_half_way_is_resumed_dynamodb);
}
