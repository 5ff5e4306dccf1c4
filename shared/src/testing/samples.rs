//! What the sample events in `events/` refer to: a workspace with an API key and a webhook
//! token, a webhook campaign and one lead (`alice@example.com`, LinkedIn
//! `linkedin.com/in/alice-example`, which the provider samples look up). The events test and
//! `make invoke` seed these and fill the placeholders of `events/README.md`.

use crate::domain::ValidationError;
use crate::domain::campaign::{Campaign, LeadSource};
use crate::domain::lead::{Lead, LeadFields};
use crate::domain::workspace::CredentialKind;
use crate::repo::{campaigns, leads, workspaces};
use crate::store::{Store, StoreError};
use crate::support::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Each worker's `events/<function>.sqs.json` and the one message of it the worker must
/// report failed (a poison or misrouted message); every other message must succeed.
pub const WORKER_SAMPLE_FAILURES: [(&str, &str); 4] = [
    ("dispatcher", "2e1424d4-f796-459a-8184-9c92662be6da"),
    ("enrich-worker", "e2b7d6a4-1c85-4f09-b3de-6a0f7c9e5d21"),
    ("finder-worker", "b3e1f9a2-6c47-4d58-9e20-7a1d5c8b4f66"),
    ("workflow-worker", "a8c2e5f7-4b19-4d3e-9a60-2f8d1b7c3e44"),
];

/// What an API sample's answer must show: a 2xx status and a body with `data` (or a
/// `status`, as `/healthz`) that does not say it recorded nothing. `None` if it does;
/// otherwise what is wrong.
pub fn http_sample_problem(status: u16, body: &serde_json::Value) -> Option<String> {
    if !(200..300).contains(&status) {
        return Some(format!("answered {status}: {body}"));
    }
    if body.get("data").is_none() && body.get("status").is_none() {
        return Some(format!("no data in {body}"));
    }
    // Provider webhooks answer 200 even when they record nothing: the samples must record.
    if body["data"]["accepted"] == serde_json::json!(false) {
        return Some(format!("recorded nothing: {body}"));
    }
    None
}

/// The seeded items, as the placeholders name them.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub workspace_id: String,
    pub api_key: String,
    pub webhook_token: String,
    pub campaign_id: String,
    pub lead_id: String,
}

/// Creates the workspace, its credentials, campaign and lead; `name` names the workspace
/// and campaign, and the lead's request id is `req_{NAME}`.
pub async fn seed(store: &dyn Store, name: &str) -> Result<Seeded, SeedError> {
    let now = Timestamp::now();
    let ws = workspaces::create_workspace(store, name, now).await?;
    let (_, api_key) = workspaces::issue_credential(store, &ws.id, CredentialKind::ApiKey, now).await?;
    let (_, webhook_token) = workspaces::issue_credential(store, &ws.id, CredentialKind::WebhookToken, now).await?;
    let campaign = Campaign::new(crate::support::ids::new_id("cmp"), name, LeadSource::Webhook, None, now)?;
    campaigns::create(store, &ws.id, &campaign).await?;
    let fields = LeadFields {
        name: Some("Alice".into()),
        email: Some("alice@example.com".into()),
        linkedin: Some("https://www.linkedin.com/in/alice-example".into()),
        ..LeadFields::default()
    };
    let request_id = format!("req_{}", name.to_uppercase());
    let lead = Lead::new(crate::support::ids::lead_id(&request_id, 1), campaign.id.clone(), None, fields, now);
    leads::put_many(store, &ws.id, std::slice::from_ref(&lead)).await?;
    Ok(Seeded { workspace_id: ws.id, api_key, webhook_token, campaign_id: campaign.id, lead_id: lead.id })
}

impl Seeded {
    /// A sample event's text with its placeholders filled.
    pub fn fill(&self, text: &str) -> String {
        [
            ("${API_KEY}", &self.api_key),
            ("${WEBHOOK_TOKEN}", &self.webhook_token),
            ("${CAMPAIGN_ID}", &self.campaign_id),
            ("${LEAD_ID}", &self.lead_id),
            ("${WORKSPACE_ID}", &self.workspace_id),
        ]
        .iter()
        .fold(text.to_owned(), |text, (name, value)| text.replace(name, value))
    }
}
