//! Outcome events (the feedback-event specification): `POST /api/v1/feedback/events`, the
//! provider webhooks (`/api/v1/feedback/providers/instantly`, `/heyreach`) and each lead's
//! event log (`GET /api/v1/leads/{id}/events`).
//!
//! The work is in [`crate::feedback`].

pub mod providers;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::callbacks::{Callback, CallbackQuery};
use super::docs::{DataOf, ErrorBody, ListOf};
use super::leads::{lead_not_found, load};
use crate::api::error::ApiError;
use crate::api::json::{Data, Json, List, Pagination, Params, Path};
use crate::context::AppContext;
use crate::domain::ValidationError;
use crate::domain::feedback::{
    self as rules, EventSource, EventType, FeedbackEvent, MAX_CONTENT_CHARS, MAX_EVENT_ID_CHARS,
};
use crate::feedback::{self as recorder, FeedbackResult, NewEvent};
use crate::repo;
use crate::support::secrets;
use crate::support::time::Timestamp;

/// Enough for the longest `content` (10,000 characters) and `metadata` (16 KB).
pub const MAX_BODY_BYTES: usize = 128 * 1024;
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(routes!(post_event))
        .routes(routes!(providers::instantly))
        .routes(routes!(providers::heyreach))
        .routes(routes!(lead_events))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FeedbackRequest {
    /// Lead ID in your workspace (trimmed).
    #[schema(min_length = 1, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    lead_id: String,
    /// `open`, `click`, `reply`, `positive_reply`, `bounce` or `meeting_booked`.
    #[schema(value_type = EventType)]
    event_type: String,
    /// `instantly`, `heyreach`, `webhook`, `manual` or `custom` (the default).
    #[schema(value_type = Option<EventSource>)]
    source: Option<String>,
    /// Reply text, event detail, or failure reason (at most 10,000 characters).
    content: Option<String>,
    /// Used with `meeting_booked`: an http(s) URL.
    #[schema(schema_with = super::docs::stored_url_or_null)]
    meeting_url: Option<String>,
    /// When the event happened (RFC 3339); defaults to now. Events are applied in this order.
    #[schema(value_type = Option<String>, format = DateTime, min_length = 20,
        pattern = r"^[2-9]\d{3}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")]
    occurred_at: Option<String>,
    /// Reserved for future use: any JSON object (at most 16 KB), kept in the event log.
    /// Values must be storable: nested at most 20 levels, numbers 0 or between 1e-130 and
    /// 1e126 in magnitude with at most 38 significant digits.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Your id for this event (at most 255 characters). Retries with the same id are applied
    /// once and answered with the first response. The `Idempotency-Key` header does the same.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    event_id: Option<String>,
}

fn validate_event_id(field: &str, value: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(value) = value else { return Ok(None) };
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > MAX_EVENT_ID_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_EVENT_ID_CHARS} characters, got {chars}"),
        ));
    }
    Ok(Some(value.to_owned()))
}

impl FeedbackRequest {
    /// Checks every field (400 naming it) and says which lead the event is for.
    fn validate(self, headers: &HeaderMap, now: Timestamp) -> Result<(String, NewEvent), ApiError> {
        let lead_id = self.lead_id.trim().to_owned();
        if lead_id.is_empty() {
            return Err(ApiError::validation("lead_id", "must not be empty"));
        }
        let event_type = rules::parse_event_type("event_type", self.event_type.trim())?;
        let source = match self.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => EventSource::Custom,
            Some(text) => rules::parse_source("source", text)?,
        };
        let content = rules::optional_text("content", self.content.as_deref(), MAX_CONTENT_CHARS)?;
        let meeting_url = rules::parse_meeting_url("meeting_url", self.meeting_url.as_deref())?;
        let occurred_at = match self.occurred_at.as_deref() {
            None => now,
            Some(text) => rules::parse_occurred_at("occurred_at", text, now)?,
        };
        let metadata = rules::parse_metadata("metadata", self.metadata.as_ref())?;
        // The header is checked whenever it is sent, even when `event_id` wins over it.
        let header = match headers.get(IDEMPOTENCY_HEADER) {
            None => None,
            Some(value) => {
                Some(value.to_str().map_err(|_| ApiError::validation("Idempotency-Key", "must be visible ASCII"))?)
            }
        };
        let from_header = validate_event_id("Idempotency-Key", header)?;
        let event_id = validate_event_id("event_id", self.event_id.as_deref())?.or(from_header);
        // What makes two deliveries "the same event"; a defaulted time is not part of it.
        let fingerprint = json!({
            "lead_id": lead_id, "event_type": event_type, "source": source, "content": content,
            "meeting_url": meeting_url, "occurred_at": self.occurred_at, "metadata": metadata,
        });
        let event = NewEvent {
            event_type,
            source,
            content,
            meeting_url,
            occurred_at,
            metadata,
            event_id,
            payload_hash: secrets::hash(&fingerprint.to_string()),
        };
        Ok((lead_id, event))
    }
}

/// Ingest one outreach outcome event.
///
/// Status only moves forward (`skipped` < `replied` < `meeting_booked`), and events are
/// applied in `occurred_at` order, so a late or older event never undoes a newer outcome;
/// every accepted event is kept in the lead's event log either way.
#[utoipa::path(post, path = "/api/v1/feedback/events", tag = "feedback", security(("api_key" = [])),
    request_body = FeedbackRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\t\x20-\x7e]*[\x21-\x7e][\t\x20-\x7e]*$", description = "Same as `event_id` (which wins when both are sent; the header is checked either way): visible ASCII, not blank"), CallbackQuery),
    responses(
        (status = 200, body = DataOf<FeedbackResult>, description = "Accepted; a retry of the same event gets the same answer"),
        (status = 400, body = ErrorBody, description = "`validation_error` naming the field"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`lead_not_found`: lead_id does not exist in this workspace"),
        (status = 409, body = ErrorBody, description = "`duplicate_idempotency_key`: the id was used for a different event"),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
async fn post_event(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    headers: HeaderMap,
    callback: Callback,
    Json(body): Json<FeedbackRequest, MAX_BODY_BYTES>,
) -> Result<Data<FeedbackResult>, ApiError> {
    let (lead_id, event) = body.validate(&headers, ctx.now())?;
    if lead_id.len() > 128 || lead_id.contains('#') {
        return Err(lead_not_found());
    }
    let result = recorder::record(&ctx, &caller.workspace_id, &lead_id, event).await?;
    crate::learning::schedule::outcome_arrived(&ctx, &caller.workspace_id, result.event_type, result.mutated_lead)
        .await;
    callback.send(&ctx, &caller.workspace_id, "feedback.event", &result).await;
    Ok(Data(result))
}

/// A lead's outcome events, newest `occurred_at` first.
#[utoipa::path(get, path = "/api/v1/leads/{id}/events", tag = "feedback", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lead id"), Pagination),
    responses((status = 200, body = ListOf<FeedbackEvent>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn lead_events(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Params(page): Params<Pagination>,
) -> Result<List<FeedbackEvent>, ApiError> {
    load(&ctx, &caller.workspace_id, &id).await?;
    let page =
        repo::feedback::list_events(&*ctx.store, &caller.workspace_id, &id, page.limit()?, page.cursor()?).await?;
    List::from_page(page, |item| item.parse())
}
