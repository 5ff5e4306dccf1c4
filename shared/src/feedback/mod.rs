//! Outcome events (the feedback-event specification): recording one event for a lead
//! ([`record::record`]), shared by our own route and the provider webhooks
//! ([`providers::record_provider`]).
//!
//! A bench or script can drive [`record::record`] directly in a loop (no HTTP), or POST
//! to the route; see docs/api-guide.md ("Feedback events").

pub mod providers;
pub mod record;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::feedback::{EventSource, EventType};
use crate::domain::lead::{Feedback, LeadStatus};
use crate::queue::QueueError;
use crate::store::StoreError;
use crate::support::time::Timestamp;
pub use record::{NewEvent, record};

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("lead not found")]
    LeadNotFound,
    /// The sender's event id was first used for a different event.
    #[error(
        "Event id \"{}\" was already used for a different event. Use a unique event_id \
         (or Idempotency-Key) per event; retries must send the same body.",
        .0.chars().take(80).collect::<String>()
    )]
    ReusedEventId(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The lead after the event, as the feedback-event specification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadSnapshot {
    pub id: String,
    pub status: LeadStatus,
    pub replied_at: Option<Timestamp>,
    pub meeting_booked_at: Option<Timestamp>,
    pub feedback: Option<Feedback>,
    pub feedback_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackResult {
    /// Always true for a recognised event type with a known lead.
    pub accepted: bool,
    pub event_type: EventType,
    pub source: EventSource,
    pub lead_id: String,
    /// Whether the lead record was updated.
    pub mutated_lead: bool,
    /// Whether an entry was written to the lead's event log (always, for accepted events).
    pub stored_event: bool,
    /// What changed, or why nothing did.
    pub note: String,
    pub lead: LeadSnapshot,
}
