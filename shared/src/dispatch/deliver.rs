//! Outbound notifications: `save_lead` fan-out to endpoints, and one delivery attempt.
//!
//! At-least-once queues redeliver messages, so both steps are idempotent: fan-out derives
//! delivery ids from the event, and an attempt first takes a short lease on its delivery,
//! skips settled deliveries, and records the outcome with a versioned write.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use super::{Task, TaskError};
use crate::context::AppContext;
use crate::delivery::webhook::{SignedRequest, send_signed};
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, NextStep, next_step};
use crate::domain::webhook::{DisablePolicy, EventType, Webhook, save_lead_payload};
use crate::repo::{UpdateError, deliveries, leads, update_versioned, update_versioned_from, webhooks};
use crate::time::Timestamp;

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
        crate::ids::new_id(crate::ids::DELIVERY),
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

/// Queues one attempt for each delivery.
pub async fn enqueue(
    ctx: &AppContext,
    workspace_id: &str,
    deliveries: &[Delivery],
    manual: bool,
) -> Result<(), TaskError> {
    let messages = deliveries
        .iter()
        .map(|d| {
            Task::Deliver {
                workspace_id: workspace_id.to_owned(),
                webhook_id: d.webhook_id.clone(),
                delivery_id: d.id.clone(),
                manual,
            }
            .message()
        })
        .collect();
    Ok(ctx.queue.send(messages).await?)
}

/// `save_lead` for these leads to every enabled endpoint subscribed to it.
pub async fn fan_out_save_lead(
    ctx: &AppContext,
    workspace_id: &str,
    lead_ids: &[String],
    event_id: &str,
    occurred_at: Timestamp,
) -> Result<(), TaskError> {
    let store = &*ctx.store;
    let endpoints = webhooks::subscribed(store, workspace_id, EventType::SaveLead).await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let leads = leads::get_many(store, workspace_id, lead_ids).await?;
    let now = ctx.now();
    let mut planned = Vec::with_capacity(endpoints.len() * leads.len());
    for endpoint in &endpoints {
        for lead in &leads {
            let id = deliveries::deterministic_id(&[event_id, &endpoint.id, &lead.id], occurred_at.unix_millis());
            let payload = save_lead_payload(lead, occurred_at);
            planned.push(new_delivery(id, &endpoint.id, "save_lead", Some(lead.id.clone()), None, payload, now));
        }
    }
    let pending = deliveries::create_missing(store, workspace_id, planned).await?;
    tracing::info!(workspace_id, endpoints = endpoints.len(), deliveries = pending.len(), "save_lead fanned out");
    enqueue(ctx, workspace_id, &pending, false).await
}

enum Skip {
    Settled,
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

async fn resolve_target(
    ctx: &AppContext,
    workspace_id: &str,
    delivery: &Delivery,
    now: Timestamp,
) -> Result<Result<Target, NotSent>, TaskError> {
    if delivery.webhook_id == CALLBACK {
        let secret = webhooks::callback_secret(&*ctx.store, workspace_id, now).await?;
        let Some(url) = delivery.target_url.clone() else { return Ok(Err("callback has no URL".into())) };
        return Ok(Ok(Target {
            url,
            method: reqwest::Method::POST,
            headers: BTreeMap::new(),
            secrets: secret.signing.signing_secrets(now).into_iter().map(str::to_owned).collect(),
            failing: false,
        }));
    }
    match webhooks::get(&*ctx.store, workspace_id, &delivery.webhook_id).await? {
        None => Ok(Err("not sent: the endpoint was deleted".into())),
        Some((endpoint, _)) if !endpoint.enabled => Ok(Err(format!(
            "not sent: the endpoint is disabled{}",
            endpoint.disabled_reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ))),
        Some((endpoint, _)) => Ok(Ok(Target {
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
) -> Result<(), TaskError> {
    let store = &*ctx.store;
    let key = deliveries::key(workspace_id, webhook_id, delivery_id);
    let now = ctx.now();
    let lease_until = now.plus(lease(ctx));
    let claimed = update_versioned_from(
        store,
        &key,
        None,
        |d: &mut Delivery| {
            if d.is_settled() {
                return Err(Skip::Settled);
            }
            if let Some(until) = d.in_flight_until.filter(|_| d.is_leased(now)) {
                let left = (until.unix_millis() - now.unix_millis()).max(0) as u64;
                return Err(Skip::Leased(Duration::from_millis(left)));
            }
            d.in_flight_until = Some(lease_until);
            // The attempt is on record before anything is sent: if this worker dies between
            // the send and the result, the attempt still counts (as interrupted), and the
            // redelivery after the lease is the next number.
            let number = d.attempts_made() + 1;
            d.attempts.push(Attempt::started(number, now, manual));
            Ok(())
        },
        |d| deliveries::item(workspace_id, d),
    )
    .await;
    let (delivery, version) = match claimed {
        Ok(claimed) => claimed,
        // Settled already, or expired: a duplicate message; nothing to do.
        Err(UpdateError::Rejected(Skip::Settled)) | Err(UpdateError::NotFound) => return Ok(()),
        Err(UpdateError::Rejected(Skip::Leased(left))) => {
            // Another worker is mid-attempt; look again once its lease ends, in case it died.
            let again = Task::Deliver {
                workspace_id: workspace_id.to_owned(),
                webhook_id: webhook_id.to_owned(),
                delivery_id: delivery_id.to_owned(),
                manual,
            };
            ctx.queue.send(vec![again.delayed(left + Duration::from_secs(1))]).await?;
            return Ok(());
        }
        Err(UpdateError::Store(e)) => return Err(e.into()),
    };

    // The claim recorded this attempt as started: it is the last one.
    let number = delivery.attempts_made();
    // `sent`: whether the attempt reached the network (and so says something about the endpoint).
    let (attempt, step, sent, failing) = match resolve_target(ctx, workspace_id, &delivery, now).await? {
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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::delivery::INTERRUPTED;
    use crate::repo::workspaces;
    use crate::store::faulty::{Fault, FaultyStore, Op, Rule};

    struct ManualClock(Mutex<Timestamp>);

    impl crate::time::Clock for ManualClock {
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
    /// result is lost). The attempt was on record before the send, so the redelivery after
    /// the lease is attempt 2 and the log counts both sends.
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

        let lost = deliver(&ctx, &ws, CALLBACK, &id, false).await;
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
        deliver(&ctx, &ws, CALLBACK, &id, false).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // After the lease, it sends again: attempt 2, and the log counts both.
        let later = ctx.now().plus(lease(&ctx) + Duration::from_secs(1));
        *clock.0.lock().unwrap() = later;
        deliver(&ctx, &ws, CALLBACK, &id, false).await.unwrap();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_whose_result_was_never_recorded_still_counts_embedded() {
        let (ctx, _dir) = crate::testing::embedded_context();
        a_send_whose_result_was_never_recorded_still_counts(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_whose_result_was_never_recorded_still_counts_dynamodb() {
        let (mut ctx, _dir) = crate::testing::embedded_context();
        ctx.store = crate::testing::dynamo_store().await;
        a_send_whose_result_was_never_recorded_still_counts(ctx).await;
    }
}
