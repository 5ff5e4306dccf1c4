//! Instantly's and HeyReach's own webhook payloads, mapped to our feedback events
//! (docs/provider-research.md, section 5). Parsing is defensive: these tools vary their
//! field casing, and neither documents a schema we can rely on to the letter.

use serde_json::{Map, Value, json};

use super::ValidationError;
use super::contact::{normalize_email, normalize_linkedin};
use super::feedback::{EventSource, EventType, MAX_CONTENT_CHARS, check_occurred_at, truncated};
use crate::support::time::Timestamp;

/// The custom field / variable carrying our lead id, when the push sent one.
pub const LEAD_ID_FIELD: &str = "leadpush_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Instantly,
    Heyreach,
}

impl Provider {
    pub fn source(self) -> EventSource {
        match self {
            Provider::Instantly => EventSource::Instantly,
            Provider::Heyreach => EventSource::Heyreach,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Instantly => "Instantly",
            Provider::Heyreach => "HeyReach",
        }
    }

    /// `(provider event, our event)`; `None`: known, acknowledged, not an outcome we track.
    pub fn events(self) -> &'static [(&'static str, Option<EventType>)] {
        match self {
            Provider::Instantly => INSTANTLY_EVENTS,
            Provider::Heyreach => HEYREACH_EVENTS,
        }
    }
}

const INSTANTLY_EVENTS: &[(&str, Option<EventType>)] = &[
    ("email_opened", Some(EventType::Open)),
    ("link_clicked", Some(EventType::Click)),
    ("email_link_clicked", Some(EventType::Click)),
    ("reply_received", Some(EventType::Reply)),
    ("lead_interested", Some(EventType::PositiveReply)),
    ("email_bounced", Some(EventType::Bounce)),
    ("lead_meeting_booked", Some(EventType::MeetingBooked)),
    ("email_sent", None),
    ("auto_reply_received", None),
    ("lead_unsubscribed", None),
    ("lead_neutral", None),
    ("lead_not_interested", None),
    ("lead_out_of_office", None),
    ("lead_wrong_person", None),
    ("lead_closed", None),
    ("lead_meeting_completed", None),
    ("lead_no_show", None),
    ("account_error", None),
    ("campaign_completed", None),
    ("supersearch_enrichment_completed", None),
];

const HEYREACH_EVENTS: &[(&str, Option<EventType>)] = &[
    ("message_reply_received", Some(EventType::Reply)),
    ("inmail_reply_received", Some(EventType::Reply)),
    ("every_message_reply_received", Some(EventType::Reply)),
    // Seen in third-party integrations only; harmless if HeyReach never sends them.
    ("lead_auto_tagged_interested", Some(EventType::PositiveReply)),
    ("lead_auto_tagged_positive", Some(EventType::PositiveReply)),
    ("connection_request_sent", None),
    ("connection_request_accepted", None),
    ("message_sent", None),
    ("inmail_sent", None),
    ("follow_sent", None),
    ("liked_post", None),
    ("viewed_profile", None),
    ("campaign_completed", None),
    ("lead_tag_updated", None),
    ("lead_auto_tagged_not_interested", None),
    ("lead_auto_tagged_generic", None),
    ("lead_finished_sequence_without_replying", None),
];

/// The latest event of one reason that was acknowledged but not recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NotAcceptedEvent {
    pub reason: NotAccepted,
    /// The provider's event name as received (at most 60 characters).
    pub provider_event: String,
    /// Why, in words.
    pub note: String,
    pub at: Timestamp,
}

/// What a provider's webhooks brought: every delivery counted by outcome, and the latest
/// one of each reason Leadpush did not record, so nothing is dropped unseen.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookActivity {
    /// Deliveries answered 200 (retries included).
    pub received: i64,
    /// Recorded as a feedback event (a retried delivery counts each time).
    pub recorded: i64,
    /// Acknowledged with `accepted: false`, by reason (`untracked_event`, `unknown_event`,
    /// `lead_not_found`, `unusable_payload`).
    #[schema(value_type = Object)]
    pub not_accepted: std::collections::BTreeMap<NotAccepted, i64>,
    /// The latest delivery of each reason, newest first.
    pub latest_not_accepted: Vec<NotAcceptedEvent>,
}

/// Who the payload is about, in the order we try: our id, then LinkedIn, then email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadRef {
    pub lead_id: Option<String>,
    pub linkedin: Option<String>,
    pub email: Option<String>,
}

/// A provider event that maps to one of ours.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    pub provider: Provider,
    pub provider_event: String,
    pub event_type: EventType,
    pub lead: LeadRef,
    pub content: Option<String>,
    pub occurred_at: Option<Timestamp>,
    /// Derived from the fields that identify one delivery, so a retry maps to the same key.
    pub event_id: String,
    pub metadata: Map<String, Value>,
}

/// What a well-formed provider payload comes to. Only a body that is not the provider's
/// shape at all (not an object, no event name) is an error: everything routine is answered
/// 200, because Instantly disables a webhook after repeated delivery failures.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Box<ProviderEvent>),
    /// An event Leadpush does not record, and why (acknowledged with `accepted: false`).
    NotAccepted {
        provider_event: String,
        reason: NotAccepted,
        detail: String,
    },
}

impl Parsed {
    fn not_accepted(provider_event: String, reason: NotAccepted, detail: impl Into<String>) -> Self {
        Parsed::NotAccepted { provider_event, reason, detail: detail.into() }
    }
}

/// Why a provider event was acknowledged without being recorded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotAccepted {
    /// A documented event that is not an outcome Leadpush tracks (`email_sent`, ...).
    UntrackedEvent,
    /// An event name Leadpush does not know: with `all_events`, Instantly sends workspace
    /// custom labels as raw text.
    UnknownEvent,
    /// No lead of the workspace matches (e.g. a reply from a lead Leadpush did not push).
    LeadNotFound,
    /// A tracked event whose payload cannot be used (no lead identity, a bad timestamp).
    UnusablePayload,
}

impl NotAccepted {
    pub const ALL: [NotAccepted; 4] = [
        NotAccepted::UntrackedEvent,
        NotAccepted::UnknownEvent,
        NotAccepted::LeadNotFound,
        NotAccepted::UnusablePayload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotAccepted::UntrackedEvent => "untracked_event",
            NotAccepted::UnknownEvent => "unknown_event",
            NotAccepted::LeadNotFound => "lead_not_found",
            NotAccepted::UnusablePayload => "unusable_payload",
        }
    }
}

fn str_at<'a>(value: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| value.get(*name).and_then(Value::as_str)).map(str::trim).filter(|s| !s.is_empty())
}

fn object(payload: &Value, provider: Provider) -> Result<(), ValidationError> {
    if payload.is_object() {
        return Ok(());
    }
    Err(ValidationError::new("body", format!("must be a JSON object: the {} webhook payload", provider.label())))
}

/// The event name, required: without one the body is not this provider's payload at all.
fn event_name(provider: Provider, field: &str, name: Option<&str>) -> Result<String, ValidationError> {
    let Some(name) = name else {
        let known: Vec<&str> = provider.events().iter().map(|(name, _)| *name).collect();
        return Err(ValidationError::new(
            field,
            format!(
                "is required: this does not look like {}'s webhook payload (expected one of {})",
                provider.label(),
                known.join(", ")
            ),
        ));
    };
    Ok(name.to_owned())
}

/// Maps a payload with event name `name`: known and tracked events through `read`, whose
/// errors make the event unusable rather than the request bad.
fn classify(
    provider: Provider,
    name: String,
    read: impl FnOnce(String, EventType) -> Result<ProviderEvent, ValidationError>,
) -> Parsed {
    let lower = name.to_ascii_lowercase();
    match provider.events().iter().find(|(known, _)| *known == lower) {
        None => {
            let shown: String = name.chars().take(60).collect();
            let detail = format!(
                "`{shown}` is not an event Leadpush handles from {} (a custom label?); it is tracked only as {}",
                provider.label(),
                provider
                    .events()
                    .iter()
                    .filter(|(_, ours)| ours.is_some())
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Parsed::not_accepted(shown, NotAccepted::UnknownEvent, detail)
        }
        Some((_, None)) => {
            let detail = format!("{} event `{lower}` is not an outcome Leadpush tracks", provider.label());
            Parsed::not_accepted(lower, NotAccepted::UntrackedEvent, detail)
        }
        Some((_, Some(event_type))) => match read(lower.clone(), *event_type) {
            Ok(event) => Parsed::Event(Box::new(event)),
            Err(e) => Parsed::not_accepted(lower, NotAccepted::UnusablePayload, e.to_string()),
        },
    }
}

fn timestamp(field: &str, text: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, ValidationError> {
    let Some(text) = text else { return Ok(None) };
    let at = Timestamp::parse(text)
        .ok_or_else(|| ValidationError::new(field, format!("`{text}` is not an ISO 8601 / RFC 3339 timestamp")))?;
    check_occurred_at(field, at, now).map(Some)
}

/// A stable id from the fields that identify one delivery (docs/provider-research.md).
/// It uses our event type, not the provider's name, so one reply delivered through two
/// subscriptions (`message_reply_received` and `every_message_reply_received`) is one event.
fn derived_id(provider: Provider, parts: &[Option<&str>]) -> String {
    let joined: Vec<&str> = parts.iter().map(|p| p.unwrap_or("")).collect();
    let tag = match provider {
        Provider::Instantly => "instantly",
        Provider::Heyreach => "heyreach",
    };
    format!("{tag}:{}", crate::support::secrets::hash(&joined.join("\u{1f}")))
}

/// Longest provider string copied into an event's `metadata`.
pub const MAX_KEPT_CHARS: usize = 500;

/// Copies the named scalar fields into `metadata`, bounded by construction: strings are
/// truncated to [`MAX_KEPT_CHARS`], numbers DynamoDB cannot store and nested values are
/// left out (the provider owns their shape, we only keep identifiers and labels).
fn keep(metadata: &mut Map<String, Value>, payload: &Value, names: &[&str]) {
    for name in names {
        let kept = match payload.get(*name) {
            Some(Value::String(text)) => Value::String(crate::support::text::truncate(text, MAX_KEPT_CHARS)),
            Some(Value::Number(n)) if super::storable_number(&n.to_string()) => Value::Number(n.clone()),
            Some(Value::Bool(b)) => Value::Bool(*b),
            _ => continue,
        };
        metadata.insert((*name).to_owned(), kept);
    }
}

/// An Instantly webhook (developer.instantly.ai/webhook-events). Lead data arrives merged
/// into the top level, so our `leadpush_id` custom variable does too when the push set it.
pub fn parse_instantly(payload: &Value, now: Timestamp) -> Result<Parsed, ValidationError> {
    let provider = Provider::Instantly;
    object(payload, provider)?;
    let name = event_name(provider, "event_type", str_at(payload, &["event_type"]))?;
    Ok(classify(provider, name, |name, event_type| read_instantly(payload, name, event_type, now)))
}

fn read_instantly(
    payload: &Value,
    name: String,
    event_type: EventType,
    now: Timestamp,
) -> Result<ProviderEvent, ValidationError> {
    let provider = Provider::Instantly;
    let raw_email = str_at(payload, &["lead_email"]);
    let email = match raw_email {
        None => None,
        Some(text) => Some(
            normalize_email(text)
                .ok_or_else(|| ValidationError::new("lead_email", format!("`{text}` is not an email address")))?,
        ),
    };
    let lead = LeadRef { lead_id: str_at(payload, &[LEAD_ID_FIELD]).map(str::to_owned), linkedin: None, email };
    if lead.lead_id.is_none() && lead.email.is_none() {
        return Err(ValidationError::new(
            "lead_email",
            format!("is required to find the lead (or a `{LEAD_ID_FIELD}` custom variable)"),
        ));
    }
    let raw_time = str_at(payload, &["timestamp"]);
    let occurred_at = timestamp("timestamp", raw_time, now)?;
    let content = match event_type {
        EventType::Reply | EventType::PositiveReply => {
            truncated(str_at(payload, &["reply_text", "reply_text_snippet"]), MAX_CONTENT_CHARS)
        }
        _ => None,
    };
    let number = |name: &str| payload.get(name).filter(|v| !v.is_null()).map(Value::to_string);
    let (step, variant) = (number("step"), number("variant"));
    let event_id = derived_id(
        provider,
        &[
            Some(event_type.as_str()),
            lead.email.as_deref().or(lead.lead_id.as_deref()),
            str_at(payload, &["campaign_id"]),
            step.as_deref(),
            variant.as_deref(),
            raw_time,
            str_at(payload, &["email_id"]),
            content.as_deref(),
        ],
    );
    let mut metadata = Map::new();
    metadata.insert("provider_event".into(), json!(name));
    keep(
        &mut metadata,
        payload,
        &["campaign_id", "campaign_name", "step", "variant", "email_account", "unibox_url", "is_first", "email_id"],
    );
    Ok(ProviderEvent { provider, provider_event: name, event_type, lead, content, occurred_at, event_id, metadata })
}

/// Our lead id in a HeyReach lead: its custom fields (several shapes are seen in the wild).
fn heyreach_lead_id(lead: &Value) -> Option<String> {
    let from_map = |map: &Value| str_at(map, &[LEAD_ID_FIELD]).map(str::to_owned);
    if let Some(id) = lead.get("custom_fields").and_then(from_map) {
        return Some(id);
    }
    if let Some(id) = lead
        .get("lists")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|list| list.get("custom_fields").or_else(|| list.get("customFields")).and_then(from_map))
    {
        return Some(id);
    }
    ["customUserFields", "custom_user_fields"].iter().find_map(|name| {
        lead.get(*name)?.as_array()?.iter().find_map(|field| {
            (str_at(field, &["name"]) == Some(LEAD_ID_FIELD)).then(|| str_at(field, &["value"]).map(str::to_owned))?
        })
    })
}

/// The newest message the lead sent, from `recent_messages`.
fn heyreach_reply(payload: &Value) -> (Option<&str>, Option<&str>) {
    let messages = payload.get("recent_messages").or_else(|| payload.get("recentMessages")).and_then(Value::as_array);
    let reply = messages
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m.get("is_reply").or_else(|| m.get("isReply")).and_then(Value::as_bool).unwrap_or(false));
    match reply {
        Some(m) => (str_at(m, &["message", "text"]), str_at(m, &["creation_time", "creationTime"])),
        None => (str_at(payload, &["message", "messageText", "message_text"]), None),
    }
}

/// A HeyReach webhook. Event names arrive lower-cased (`message_reply_received`); some
/// payloads use camelCase or flattened `lead...` keys, and some have no event name at all:
/// each HeyReach webhook has exactly one event type, so `url_event` (the webhook URL's
/// `?event=`) stands in for it.
pub fn parse_heyreach(payload: &Value, url_event: Option<&str>, now: Timestamp) -> Result<Parsed, ValidationError> {
    let provider = Provider::Heyreach;
    object(payload, provider)?;
    let given = str_at(payload, &["event_type", "eventType"]).or(url_event.map(str::trim).filter(|e| !e.is_empty()));
    let name = event_name(provider, "event_type", given).map_err(|e| {
        ValidationError::new(e.field, format!("{} (or add `&event=<EVENT_TYPE>` to the webhook URL)", e.message))
    })?;
    Ok(classify(provider, name, |name, event_type| read_heyreach(payload, name, event_type, now)))
}

fn read_heyreach(
    payload: &Value,
    name: String,
    event_type: EventType,
    now: Timestamp,
) -> Result<ProviderEvent, ValidationError> {
    let provider = Provider::Heyreach;
    let empty = Value::Null;
    let lead_value = payload.get("lead").filter(|l| l.is_object()).unwrap_or(&empty);
    let profile = str_at(lead_value, &["profile_url", "profileUrl", "linkedin_url"])
        .or_else(|| str_at(payload, &["lead_profile_url", "leadProfileUrl"]));
    let linkedin = match profile {
        None => None,
        Some(text) => Some(normalize_linkedin(text).ok_or_else(|| {
            ValidationError::new(
                "lead.profile_url",
                format!("`{text}` is not a LinkedIn profile URL (linkedin.com/in/...)"),
            )
        })?),
    };
    let email = str_at(lead_value, &["email_address", "emailAddress", "email"])
        .or_else(|| str_at(payload, &["lead_email_address", "leadEmailAddress"]))
        .and_then(normalize_email);
    let lead = LeadRef { lead_id: heyreach_lead_id(lead_value), linkedin, email };
    if lead.lead_id.is_none() && lead.linkedin.is_none() && lead.email.is_none() {
        return Err(ValidationError::new(
            "lead.profile_url",
            "is required to find the lead (or lead.email_address, or a `leadpush_id` custom field)",
        ));
    }
    let (message, message_time) = heyreach_reply(payload);
    let raw_time = str_at(payload, &["timestamp"]);
    let occurred_at = match raw_time {
        Some(_) => timestamp("timestamp", raw_time, now)?,
        None => timestamp("recent_messages[].creation_time", message_time, now)?,
    };
    let content = truncated(message, MAX_CONTENT_CHARS);
    let campaign_id = payload.get("campaign").and_then(|c| c.get("id")).filter(|v| !v.is_null()).map(Value::to_string);
    let event_id = derived_id(
        provider,
        &[
            Some(event_type.as_str()),
            lead.linkedin.as_deref().or(lead.email.as_deref()).or(lead.lead_id.as_deref()),
            str_at(payload, &["conversation_id", "conversationId"]),
            str_at(payload, &["correlation_id", "correlationId"]),
            campaign_id.as_deref(),
            raw_time.or(message_time),
            content.as_deref(),
        ],
    );
    let mut metadata = Map::new();
    metadata.insert("provider_event".into(), json!(name));
    keep(&mut metadata, payload, &["conversation_id", "correlation_id", "is_inmail"]);
    if let Some(campaign) = payload.get("campaign").filter(|c| c.is_object()) {
        let mut kept = Map::new();
        keep(&mut kept, campaign, &["id", "name"]);
        metadata.insert("campaign".into(), Value::Object(kept));
    }
    Ok(ProviderEvent { provider, provider_event: name, event_type, lead, content, occurred_at, event_id, metadata })
}

#[cfg(test)]
#[path = "providers_tests.rs"]
mod tests;
