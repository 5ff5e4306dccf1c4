//! A sample `save_lead`, signed as a real delivery, for `POST /api/v1/webhooks/{id}/test`:
//! a customer checks their receiver and its signature check without waiting for a lead.

use crate::domain::lead::{Lead, LeadFields};
use crate::domain::webhook::{Webhook, save_lead_payload};
use crate::outbound::Outbound;
use crate::support::ids;
use crate::support::time::Timestamp;
use crate::webhooks::send::{AttemptResult, SignedRequest, send_signed};

/// The sample lead every test send carries.
pub fn sample_lead(now: Timestamp) -> Lead {
    let sample = LeadFields {
        name: Some("Ada Lovelace".into()),
        email: Some("ada@example.com".into()),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        company: Some("Analytical Engines Ltd".into()),
        website: Some("https://example.com".into()),
        position: Some("CTO".into()),
        score: Some(87),
        ..LeadFields::default()
    };
    Lead::new("lead_test".into(), "cmp_test".into(), None, sample, now)
}

/// Sends the sample to `webhook` (enabled or not) and returns the attempt and the payload
/// sent. Nothing is stored: a test send is not a delivery.
pub async fn send_sample(
    outbound: &Outbound,
    webhook: &Webhook,
    now: Timestamp,
) -> Result<(AttemptResult, serde_json::Value), serde_json::Error> {
    let payload = save_lead_payload(&sample_lead(now), now);
    let body = serde_json::to_vec(&payload)?;
    let message_id = ids::new_id("msg_test");
    let request = SignedRequest {
        url: &webhook.url,
        method: webhook.method.as_http(),
        headers: &webhook.headers,
        message_id: &message_id,
        body: &body,
        secrets: webhook.signing_secrets(now),
    };
    Ok((send_signed(outbound, request, now).await, payload))
}
