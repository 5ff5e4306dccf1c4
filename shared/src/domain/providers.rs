//! Instantly's and HeyReach's own webhook payloads, mapped to our feedback events
//! (docs/provider-research.md, section 5). Parsing is defensive: these tools vary their
//! field casing, and neither documents a schema we can rely on to the letter.

use serde_json::{Map, Value, json};

use super::ValidationError;
use super::contact::{normalize_email, normalize_linkedin};
use super::feedback::{EventSource, EventType, MAX_CONTENT_CHARS, check_occurred_at, truncated};
use crate::time::Timestamp;

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

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Box<ProviderEvent>),
    /// A known event that is not an outcome we track; acknowledged so the tool keeps the
    /// webhook enabled.
    Ignored {
        provider_event: String,
    },
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

/// Looks the event name up; unknown names are refused with the list we handle.
fn map_event(
    provider: Provider,
    field: &str,
    name: Option<&str>,
) -> Result<(String, Option<EventType>), ValidationError> {
    let known: Vec<&str> = provider.events().iter().map(|(name, _)| *name).collect();
    let Some(name) = name else {
        return Err(ValidationError::new(
            field,
            format!(
                "is required: this does not look like {}'s webhook payload (expected one of {})",
                provider.label(),
                known.join(", ")
            ),
        ));
    };
    let lower = name.to_ascii_lowercase();
    match provider.events().iter().find(|(known, _)| *known == lower) {
        Some((_, mapped)) => Ok((lower, *mapped)),
        None => Err(ValidationError::new(
            field,
            format!(
                "`{}` is not an event we handle from {}; subscribe the webhook to one of {}",
                name.chars().take(60).collect::<String>(),
                provider.label(),
                known.join(", ")
            ),
        )),
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
    format!("{tag}:{}", crate::secrets::hash(&joined.join("\u{1f}")))
}

fn keep(metadata: &mut Map<String, Value>, payload: &Value, names: &[&str]) {
    for name in names {
        if let Some(value) = payload.get(*name).filter(|v| !v.is_null()) {
            metadata.insert((*name).to_owned(), value.clone());
        }
    }
}

/// An Instantly webhook (developer.instantly.ai/webhook-events). Lead data arrives merged
/// into the top level, so our `leadpush_id` custom variable does too when the push set it.
pub fn parse_instantly(payload: &Value, now: Timestamp) -> Result<Parsed, ValidationError> {
    let provider = Provider::Instantly;
    object(payload, provider)?;
    let (name, mapped) = map_event(provider, "event_type", str_at(payload, &["event_type"]))?;
    let Some(event_type) = mapped else {
        return Ok(Parsed::Ignored { provider_event: name });
    };
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
    Ok(Parsed::Event(Box::new(ProviderEvent {
        provider,
        provider_event: name,
        event_type,
        lead,
        content,
        occurred_at,
        event_id,
        metadata,
    })))
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
/// payloads use camelCase or flattened `lead...` keys.
pub fn parse_heyreach(payload: &Value, now: Timestamp) -> Result<Parsed, ValidationError> {
    let provider = Provider::Heyreach;
    object(payload, provider)?;
    let (name, mapped) = map_event(provider, "event_type", str_at(payload, &["event_type", "eventType"]))?;
    let Some(event_type) = mapped else {
        return Ok(Parsed::Ignored { provider_event: name });
    };
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
    Ok(Parsed::Event(Box::new(ProviderEvent {
        provider,
        provider_event: name,
        event_type,
        lead,
        content,
        occurred_at,
        event_id,
        metadata,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-05-02T12:00:00Z").unwrap()
    }

    fn event(parsed: Parsed) -> ProviderEvent {
        match parsed {
            Parsed::Event(e) => *e,
            Parsed::Ignored { provider_event } => panic!("{provider_event} was ignored"),
        }
    }

    fn instantly(event_type: &str) -> Value {
        json!({
            "timestamp": "2026-05-02T11:00:00.000Z", "event_type": event_type, "workspace": "w-1",
            "campaign_id": "c-1", "campaign_name": "Q3", "lead_email": "Jane@Acme.com", "step": 1, "variant": 1,
            "reply_text": "Sounds good", "reply_text_snippet": "Sounds", "company_name": "Acme"
        })
    }

    #[test]
    fn instantly_events_map_to_ours() {
        for (name, ours) in [
            ("email_opened", EventType::Open),
            ("link_clicked", EventType::Click),
            ("email_link_clicked", EventType::Click),
            ("reply_received", EventType::Reply),
            ("lead_interested", EventType::PositiveReply),
            ("email_bounced", EventType::Bounce),
            ("lead_meeting_booked", EventType::MeetingBooked),
        ] {
            let e = event(parse_instantly(&instantly(name), now()).unwrap());
            assert_eq!((e.event_type, e.provider_event.as_str()), (ours, name));
            assert_eq!(e.lead.email.as_deref(), Some("jane@acme.com"));
        }
        let e = event(parse_instantly(&instantly("reply_received"), now()).unwrap());
        assert_eq!(e.content.as_deref(), Some("Sounds good"));
        assert_eq!(e.occurred_at, Timestamp::parse("2026-05-02T11:00:00Z"));
        assert_eq!(e.metadata["campaign_name"], "Q3");
        assert_eq!(event(parse_instantly(&instantly("email_opened"), now()).unwrap()).content, None);
    }

    #[test]
    fn instantly_retries_share_an_id_and_distinct_events_do_not() {
        let a = event(parse_instantly(&instantly("reply_received"), now()).unwrap());
        let b = event(parse_instantly(&instantly("reply_received"), now()).unwrap());
        assert_eq!(a.event_id, b.event_id);
        let mut other = instantly("reply_received");
        other["step"] = json!(2);
        assert_ne!(event(parse_instantly(&other, now()).unwrap()).event_id, a.event_id);
        assert!(a.event_id.starts_with("instantly:"));
    }

    #[test]
    fn instantly_unknown_or_unfit_payloads_are_refused_with_reasons() {
        assert_eq!(
            parse_instantly(&instantly("email_sent"), now()).unwrap(),
            Parsed::Ignored { provider_event: "email_sent".into() }
        );
        let e = parse_instantly(&instantly("custom_label_x"), now()).unwrap_err();
        assert_eq!(e.field, "event_type");
        assert!(e.message.contains("reply_received"), "{}", e.message);
        let e = parse_instantly(&json!({"hello": "world"}), now()).unwrap_err();
        assert!(
            e.message.contains("does not look like a Instantly") || e.message.contains("Instantly"),
            "{}",
            e.message
        );
        let mut no_lead = instantly("reply_received");
        no_lead.as_object_mut().unwrap().remove("lead_email");
        assert_eq!(parse_instantly(&no_lead, now()).unwrap_err().field, "lead_email");
        no_lead["leadpush_id"] = json!("req_1_0001");
        assert_eq!(event(parse_instantly(&no_lead, now()).unwrap()).lead.lead_id.as_deref(), Some("req_1_0001"));
        let mut bad_time = instantly("reply_received");
        bad_time["timestamp"] = json!("tuesday");
        assert_eq!(parse_instantly(&bad_time, now()).unwrap_err().field, "timestamp");
        assert_eq!(parse_instantly(&json!([1]), now()).unwrap_err().field, "body");
    }

    fn heyreach(event_type: &str) -> Value {
        json!({
            "event_type": event_type, "timestamp": "2026-05-02T11:00:00Z", "correlation_id": "corr-1",
            "conversation_id": "2-abc", "is_inmail": false,
            "recent_messages": [
                {"creation_time": "2026-05-02T10:00:00Z", "message": "Hi Jane", "is_reply": false},
                {"creation_time": "2026-05-02T10:59:00Z", "message": "Happy to chat", "is_reply": true},
                {"creation_time": "2026-05-02T11:00:00Z", "message": "Great!", "is_reply": false}
            ],
            "campaign": {"id": 456, "name": "LinkedIn Q1", "status": "IN_PROGRESS"},
            "lead": {"id": "918418165", "profile_url": "https://www.linkedin.com/in/Jane-Doe/", "email_address": null,
                     "lists": [{"id": 1, "name": "L", "custom_fields": {"leadpush_id": "req_X_0001"}}]}
        })
    }

    #[test]
    fn heyreach_replies_map_with_the_last_reply_text() {
        for name in ["MESSAGE_REPLY_RECEIVED", "inmail_reply_received", "every_message_reply_received"] {
            let e = event(parse_heyreach(&heyreach(name), now()).unwrap());
            assert_eq!(e.event_type, EventType::Reply);
            assert_eq!(e.content.as_deref(), Some("Happy to chat"));
            assert_eq!(e.lead.linkedin.as_deref(), Some("linkedin.com/in/jane-doe"));
            assert_eq!(e.lead.lead_id.as_deref(), Some("req_X_0001"));
            assert_eq!(e.metadata["campaign"], json!({"id": 456, "name": "LinkedIn Q1"}));
        }
        assert!(matches!(parse_heyreach(&heyreach("connection_request_sent"), now()).unwrap(), Parsed::Ignored { .. }));
        let per_campaign = event(parse_heyreach(&heyreach("message_reply_received"), now()).unwrap());
        let every = event(parse_heyreach(&heyreach("every_message_reply_received"), now()).unwrap());
        assert_eq!(per_campaign.event_id, every.event_id, "one reply seen through two subscriptions");
        let mut later = heyreach("message_reply_received");
        later["timestamp"] = json!("2026-05-02T11:30:00Z");
        assert_ne!(event(parse_heyreach(&later, now()).unwrap()).event_id, per_campaign.event_id);
    }

    #[test]
    fn heyreach_shapes_vary_and_are_read_defensively() {
        let payload = json!({
            "eventType": "MESSAGE_REPLY_RECEIVED",
            "recentMessages": [{"creationTime": "2026-05-02T10:59:00Z", "message": "Yes", "isReply": true}],
            "lead": {"profileUrl": "linkedin.com/in/jane-doe", "emailAddress": "Jane@Acme.com",
                     "customUserFields": [{"name": "leadpush_id", "value": "req_Y_0002"}]}
        });
        let e = event(parse_heyreach(&payload, now()).unwrap());
        assert_eq!(e.lead.lead_id.as_deref(), Some("req_Y_0002"));
        assert_eq!(e.lead.email.as_deref(), Some("jane@acme.com"));
        assert_eq!(e.occurred_at, Timestamp::parse("2026-05-02T10:59:00Z"), "the reply's own time");
        let e = parse_heyreach(&json!({"event_type": "message_reply_received", "lead": {}}), now()).unwrap_err();
        assert_eq!(e.field, "lead.profile_url");
        let e = parse_heyreach(&json!({"lead": {"profile_url": "x"}}), now()).unwrap_err();
        assert_eq!(e.field, "event_type");
        assert!(e.message.contains("HeyReach"), "{}", e.message);
        let bad = json!({"event_type": "message_reply_received", "lead": {"profile_url": "https://example.com/jane"}});
        assert_eq!(parse_heyreach(&bad, now()).unwrap_err().field, "lead.profile_url");
    }
}
