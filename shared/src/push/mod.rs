//! The push workflow (seed 000): the first attempt runs while the caller waits; it is
//! recorded, delivered leads are marked `pushed` (and `save_lead` emitted), and leads whose
//! call failed in a way worth retrying (429, 5xx, timeouts) get a `push_retry` task, delayed
//! by the retry schedule and at least the destination's `Retry-After`. The dispatcher runs
//! those retries through [`retry`] until the push ends or its attempts run out.
//!
//! Delivery is at least once: a task the queue redelivers may repeat a call, which is why
//! webhook receivers get `Idempotency-Key: <push_id>` and providers' adds are idempotent.

pub mod send;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::context::AppContext;
use crate::dispatch::{self, Task, TaskError};
use crate::domain::ValidationError;
use crate::domain::integration::{Integration, Provider, ProviderKey};
use crate::domain::lead::Lead;
use crate::domain::push::{
    AttemptResult, Destination, LeadOutcome, LeadResult, Push, PushState, PushSummary, PushTarget, retry_delay,
};
use crate::ids;
use crate::queue::QueueError;
use crate::repo::{UpdateError, insights, integrations, leads, pushes};
use crate::store::StoreError;

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
}

impl From<PushError> for TaskError {
    fn from(e: PushError) -> Self {
        TaskError::Failed(e.to_string())
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

/// Pushes `lead_ids` (distinct, validated) to `target`: the first attempt, recorded, and
/// the seed's answer about it.
pub async fn start(
    ctx: &AppContext,
    workspace_id: &str,
    target: Target,
    lead_ids: Vec<String>,
) -> Result<PushSummary, PushError> {
    let loaded = load(ctx, workspace_id, &lead_ids).await?;
    let found: HashSet<&str> = loaded.iter().map(|(lead, _)| lead.id.as_str()).collect();
    let mut push = Push::new(ids::new_id(ids::PUSH), target.record(), &lead_ids, &found, max_attempts(ctx), ctx.now());
    let leads: Vec<Lead> = loaded.iter().map(|(lead, _)| lead.clone()).collect();
    let result = send::attempt(ctx, &push.id, 1, &target, &leads).await;
    push.record_attempt(1, &result, next_delay(ctx, 1, &result), ctx.now());
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
    // turn that into an error the caller would retry (and so push twice).
    if let Err(e) = follow_up(ctx, workspace_id, &push, 1, &loaded).await {
        tracing::error!(push_id = push.id, error = %e, "push recorded, but marking leads or queueing its retry failed");
    }
    Ok(push.summary(&result))
}

/// After attempt `attempt` is recorded: marks the leads it delivered `pushed`, emits
/// `save_lead` for them, and queues the next attempt if the push is retrying.
async fn follow_up(
    ctx: &AppContext,
    workspace_id: &str,
    push: &Push,
    attempt: u32,
    loaded: &[(Lead, u64)],
) -> Result<(), PushError> {
    let delivered: HashSet<&str> = push
        .leads
        .iter()
        .filter(|l| l.outcome == LeadOutcome::Pushed && l.attempt == Some(attempt))
        .map(|l| l.lead_id.as_str())
        .collect();
    let to_mark: Vec<(Lead, u64)> = loaded.iter().filter(|(l, _)| delivered.contains(l.id.as_str())).cloned().collect();
    if !to_mark.is_empty() {
        let changed = leads::mark_pushed(&*ctx.store, workspace_id, &to_mark, ctx.now()).await?;
        // Insights count each lead once per channel, so a redelivered task counts nothing twice.
        let pushed: Vec<Lead> = to_mark.iter().map(|(lead, _)| lead.clone()).collect();
        insights::record_pushed(&*ctx.store, workspace_id, push.destination.as_str(), &pushed).await?;
        if !changed.is_empty() {
            dispatch::emit_leads_saved(&*ctx.queue, workspace_id, &changed).await?;
        }
    }
    if push.status == PushState::Retrying {
        let due = push.next_attempt_at.map_or(0, |at| at.unix_millis() - ctx.now().unix_millis());
        let delay = Duration::from_millis(due.max(0) as u64);
        let task =
            Task::PushRetry { workspace_id: workspace_id.to_owned(), push_id: push.id.clone(), attempt: attempt + 1 };
        ctx.queue.send(vec![task.delayed(delay)]).await?;
    }
    Ok(())
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
        // A redelivered task: its attempt is recorded, but what followed may not have been.
        if push.attempts == attempt {
            let delivered: Vec<String> = push
                .leads
                .iter()
                .filter(|l| l.outcome == LeadOutcome::Pushed && l.attempt == Some(attempt))
                .map(|l| l.lead_id.clone())
                .collect();
            let loaded = load(ctx, workspace_id, &delivered).await?;
            follow_up(ctx, workspace_id, &push, attempt, &loaded).await?;
        }
        return Ok(());
    }
    if push.status.is_final() {
        return Ok(());
    }
    let target = match retry_target(ctx, workspace_id, &push).await? {
        Ok(target) => target,
        Err(reason) => {
            return settle(ctx, workspace_id, push_id, attempt, |p| p.abandon(attempt, &reason, ctx.now()), &[]).await;
        }
    };
    let pending = push.pending_ids();
    let loaded = load(ctx, workspace_id, &pending).await?;
    let leads: Vec<Lead> = loaded.iter().map(|(lead, _)| lead.clone()).collect();
    let mut result = send::attempt(ctx, push_id, attempt, &target, &leads).await;
    let present: HashSet<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    let gone = pending.iter().filter(|id| !present.contains(id.as_str())).map(|id| (id.clone(), LeadResult::Missing));
    result.leads.extend(gone.collect::<Vec<_>>());
    let delay = next_delay(ctx, attempt, &result);
    settle(ctx, workspace_id, push_id, attempt, |p| p.record_attempt(attempt, &result, delay, ctx.now()), &loaded).await
}

/// Records attempt `attempt` (unless it already is) and follows up on it.
async fn settle(
    ctx: &AppContext,
    workspace_id: &str,
    push_id: &str,
    attempt: u32,
    record: impl Fn(&mut Push),
    loaded: &[(Lead, u64)],
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
    follow_up(ctx, workspace_id, &push, attempt, loaded).await
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
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::repo::workspaces;

    /// A local receiver that answers 503 to its first request and 200 after; counts requests.
    async fn flaky_receiver() -> (String, Arc<AtomicUsize>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                let status = if counter.fetch_add(1, Ordering::SeqCst) == 0 { 503 } else { 200 };
                (axum::http::StatusCode::from_u16(status).unwrap(), "{}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redelivered_retry_neither_sends_nor_records_twice() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let store = &*ctx.store;
        let ws = workspaces::create_workspace(store, "Retry", ctx.now()).await.unwrap().id;
        let lead = Lead::new("req_RETRY_0001".into(), "cmp_1".into(), None, LeadFields::default(), ctx.now());
        leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
        let (url, seen) = flaky_receiver().await;

        let summary = start(&ctx, &ws, Target::Webhook { url }, vec![lead.id.clone()]).await.unwrap();
        assert_eq!((summary.provider_status_code, summary.dispatched), (Some(503), false));
        let push = pushes::get(store, &ws, &summary.push_id).await.unwrap().unwrap();
        assert_eq!((push.status, push.attempts), (PushState::Retrying, 1));

        retry(&ctx, &ws, &summary.push_id, 2).await.unwrap();
        let done = pushes::get(store, &ws, &summary.push_id).await.unwrap().unwrap();
        assert_eq!((done.status, done.attempts, seen.load(Ordering::SeqCst)), (PushState::Dispatched, 2, 2));
        // The queue delivers at least once: the same task again, or a stale one, changes nothing.
        retry(&ctx, &ws, &summary.push_id, 2).await.unwrap();
        retry(&ctx, &ws, &summary.push_id, 1).await.unwrap();
        retry(&ctx, &ws, "push_01NOSUCHPUSH0000000000000000", 2).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        assert_eq!(pushes::get(store, &ws, &summary.push_id).await.unwrap().unwrap(), done);
        assert_eq!(
            leads::get(store, &ws, &lead.id).await.unwrap().unwrap().status,
            crate::domain::lead::LeadStatus::Pushed
        );
    }
}
