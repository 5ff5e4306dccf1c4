//! `save_lead` fan-out: one saved-lead event becomes a delivery per subscribed endpoint.
//! Delivery ids derive from the event, so a redelivered fan-out writes nothing twice.

use super::enqueue::{enqueue, new_delivery};
use crate::context::AppContext;
use crate::domain::webhook::{EventType, Webhook, save_lead_payload};
use crate::queue::{FAN_OUT_LEADS, Task, TaskError};
use crate::repo::{deliveries, leads, webhooks};
use crate::support::time::Timestamp;

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
