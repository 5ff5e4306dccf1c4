//! Outbound webhook endpoints (the outbound-webhooks specification): where `save_lead`
//! notifications go, how they are sent, and when a failing endpoint is switched off.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ValidationError, required_text};
use crate::support::time::Timestamp;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE_CHARS: usize = 2048;

/// Headers we set on every delivery; a configured header may not replace them.
pub const RESERVED_HEADERS: [&str; 11] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
    "connection",
    "idempotency-key",
    "expect",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    Post,
    Put,
    Patch,
}

impl WebhookMethod {
    pub fn as_http(self) -> reqwest::Method {
        match self {
            WebhookMethod::Post => reqwest::Method::POST,
            WebhookMethod::Put => reqwest::Method::PUT,
            WebhookMethod::Patch => reqwest::Method::PATCH,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A lead was saved (ingest) or updated (feedback, push status).
    SaveLead,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SaveLead => "save_lead",
        }
    }
}

/// A stored endpoint. The signing secret and header values are never returned by reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    pub method: WebhookMethod,
    pub headers: BTreeMap<String, String>,
    pub enabled: bool,
    pub events: Vec<EventType>,
    /// Signs deliveries.
    #[serde(flatten)]
    pub signing: SigningSecret,
    /// Deliveries that failed every retry in a row since the last success.
    #[serde(default)]
    pub failure_streak: u32,
    #[serde(default)]
    pub failing_since: Option<Timestamp>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A Standard Webhooks signing secret and, after a rotation, the one it replaced: that one
/// also signs until `previous_secret_until`, so receivers can switch without dropping
/// anything. Used by endpoints and by the workspace's callback secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// `whsec_...`
    pub secret: String,
    #[serde(default)]
    pub previous_secret: Option<String>,
    #[serde(default)]
    pub previous_secret_until: Option<Timestamp>,
}

impl SigningSecret {
    pub fn new(secret: String) -> Self {
        Self { secret, previous_secret: None, previous_secret_until: None }
    }

    /// The secrets that sign now: the current one, and the previous one during its grace.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && now < until
        {
            secrets.push(old);
        }
        secrets
    }

    pub fn rotate(&mut self, new_secret: String, grace: Duration, now: Timestamp) {
        let old = std::mem::replace(&mut self.secret, new_secret);
        self.previous_secret = Some(old);
        self.previous_secret_until = Some(now.plus(grace));
    }
}

/// When a failing endpoint is disabled (configurable; see `Config`).
#[derive(Debug, Clone, Copy)]
pub struct DisablePolicy {
    /// This many deliveries in a row failed every retry...
    pub after_failed_deliveries: u32,
    /// ...or nothing was delivered for this long while deliveries kept failing.
    pub after_failing_for: Duration,
}

/// Validates a header map a customer configured.
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    if headers.len() > MAX_HEADERS {
        return Err(ValidationError::new("headers", format!("at most {MAX_HEADERS} headers")));
    }
    for (name, value) in headers {
        let field = format!("headers.{name}");
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(ValidationError::new(field, "is not a valid header name"));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ValidationError::new(field, "is set by Leadpush and cannot be configured"));
        }
        if value.chars().count() > MAX_HEADER_VALUE_CHARS || value.chars().any(|c| c.is_control()) {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_HEADER_VALUE_CHARS} printable characters"),
            ));
        }
    }
    Ok(())
}

pub fn check_name(name: &str) -> Result<String, ValidationError> {
    required_text("name", name, MAX_NAME_CHARS)
}

pub fn check_events(events: &[EventType]) -> Result<Vec<EventType>, ValidationError> {
    if events.is_empty() {
        return Err(ValidationError::new("events", "must name at least one event (save_lead)"));
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    Ok(events)
}

/// A header value as reads show it: only its last four characters.
pub fn mask_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 8 {
        return "****".to_owned();
    }
    format!("****{}", chars[chars.len() - 4..].iter().collect::<String>())
}

impl Webhook {
    pub fn subscribes(&self, event: EventType) -> bool {
        self.enabled && self.events.contains(&event)
    }

    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        self.signing.signing_secrets(now)
    }

    pub fn rotate_secret(&mut self, new_secret: String, grace: Duration, now: Timestamp) {
        self.signing.rotate(new_secret, grace, now);
        self.updated_at = now;
    }

    /// A delivery got through: the failure streak ends.
    pub fn record_success(&mut self) -> bool {
        let changed = self.failure_streak > 0 || self.failing_since.is_some();
        self.failure_streak = 0;
        self.failing_since = None;
        changed
    }

    /// A delivery failed every retry. Returns true when this disables the endpoint.
    pub fn record_failure(&mut self, policy: DisablePolicy, now: Timestamp) -> bool {
        self.failure_streak = self.failure_streak.saturating_add(1);
        let since = *self.failing_since.get_or_insert(now);
        let failing_for = Duration::from_millis((now.unix_millis() - since.unix_millis()).max(0) as u64);
        let disable = self.enabled
            && (self.failure_streak >= policy.after_failed_deliveries || failing_for >= policy.after_failing_for);
        if disable {
            self.enabled = false;
            self.disabled_reason = Some(format!(
                "Disabled automatically at {now}: {} deliveries in a row failed every retry (failing since {since}). \
                 Fix the endpoint, then set enabled to true.",
                self.failure_streak
            ));
            self.updated_at = now;
        }
        disable
    }

    /// Re-enabling by hand clears the automatic state.
    pub fn set_enabled(&mut self, enabled: bool, now: Timestamp) {
        if enabled && !self.enabled {
            self.failure_streak = 0;
            self.failing_since = None;
            self.disabled_reason = None;
        }
        self.enabled = enabled;
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Webhook {
        let webhook = crate::testing::save_lead_webhook("n", "https://example.com", Timestamp::now());
        Webhook { signing: SigningSecret::new("whsec_new".into()), ..webhook }
    }

    #[test]
    fn configured_headers_cannot_replace_ours() {
        let ok = BTreeMap::from([("Authorization".to_owned(), "Bearer x".to_owned())]);
        assert!(check_headers(&ok).is_ok());
        for bad in ["Webhook-Signature", "content-type", "bad header", ""] {
            let headers = BTreeMap::from([(bad.to_owned(), "v".to_owned())]);
            assert!(check_headers(&headers).is_err(), "{bad}");
        }
        let newline = BTreeMap::from([("X-A".to_owned(), "a\r\nb".to_owned())]);
        assert!(check_headers(&newline).is_err());
        assert_eq!(mask_value("Bearer abcdefgh1234"), "****1234");
        assert_eq!(mask_value("short"), "****");
    }

    #[test]
    fn endpoints_disable_after_a_failure_streak_or_a_day_of_failures() {
        let policy = DisablePolicy { after_failed_deliveries: 3, after_failing_for: Duration::from_secs(86_400) };
        let t0 = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let mut w = webhook();
        assert!(!w.record_failure(policy, t0));
        assert!(!w.record_failure(policy, t0));
        assert!(w.record_success());
        assert!(!w.record_failure(policy, t0));
        assert!(!w.record_failure(policy, t0.plus(Duration::from_secs(3600))));
        assert!(w.record_failure(policy, t0.plus(Duration::from_secs(7200))), "third failure in a row");
        assert!(!w.enabled && w.disabled_reason.as_deref().unwrap().contains("3 deliveries"));

        let mut w = webhook();
        assert!(!w.record_failure(policy, t0));
        assert!(w.record_failure(policy, t0.plus(Duration::from_secs(86_400))), "a day of failures");
        w.set_enabled(true, t0);
        assert!(w.enabled && w.disabled_reason.is_none() && w.failure_streak == 0);
    }

    #[test]
    fn the_old_secret_keeps_signing_during_its_grace_period() {
        let t0 = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let mut w = webhook();
        w.rotate_secret("whsec_newer".into(), Duration::from_secs(3600), t0);
        assert_eq!(w.signing_secrets(t0), ["whsec_newer", "whsec_new"]);
        assert_eq!(w.signing_secrets(t0.plus(Duration::from_secs(3600))), ["whsec_newer"]);
    }
}

/// The `save_lead` payload: the outbound-webhooks specification's fields at the top level
/// exactly, plus the additive `event`, `lead_id`, `campaign_id`, `status` and
/// `occurred_at`.
pub fn save_lead_payload(lead: &super::lead::Lead, occurred_at: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "email": lead.email,
        "website": lead.website,
        "company": lead.company,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "phone": lead.phone,
        "position": lead.position,
        "twitter": lead.twitter,
        "linkedin": lead.linkedin,
        "notes": lead.notes,
        "score": lead.score,
        "event": EventType::SaveLead.as_str(),
        "lead_id": lead.id,
        "campaign_id": lead.campaign_id,
        "status": lead.status,
        "occurred_at": occurred_at,
    })
}

#[cfg(test)]
mod payload_tests {
    use super::*;
    use crate::domain::lead::{Lead, LeadFields};

    #[test]
    fn save_lead_payload_carries_the_seed_fields_at_the_top_level() {
        let fields = LeadFields {
            email: Some("a@example.com".into()),
            company: Some("Acme".into()),
            score: Some(9),
            ..LeadFields::default()
        };
        let at = Timestamp::parse("2026-05-02T12:00:00Z").unwrap();
        let lead = Lead::new("req_1_0001".into(), "cmp_1".into(), None, fields, at);
        let payload = save_lead_payload(&lead, at);
        let keys: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
        for seed_field in [
            "email",
            "website",
            "company",
            "first_name",
            "last_name",
            "phone",
            "position",
            "twitter",
            "linkedin",
            "notes",
            "score",
        ] {
            assert!(keys.contains(&seed_field), "{seed_field}");
        }
        assert_eq!(payload["score"], 9);
        assert_eq!(payload["event"], "save_lead");
        assert_eq!(payload["occurred_at"], "2026-05-02T12:00:00.000Z");
        assert!(payload["website"].is_null());
    }
}
