//! One delivery attempt: take a short lease on the delivery, skip settled ones, send,
//! and record the outcome with a versioned write.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use super::enqueue::{CALLBACK, lease};
use super::health::track_endpoint_health;
use crate::context::AppContext;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, NextStep, next_step};
use crate::domain::webhook::Webhook;
use crate::queue::{Task, TaskError};
use crate::repo::{UpdateError, deliveries, update_versioned_from, webhooks};
use crate::store::Item;
use crate::support::time::Timestamp;
use crate::webhooks::send::{SignedRequest, send_signed};

/// A message may arrive this early for its attempt (clock differences) and still run.
const EARLY_TOLERANCE: Duration = Duration::from_secs(5);

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
