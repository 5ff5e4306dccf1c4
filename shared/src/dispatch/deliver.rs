//! Outbound notifications: `save_lead` fan-out to endpoints, and one delivery attempt.
//!
//! At-least-once queues redeliver messages, so both steps are idempotent: fan-out derives
//! delivery ids from the event, and an attempt first takes a short lease on its delivery,
//! skips settled deliveries, and records the outcome with a versioned write.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use super::{FAN_OUT_LEADS, Task, TaskError};
use crate::context::AppContext;
use crate::delivery::webhook::{SignedRequest, send_signed};
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, NextStep, next_step};
use crate::domain::webhook::{DisablePolicy, EventType, Webhook, save_lead_payload};
use crate::repo::{UpdateError, deliveries, leads, update_versioned, update_versioned_from, webhooks};
use crate::store::Item;
use crate::support::time::Timestamp;

/// The pseudo endpoint id under which `?webhook_url=` callbacks are recorded.
pub const CALLBACK: &str = "callback";

/// How long an attempt holds its delivery: the call's timeout plus a margin.
fn lease(ctx: &AppContext) -> Duration {
    ctx.config.outbound_timeout + Duration::from_secs(30)
}

pub fn new_delivery(
    id: String,
    webhook_id: &str,
    event: &str,
    lead_id: Option<String>,
    target_url: Option<String>,
    payload: serde_json::Value,
    now: Timestamp,
) -> Delivery {
    let message_id = id.replacen("dlv_", "msg_", 1);
    Delivery {
        id,
        webhook_id: webhook_id.to_owned(),
        event: event.to_owned(),
        message_id,
        lead_id,
        target_url,
        payload,
        status: DeliveryStatus::Pending,
        attempts: Vec::new(),
        next_attempt_at: Some(now),
        in_flight_until: None,
        created_at: now,
        updated_at: now,
    }
}

/// Records a `?webhook_url=` callback carrying `{"data": data}` and queues its first attempt.
/// The URL must already have passed the SSRF check (`Outbound::check_url`).
pub async fn queue_callback(
    ctx: &AppContext,
    workspace_id: &str,
    url: &str,
    event: &str,
    data: &impl serde::Serialize,
) -> Result<String, TaskError> {
    let payload = serde_json::json!({ "data": data });
    let delivery = new_delivery(
        crate::support::ids::new_id(crate::support::ids::DELIVERY),
        CALLBACK,
        event,
        None,
        Some(url.to_owned()),
        payload,
        ctx.now(),
    );
    ctx.store.put(deliveries::item(workspace_id, &delivery)?, crate::store::Condition::NotExists).await?;
    enqueue(ctx, workspace_id, std::slice::from_ref(&delivery), false).await?;
    tracing::info!(workspace_id, event, delivery_id = delivery.id, "callback queued");
    Ok(delivery.id)
}

/// The `Deliver` message for the next attempt of `delivery`.
fn deliver_task(workspace_id: &str, delivery: &Delivery, manual: bool) -> Task {
    Task::Deliver {
        workspace_id: workspace_id.to_owned(),
        webhook_id: delivery.webhook_id.clone(),
        delivery_id: delivery.id.clone(),
        manual,
        attempt: Some(delivery.attempts_made() + 1),
    }
}

/// Queues the next attempt of each delivery.
pub async fn enqueue(
    ctx: &AppContext,
    workspace_id: &str,
    deliveries: &[Delivery],
    manual: bool,
) -> Result<(), TaskError> {
    let messages = deliveries.iter().map(|d| deliver_task(workspace_id, d, manual).message()).collect();
    Ok(ctx.queue.send(messages).await?)
}

/// Which `save_lead` event a fan-out belongs to.
#[derive(Debug, Clone, Copy)]
pub struct SaveLeadEvent<'a> {
    pub workspace_id: &'a str,
    pub event_id: &'a str,
    pub occurred_at: Timestamp,
}

/// `save_lead` for these leads to every enabled endpoint subscribed to it. Without
/// `webhook_id` it splits the work into parts of one endpoint and [`FAN_OUT_LEADS`] leads,
/// each its own message (done here directly when there is only one part), so no task has
/// more than a bounded amount of reading, writing and queueing to do. With `webhook_id` it
/// is one such part.
pub async fn fan_out_save_lead(
    ctx: &AppContext,
    event: SaveLeadEvent<'_>,
    lead_ids: &[String],
    webhook_id: Option<&str>,
) -> Result<(), TaskError> {
    let store = &*ctx.store;
    let workspace_id = event.workspace_id;
    let endpoints = webhooks::subscribed(store, workspace_id, EventType::SaveLead).await?;
    let endpoints: Vec<&Webhook> = endpoints.iter().filter(|w| webhook_id.is_none_or(|id| w.id == id)).collect();
    let parts = endpoints.len() * lead_ids.len().div_ceil(FAN_OUT_LEADS);
    match (endpoints.as_slice(), webhook_id) {
        ([], _) => Ok(()),
        ([endpoint], _) if parts == 1 => fan_out_part(ctx, event, endpoint, lead_ids).await,
        (_, Some(_)) => {
            // A part with more leads than a part holds (never sent so): work chunk by chunk.
            for chunk in lead_ids.chunks(FAN_OUT_LEADS) {
                fan_out_part(ctx, event, endpoints[0], chunk).await?;
            }
            Ok(())
        }
        (_, None) => {
            let messages: Vec<_> = endpoints
                .iter()
                .flat_map(|endpoint| {
                    lead_ids.chunks(FAN_OUT_LEADS).map(move |chunk| {
                        Task::LeadsSaved {
                            workspace_id: workspace_id.to_owned(),
                            lead_ids: chunk.to_vec(),
                            event_id: event.event_id.to_owned(),
                            occurred_at: event.occurred_at,
                            webhook_id: Some(endpoint.id.clone()),
                        }
                        .message()
                    })
                })
                .collect();
            tracing::info!(workspace_id, endpoints = endpoints.len(), parts = messages.len(), "save_lead split");
            Ok(ctx.queue.send(messages).await?)
        }
    }
}

/// One endpoint, at most [`FAN_OUT_LEADS`] leads: store the missing deliveries, queue every
/// pending one. Redelivered, it creates nothing twice (ids derive from the event).
async fn fan_out_part(
    ctx: &AppContext,
    event: SaveLeadEvent<'_>,
    endpoint: &Webhook,
    lead_ids: &[String],
) -> Result<(), TaskError> {
    let store = &*ctx.store;
    let leads = leads::get_many(store, event.workspace_id, lead_ids).await?;
    let now = ctx.now();
    let planned = leads
        .iter()
        .map(|lead| {
            let parts = [event.event_id, &endpoint.id, &lead.id];
            let id = deliveries::deterministic_id(&parts, event.occurred_at.unix_millis());
            let payload = save_lead_payload(lead, event.occurred_at);
            new_delivery(id, &endpoint.id, "save_lead", Some(lead.id.clone()), None, payload, now)
        })
        .collect();
    drop(leads);
    let pending = deliveries::create_missing(store, event.workspace_id, planned).await?;
    tracing::info!(
        workspace_id = event.workspace_id,
        webhook_id = endpoint.id,
        deliveries = pending.len(),
        "save_lead fanned out"
    );
    enqueue(ctx, event.workspace_id, &pending, false).await
}

/// How long past its due time a pending delivery may sit before the sweeper re-queues it.
pub const SWEEP_GRACE: Duration = Duration::from_secs(15 * 60);
/// A message may arrive this early for its attempt (clock differences) and still run.
const EARLY_TOLERANCE: Duration = Duration::from_secs(5);

/// Re-queues the next attempt of pending deliveries overdue by more than [`SWEEP_GRACE`]
/// (their message lost: a failed send, a dead-lettered task), and marks them due again
/// from now so the next sweep leaves them to that message. Returns how many it re-queued.
pub async fn sweep(ctx: &AppContext, now: Timestamp) -> Result<usize, TaskError> {
    let store = &*ctx.store;
    let cutoff = Timestamp::from_unix_millis(now.unix_millis() - SWEEP_GRACE.as_millis() as i64).unwrap_or(now);
    let mut requeued = 0;
    for (workspace_id, delivery) in deliveries::overdue(store, cutoff).await? {
        let key = deliveries::key(&workspace_id, &delivery.webhook_id, &delivery.id);
        let refreshed = update_versioned(
            store,
            &key,
            |d: &mut Delivery| {
                if d.is_settled() || d.due_at().is_none_or(|due| due >= cutoff) {
                    return Err(());
                }
                d.next_attempt_at = Some(now);
                d.in_flight_until = None;
                Ok(())
            },
            |d| deliveries::item(&workspace_id, d),
        )
        .await;
        match refreshed {
            Ok(d) => {
                tracing::warn!(
                    workspace_id,
                    webhook_id = d.webhook_id,
                    delivery_id = d.id,
                    attempt = d.attempts_made() + 1,
                    "sweeper re-queued an overdue delivery"
                );
                ctx.queue.send(vec![deliver_task(&workspace_id, &d, false).message()]).await?;
                requeued += 1;
            }
            Err(UpdateError::Rejected(())) | Err(UpdateError::NotFound) => {}
            Err(UpdateError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(requeued)
}

enum Skip {
    /// Settled, expired, or this message's attempt was made already (a stale duplicate).
    Stale,
    Leased(Duration),
}

/// Where an attempt goes and how it is signed.
struct Target {
    url: String,
    method: reqwest::Method,
    headers: BTreeMap<String, String>,
    secrets: Vec<String>,
    /// The endpoint has a failure streak that a success must clear.
    failing: bool,
}

/// Why an attempt was not even sent.
type NotSent = String;

/// `stored` is the endpoint's item (or the callback secret's), read with the delivery.
async fn resolve_target(
    ctx: &AppContext,
    workspace_id: &str,
    delivery: &Delivery,
    stored: Option<Item>,
    now: Timestamp,
) -> Result<Result<Target, NotSent>, TaskError> {
    if delivery.webhook_id == CALLBACK {
        let secret: webhooks::CallbackSecret = match stored {
            Some(item) => item.parse()?,
            // The first callback of the workspace creates it.
            None => webhooks::callback_secret(&*ctx.store, workspace_id, now).await?,
        };
        let Some(url) = delivery.target_url.clone() else { return Ok(Err("callback has no URL".into())) };
        return Ok(Ok(Target {
            url,
            method: reqwest::Method::POST,
            headers: BTreeMap::new(),
            secrets: secret.signing.signing_secrets(now).into_iter().map(str::to_owned).collect(),
            failing: false,
        }));
    }
    let endpoint: Option<Webhook> = stored.map(|item| item.parse()).transpose()?;
    match endpoint {
        None => Ok(Err("not sent: the endpoint was deleted".into())),
        Some(endpoint) if !endpoint.enabled => Ok(Err(format!(
            "not sent: the endpoint is disabled{}",
            endpoint.disabled_reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ))),
        Some(endpoint) => Ok(Ok(Target {
            url: endpoint.url.clone(),
            method: endpoint.method.as_http(),
            headers: endpoint.headers.clone(),
            secrets: endpoint.signing_secrets(now).into_iter().map(str::to_owned).collect(),
            failing: endpoint.failure_streak > 0 || endpoint.failing_since.is_some(),
        })),
    }
}

/// One attempt of one delivery.
pub async fn deliver(
    ctx: &AppContext,
    workspace_id: &str,
    webhook_id: &str,
    delivery_id: &str,
    manual: bool,
    attempt: Option<u32>,
) -> Result<(), TaskError> {
    let store = &*ctx.store;
    let key = deliveries::key(workspace_id, webhook_id, delivery_id);
    let now = ctx.now();
    let lease_until = now.plus(lease(ctx));
    // The delivery and what it is sent with (its endpoint, or the callback secret) in one
    // consistent BatchGetItem: with the claim and the record, an attempt makes 3 store
    // calls on Lambda, where the SQS event source receives and deletes the messages.
    let target_key = if webhook_id == CALLBACK {
        webhooks::callback_secret_key(workspace_id)
    } else {
        webhooks::key(workspace_id, webhook_id)
    };
    let mut found = store.batch_get(&[key.clone(), target_key.clone()]).await?;
    let stored_target = found.iter().position(|i| i.key == target_key).map(|at| found.swap_remove(at));
    let known = match found.into_iter().find(|i| i.key == key) {
        Some(item) => Some((item.parse::<Delivery>()?, item.version)),
        None => None,
    };
    let claimed = update_versioned_from(
        store,
        &key,
        known,
        |d: &mut Delivery| {
            let made = d.attempts_made();
            // An attempt on record without its result: its worker died after (or during) the
            // send. Its message, redelivered once the lease ends, runs as the next attempt.
            let interrupted = d.attempts.last().is_some_and(Attempt::is_unfinished);
            let wrong_attempt = attempt.is_some_and(|n| n != made + 1 && !(interrupted && n == made));
            let early = d.next_attempt_at.is_some_and(|at| at > now.plus(EARLY_TOLERANCE));
            if d.is_settled() || d.is_expired(now) || wrong_attempt || early {
                return Err(Skip::Stale);
            }
            if let Some(until) = d.in_flight_until.filter(|_| d.is_leased(now)) {
                let left = (until.unix_millis() - now.unix_millis()).max(0) as u64;
                return Err(Skip::Leased(Duration::from_millis(left)));
            }
            d.in_flight_until = Some(lease_until);
            // The attempt is on record before anything is sent: if this worker dies between
            // the send and the result, the attempt still counts, and the redelivery after the
            // lease is the next number.
            d.attempts.push(Attempt::started(made + 1, now, manual));
            Ok(())
        },
        |d| deliveries::item(workspace_id, d),
    )
    .await;
    let (delivery, version) = match claimed {
        Ok(claimed) => claimed,
        // Settled already, expired, or a duplicate of an attempt made: nothing to do.
        Err(UpdateError::Rejected(Skip::Stale)) | Err(UpdateError::NotFound) => {
            tracing::info!(workspace_id, webhook_id, delivery_id, attempt, "stale delivery message skipped");
            return Ok(());
        }
        Err(UpdateError::Rejected(Skip::Leased(left))) => {
            // Another worker is mid-attempt; look again once its lease ends, in case it died.
            let again = Task::Deliver {
                workspace_id: workspace_id.to_owned(),
                webhook_id: webhook_id.to_owned(),
                delivery_id: delivery_id.to_owned(),
                manual,
                attempt,
            };
            ctx.queue.send(vec![again.delayed(left + Duration::from_secs(1))]).await?;
            return Ok(());
        }
        Err(UpdateError::Store(e)) => return Err(e.into()),
    };

    // The claim recorded this attempt as started: it is the last one.
    let number = delivery.attempts_made();
    // `sent`: whether the attempt reached the network (and so says something about the endpoint).
    let (attempt, step, sent, failing) = match resolve_target(ctx, workspace_id, &delivery, stored_target, now).await? {
        Err(reason) => {
            let attempt = Attempt {
                number,
                at: now,
                status_code: None,
                duration_ms: 0,
                response: None,
                error: Some(reason),
                manual,
            };
            (attempt, NextStep::GiveUp, false, false)
        }
        Ok(target) => {
            let body = serde_json::to_vec(&delivery.payload).map_err(|e| TaskError::Failed(e.to_string()))?;
            let request = SignedRequest {
                url: &target.url,
                method: target.method,
                headers: &target.headers,
                message_id: &delivery.message_id,
                body: &body,
                secrets: target.secrets.iter().map(String::as_str).collect(),
            };
            let result = send_signed(&ctx.outbound, request, now).await;
            let schedule = &ctx.config.webhook_retry_schedule;
            let jitter = rand::random_range(0.8..=1.2);
            let step = next_step(result.delivered, number, schedule, result.retry_after, manual, jitter);
            let attempt = Attempt {
                number,
                at: now,
                status_code: result.status_code,
                duration_ms: result.duration.as_millis() as u64,
                response: result.response,
                error: result.error,
                manual,
            };
            (attempt, step, true, target.failing)
        }
    };

    let finished = ctx.now();
    // We hold the lease, so the version we wrote is almost surely still current.
    let recorded = update_versioned_from(
        store,
        &key,
        Some((delivery, version)),
        |d: &mut Delivery| {
            match d.attempts.iter_mut().rfind(|a| a.number == attempt.number) {
                Some(started) => *started = attempt.clone(),
                None => d.attempts.push(attempt.clone()),
            }
            d.in_flight_until = None;
            d.updated_at = finished;
            match step {
                NextStep::Delivered => {
                    d.status = DeliveryStatus::Delivered;
                    d.next_attempt_at = None;
                }
                NextStep::RetryIn(delay) => d.next_attempt_at = Some(finished.plus(delay)),
                NextStep::GiveUp => {
                    d.status = DeliveryStatus::Failed;
                    d.next_attempt_at = None;
                }
            }
            Ok::<_, Infallible>(())
        },
        |d| deliveries::item(workspace_id, d),
    )
    .await;
    match recorded {
        Ok(_) | Err(UpdateError::NotFound) => {}
        Err(UpdateError::Store(e)) => return Err(e.into()),
        Err(UpdateError::Rejected(never)) => match never {},
    }
    tracing::info!(
        workspace_id,
        webhook_id,
        delivery_id,
        attempt = number,
        status_code = attempt.status_code,
        outcome = match step {
            NextStep::Delivered => "delivered",
            NextStep::RetryIn(_) => "retry",
            NextStep::GiveUp => "failed",
        },
        "delivery attempt"
    );

    if let NextStep::RetryIn(delay) = step {
        let retry = Task::Deliver {
            workspace_id: workspace_id.to_owned(),
            webhook_id: webhook_id.to_owned(),
            delivery_id: delivery_id.to_owned(),
            manual: false,
            attempt: Some(number + 1),
        };
        ctx.queue.send(vec![retry.delayed(delay)]).await?;
    }
    if webhook_id != CALLBACK && sent {
        match step {
            NextStep::Delivered if failing => track_endpoint_health(ctx, workspace_id, webhook_id, true).await,
            NextStep::GiveUp => track_endpoint_health(ctx, workspace_id, webhook_id, false).await,
            _ => {}
        }
    }
    Ok(())
}

/// Success ends an endpoint's failure streak; a delivery that failed every retry extends
/// it and may disable the endpoint.
async fn track_endpoint_health(ctx: &AppContext, workspace_id: &str, webhook_id: &str, delivered: bool) {
    let policy = DisablePolicy {
        after_failed_deliveries: ctx.config.webhook_disable_after_failures,
        after_failing_for: ctx.config.webhook_disable_after,
    };
    let now = ctx.now();
    let key = webhooks::key(workspace_id, webhook_id);
    let result = update_versioned(
        &*ctx.store,
        &key,
        |w: &mut Webhook| {
            if delivered {
                // Err: nothing to clear, nothing to write.
                return if w.record_success() { Ok(()) } else { Err(()) };
            }
            if w.record_failure(policy, now) {
                tracing::warn!(
                    webhook_id = w.id,
                    streak = w.failure_streak,
                    "endpoint disabled after repeated failures"
                );
            }
            Ok(())
        },
        |w| webhooks::item(workspace_id, w),
    )
    .await;
    if let Err(UpdateError::Store(e)) = result {
        tracing::warn!(webhook_id, error = %e, "endpoint health not recorded");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::lead::{Lead, LeadFields};
    use crate::repo::workspaces;

    /// A receiver that accepts everything and counts what it got.
    async fn receiver() -> (String, Arc<AtomicUsize>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    async fn drain(ctx: &AppContext) -> Vec<Task> {
        crate::testing::drain_tasks(ctx).await
    }

    async fn endpoint(ctx: &AppContext, ws: &str, name: &str, url: &str) -> Webhook {
        crate::testing::save_lead_endpoint(ctx, ws, name, url).await
    }

    fn leads_saved(ws: &str, lead_ids: Vec<String>) -> Task {
        Task::LeadsSaved {
            workspace_id: ws.into(),
            lead_ids,
            event_id: "evt_1".into(),
            occurred_at: Timestamp::now(),
            webhook_id: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fan_out_splits_per_endpoint_and_chunk_and_stale_messages_are_skipped() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let ws = workspaces::create_workspace(&*ctx.store, "Fan", ctx.now()).await.unwrap().id;
        let (url, seen) = receiver().await;
        let (a, b) = (endpoint(&ctx, &ws, "a", &url).await, endpoint(&ctx, &ws, "b", &url).await);
        let ids: Vec<String> = (0..FAN_OUT_LEADS + 5).map(|i| format!("req_FAN_{i:04}")).collect();
        let leads: Vec<Lead> = ids
            .iter()
            .map(|id| Lead::new(id.clone(), "cmp_1".into(), None, LeadFields::default(), ctx.now()))
            .collect();
        leads::put_many(&*ctx.store, &ws, &leads).await.unwrap();

        // One task of 30 leads and 2 endpoints becomes 4 parts of one endpoint each.
        super::super::run(&ctx, leads_saved(&ws, ids.clone())).await.unwrap();
        let parts = drain(&ctx).await;
        assert_eq!(parts.len(), 4, "{parts:?}");
        for part in &parts {
            let Task::LeadsSaved { lead_ids, webhook_id: Some(w), .. } = part else { panic!("{part:?}") };
            assert!(lead_ids.len() <= FAN_OUT_LEADS && (w == &a.id || w == &b.id));
        }
        for part in parts.iter().chain(&parts[..1]) {
            super::super::run(&ctx, part.clone()).await.unwrap();
        }
        let deliveries = drain(&ctx).await;
        let first: Vec<Task> =
            deliveries.iter().filter(|t| matches!(t, Task::Deliver { attempt: Some(1), .. })).cloned().collect();
        let Task::LeadsSaved { lead_ids: again, .. } = &parts[0] else { unreachable!() };
        assert_eq!(first.len(), 2 * ids.len() + again.len(), "a redelivered part queues its pending ones again");
        let mut distinct: Vec<String> = deliveries
            .iter()
            .map(|t| if let Task::Deliver { delivery_id, .. } = t { delivery_id.clone() } else { unreachable!() })
            .collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 2 * ids.len(), "one delivery per lead and endpoint");

        // Every message runs, duplicates included: each delivery is sent once.
        for task in deliveries {
            super::super::run(&ctx, task).await.unwrap();
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2 * ids.len());
        // A stale message for attempt 1 of a delivered delivery sends nothing.
        let Task::Deliver { webhook_id, delivery_id, .. } = &first[0] else { unreachable!() };
        deliver(&ctx, &ws, webhook_id, delivery_id, false, Some(1)).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 2 * ids.len());
        assert!(drain(&ctx).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_requeues_overdue_deliveries_and_skips_early_or_wrong_attempts() {
        let (ctx, _dir) = crate::testing::embedded_context();
        sweeper_requeues_overdue_deliveries(ctx).await;
    }

    /// On DynamoDB the sweep index (gsi2) holds keys only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_requeues_overdue_deliveries_on_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        sweeper_requeues_overdue_deliveries(ctx).await;
    }

    async fn sweeper_requeues_overdue_deliveries(ctx: AppContext) {
        let ws = workspaces::create_workspace(&*ctx.store, "Sweep", ctx.now()).await.unwrap().id;
        let (url, seen) = receiver().await;
        let hook = endpoint(&ctx, &ws, "a", &url).await;
        let now = ctx.now();
        let mut delivery =
            new_delivery("dlv_SWEEP".into(), &hook.id, "save_lead", None, None, serde_json::json!({}), now);
        delivery.next_attempt_at = Some(now.plus(Duration::from_secs(600)));
        delivery.attempts.push(Attempt {
            number: 1,
            at: now,
            status_code: Some(500),
            duration_ms: 1,
            response: None,
            error: None,
            manual: false,
        });
        ctx.store.put(deliveries::item(&ws, &delivery).unwrap(), crate::store::Condition::NotExists).await.unwrap();

        // Early, a message sends nothing (a duplicate ahead of its schedule).
        deliver(&ctx, &ws, &hook.id, "dlv_SWEEP", false, Some(2)).await.unwrap();
        assert_eq!(sweep(&ctx, now.plus(Duration::from_secs(601))).await.unwrap(), 0, "not overdue yet");
        // Its retry message was lost, and the retry is now 20 minutes overdue.
        delivery.next_attempt_at = Some(Timestamp::from_unix_millis(now.unix_millis() - 20 * 60 * 1000).unwrap());
        ctx.store.put(deliveries::item(&ws, &delivery).unwrap(), crate::store::Condition::Always).await.unwrap();
        assert_eq!(sweep(&ctx, now).await.unwrap(), 1);
        assert_eq!(sweep(&ctx, now).await.unwrap(), 0, "due again from now: left to its message");
        let tasks = drain(&ctx).await;
        let [Task::Deliver { attempt: Some(2), manual: false, .. }] = tasks.as_slice() else { panic!("{tasks:?}") };
        deliver(&ctx, &ws, &hook.id, "dlv_SWEEP", false, Some(3)).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        super::super::run(&ctx, tasks[0].clone()).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        let stored = deliveries::get(&*ctx.store, &ws, &hook.id, "dlv_SWEEP").await.unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts.len()), (DeliveryStatus::Delivered, 2));
        assert_eq!(sweep(&ctx, now.plus(SWEEP_GRACE * 2)).await.unwrap(), 0, "settled: out of the index");
    }
}

#[cfg(all(test, feature = "embedded"))]
mod crash_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::delivery::INTERRUPTED;
    use crate::repo::workspaces;
    use crate::store::faulty::{Fault, FaultyStore, Op, Rule};

    struct ManualClock(Mutex<Timestamp>);

    impl crate::support::time::Clock for ManualClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    /// A real receiver on a free loopback port that counts the requests it answers.
    async fn receiver() -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hits)
    }

    /// The worker sends, then dies before recording the result (here: the write of the
    /// result is lost). The attempt was on record before the send, so the queue's redelivery
    /// of the same message (attempt 1) runs after the lease as attempt 2, and the log counts
    /// both sends.
    async fn a_send_whose_result_was_never_recorded_still_counts(mut ctx: AppContext) {
        let clock = Arc::new(ManualClock(Mutex::new(Timestamp::now())));
        ctx.clock = clock.clone();
        let faulty = Arc::new(FaultyStore::new(ctx.store.clone()));
        ctx.store = faulty.clone();
        let ws = workspaces::create_workspace(&*ctx.store, "Crash", ctx.now()).await.unwrap().id;
        let (url, hits) = receiver().await;
        let id = queue_callback(&ctx, &ws, &url, "test", &serde_json::json!({"n": 1})).await.unwrap();
        // The claim is the delivery's next write and goes through; the result's write is lost.
        faulty.add(Rule::new(Op::Put, Fault::Timeout).on_keys_containing(id.as_str()).skip(1));

        let lost = deliver(&ctx, &ws, CALLBACK, &id, false, Some(1)).await;
        assert!(lost.is_err(), "the task fails, so the queue hands it out again");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(faulty.injected(), 1);
        let stored = || async {
            let item = ctx.store.get(&deliveries::key(&ws, CALLBACK, &id)).await.unwrap().unwrap();
            item.parse::<Delivery>().unwrap()
        };
        let pending = stored().await;
        assert_eq!(pending.attempts_made(), 1, "the attempt is on record although its result is not");
        assert_eq!(pending.attempts[0].error.as_deref(), Some(INTERRUPTED));

        // While the lease holds, a redelivery does not send (the worker may still be alive).
        deliver(&ctx, &ws, CALLBACK, &id, false, Some(1)).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // After the lease, it sends again: attempt 2, and the log counts both.
        let later = ctx.now().plus(lease(&ctx) + Duration::from_secs(1));
        *clock.0.lock().unwrap() = later;
        deliver(&ctx, &ws, CALLBACK, &id, false, Some(1)).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        let done = stored().await;
        assert_eq!(done.status, DeliveryStatus::Delivered);
        assert_eq!(done.attempts_made(), 2);
        let numbers: Vec<u32> = done.attempts.iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!((done.attempts[0].status_code, done.attempts[0].error.as_deref()), (None, Some(INTERRUPTED)));
        assert_eq!((done.attempts[1].status_code, done.attempts[1].error.as_deref()), (Some(200), None));
        assert!(done.in_flight_until.is_none());
    }

    /// The store throttles the delivery's claim: the task fails as transient, its message
    /// goes back to the queue for a retry (after the infrastructure backoff), and the retry
    /// delivers it once.
    async fn a_throttled_task_is_returned_for_retry_then_succeeds(mut ctx: AppContext) {
        let faulty = Arc::new(FaultyStore::new(ctx.store.clone()));
        ctx.store = faulty.clone();
        let ws = workspaces::create_workspace(&*ctx.store, "Throttled", ctx.now()).await.unwrap().id;
        let (url, hits) = receiver().await;
        let id = queue_callback(&ctx, &ws, &url, "test", &serde_json::json!({"n": 1})).await.unwrap();
        faulty.add(Rule::new(Op::Put, Fault::Throttle).on_keys_containing(id.as_str()));
        let messages = ctx.queue.receive(10, Duration::from_secs(1)).await.unwrap();
        assert_eq!(messages.len(), 1);

        let first = crate::dispatch::process_batch(&ctx, crate::dispatch::Worker::ALL, &messages).await;
        let [crate::dispatch::Disposition::RetryAfter(delay)] = first.as_slice() else { panic!("{first:?}") };
        assert!(*delay >= Duration::from_secs(30), "storage trouble backs off as infrastructure: {delay:?}");
        assert_eq!((faulty.injected(), hits.load(Ordering::SeqCst)), (1, 0));

        let mut again = messages[0].clone();
        again.receive_count += 1;
        let second = crate::dispatch::process_batch(&ctx, crate::dispatch::Worker::ALL, &[again]).await;
        assert_eq!(second, [crate::dispatch::Disposition::Done]);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let item = ctx.store.get(&deliveries::key(&ws, CALLBACK, &id)).await.unwrap().unwrap();
        let delivered: Delivery = item.parse().unwrap();
        assert_eq!((delivered.status, delivered.attempts_made()), (DeliveryStatus::Delivered, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_throttled_task_is_returned_for_retry_then_succeeds_embedded() {
        let (ctx, _dir) = crate::testing::embedded_context();
        a_throttled_task_is_returned_for_retry_then_succeeds(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_throttled_task_is_returned_for_retry_then_succeeds_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        a_throttled_task_is_returned_for_retry_then_succeeds(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_whose_result_was_never_recorded_still_counts_embedded() {
        let (ctx, _dir) = crate::testing::embedded_context();
        a_send_whose_result_was_never_recorded_still_counts(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_whose_result_was_never_recorded_still_counts_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        a_send_whose_result_was_never_recorded_still_counts(ctx).await;
    }
}
