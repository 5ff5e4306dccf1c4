//! Outcome events (open, click, reply, positive reply, bounce, meeting booked) and the
//! precedence rules that fold them into a lead.
//!
//! The rules are built so that the final lead does not depend on arrival order: it is what
//! applying every event in `occurred_at` order gives (ties: in arrival order).
//!
//! - Status is a stage that only rises: `new`/`pushed` < `skipped` (bounce) < `replied` <
//!   `meeting_booked`. An event of a lower stage never lowers it.
//! - `replied_at`/`reply_content` and `meeting_booked_at`/`meeting_url` each keep the
//!   newest event of their kind, whatever the status.
//! - `feedback`/`feedback_reason` belong to the current stage: an event of a higher stage
//!   replaces them (a plain reply clears a bounce's `negative`), one of the same stage
//!   replaces them only if newer, one of a lower stage never touches them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ValidationError;
use super::lead::{Feedback, Lead, LeadStatus};
use crate::support::time::Timestamp;

/// `content` may be at most this long (characters).
pub const MAX_CONTENT_CHARS: usize = 10_000;
pub const MAX_MEETING_URL_CHARS: usize = 2_000;
/// `metadata`, serialised, may be at most this large.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_EVENT_ID_CHARS: usize = 255;
/// How far in the future `occurred_at` may be (sender clock skew). Further would pin the
/// newest-wins fields for as long as the skew.
pub const MAX_FUTURE_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Older timestamps are certainly mistakes (and keep the event log's sort key fixed-width).
pub const EARLIEST_OCCURRED_AT: &str = "2000-01-01T00:00:00Z";

/// Named apart from the outbound webhooks' `EventType` in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[schema(as = FeedbackEventType)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Open,
    Click,
    Reply,
    PositiveReply,
    Bounce,
    MeetingBooked,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Open,
        EventType::Click,
        EventType::Reply,
        EventType::PositiveReply,
        EventType::Bounce,
        EventType::MeetingBooked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Open => "open",
            EventType::Click => "click",
            EventType::Reply => "reply",
            EventType::PositiveReply => "positive_reply",
            EventType::Bounce => "bounce",
            EventType::MeetingBooked => "meeting_booked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    fn stage(self) -> Stage {
        match self {
            EventType::Open | EventType::Click => Stage::None,
            EventType::Bounce => Stage::Bounced,
            EventType::Reply | EventType::PositiveReply => Stage::Replied,
            EventType::MeetingBooked => Stage::Meeting,
        }
    }

    fn feedback(self) -> Option<Feedback> {
        match self {
            EventType::PositiveReply | EventType::MeetingBooked => Some(Feedback::Positive),
            EventType::Bounce => Some(Feedback::Negative),
            EventType::Open | EventType::Click | EventType::Reply => None,
        }
    }

    fn is_reply(self) -> bool {
        matches!(self, EventType::Reply | EventType::PositiveReply)
    }

    /// What the insights count for a lead the first time it sees this event.
    pub fn outcome_kinds(self) -> &'static [OutcomeKind] {
        match self {
            EventType::Open => &[OutcomeKind::Opened],
            EventType::Click => &[OutcomeKind::Clicked],
            EventType::Reply => &[OutcomeKind::Replied],
            EventType::PositiveReply => &[OutcomeKind::Replied, OutcomeKind::Positive],
            EventType::Bounce => &[OutcomeKind::Negative],
            EventType::MeetingBooked => &[OutcomeKind::Meetings, OutcomeKind::Positive],
        }
    }
}

/// Where an event came from (the feedback-event specification's sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Instantly,
    Heyreach,
    Webhook,
    Manual,
    Custom,
}

impl EventSource {
    pub const ALL: [EventSource; 5] =
        [EventSource::Instantly, EventSource::Heyreach, EventSource::Webhook, EventSource::Manual, EventSource::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Instantly => "instantly",
            EventSource::Heyreach => "heyreach",
            EventSource::Webhook => "webhook",
            EventSource::Manual => "manual",
            EventSource::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The counters insights keep per group; each is counted at most once per lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeKind {
    Pushed,
    Opened,
    Clicked,
    Replied,
    Positive,
    Negative,
    Meetings,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 7] = [
        OutcomeKind::Pushed,
        OutcomeKind::Opened,
        OutcomeKind::Clicked,
        OutcomeKind::Replied,
        OutcomeKind::Positive,
        OutcomeKind::Negative,
        OutcomeKind::Meetings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Pushed => "pushed",
            OutcomeKind::Opened => "opened",
            OutcomeKind::Clicked => "clicked",
            OutcomeKind::Replied => "replied",
            OutcomeKind::Positive => "positive",
            OutcomeKind::Negative => "negative",
            OutcomeKind::Meetings => "meetings",
        }
    }
}

/// How far a lead has come; the status only ever moves up this ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    None,
    Bounced,
    Replied,
    Meeting,
}

impl Stage {
    fn of(status: LeadStatus) -> Stage {
        match status {
            LeadStatus::New | LeadStatus::Pushed => Stage::None,
            LeadStatus::Skipped => Stage::Bounced,
            LeadStatus::Replied => Stage::Replied,
            LeadStatus::MeetingBooked => Stage::Meeting,
        }
    }

    fn status(self) -> Option<LeadStatus> {
        match self {
            Stage::None => None,
            Stage::Bounced => Some(LeadStatus::Skipped),
            Stage::Replied => Some(LeadStatus::Replied),
            Stage::Meeting => Some(LeadStatus::MeetingBooked),
        }
    }
}

/// One entry of a lead's event log (`GET /api/v1/leads/{id}/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackEvent {
    /// `evt_...`
    pub id: String,
    pub lead_id: String,
    pub event_type: EventType,
    pub source: EventSource,
    pub content: Option<String>,
    pub meeting_url: Option<String>,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// The sender's `event_id` (or `Idempotency-Key`); for provider webhooks, an id derived
    /// from the payload.
    pub event_id: Option<String>,
    /// Whether this event changed the lead.
    pub mutated_lead: bool,
    pub note: String,
    /// The lead's status right after this event.
    pub lead_status: LeadStatus,
}

/// A validated outcome event, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub event_type: EventType,
    pub content: Option<String>,
    pub meeting_url: Option<String>,
    pub occurred_at: Timestamp,
}

/// What applying an event did to a lead, and a sentence saying so.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub mutated: bool,
    pub note: String,
}

/// Whether an event at `at` is at least as new as the value last set at `current`
/// (equal times: the later arrival wins).
fn newer(at: Timestamp, current: Option<Timestamp>) -> bool {
    current.is_none_or(|current| at >= current)
}

/// Folds one event into the lead following the precedence rules (module docs).
pub fn apply(lead: &mut Lead, outcome: &Outcome, now: Timestamp) -> Applied {
    let event = outcome.event_type;
    if event.stage() == Stage::None {
        let what = if event == EventType::Open { "Open" } else { "Click" };
        return Applied {
            mutated: false,
            note: format!("{what} recorded in the lead's event log; opens and clicks do not change the lead."),
        };
    }
    let before = lead.clone();
    let current = Stage::of(lead.status);
    let target = event.stage();
    let mut changed: Vec<String> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    let at = outcome.occurred_at;

    if target > current {
        if let Some(status) = target.status() {
            changed.push(format!("status {} -> {}", lead.status.as_str(), status.as_str()));
            lead.status = status;
        }
    } else if target < current {
        kept.push(format!("status stays {} because outcomes never go backwards", lead.status.as_str()));
    }

    if event.is_reply() {
        if newer(at, lead.replied_at) {
            lead.replied_at = Some(at);
            lead.reply_content = outcome.content.clone();
            changed.push("replied_at and reply_content set".into());
        } else {
            kept.push(format!("replied_at and reply_content keep the newer reply of {}", stamp(lead.replied_at)));
        }
    }
    if event == EventType::MeetingBooked {
        if newer(at, lead.meeting_booked_at) {
            lead.meeting_booked_at = Some(at);
            lead.meeting_url = outcome.meeting_url.clone();
            changed.push("meeting_booked_at and meeting_url set".into());
        } else {
            kept.push(format!("meeting details keep the newer booking of {}", stamp(lead.meeting_booked_at)));
        }
    }

    match event.feedback() {
        Some(feedback) if target > current || (target == current && newer(at, lead.feedback_at)) => {
            lead.feedback = Some(feedback);
            lead.feedback_reason = outcome.content.clone();
            lead.feedback_at = Some(at);
            changed.push(format!("feedback {}", feedback_word(feedback)));
        }
        Some(_) if target == current => {
            kept.push(format!("feedback keeps the newer outcome of {}", stamp(lead.feedback_at)));
        }
        // A lower stage never touches the current stage's feedback (the status note says why).
        Some(_) => {}
        None if target > current && lead.feedback.is_some() => {
            // The bounce's verdict no longer describes a lead that has since replied.
            lead.feedback = None;
            lead.feedback_reason = None;
            lead.feedback_at = None;
            changed.push("feedback cleared (the reply supersedes the bounce)".into());
        }
        None => {}
    }

    let mutated = *lead != before;
    if mutated {
        lead.updated_at = now;
    }
    Applied { mutated, note: note(event, mutated, &changed, &kept) }
}

fn feedback_word(feedback: Feedback) -> &'static str {
    match feedback {
        Feedback::Positive => "positive",
        Feedback::Negative => "negative",
    }
}

fn stamp(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "an earlier event".to_owned(), |at| at.to_string())
}

fn note(event: EventType, mutated: bool, changed: &[String], kept: &[String]) -> String {
    let name = event.as_str();
    let mut text = if mutated {
        format!("Lead updated by {name}: {}.", changed.join("; "))
    } else {
        format!("The {name} event was recorded in the lead's event log; the lead is unchanged.")
    };
    if !kept.is_empty() {
        let mut reasons = kept.join("; ");
        if let Some(first) = reasons.get(..1) {
            reasons = first.to_uppercase() + &reasons[1..];
        }
        text.push(' ');
        text.push_str(&reasons);
        text.push('.');
    }
    text
}

/// Trims optional text; empty means absent. Errors name the field.
pub fn optional_text(field: &str, value: Option<&str>, max_chars: usize) -> Result<Option<String>, ValidationError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(field, format!("must be at most {max_chars} characters, got {chars}")));
    }
    Ok(Some(value.to_owned()))
}

/// Cuts provider text to the limit instead of refusing it: a provider cannot fix its payload.
pub fn truncated(value: Option<&str>, max_chars: usize) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    Some(value.chars().take(max_chars).collect())
}

pub fn parse_event_type(field: &str, text: &str) -> Result<EventType, ValidationError> {
    EventType::parse(text).ok_or_else(|| {
        let valid: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        ValidationError::new(
            field,
            format!("`{}` is not a supported event type; use one of {}", clip(text), valid.join(", ")),
        )
    })
}

pub fn parse_source(field: &str, text: &str) -> Result<EventSource, ValidationError> {
    EventSource::parse(text).ok_or_else(|| {
        let valid: Vec<&str> = EventSource::ALL.iter().map(|s| s.as_str()).collect();
        ValidationError::new(
            field,
            format!("`{}` is not a supported source; use one of {}", clip(text), valid.join(", ")),
        )
    })
}

/// `occurred_at`: RFC 3339, not before 2000, not more than [`MAX_FUTURE_SKEW`] ahead of `now`.
pub fn parse_occurred_at(field: &str, text: &str, now: Timestamp) -> Result<Timestamp, ValidationError> {
    let at = Timestamp::parse(text.trim()).ok_or_else(|| {
        ValidationError::new(
            field,
            format!("`{}` is not an RFC 3339 timestamp; send e.g. 2026-05-02T12:00:00.000Z", clip(text)),
        )
    })?;
    check_occurred_at(field, at, now)
}

pub fn check_occurred_at(field: &str, at: Timestamp, now: Timestamp) -> Result<Timestamp, ValidationError> {
    if Timestamp::parse(EARLIEST_OCCURRED_AT).is_some_and(|earliest| at < earliest) {
        return Err(ValidationError::new(field, format!("{at} is before {EARLIEST_OCCURRED_AT}")));
    }
    if at > now.plus(MAX_FUTURE_SKEW) {
        return Err(ValidationError::new(
            field,
            format!("{at} is in the future (now is {now}); send the time the event happened"),
        ));
    }
    Ok(at)
}

/// `metadata`: absent, `null`, or an object of bounded size that DynamoDB can store.
pub fn parse_metadata(field: &str, value: Option<&Value>) -> Result<Option<Map<String, Value>>, ValidationError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(whole @ Value::Object(map)) => {
            super::storable_json(field, whole)?;
            let size = crate::support::text::json_size(map);
            if size > MAX_METADATA_BYTES {
                return Err(ValidationError::new(
                    field,
                    format!("is {size} bytes; at most {MAX_METADATA_BYTES} bytes are kept"),
                ));
            }
            Ok(Some(map.clone()))
        }
        Some(other) => {
            Err(ValidationError::new(field, format!("must be an object, got {}", super::lead::json_type(other))))
        }
    }
}

/// `meeting_url`: an absolute http(s) URL.
pub fn parse_meeting_url(field: &str, value: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(text) = optional_text(field, value, MAX_MEETING_URL_CHARS)? else {
        return Ok(None);
    };
    match url::Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(Some(text)),
        _ => Err(ValidationError::new(field, "must be an http(s) URL such as https://meet.google.com/abc-defg-hij")),
    }
}

fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[path = "feedback_tests.rs"]
mod tests;
