//! The push workflow (the push-leads specification): the first attempt runs while the
//! caller waits and is recorded; then a `push_follow_up` task marks delivered leads
//! `pushed` (and emits `save_lead`), and leads whose call failed in a way worth retrying
//! (429, 5xx, timeouts) get a `push_retry` task, delayed by the retry schedule and at least
//! the destination's `Retry-After`. The dispatcher runs those retries through [`retry`]
//! until the push ends or its attempts run out; [`sweep`] re-queues the work of pushes
//! whose tasks were lost.
//!
//! Delivery is at least once: a task the queue redelivers may repeat a call, which is why
//! webhook receivers get `Idempotency-Key: <push_id>` and providers' adds are idempotent.

pub mod send;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::context::AppContext;
use crate::domain::ValidationError;
use crate::domain::integration::{Integration, Provider, ProviderKey};
use crate::domain::lead::Lead;
use crate::domain::push::{
    AttemptResult, Destination, LeadOutcome, LeadResult, Push, PushState, PushSummary, PushTarget, retry_delay,
};
use crate::queue::QueueError;
use crate::queue::{self, Swept, Task, TaskError};
use crate::repo::idempotency::{self, Claim, ClaimRequest, IdempotencyState, RecordKey};
use crate::repo::push_sweep::{self, SweepMarker};
use crate::repo::{UpdateError, insights, integrations, leads, pushes};
use crate::store::StoreError;
use crate::support::time::Timestamp;
use crate::support::{deadline, ids};

/// Where one push goes, with what it needs to get there.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook { url: String },
    Heyreach { api_key: ProviderKey, list_id: i64 },
    Instantly { api_key: ProviderKey, campaign_id: String },
}

impl Target {
    pub fn destination(&self) -> Destination {
        match self {
            Target::Webhook { .. } => Destination::WebhookUrl,
            Target::Heyreach { .. } => Destination::Heyreach,
            Target::Instantly { .. } => Destination::Instantly,
        }
    }

    fn record(&self) -> PushTarget {
        let mut target =
            PushTarget { destination: self.destination(), webhook_url: None, list_id: None, campaign_id: None };
        match self {
            Target::Webhook { url } => target.webhook_url = Some(url.clone()),
            Target::Heyreach { list_id, .. } => target.list_id = Some(*list_id),
            Target::Instantly { campaign_id, .. } => target.campaign_id = Some(campaign_id.clone()),
        }
        target
    }

    /// The integration's key with the list or campaign given (the push's own, on retries).
    fn provider(integration: Integration, list_id: Option<i64>, campaign_id: Option<String>) -> Option<Target> {
        match integration.provider {
            Provider::Heyreach => Some(Target::Heyreach { api_key: integration.api_key, list_id: list_id? }),
            Provider::Instantly => Some(Target::Instantly { api_key: integration.api_key, campaign_id: campaign_id? }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{} is not configured for this workspace", .0.label())]
    NotConfigured(Provider),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The `Idempotency-Key` was used before with another request body.
    #[error("Idempotency-Key \"{0}\" was already used for a different push request. Use a new key for each push.")]
    KeyReused(String),
    /// The `Idempotency-Key`'s first request is still running.
    #[error("A push with Idempotency-Key \"{0}\" is still running. Retry the same request once it has finished.")]
    KeyInUse(String),
}

impl From<PushError> for TaskError {
    fn from(e: PushError) -> Self {
        match e {
            PushError::Store(e) => e.into(),
            PushError::Queue(e) => e.into(),
            other => TaskError::Failed(other.to_string()),
        }
    }
}

/// Where a push to `destination` goes: the checked webhook URL, or the workspace's
/// integration (400 `integration_not_configured` without one).
pub async fn resolve_target(
    ctx: &AppContext,
    workspace_id: &str,
    destination: Destination,
    webhook_url: Option<&str>,
) -> Result<Target, PushError> {
    let Some(provider) = destination.provider() else {
        let url = webhook_url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ValidationError::new("webhook_url", "is required when destination is webhook_url"))?;
        let url = ctx.outbound.check_url(url).map_err(|e| ValidationError::new("webhook_url", e.to_string()))?;
        return Ok(Target::Webhook { url: url.into() });
    };
    let integration = integrations::get(&*ctx.store, workspace_id, provider).await?;
    let integration = integration.ok_or(PushError::NotConfigured(provider))?;
    let (list_id, campaign_id) = (integration.list_id, integration.campaign_id.clone());
    Target::provider(integration, list_id, campaign_id).ok_or(PushError::NotConfigured(provider))
}

fn max_attempts(ctx: &AppContext) -> u32 {
    ctx.config.push_retry_schedule.len() as u32 + 1
}

fn next_delay(ctx: &AppContext, attempt: u32, result: &AttemptResult) -> Duration {
    retry_delay(&ctx.config.push_retry_schedule, attempt, result.retry_after(), rand::random::<f64>())
}

/// Loads the leads among `ids` (with versions), in the order of `ids`. Ids that cannot be
/// ours are not looked up.
async fn load(ctx: &AppContext, workspace_id: &str, ids: &[String]) -> Result<Vec<(Lead, u64)>, StoreError> {
    let lookup: Vec<String> = ids.iter().filter(|id| !id.is_empty() && id.len() <= 128).cloned().collect();
    let mut found: HashMap<String, (Lead, u64)> = leads::get_many_versioned(&*ctx.store, workspace_id, &lookup)
        .await?
        .into_iter()
        .map(|(lead, version)| (lead.id.clone(), (lead, version)))
        .collect();
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// How long a push holds its `Idempotency-Key` while it runs: longer than any first
/// attempt (at most 10 provider calls of `LEADPUSH_OUTBOUND_TIMEOUT_MS`, five at a time).
const PUSH_KEY_LEASE: Duration = Duration::from_secs(300);
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Runs `push` at most once per `Idempotency-Key` (when the caller sent one): the same key
/// with the same request (`fingerprint`) replays the first answer; with another request it
/// is refused. Returns the summary and whether it is a replay (callbacks are not resent).
/// A push that failed before reaching its destination releases the key.
pub async fn once<Fut>(
    ctx: &AppContext,
    workspace_id: &str,
    key: Option<&str>,
    fingerprint: &str,
    push: impl FnOnce() -> Fut,
) -> Result<(PushSummary, bool), PushError>
where
    Fut: std::future::Future<Output = Result<PushSummary, PushError>>,
{
    let Some(key) = key else {
        return Ok((push().await?, false));
    };
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(ValidationError::new(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        )
        .into());
    }
    let at = RecordKey { workspace_id, scope: "push", key };
    let request_id = ids::new_id(ids::REQUEST);
    let payload_hash = crate::support::secrets::hash(fingerprint);
    let claim = ClaimRequest {
        at,
        request_id: &request_id,
        payload_hash: payload_hash.clone(),
        now: ctx.now(),
        lease: PUSH_KEY_LEASE,
        keep_for: None,
        replace: None,
        count: None,
        abandoned: Vec::new(),
    };
    match idempotency::claim(&*ctx.store, claim).await? {
        Claim::Taken(record) if record.payload_hash != payload_hash => Err(PushError::KeyReused(key.to_owned())),
        Claim::Taken(record) => match (record.state, record.response) {
            (IdempotencyState::Completed, Some(response)) => {
                let summary = serde_json::from_value(response).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((summary, true))
            }
            _ => Err(PushError::KeyInUse(key.to_owned())),
        },
        Claim::Claimed => match push().await {
            Ok(summary) => {
                let response = serde_json::to_value(&summary).ok();
                let window = ctx.config.idempotency_ttl;
                if let Err(e) = idempotency::complete(&*ctx.store, at, &request_id, response, ctx.now(), window).await {
                    // The push happened; the key stays leased, so a retry gets 409, not a second push.
                    tracing::error!(push_id = summary.push_id, error = %e, "push done, but its idempotency record was not completed");
                }
                Ok((summary, false))
            }
            Err(e) => {
                if let Err(release) = idempotency::release(&*ctx.store, at).await {
                    tracing::warn!(error = %release, "could not release a push idempotency key");
                }
                Err(e)
            }
        },
    }
}

/// How long a push may wait for its follow-up or overdue retry before the sweeper
/// re-queues it: past SQS's longest delay (15 min) plus the dispatcher's longest backoff.
pub const SWEEP_GRACE: Duration = Duration::from_secs(20 * 60);
/// The most one marker's sweep takes (a few reads and writes, a queue send).
const SWEEP_ITEM_BUDGET: Duration = Duration::from_secs(2);

/// Pushes `lead_ids` (distinct, validated) to `target`: the first attempt, recorded, and
/// the push-leads specification's answer about it. What follows (marking leads `pushed`,
/// insights, `save_lead`, the next attempt) is queued as tasks right after the record is
/// written, so nothing slow or failing stands between the destination's answer and the
/// caller; a sweep marker written first lets [`sweep`] re-queue whatever a lost task leaves
/// undone.
pub async fn start(
    ctx: &AppContext,
    workspace_id: &str,
    target: Target,
    lead_ids: Vec<String>,
) -> Result<PushSummary, PushError> {
    let loaded = load(ctx, workspace_id, &lead_ids).await?;
    let found: HashSet<&str> = loaded.iter().map(|(lead, _)| lead.id.as_str()).collect();
    let mut push = Push::new(ids::new_id(ids::PUSH), target.record(), &lead_ids, &found, max_attempts(ctx), ctx.now());
    let leads: Vec<Lead> = loaded.into_iter().map(|(lead, _)| lead).collect();
    let result = send::attempt(ctx, &push.id, 1, &target, &leads).await;
    push.record_attempt(1, &result, next_delay(ctx, 1, &result), ctx.now());
    let marker = SweepMarker {
        workspace_id: workspace_id.to_owned(),
        push_id: push.id.clone(),
        due_at: ctx.now().plus(SWEEP_GRACE),
        followed_up: 0,
    };
    push_sweep::create(&*ctx.store, &marker).await?;
    pushes::create(&*ctx.store, workspace_id, &push).await?;
    tracing::info!(
        push_id = push.id,
        destination = push.destination.as_str(),
        status = ?push.status,
        pushed = push.lead_count,
        requested = push.requested_lead_count,
        "push attempted"
    );
    // The destination has answered and the record says so; a failure from here on must not
    // turn that into an error the caller would retry (and so push twice). The sweeper
    // re-queues what this could not.
    if let Err(e) = queue_next(ctx, workspace_id, &push, 1).await {
        tracing::error!(push_id = push.id, error = %e, "push recorded, but queueing its follow-up failed");
    }
    Ok(push.summary(&result))
}

/// Queues the follow-up of attempt `attempt` and, if the push is retrying, the next attempt.
async fn queue_next(ctx: &AppContext, workspace_id: &str, push: &Push, attempt: u32) -> Result<(), QueueError> {
    let (workspace_id, push_id) = (workspace_id.to_owned(), push.id.clone());
    let mut messages =
        vec![Task::PushFollowUp { workspace_id: workspace_id.clone(), push_id: push_id.clone(), attempt }.message()];
    if push.status == PushState::Retrying {
        let due = push.next_attempt_at.map_or(0, |at| at.unix_millis() - ctx.now().unix_millis());
        let delay = Duration::from_millis(due.max(0) as u64);
        messages.push(Task::PushRetry { workspace_id, push_id, attempt: attempt + 1 }.delayed(delay));
    }
    ctx.queue.send(messages).await
}

/// The `push_follow_up` task: marks the leads delivered up to attempt `attempt` (and not
/// yet followed up) `pushed`, counts them in insights and emits `save_lead`. Safe to run
/// twice: marking and counting are idempotent, and only leads whose record changed are
/// emitted.
pub async fn follow_up(ctx: &AppContext, workspace_id: &str, push_id: &str, attempt: u32) -> Result<(), PushError> {
    let Some(push) = pushes::get(&*ctx.store, workspace_id, push_id).await? else {
        return Ok(());
    };
    let marker = push_sweep::get(&*ctx.store, workspace_id, push_id).await?;
    let done = marker.as_ref().map_or(0, |m| m.followed_up);
    if done < attempt {
        let delivered: Vec<String> = push
            .leads
            .iter()
            .filter(|l| l.outcome == LeadOutcome::Pushed && l.attempt.is_some_and(|a| a > done && a <= attempt))
            .map(|l| l.lead_id.clone())
            .collect();
        let to_mark = load(ctx, workspace_id, &delivered).await?;
        if !to_mark.is_empty() {
            let channel = insights::normalize_channel(push.destination.as_str());
            let changed = leads::mark_pushed(&*ctx.store, workspace_id, &to_mark, ctx.now(), &channel).await?;
            // Insights count each lead once per channel, so a redelivered task counts nothing twice.
            let pushed: Vec<Lead> = to_mark.into_iter().map(|(lead, _)| lead).collect();
            insights::record_pushed(&*ctx.store, workspace_id, push.destination.as_str(), &pushed).await?;
            if !changed.is_empty() {
                queue::emit_leads_saved(&*ctx.queue, workspace_id, &changed).await?;
            }
        }
    }
    if push.status.is_final() && attempt >= push.attempts {
        push_sweep::delete(&*ctx.store, workspace_id, push_id).await?;
    } else {
        let due = push.next_attempt_at.unwrap_or(ctx.now()).max(ctx.now()).plus(SWEEP_GRACE);
        push_sweep::update(&*ctx.store, workspace_id, push_id, |m| {
            m.followed_up = m.followed_up.max(attempt);
            m.due_at = due;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Re-queues the work of pushes whose tasks were lost: a follow-up that never completed, a
/// retry overdue by more than [`SWEEP_GRACE`]. Runs on a schedule (`sweep` task on AWS, a
/// loop in `leadpush serve`); duplicate tasks are harmless, since every push task is
/// idempotent. Goes through every due marker, oldest first, unless the invocation's
/// deadline comes first (then `finished` is false and the rest waits for the next sweep).
pub async fn sweep(ctx: &AppContext, now: Timestamp) -> Result<Swept, PushError> {
    let mut swept = Swept { requeued: 0, finished: true };
    for shard in push_sweep::shards() {
        let mut cursor = None;
        loop {
            let (markers, next) = push_sweep::due_page(&*ctx.store, &shard, now, cursor).await?;
            for marker in markers {
                if !deadline::allows(SWEEP_ITEM_BUDGET) {
                    swept.finished = false;
                    return Ok(swept);
                }
                if sweep_one(ctx, &marker, now).await? {
                    swept.requeued += 1;
                }
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(swept)
}

/// Re-queues what one due marker's push still needs; true if it queued anything. The
/// marker is deleted or made due again later, so a sweep never sees it twice.
async fn sweep_one(ctx: &AppContext, marker: &SweepMarker, now: Timestamp) -> Result<bool, PushError> {
    let (ws, id) = (marker.workspace_id.as_str(), marker.push_id.as_str());
    let Some(push) = pushes::get(&*ctx.store, ws, id).await? else {
        // The push was never recorded (the request died after the marker): nothing to do.
        push_sweep::delete(&*ctx.store, ws, id).await?;
        return Ok(false);
    };
    let mut messages = Vec::new();
    if marker.followed_up < push.attempts {
        messages.push(
            Task::PushFollowUp { workspace_id: ws.to_owned(), push_id: id.to_owned(), attempt: push.attempts }
                .message(),
        );
    }
    let overdue = push.next_attempt_at.is_none_or(|at| at.plus(SWEEP_GRACE) <= now);
    if push.status == PushState::Retrying && overdue {
        messages.push(
            Task::PushRetry { workspace_id: ws.to_owned(), push_id: id.to_owned(), attempt: push.attempts + 1 }
                .message(),
        );
    }
    if messages.is_empty() && push.status.is_final() {
        push_sweep::delete(&*ctx.store, ws, id).await?;
        return Ok(false);
    }
    let requeued = !messages.is_empty();
    if requeued {
        tracing::warn!(push_id = id, status = ?push.status, attempts = push.attempts, followed_up = marker.followed_up, "sweeper re-queued a stalled push");
        ctx.queue.send(messages).await?;
    }
    push_sweep::update(&*ctx.store, ws, id, |m| {
        m.due_at = now.plus(SWEEP_GRACE);
        Ok(())
    })
    .await?;
    Ok(requeued)
}

/// Another attempt already recorded this one's result.
#[derive(Debug)]
struct AlreadySettled;

/// Attempt `attempt` of a push whose earlier attempt left leads pending (the `push_retry`
/// task). Safe to run twice: a recorded attempt is never recorded again.
pub async fn retry(ctx: &AppContext, workspace_id: &str, push_id: &str, attempt: u32) -> Result<(), PushError> {
    let Some(push) = pushes::get(&*ctx.store, workspace_id, push_id).await? else {
        tracing::warn!(push_id, "push retry for a push that does not exist");
        return Ok(());
    };
    if push.attempts >= attempt {
        // A redelivered task: its attempt is recorded, but queueing what follows may have failed.
        if push.attempts == attempt {
            queue_next(ctx, workspace_id, &push, attempt).await?;
        }
        return Ok(());
    }
    if push.status.is_final() {
        return Ok(());
    }
    let target = match retry_target(ctx, workspace_id, &push).await? {
        Ok(target) => target,
        Err(reason) => {
            return settle(ctx, workspace_id, push_id, attempt, |p| p.abandon(attempt, &reason, ctx.now())).await;
        }
    };
    let pending = push.pending_ids();
    let loaded = load(ctx, workspace_id, &pending).await?;
    let leads: Vec<Lead> = loaded.into_iter().map(|(lead, _)| lead).collect();
    let mut result = send::attempt(ctx, push_id, attempt, &target, &leads).await;
    let present: HashSet<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    let gone = pending.iter().filter(|id| !present.contains(id.as_str())).map(|id| (id.clone(), LeadResult::Missing));
    result.leads.extend(gone.collect::<Vec<_>>());
    let delay = next_delay(ctx, attempt, &result);
    settle(ctx, workspace_id, push_id, attempt, |p| p.record_attempt(attempt, &result, delay, ctx.now())).await
}

/// Records attempt `attempt` (unless it already is) and follows up on it.
async fn settle(
    ctx: &AppContext,
    workspace_id: &str,
    push_id: &str,
    attempt: u32,
    record: impl Fn(&mut Push),
) -> Result<(), PushError> {
    let updated = pushes::update(&*ctx.store, workspace_id, push_id, |p| {
        if p.attempts >= attempt {
            return Err(AlreadySettled);
        }
        record(p);
        Ok(())
    })
    .await;
    let push = match updated {
        Ok(push) => push,
        Err(UpdateError::Rejected(AlreadySettled)) | Err(UpdateError::NotFound) => return Ok(()),
        Err(UpdateError::Store(e)) => return Err(e.into()),
    };
    tracing::info!(push_id, attempt, status = ?push.status, pushed = push.lead_count, pending = push.pending_count, "push retried");
    Ok(queue_next(ctx, workspace_id, &push, attempt).await?)
}

/// The target of a retry: the push's own URL, list or campaign with the integration's
/// current key; `Err(reason)` when the integration has been removed since.
async fn retry_target(ctx: &AppContext, workspace_id: &str, push: &Push) -> Result<Result<Target, String>, PushError> {
    let Some(provider) = push.destination.provider() else {
        return Ok(push
            .webhook_url
            .clone()
            .map(|url| Target::Webhook { url })
            .ok_or_else(|| "the push has no webhook URL".to_owned()));
    };
    let removed = || format!("the {} integration was removed before this retry", provider.label());
    let Some(integration) = integrations::get(&*ctx.store, workspace_id, provider).await? else {
        return Ok(Err(removed()));
    };
    Ok(Target::provider(integration, push.list_id, push.campaign_id.clone()).ok_or_else(removed))
}

#[cfg(all(test, feature = "embedded"))]
mod tests;
