//! The inbound campaign webhook (the webhook-campaign setup guide):
//! `POST /api/v1/webhook/leads`. The work is in [`crate::ingest`].

use axum::Extension;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::RequestId;
use super::auth::WebhookCaller;
use super::docs::{DataOf, ErrorBody};
use crate::api::error::ApiError;
use crate::api::json::{Accepted, Json};
use crate::context::AppContext;
use crate::ingest::{self, Batch, IngestAccepted};

/// 4 MiB: with the escaping of the Lambda event (see `api::json::MAX_EVENT_BODY_BYTES`) a
/// typical body this large still fits through Lambda's 6 MB payload limit.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(ingest_leads))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// Unique per batch (1 to 255 characters); reuse within the idempotency window (one
    /// week) is refused with 409.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
    )]
    idempotency_key: String,
    /// 1 to 1000 leads; each needs a `campaign_id` of a webhook campaign of this workspace
    /// (400 naming `leads[i].campaign_id` otherwise) and at least one of `name`, `email`,
    /// `first_name`, `last_name`, `linkedin`, `phone`, `twitter`, `company` that is not
    /// blank (`anyOf`). More than 1000 leads is 413.
    #[schema(value_type = Vec<IdentifiedLead>, min_items = 1, max_items = 1000)]
    leads: Vec<Value>,
}

/// One lead. Fields not listed here are kept in `custom_fields`.
#[derive(ToSchema)]
#[schema(as = IncomingLead)]
#[allow(dead_code)]
pub struct IncomingLeadSchema {
    /// A webhook campaign of this workspace (an id of at most 128 characters).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^(?=[\s\S]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$"
    )]
    campaign_id: String,
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    name: Option<String>,
    #[schema(schema_with = super::docs::lead_email_or_null)]
    email: Option<String>,
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    first_name: Option<String>,
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    last_name: Option<String>,
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    company: Option<String>,
    /// An http(s) URL or a bare domain (`acme.com`, stored as `https://acme.com`).
    #[schema(schema_with = super::docs::web_link_or_null)]
    website: Option<String>,
    #[schema(max_length = 64, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    phone: Option<String>,
    /// Job title (`title` is accepted too).
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    position: Option<String>,
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    twitter: Option<String>,
    /// An http(s) URL or a bare domain (`linkedin.com/in/ada`).
    #[schema(schema_with = super::docs::web_link_or_null)]
    linkedin: Option<String>,
    /// The same as `linkedin`.
    #[schema(schema_with = super::docs::web_link_or_null)]
    linkedin_url: Option<String>,
    /// The same as `position`.
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    title: Option<String>,
    /// The same as `position`.
    #[schema(max_length = 1000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    job_title: Option<String>,
    #[schema(max_length = 10000, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    notes: Option<String>,
    score: Option<i64>,
    #[schema(max_length = 100, pattern = r"^([^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r\n)*$")]
    signal_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Map<String, Value>>,
}

/// [`IncomingLeadSchema`] with its rule across fields: at least one identity field that is
/// not blank (`domain::lead::IncomingLead::parse`), as `anyOf`.
struct IdentifiedLead;

/// The fields that say who a lead is (`linkedin_url` is `linkedin`'s alias).
const IDENTITY_FIELDS: [&str; 9] =
    ["name", "email", "first_name", "last_name", "linkedin", "linkedin_url", "phone", "twitter", "company"];

impl utoipa::PartialSchema for IdentifiedLead {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder};
        let identity =
            IDENTITY_FIELDS.iter().fold(AnyOfBuilder::new(), |any, field| any.item(super::docs::present(field)));
        AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(<IncomingLeadSchema as ToSchema>::name()))
            .item(identity)
            .into()
    }
}

impl ToSchema for IdentifiedLead {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push((
            <IncomingLeadSchema as ToSchema>::name().into_owned(),
            <IncomingLeadSchema as utoipa::PartialSchema>::schema(),
        ));
        <IncomingLeadSchema as ToSchema>::schemas(schemas);
    }
}

/// Send leads to one or more webhook campaigns.
#[utoipa::path(post, path = "/api/v1/webhook/leads", tag = "ingest", security(("webhook_token" = [])),
    request_body = IngestRequest,
    responses(
        (status = 202, body = DataOf<IngestAccepted>, description = "Leads stored; lead ids start with `request_id`"),
        (status = 400, body = ErrorBody, description = "`validation_error` naming the field and lead index; nothing stored"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_idempotency_key` (final), or `request_in_progress` with `Retry-After` for a retry of the same body while the first request holds the key (retry then); both with the original `request_id`"),
        (status = 413, body = ErrorBody, description = "Body over 4 MiB (or over 5.5 MiB once JSON-escaped) or more than 1000 leads"),
        (status = 415, body = ErrorBody)))]
async fn ingest_leads(
    State(ctx): State<AppContext>,
    caller: WebhookCaller,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Json(body): Json<IngestRequest, MAX_BODY_BYTES>,
) -> Result<Accepted<IngestAccepted>, ApiError> {
    let batch = Batch { idempotency_key: &body.idempotency_key, leads: &body.leads };
    Ok(Accepted(ingest::ingest(&ctx, &caller.workspace_id, &request_id, batch).await?))
}
