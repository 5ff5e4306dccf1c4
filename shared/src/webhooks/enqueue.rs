//! New deliveries and the messages that carry their attempts: endpoint deliveries and
//! `?webhook_url=` callbacks alike.

use std::time::Duration;

use crate::context::AppContext;
use crate::domain::delivery::{Delivery, DeliveryStatus};
use crate::queue::{Task, TaskError};
use crate::repo::deliveries;
use crate::support::time::Timestamp;

/// The pseudo endpoint id under which `?webhook_url=` callbacks are recorded.
pub const CALLBACK: &str = "callback";

/// How long an attempt holds its delivery: the call's timeout plus a margin.
pub(super) fn lease(ctx: &AppContext) -> Duration {
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
pub(super) fn deliver_task(workspace_id: &str, delivery: &Delivery, manual: bool) -> Task {
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
