//! Provider webhook events (Instantly, HeyReach): find the lead the payload names, then
//! record the event like our own route does; events we do not track are acknowledged.

use serde::Serialize;
use utoipa::ToSchema;

use super::record::{NewEvent, record};
use super::{FeedbackError, FeedbackResult};
use crate::context::AppContext;
use crate::domain::feedback::EventSource;
use crate::domain::providers::{LeadRef, NotAccepted, NotAcceptedEvent, Parsed, Provider};
use crate::repo::{lead_lookup, provider_activity};
use crate::support::secrets;

/// A provider event we recorded: the usual result plus the provider's event name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRecorded {
    /// The provider's name for the event, e.g. `reply_received`.
    provider_event: String,
    #[serde(flatten)]
    result: FeedbackResult,
}

/// A provider event acknowledged but not recorded (answered 200 so the tool keeps the
/// webhook enabled), with the reason; counted in the integration's `webhook_activity`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderNotAccepted {
    /// Always false.
    accepted: bool,
    /// `untracked_event`, `unknown_event`, `lead_not_found` or `unusable_payload`.
    reason: NotAccepted,
    source: EventSource,
    provider_event: String,
    mutated_lead: bool,
    stored_event: bool,
    note: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ProviderResult {
    Recorded(ProviderRecorded),
    NotAccepted(ProviderNotAccepted),
}

/// Records a parsed provider payload for `workspace_id`; anything routine that cannot be
/// recorded (unknown or untracked event, unknown lead, unusable payload) is answered
/// `accepted: false`, logged and counted.
pub async fn record_provider(
    ctx: &AppContext,
    workspace_id: &str,
    provider: Provider,
    parsed: Parsed,
) -> Result<ProviderResult, FeedbackError> {
    let event = match parsed {
        Parsed::NotAccepted { provider_event, reason, detail } => {
            return Ok(not_accepted(ctx, workspace_id, provider, provider_event, reason, detail).await);
        }
        Parsed::Event(event) => *event,
    };
    let Some(lead) = lead_lookup::find(&*ctx.store, workspace_id, &event.lead).await? else {
        let detail = format!(
            "no lead of this workspace matches the {} event (by {}); replies from leads Leadpush did not push land here",
            provider.label(),
            identity(&event.lead)
        );
        return Ok(
            not_accepted(ctx, workspace_id, provider, event.provider_event, NotAccepted::LeadNotFound, detail).await
        );
    };
    let new = NewEvent {
        event_type: event.event_type,
        source: provider.source(),
        content: event.content,
        meeting_url: None,
        occurred_at: event.occurred_at.unwrap_or_else(|| ctx.now()),
        metadata: Some(event.metadata),
        // The id is derived from the payload, so it alone says "same event".
        payload_hash: secrets::hash(&event.event_id),
        event_id: Some(event.event_id.clone()),
    };
    let result = record(ctx, workspace_id, &lead.id, new).await?;
    crate::learning::schedule::outcome_arrived(ctx, workspace_id, result.event_type, result.mutated_lead).await;
    count(ctx, workspace_id, provider, &event.event_id, None).await;
    Ok(ProviderResult::Recorded(ProviderRecorded { provider_event: event.provider_event, result }))
}

/// Which identities the lookup tried, without their values (no lead PII in answers or logs).
fn identity(lead: &LeadRef) -> String {
    let tried: Vec<&str> = [
        (lead.lead_id.is_some(), "leadpush_id"),
        (lead.linkedin.is_some(), "LinkedIn profile URL"),
        (lead.email.is_some(), "email"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect();
    tried.join(", ")
}

async fn not_accepted(
    ctx: &AppContext,
    workspace_id: &str,
    provider: Provider,
    provider_event: String,
    reason: NotAccepted,
    detail: String,
) -> ProviderResult {
    let note = format!("Acknowledged, not recorded ({}): {detail}.", reason.as_str());
    tracing::info!(
        provider = provider.label(),
        provider_event,
        reason = reason.as_str(),
        "provider event not accepted"
    );
    let seen = NotAcceptedEvent { reason, provider_event: provider_event.clone(), note: note.clone(), at: ctx.now() };
    let by = format!("{provider_event}.{}", ctx.now().unix_millis());
    count(ctx, workspace_id, provider, &by, Some(&seen)).await;
    ProviderResult::NotAccepted(ProviderNotAccepted {
        accepted: false,
        reason,
        source: provider.source(),
        provider_event,
        mutated_lead: false,
        stored_event: false,
        note,
    })
}

/// Counts the delivery; a failure here must not turn a 200 into an error the tool retries.
async fn count(ctx: &AppContext, workspace_id: &str, provider: Provider, by: &str, seen: Option<&NotAcceptedEvent>) {
    if let Err(e) = provider_activity::record(&*ctx.store, workspace_id, provider, by, seen).await {
        tracing::error!(provider = provider.label(), error = %e, "could not count a provider webhook delivery");
    }
}
