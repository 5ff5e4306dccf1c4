//! Leads: what the inbound webhook accepts, how it is validated, and what we store.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ValidationError;
use crate::support::time::Timestamp;

/// Each lead's JSON may be at most this large (a DynamoDB item holds 400 KB; leave room).
pub const MAX_LEAD_BYTES: usize = 64 * 1024;
pub const MAX_TEXT_CHARS: usize = 1000;
pub const MAX_NOTES_CHARS: usize = 10_000;
pub const MAX_CUSTOM_FIELDS: usize = 100;
pub const MAX_CUSTOM_FIELD_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    New,
    Pushed,
    Replied,
    MeetingBooked,
    Skipped,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 5] =
        [LeadStatus::New, LeadStatus::Pushed, LeadStatus::Replied, LeadStatus::MeetingBooked, LeadStatus::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Pushed => "pushed",
            LeadStatus::Replied => "replied",
            LeadStatus::MeetingBooked => "meeting_booked",
            LeadStatus::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    Positive,
    Negative,
}

/// Declares [`Lead`], [`LeadFields`] and [`Lead::new`] over one list of contact fields, so
/// the list is written once. `Lead` places them after its own leading fields, in the order
/// its stored items and API answers have always had (pinned by
/// `the_stored_and_served_lead_keeps_its_field_order`).
macro_rules! lead_types {
    ($($(#[$attr:meta])* $field:ident: $ty:ty,)*) => {
        /// A stored lead, as `GET /api/v1/leads/{id}` returns it.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        pub struct Lead {
            /// Starts with the id of the ingest request that created it.
            pub id: String,
            pub campaign_id: String,
            pub request_id: Option<String>,
            pub status: LeadStatus,
            $($(#[$attr])* pub $field: $ty,)*
            pub feedback: Option<Feedback>,
            pub feedback_reason: Option<String>,
            /// When the event that set `feedback` happened; a later event of the same outcome
            /// stage replaces it only if newer (see `domain::feedback`).
            #[serde(default)]
            pub feedback_at: Option<Timestamp>,
            pub reply_content: Option<String>,
            pub replied_at: Option<Timestamp>,
            pub meeting_booked_at: Option<Timestamp>,
            pub meeting_url: Option<String>,
            pub pushed_at: Option<Timestamp>,
            /// The outreach channel of the latest push: `webhook`, `heyreach` or `instantly`.
            #[serde(default)]
            pub pushed_via: Option<String>,
            pub created_at: Timestamp,
            pub updated_at: Timestamp,
            /// Learned from this workspace's outcomes: the estimated probability that the lead,
            /// once pushed, gets a positive reply or books a meeting. `null` until the workspace
            /// has outcomes to learn from (`score_reasons` then says why). The sender's own
            /// `score` is separate and unchanged.
            #[serde(default)]
            pub predicted_score: Option<f64>,
            /// What moved `predicted_score`, largest effect first.
            #[serde(default)]
            pub score_reasons: Vec<crate::domain::score::ScoreReason>,
            /// When `predicted_score` was last computed.
            #[serde(default)]
            pub scored_at: Option<Timestamp>,
        }

        /// The contact fields of a lead, validated; what a webhook sender controls. (It
        /// derives `ToSchema` only because the fields' schema attributes need it; the API
        /// document names `Lead`, not this.)
        #[derive(Debug, Clone, Default, PartialEq, ToSchema)]
        pub struct LeadFields {
            $($(#[$attr])* pub $field: $ty,)*
        }

        impl Lead {
            /// A new lead of `campaign_id` with the sender's `fields`, status `new`.
            pub fn new(
                id: String,
                campaign_id: String,
                request_id: Option<String>,
                fields: LeadFields,
                now: Timestamp,
            ) -> Self {
                Lead {
                    id,
                    campaign_id,
                    request_id,
                    status: LeadStatus::New,
                    $($field: fields.$field,)*
                    feedback: None,
                    feedback_reason: None,
                    feedback_at: None,
                    reply_content: None,
                    replied_at: None,
                    meeting_booked_at: None,
                    meeting_url: None,
                    pushed_at: None,
                    pushed_via: None,
                    created_at: now,
                    updated_at: now,
                    predicted_score: None,
                    score_reasons: Vec::new(),
                    scored_at: None,
                }
            }
        }
    };
}

lead_types! {
    name: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    website: Option<String>,
    phone: Option<String>,
    /// Job title.
    position: Option<String>,
    twitter: Option<String>,
    linkedin: Option<String>,
    notes: Option<String>,
    score: Option<i64>,
    signal_type: Option<String>,
    /// Everything else the sender included, kept verbatim.
    #[schema(value_type = Object)]
    custom_fields: Map<String, Value>,
}

/// One validated entry of an ingest request.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingLead {
    pub campaign_id: String,
    pub fields: LeadFields,
}

/// Fields a sender may use to say who the lead is; at least one must be present.
const IDENTITY_FIELDS: [&str; 8] =
    ["name", "email", "first_name", "last_name", "linkedin", "phone", "twitter", "company"];

/// Field names we accept as aliases of ours (common in CRM exports).
fn canonical_name(name: &str) -> &str {
    match name {
        "title" | "job_title" => "position",
        "linkedin_url" => "linkedin",
        other => other,
    }
}

fn text(field: &str, value: &Value, max_chars: usize) -> Result<Option<String>, ValidationError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            // Counted before trimming, as the API document's `maxLength` counts it.
            let chars = s.chars().count();
            let s = s.trim();
            if chars > max_chars {
                return Err(ValidationError::new(
                    field,
                    format!("must be at most {max_chars} characters, got {chars}"),
                ));
            }
            // Empty strings (common in CSV exports) mean "not given".
            if s.is_empty() {
                return Ok(None);
            }
            super::check_free_text(field, s).map(Some)
        }
        other => Err(ValidationError::new(field, format!("must be a string, got {}", json_type(other)))),
    }
}

/// `website` and `linkedin`: shown as links, so only http(s). A bare domain
/// (`acme.com`, `linkedin.com/in/ada`) gets `https://`; any other scheme (`javascript:`,
/// `data:`, `file:`) is refused.
pub fn web_url(field: &str, text: String) -> Result<String, ValidationError> {
    let lower = text.to_ascii_lowercase();
    let has_scheme = lower.starts_with("http://") || lower.starts_with("https://");
    // `name:rest` where rest does not start with a digit is a scheme, not `host:port`.
    let other_scheme = !has_scheme
        && lower.split_once(':').is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && !scheme.contains(['/', '.'])
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-'))
                && !rest.starts_with(|c: char| c.is_ascii_digit())
        });
    let refuse = || ValidationError::new(field, "must be an http(s) URL or a bare domain such as acme.com");
    if other_scheme || lower.starts_with("//") || text.chars().any(char::is_whitespace) {
        return Err(refuse());
    }
    let text = if has_scheme { text } else { format!("https://{text}") };
    match url::Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(text)
        }
        _ => Err(refuse()),
    }
}

/// Custom field names are one line; string values anywhere inside are free text.
fn check_custom(field: &str, value: &mut Value) -> Result<(), ValidationError> {
    match value {
        Value::String(s) => {
            let checked = super::check_free_text(field, s)?;
            if checked != *s {
                *s = checked;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                check_custom(&format!("{field}[{i}]"), item)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let at = format!("{field}.{key}");
                super::check_line(&at, key)?;
                check_custom(&at, item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `text` is a syntactically valid email address.
pub fn is_valid_email(text: &str) -> bool {
    email_address::EmailAddress::parse_with_options(text, email_address::Options::default().without_display_text())
        .is_ok_and(|addr| addr.domain().contains('.'))
}

/// Reads one field of an incoming lead into `fields` (or `extra`). Its errors name no
/// field; [`IncomingLead::parse`] names them.
fn take_field(
    fields: &mut LeadFields,
    extra: &mut Map<String, Value>,
    name: &str,
    value: &Value,
) -> Result<(), ValidationError> {
    let field = ""; // named by the caller
    match canonical_name(name) {
        "campaign_id" => {}
        "name" => fields.name = text(field, value, MAX_TEXT_CHARS)?,
        "email" => fields.email = text(field, value, 320)?,
        "first_name" => fields.first_name = text(field, value, MAX_TEXT_CHARS)?,
        "last_name" => fields.last_name = text(field, value, MAX_TEXT_CHARS)?,
        "company" => fields.company = text(field, value, MAX_TEXT_CHARS)?,
        "website" => fields.website = text(field, value, MAX_TEXT_CHARS)?.map(|u| web_url(field, u)).transpose()?,
        "phone" => fields.phone = text(field, value, 64)?,
        "position" => fields.position = text(field, value, MAX_TEXT_CHARS)?,
        "twitter" => fields.twitter = text(field, value, MAX_TEXT_CHARS)?,
        "linkedin" => fields.linkedin = text(field, value, MAX_TEXT_CHARS)?.map(|u| web_url(field, u)).transpose()?,
        "notes" => fields.notes = text(field, value, MAX_NOTES_CHARS)?,
        "signal_type" => fields.signal_type = text(field, value, 100)?,
        "score" => {
            fields.score = match value {
                Value::Null => None,
                Value::Number(n) if n.is_i64() => n.as_i64(),
                // `5.0` is an integer too (as JSON Schema counts it).
                Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) => {
                    n.as_f64().map(|f| f as i64)
                }
                other => {
                    return Err(ValidationError::new(field, format!("must be an integer, got {}", describe(other))));
                }
            }
        }
        "custom_fields" => match value {
            Value::Null => {}
            Value::Object(custom) => extra.extend(custom.clone()),
            other => {
                return Err(ValidationError::new(field, format!("must be an object, got {}", json_type(other))));
            }
        },
        // Unknown fields are kept, never dropped silently.
        _ => {
            extra.insert(name.to_owned(), value.clone());
        }
    }
    Ok(())
}

impl IncomingLead {
    /// Validates `leads[index]` of an ingest request. Unknown fields go to `custom_fields`.
    pub fn parse(index: usize, value: &Value) -> Result<Self, ValidationError> {
        let at = |field: &str| format!("leads[{index}].{field}");
        let Value::Object(object) = value else {
            return Err(ValidationError::new(
                format!("leads[{index}]"),
                format!("must be an object, got {}", json_type(value)),
            ));
        };
        let size = crate::support::text::json_size(value);
        if size > MAX_LEAD_BYTES {
            return Err(ValidationError::new(
                format!("leads[{index}]"),
                format!("is {size} bytes; each lead may be at most {MAX_LEAD_BYTES} bytes"),
            ));
        }
        let campaign_id = match object.get("campaign_id") {
            None | Some(Value::Null) => {
                return Err(ValidationError::new(at("campaign_id"), "is required"));
            }
            Some(v) => text(&at("campaign_id"), v, 128)?
                .ok_or_else(|| ValidationError::new(at("campaign_id"), "must not be empty"))?,
        };
        let mut fields = LeadFields::default();
        let mut extra = Map::new();
        for (name, value) in object {
            // The field's path is only formatted for an error (a format per field per lead
            // was a tenth of an ingest's parsing).
            take_field(&mut fields, &mut extra, name, value).map_err(|e| ValidationError::new(at(name), e.message))?;
        }
        if let Some(email) = &fields.email
            && !is_valid_email(email)
        {
            return Err(ValidationError::new(at("email"), format!("`{email}` is not a valid email address")));
        }
        if extra.len() > MAX_CUSTOM_FIELDS {
            return Err(ValidationError::new(
                at("custom_fields"),
                format!(
                    "may hold at most {MAX_CUSTOM_FIELDS} fields (unknown top-level fields count too), got {}",
                    extra.len()
                ),
            ));
        }
        if let Some(long) = extra.keys().find(|k| k.chars().count() > MAX_CUSTOM_FIELD_NAME_CHARS) {
            return Err(ValidationError::new(
                at("custom_fields"),
                format!(
                    "field names may be at most {MAX_CUSTOM_FIELD_NAME_CHARS} characters (`{}…`)",
                    long.chars().take(20).collect::<String>()
                ),
            ));
        }
        for (key, value) in extra.iter_mut() {
            let at = format!("{}.{key}", at("custom_fields"));
            super::check_line(&at, key)?;
            check_custom(&at, value)?;
            super::storable_json(&at, value)?;
        }
        fields.custom_fields = extra;
        let has_identity = fields.name.is_some()
            || fields.email.is_some()
            || fields.first_name.is_some()
            || fields.last_name.is_some()
            || fields.linkedin.is_some()
            || fields.phone.is_some()
            || fields.twitter.is_some()
            || fields.company.is_some();
        if !has_identity {
            return Err(ValidationError::new(
                format!("leads[{index}]"),
                format!("needs at least one of {}", IDENTITY_FIELDS.join(", ")),
            ));
        }
        Ok(Self { campaign_id, fields })
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("the string \"{}\"", s.chars().take(40).collect::<String>()),
        other => json_type(other).to_owned(),
    }
}

impl Lead {
    /// A push delivered this lead: `new` becomes `pushed`; a lead already further along
    /// (`replied`, `meeting_booked`, `skipped`) keeps its status. `pushed_at` is the latest push.
    /// Records a push through `channel` (`webhook`, `heyreach`, `instantly`).
    pub fn mark_pushed(&mut self, now: Timestamp, channel: &str) {
        if self.status == LeadStatus::New {
            self.status = LeadStatus::Pushed;
        }
        self.pushed_at = Some(now);
        self.pushed_via = Some(channel.to_owned());
        self.updated_at = now;
    }

    /// First and last name for providers that want them apart: the stored parts, else
    /// `name` split at its first space.
    pub fn name_parts(&self) -> (Option<String>, Option<String>) {
        let (name_first, name_last) = match self.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            None => (None, None),
            Some(name) => match name.split_once(' ') {
                Some((first, rest)) => (Some(first.to_owned()), Some(rest.trim().to_owned())),
                None => (Some(name.to_owned()), None),
            },
        };
        (self.first_name.clone().or(name_first), self.last_name.clone().or(name_last))
    }

    /// `name`, or the first and last name joined, for display and provider fields.
    pub fn display_name(&self) -> Option<String> {
        self.name.clone().or_else(|| {
            let parts: Vec<&str> =
                [self.first_name.as_deref(), self.last_name.as_deref()].into_iter().flatten().collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<IncomingLead, ValidationError> {
        IncomingLead::parse(3, &value)
    }

    /// The JSON a stored lead is written as and served as, byte for byte: `Lead` and
    /// `LeadFields` share one field list (`lead_types!`), and this pins that the list lands
    /// where it always has.
    #[test]
    fn the_stored_and_served_lead_keeps_its_field_order() {
        let now = Timestamp::parse("2026-05-02T12:00:00Z").unwrap();
        let fields = LeadFields {
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
            position: Some("CTO".into()),
            score: Some(7),
            custom_fields: Map::from_iter([("tier".to_owned(), json!(1))]),
            ..LeadFields::default()
        };
        let lead = Lead::new("req_1_0001".into(), "cmp_1".into(), Some("req_1".into()), fields, now);
        assert_eq!(
            serde_json::to_string(&lead).unwrap(),
            r#"{"id":"req_1_0001","campaign_id":"cmp_1","request_id":"req_1","status":"new","name":"Ada","email":"ada@example.com","first_name":null,"last_name":null,"company":null,"website":null,"phone":null,"position":"CTO","twitter":null,"linkedin":null,"notes":null,"score":7,"signal_type":null,"custom_fields":{"tier":1},"feedback":null,"feedback_reason":null,"feedback_at":null,"reply_content":null,"replied_at":null,"meeting_booked_at":null,"meeting_url":null,"pushed_at":null,"pushed_via":null,"created_at":"2026-05-02T12:00:00.000Z","updated_at":"2026-05-02T12:00:00.000Z","predicted_score":null,"score_reasons":[],"scored_at":null}"#
        );
    }

    #[test]
    fn unknown_fields_are_kept_in_custom_fields() {
        let lead = parse(json!({
            "campaign_id": "cmp_1", "name": "Alice", "title": "CTO", "industry": "fintech",
            "custom_fields": {"tier": 1}
        }))
        .unwrap();
        assert_eq!(lead.fields.position.as_deref(), Some("CTO"));
        assert_eq!(lead.fields.custom_fields, json!({"industry": "fintech", "tier": 1}).as_object().unwrap().clone());
    }

    #[test]
    fn errors_name_the_lead_index_and_field() {
        let e = parse(json!({"name": "A"})).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("leads[3].campaign_id", "is required"));
        let e = parse(json!({"campaign_id": "c", "name": "A", "score": "high"})).unwrap_err();
        assert_eq!(e.field, "leads[3].score");
        assert!(e.message.contains("must be an integer"), "{}", e.message);
        let e = parse(json!({"campaign_id": "c", "name": "A", "score": 4.5})).unwrap_err();
        assert_eq!(e.field, "leads[3].score");
        let e = parse(json!({"campaign_id": "c", "email": "not-an-email"})).unwrap_err();
        assert_eq!(e.field, "leads[3].email");
        let e = parse(json!({"campaign_id": "c"})).unwrap_err();
        assert_eq!(e.field, "leads[3]");
        let e = parse(json!({"campaign_id": "c", "name": 7})).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("leads[3].name", "must be a string, got a number"));
        assert!(parse(json!("Alice")).is_err());
    }

    #[test]
    fn email_syntax_is_checked() {
        assert!(is_valid_email("alice@example.com"));
        assert!(is_valid_email("a.b+tag@sub.example.co.uk"));
        assert!(!is_valid_email("alice@"));
        assert!(!is_valid_email("alice@localhost"));
        assert!(!is_valid_email("Alice <alice@example.com>"));
    }

    fn stored(status: LeadStatus) -> Lead {
        let t0 = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let fields = LeadFields { name: Some("Jane Q Doe".into()), ..LeadFields::default() };
        let mut lead = Lead::new("req_1_0001".into(), "cmp_1".into(), None, fields, t0);
        lead.status = status;
        lead
    }

    #[test]
    fn pushing_moves_only_new_leads_to_pushed_and_always_stamps_pushed_at() {
        let now = Timestamp::parse("2026-05-02T12:00:00Z").unwrap();
        for (before, after) in [
            (LeadStatus::New, LeadStatus::Pushed),
            (LeadStatus::Pushed, LeadStatus::Pushed),
            (LeadStatus::Replied, LeadStatus::Replied),
            (LeadStatus::MeetingBooked, LeadStatus::MeetingBooked),
            (LeadStatus::Skipped, LeadStatus::Skipped),
        ] {
            let mut lead = stored(before);
            lead.mark_pushed(now, "webhook");
            assert_eq!((lead.status, lead.pushed_at, lead.updated_at), (after, Some(now), now), "{before:?}");
        }
    }

    #[test]
    fn name_parts_prefer_stored_parts_then_split_the_name() {
        let lead = stored(LeadStatus::New);
        assert_eq!(lead.name_parts(), (Some("Jane".into()), Some("Q Doe".into())));
        let mut lead = stored(LeadStatus::New);
        lead.last_name = Some("Smith".into());
        assert_eq!(lead.name_parts(), (Some("Jane".into()), Some("Smith".into())));
        lead.name = Some("Cher".into());
        lead.last_name = None;
        assert_eq!(lead.name_parts(), (Some("Cher".into()), None));
        lead.name = None;
        assert_eq!(lead.name_parts(), (None, None));
    }

    #[test]
    fn link_fields_take_http_urls_or_bare_domains_only() {
        let lead =
            parse(json!({"campaign_id": "c", "name": "A", "website": "acme.com", "linkedin": "linkedin.com/in/ada"}))
                .unwrap();
        assert_eq!(lead.fields.website.as_deref(), Some("https://acme.com"));
        assert_eq!(lead.fields.linkedin.as_deref(), Some("https://linkedin.com/in/ada"));
        for ok in ["https://acme.com/x?y=1", "HTTP://acme.com", "acme.com:8080/a", "www.acme.co.uk"] {
            assert!(web_url("website", ok.into()).is_ok(), "{ok}");
        }
        for field in ["website", "linkedin", "linkedin_url"] {
            for bad in [
                "javascript:alert(1)",
                "JavaScript:alert(1)",
                "data:text/html,<script>alert(1)</script>",
                "vbscript:msgbox",
                "file:///etc/passwd",
                "ftp://acme.com",
                "//evil.example",
                "https://",
                "acme .com",
            ] {
                let e = parse(json!({"campaign_id": "c", "name": "A", field: bad})).unwrap_err();
                let want = if field == "linkedin_url" { "leads[3].linkedin_url" } else { &format!("leads[3].{field}") };
                assert_eq!(e.field, want, "{bad}");
                assert!(e.message.contains("http(s) URL"), "{bad}: {}", e.message);
            }
        }
    }

    #[test]
    fn control_characters_are_refused_in_values_and_keys() {
        let e = parse(json!({"campaign_id": "c", "name": "A\u{0}B"})).unwrap_err();
        assert_eq!(e.field, "leads[3].name");
        let e = parse(json!({"campaign_id": "c", "name": "A", "custom_fields": {"k\u{1b}": "v"}})).unwrap_err();
        assert_eq!(e.field, "leads[3].custom_fields.k\u{1b}");
        let e = parse(json!({"campaign_id": "c", "name": "A", "tags": ["ok", "bad\u{7}"]})).unwrap_err();
        assert_eq!(e.field, "leads[3].custom_fields.tags[1]");
        let lead = parse(json!({"campaign_id": "c", "name": "A", "notes": "line 1\r\n\tline 2"})).unwrap();
        assert_eq!(lead.fields.notes.as_deref(), Some("line 1\n\tline 2"));
    }

    #[test]
    fn oversized_leads_are_refused() {
        let e = parse(json!({"campaign_id": "c", "name": "A", "blob": "x".repeat(MAX_LEAD_BYTES)})).unwrap_err();
        assert_eq!(e.field, "leads[3]");
    }
}
