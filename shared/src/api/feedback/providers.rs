//! Instantly's and HeyReach's own webhooks, pointed straight at us.
//!
//! Neither tool signs its webhooks, so they authenticate with the organisation's webhook
//! token (the one that feeds leads in): Instantly sends it as a custom header
//! (`Authorization: Bearer <token>`), HeyReach, which cannot send headers, in the URL
//! (`?token=<token>`). The token is checked by hash and never logged.

use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::Value;

use crate::api::auth::WEBHOOK_TOKEN_HEADER;
use crate::api::docs::{DataOf, ErrorBody};
use crate::api::error::ApiError;
use crate::api::json::{Data, Json, Params};
use crate::context::AppContext;
use crate::domain::providers::{self, Provider};
use crate::domain::workspace::CredentialKind;
use crate::feedback::providers::{ProviderResult, record_provider};
use crate::repo::workspaces;

/// Provider payloads carry whole emails (`email_html`, `reply_html`).
pub const MAX_PROVIDER_BODY_BYTES: usize = 1024 * 1024;

/// The payloads as far as the server checks them: a JSON object with an event name.
/// Everything else is read leniently (a tracked event without a usable lead, or an event
/// name we do not know, is acknowledged with `accepted: false` and a reason), so the schema
/// lists the events from the parsers' own tables in its description, not as constraints.
mod payload_schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    use crate::domain::providers::Provider;

    fn names(provider: Provider, tracked: bool) -> String {
        let names: Vec<&str> =
            provider.events().iter().filter(|(_, mapped)| mapped.is_some() == tracked).map(|(n, _)| *n).collect();
        names.join(", ")
    }

    pub fn payload(provider: Provider) -> RefOr<Schema> {
        let lead = match provider {
            Provider::Instantly => "`lead_email` (or a `leadpush_id` custom variable)",
            Provider::Heyreach => "`lead.email_address` (or a `leadpush_id` custom field)",
        };
        let description = format!(
            "Tracked events: {}; the lead is found by {lead}. Acknowledged without recording: {}, \
             and any other event name (`accepted: false` with a reason).",
            names(provider, true),
            names(provider, false)
        );
        let event_name =
            || ObjectBuilder::new().schema_type(Type::String).pattern(Some(crate::support::text::NOT_WHITE_SPACE));
        let schema = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
        match provider {
            Provider::Instantly => schema.property("event_type", event_name()).required("event_type").into(),
            // HeyReach may leave the event name out of the body (`event_type` or `eventType`):
            // the URL's `?event=` gives it then, so no body is refused on its own.
            Provider::Heyreach => schema.into(),
        }
    }
}

/// Instantly's webhook payload (see `payload_schema`).
pub struct InstantlyPayload;

impl utoipa::PartialSchema for InstantlyPayload {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        payload_schema::payload(Provider::Instantly)
    }
}

impl utoipa::ToSchema for InstantlyPayload {}

/// HeyReach's webhook payload (see `payload_schema`).
pub struct HeyreachPayload;

impl utoipa::PartialSchema for HeyreachPayload {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        payload_schema::payload(Provider::Heyreach)
    }
}

impl utoipa::ToSchema for HeyreachPayload {}

/// The workspace a provider webhook belongs to, from its webhook token.
pub struct ProviderCaller {
    pub workspace_id: String,
}

fn header_token(parts: &Parts) -> Option<&str> {
    let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let bearer = text(header::AUTHORIZATION.as_str()).and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer.or_else(|| text(WEBHOOK_TOKEN_HEADER)).filter(|t| !t.is_empty())
}

fn query_token(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.trim().to_owned())
}

async fn authenticate(parts: &Parts, ctx: &AppContext, provider: Provider) -> Result<ProviderCaller, ApiError> {
    let token = match provider {
        Provider::Instantly => header_token(parts).map(str::to_owned),
        Provider::Heyreach => header_token(parts).map(str::to_owned).or_else(|| query_token(parts)),
    }
    .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(ApiError::Unauthorized(match provider {
            Provider::Instantly => {
                "Missing webhook token. In Instantly, add the custom header `Authorization: Bearer <webhook token>` \
                 to this webhook (your CSM issues the token)."
            }
            Provider::Heyreach => {
                "Missing webhook token. HeyReach cannot send headers: set the webhook URL to \
                 /api/v1/feedback/providers/heyreach?token=<webhook token> (your CSM issues the token)."
            }
        }));
    };
    let credential = workspaces::authenticate(&*ctx.store, CredentialKind::WebhookToken, &token)
        .await?
        .ok_or(ApiError::Unauthorized("Invalid or revoked webhook token."))?;
    tracing::Span::current().record("workspace_id", credential.workspace_id.as_str());
    Ok(ProviderCaller { workspace_id: credential.workspace_id })
}

/// `ProviderCaller` for Instantly (header only: Instantly supports custom headers).
pub struct InstantlyCaller(pub ProviderCaller);
/// `ProviderCaller` for HeyReach (header, or `?token=` since HeyReach cannot send headers).
pub struct HeyreachCaller(pub ProviderCaller);

impl FromRequestParts<AppContext> for InstantlyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        authenticate(parts, ctx, Provider::Instantly).await.map(InstantlyCaller)
    }
}

impl FromRequestParts<AppContext> for HeyreachCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        authenticate(parts, ctx, Provider::Heyreach).await.map(HeyreachCaller)
    }
}

/// Instantly's webhook (configure it with the custom header `Authorization: Bearer <webhook token>`).
///
/// Maps `email_opened`, `link_clicked`/`email_link_clicked`, `reply_received`, `lead_interested`,
/// `email_bounced` and `lead_meeting_booked`. Anything routine that is not recorded (other
/// events, custom labels, leads Leadpush does not have, unusable payloads) is answered 200
/// with `accepted: false` and a `reason`, and counted in the integration's
/// `webhook_activity`: Instantly disables webhooks that keep failing. The lead is found by
/// the `leadpush_id` custom variable, else by `lead_email`.
#[utoipa::path(post, path = "/api/v1/feedback/providers/instantly", tag = "feedback",
    security(("webhook_token" = [])), request_body(content = InstantlyPayload, description = "Instantly's webhook payload"),
    responses(
        (status = 200, body = DataOf<ProviderResult>, description = "Recorded, or acknowledged with `accepted: false` and a `reason`"),
        (status = 400, body = ErrorBody, description = "Not an Instantly payload at all (not an object, no `event_type`)"),
        (status = 401, body = ErrorBody, description = "Missing or invalid webhook token")))]
pub(super) async fn instantly(
    State(ctx): State<AppContext>,
    InstantlyCaller(caller): InstantlyCaller,
    Json(payload): Json<Value, MAX_PROVIDER_BODY_BYTES>,
) -> Result<Data<ProviderResult>, ApiError> {
    let parsed = providers::parse_instantly(&payload, ctx.now())?;
    Ok(Data(record_provider(&ctx, &caller.workspace_id, Provider::Instantly, parsed).await?))
}

/// The HeyReach webhook URL's query: the token, and the webhook's one event type for
/// payloads that arrive without `event_type`.
#[derive(Debug, Deserialize)]
pub struct HeyreachQuery {
    event: Option<String>,
}

/// HeyReach's webhook (configure the URL with `?token=<webhook token>&event=<EVENT_TYPE>`).
///
/// Maps `MESSAGE_REPLY_RECEIVED`, `INMAIL_REPLY_RECEIVED` and `EVERY_MESSAGE_REPLY_RECEIVED`
/// to `reply` (subscribe to the first two or the last, not both) and the auto-tags
/// `LEAD_AUTO_TAGGED_INTERESTED`/`_POSITIVE` to `positive_reply`. Anything routine that is
/// not recorded is answered 200 with `accepted: false` and a `reason`, and counted. A payload
/// without `event_type` takes the URL's `event`. The lead is found by a `leadpush_id` custom
/// field, else by `lead.profile_url`, else by `lead.email_address`.
#[utoipa::path(post, path = "/api/v1/feedback/providers/heyreach", tag = "feedback",
    params(("token" = Option<String>, Query, description = "The organisation's webhook token"),
        ("event" = Option<String>, Query, description = "The webhook's event type (e.g. `MESSAGE_REPLY_RECEIVED`), used when a payload has no `event_type`")),
    request_body(content = HeyreachPayload, description = "HeyReach's webhook payload"),
    responses(
        (status = 200, body = DataOf<ProviderResult>, description = "Recorded, or acknowledged with `accepted: false` and a `reason`"),
        (status = 400, body = ErrorBody, description = "Not a HeyReach payload at all (not an object; no event type in the body or the URL)"),
        (status = 401, body = ErrorBody, description = "Missing or invalid token")))]
pub(super) async fn heyreach(
    State(ctx): State<AppContext>,
    HeyreachCaller(caller): HeyreachCaller,
    Params(query): Params<HeyreachQuery>,
    Json(payload): Json<Value, MAX_PROVIDER_BODY_BYTES>,
) -> Result<Data<ProviderResult>, ApiError> {
    let parsed = providers::parse_heyreach(&payload, query.event.as_deref(), ctx.now())?;
    Ok(Data(record_provider(&ctx, &caller.workspace_id, Provider::Heyreach, parsed).await?))
}
