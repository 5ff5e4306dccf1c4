//! Provider webhook events (Instantly, HeyReach): find the lead the payload names, then
//! record the event like our own route does; events we do not track are acknowledged.

use serde::Serialize;
use utoipa::ToSchema;

use super::record::{NewEvent, record};
use super::{FeedbackError, FeedbackResult};
use crate::context::AppContext;
use crate::domain::feedback::EventSource;
use crate::domain::providers::{Parsed, Provider};
use crate::repo::lead_lookup;
use crate::secrets;

/// A provider event we recorded: the usual result plus the provider's event name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRecorded {
    /// The provider's name for the event, e.g. `reply_received`.
    provider_event: String,
    #[serde(flatten)]
    result: FeedbackResult,
}

/// A known provider event that is not an outcome we track: acknowledged, nothing stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderIgnored {
    /// Always false.
    accepted: bool,
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
    Ignored(ProviderIgnored),
}

/// Records a parsed provider payload for `workspace_id`.
pub async fn record_provider(
    ctx: &AppContext,
    workspace_id: &str,
    provider: Provider,
    parsed: Parsed,
) -> Result<ProviderResult, FeedbackError> {
    let event = match parsed {
        Parsed::Ignored { provider_event } => {
            let note = format!(
                "{} event `{provider_event}` acknowledged and ignored: it is not an outcome Leadpush tracks.",
                provider.label()
            );
            return Ok(ProviderResult::Ignored(ProviderIgnored {
                accepted: false,
                source: provider.source(),
                provider_event,
                mutated_lead: false,
                stored_event: false,
                note,
            }));
        }
        Parsed::Event(event) => *event,
    };
    let lead = lead_lookup::find(&*ctx.store, workspace_id, &event.lead).await?.ok_or(FeedbackError::LeadNotFound)?;
    let new = NewEvent {
        event_type: event.event_type,
        source: provider.source(),
        content: event.content,
        meeting_url: None,
        occurred_at: event.occurred_at.unwrap_or_else(|| ctx.now()),
        metadata: Some(event.metadata),
        // The id is derived from the payload, so it alone says "same event".
        payload_hash: secrets::hash(&event.event_id),
        event_id: Some(event.event_id),
    };
    let result = record(ctx, workspace_id, &lead.id, new).await?;
    Ok(ProviderResult::Recorded(ProviderRecorded { provider_event: event.provider_event, result }))
}
