//! The `webhook_url` destination: one JSON POST of the leads, every stored field included,
//! with `Idempotency-Key: <push_id>` so a receiver can drop the repeats a retry may cause.

use serde::Serialize;

use crate::domain::lead::Lead;
use crate::domain::push::{Destination, LeadResult};
use crate::outbound::OutboundRequest;

pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Serialize)]
struct Body<'a> {
    push_id: &'a str,
    destination: Destination,
    /// 1 on the first try; the same `push_id` on every retry.
    attempt: u32,
    lead_count: usize,
    leads: &'a [Lead],
}

pub fn request(url: &str, push_id: &str, attempt: u32, leads: &[Lead]) -> OutboundRequest {
    let body = Body { push_id, destination: Destination::WebhookUrl, attempt, lead_count: leads.len(), leads };
    // Leads are plain data (strings, numbers, maps): serialising them cannot fail.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    OutboundRequest::post_json(url, bytes).header(IDEMPOTENCY_HEADER, push_id)
}

/// Any 2xx means the receiver took every lead.
pub fn accepted(sent: usize) -> Vec<LeadResult> {
    vec![LeadResult::Pushed { provider_lead_id: None, note: None }; sent]
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::support::time::Timestamp;

    #[test]
    fn the_body_carries_every_stored_field_and_the_push_id_as_idempotency_key() {
        let now = Timestamp::parse("2026-05-02T12:00:00Z").unwrap();
        let mut custom = serde_json::Map::new();
        custom.insert("industry".into(), json!("fintech"));
        let fields = LeadFields { email: Some("a@example.com".into()), custom_fields: custom, ..LeadFields::default() };
        let lead = Lead::new("req_1_0001".into(), "cmp_1".into(), None, fields, now);
        let request = request("https://hooks.example.com/x", "push_1", 2, std::slice::from_ref(&lead));
        assert!(request.headers.contains(&("Idempotency-Key".into(), "push_1".into())));
        assert!(request.headers.contains(&("content-type".into(), "application/json".into())));
        let body: Value = serde_json::from_slice(request.body.as_deref().unwrap()).unwrap();
        assert_eq!((&body["push_id"], &body["attempt"], &body["lead_count"]), (&json!("push_1"), &json!(2), &json!(1)));
        assert_eq!(body["leads"][0], serde_json::to_value(&lead).unwrap());
        assert_eq!(body["leads"][0]["custom_fields"]["industry"], "fintech");
    }
}
